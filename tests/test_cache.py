import importlib
import inspect
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from latent_notes import cache
from latent_notes.cache import (CheckpointError, code_version, config_key, load_checkpoint,
                                load_or_train, store_alias)
from latent_notes.data import load_data
from latent_notes.families import classifier_recipe, sized, train_classifier
from latent_notes.models.autoencoder import build_autoencoder
from latent_notes.models.classifier import CNNConfig, build_classifier
from latent_notes.models.vae import build_vae
from latent_notes.models.vqvae2 import build_vqvae2


@pytest.fixture(scope="module")
def small_digits():
    return load_data("digits", subset=120)


def train_small(data, cache_dir, seed=0, epochs=1):
    model_config = sized(CNNConfig, data, arch="cnn3x3", num_classes=len(data.classes), width=8)
    return train_classifier(data, model_config, classifier_recipe(epochs, 32, 5e-3), seed=seed,
                            device=torch.device("cpu"), cache_dir=cache_dir)


def test_config_key_ignores_key_order_and_sees_every_value():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})


def test_miss_then_hit_gives_the_same_weights(tmp_path, small_digits, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("LATENT_NOTES_EVENTS", str(events))
    first = train_small(small_digits, tmp_path)
    second = train_small(small_digits, tmp_path)
    assert (first.status, second.status) == ("trained", "loaded")
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert second.history.equals(first.history)
    assert second.config["model"]["arch"] == "cnn3x3"  # the config travels in the checkpoint
    assert second.model.config == first.model.config
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["status"] for e in logged] == ["trained", "loaded"]
    assert logged[0]["images_per_s"] > 0


def test_another_seed_or_epoch_count_is_a_miss(tmp_path, small_digits):
    a = train_small(small_digits, tmp_path)
    b = train_small(small_digits, tmp_path, seed=1)
    c = train_small(small_digits, tmp_path, epochs=2)
    assert len({a.path, b.path, c.path}) == 3 and b.status == c.status == "trained"


def test_corrupt_checkpoint_is_moved_aside_and_retrained(tmp_path, small_digits):
    first = train_small(small_digits, tmp_path)
    first.path.write_bytes(first.path.read_bytes()[:500])  # a half-written file
    with pytest.warns(UserWarning, match="moved to"):
        again = train_small(small_digits, tmp_path)
    assert again.status == "retrained"
    assert list(tmp_path.glob("*.corrupt-*")), "the broken file is kept for inspection"
    assert load_checkpoint(again.path).status == "loaded"


def test_load_checkpoint_rebuilds_from_the_stored_config(tmp_path, small_digits):
    first = train_small(small_digits, tmp_path)
    alias = store_alias(first.path, "judge-test", tmp_path)
    loaded = load_checkpoint(alias)  # no builder given: the checkpoint names its own
    assert loaded.builder == "classifier"  # a short name of the package's builder table
    x = small_digits.test.images[:5]
    assert torch.allclose(loaded.model(x), first.model(x))


def test_alias_is_found_for_the_same_data_only(tmp_path, small_digits):
    from latent_notes.cache import load_alias, same_data

    first = train_small(small_digits, tmp_path)
    store_alias(first.path, "cnn-digits", tmp_path)
    found = load_alias("cnn-digits", "cpu", tmp_path, same_data(small_digits.spec))
    assert found is not None and found.path == first.path  # points back at the original entry
    other = load_data("digits", subset=60)
    assert load_alias("cnn-digits", "cpu", tmp_path, same_data(other.spec)) is None
    assert load_alias("missing", "cpu", tmp_path) is None


def test_unreadable_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_text("junk")
    with pytest.raises(CheckpointError, match="unreadable.*train again"):
        load_checkpoint(path)


def test_no_temporary_files_are_left(tmp_path, small_digits):
    train_small(small_digits, tmp_path)
    assert not list(tmp_path.glob(".*tmp"))


def test_failed_training_leaves_no_checkpoint(tmp_path):
    def broken(model, state):
        raise KeyboardInterrupt

    config = {"model": {"arch": "cnn3x3", "channels": 1, "image_size": 28, "num_classes": 10,
                        "width": 4, "fc_width": 8, "dropout": 0.5, "batch_norm": False}, "seed": 0}
    with pytest.raises(KeyboardInterrupt):
        load_or_train("broken", config, build_classifier, broken, device="cpu", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.pt"))


def module_names(build):
    return {m.__name__ for m in cache._model_modules(inspect.getmodule(build), set())}


def test_code_version_covers_the_model_modules_a_builder_imports_and_nothing_else():
    vqvae2 = module_names(build_vqvae2)
    assert {"latent_notes.models.vqvae2", "latent_notes.models.quantize"} <= vqvae2
    assert all(name.startswith("latent_notes.models.") for name in vqvae2)
    assert "latent_notes.models.autoencoder" not in vqvae2
    # The VAE module imports TrainConfig from the training loop: that is not model code.
    vae = module_names(build_vae)
    assert {"latent_notes.models.vae", "latent_notes.models.common"} <= vae
    for builder in (build_vqvae2, build_vae, build_autoencoder, build_classifier):
        names = module_names(builder)
        assert not names & {"latent_notes.plots", "latent_notes.training", "latent_notes.checks",
                            "latent_notes.families", "latent_notes.cache"}
        assert code_version(builder) == code_version(builder)  # stable
        assert len(code_version(builder)) == 8


def edited_source(monkeypatch, tmp_path, module_name):
    """Let code_version read an edited copy of ``module_name``'s source file."""
    real = inspect.getsourcefile

    def fake(module):
        path = real(module)
        if getattr(module, "__name__", None) == module_name:
            copy = tmp_path / Path(path).name
            copy.write_bytes(Path(path).read_bytes() + b"\n# edited\n")
            return str(copy)
        return path

    monkeypatch.setattr(cache.inspect, "getsourcefile", fake)


@pytest.mark.parametrize("edited, retrains", [("latent_notes.models.quantize", True),
                                              ("latent_notes.models.vqvae2", True),
                                              ("latent_notes.models.autoencoder", False),
                                              ("latent_notes.plots", False),
                                              ("latent_notes.training", False)])
def test_editing_a_module_changes_the_code_version_of_models_built_from_it(
        monkeypatch, tmp_path, edited, retrains):
    importlib.import_module(edited)
    before = code_version(build_vqvae2)
    edited_source(monkeypatch, tmp_path, edited)
    assert (code_version(build_vqvae2) != before) == retrains


def test_an_edited_model_is_not_loaded_from_its_old_checkpoint(monkeypatch, tmp_path):
    config = {"model": {"arch": "cnn3x3", "channels": 1, "image_size": 28, "num_classes": 10,
                        "width": 4, "fc_width": 8, "dropout": 0.5, "batch_norm": False}, "seed": 0}

    def history(model, state):  # no training needed to see which file is used
        return pd.DataFrame({"epoch": [1]})

    first = load_or_train("cnn", config, build_classifier, history, device="cpu",
                          cache_dir=tmp_path)
    assert load_or_train("cnn", config, build_classifier, history, device="cpu",
                         cache_dir=tmp_path).status == "loaded"
    (tmp_path / "edited").mkdir()
    edited_source(monkeypatch, tmp_path / "edited", "latent_notes.models.classifier")
    again = load_or_train("cnn", config, build_classifier, history, device="cpu",
                          cache_dir=tmp_path)
    assert again.status == "trained" and again.path != first.path
