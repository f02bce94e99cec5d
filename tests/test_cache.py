import errno
import importlib
import inspect
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from latent_notes.data import load_data
from latent_notes.families import CLASSIFIER, train
from latent_notes.models.autoencoder import build_autoencoder
from latent_notes.models.classifier import CNNConfig, build_classifier
from latent_notes.models.family import sized
from latent_notes.models.vae import build_vae
from latent_notes.models.vqvae2 import build_vqvae2
from latent_notes.store import cache
from latent_notes.store.cache import (
    CheckpointError,
    Run,
    Store,
    code_version,
    config_key,
    load_checkpoint,
)


@pytest.fixture(scope="module")
def small_digits():
    return load_data("digits", subset=120)


def train_small(data, cache_dir, seed=0, epochs=1):
    model_config = sized(CNNConfig, data, arch="cnn3x3", num_classes=len(data.classes), width=8)
    recipe = CLASSIFIER.train_config(epochs=epochs, batch_size=32, lr=5e-3)
    return train(CLASSIFIER, data, model_config, recipe, run=Run.here(seed, "cpu", cache_dir))


def test_config_key_ignores_key_order_and_sees_every_value():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})


def test_miss_then_hit_gives_the_same_weights(tmp_path, small_digits, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("LATENT_NOTES_EVENTS", str(events))
    first = train_small(small_digits, tmp_path)
    second = train_small(small_digits, tmp_path)
    assert (first.status, second.status) == ("trained", "loaded")
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(),
                    strict=True):
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
    alias = Store(tmp_path).store_alias(first.path, "judge-test")
    loaded = load_checkpoint(alias)  # no builder given: the checkpoint names its own
    assert loaded.builder == "classifier"  # a short name of the package's builder table
    x = small_digits.test.images[:5]
    assert torch.allclose(loaded.model(x), first.model(x))


def test_alias_is_found_for_the_same_data_only(tmp_path, small_digits):
    from latent_notes.store.cache import same_data

    first = train_small(small_digits, tmp_path)
    Store(tmp_path).store_alias(first.path, "cnn-digits")
    found = Store(tmp_path).load_alias("cnn-digits", "cpu", same_data(small_digits.spec))
    assert found is not None and found.path == first.path  # points back at the original entry
    other = load_data("digits", subset=60)
    with pytest.warns(UserWarning, match="Ignoring the model stored as 'cnn-digits'.*other images"):
        assert Store(tmp_path).load_alias("cnn-digits", "cpu", same_data(other.spec)) is None
    assert Store(tmp_path).load_alias("missing", "cpu") is None


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
        Store(tmp_path).load_or_train("broken", config, build_classifier, broken, device="cpu")
    assert not list(tmp_path.glob("*.pt"))


def module_names(build):
    return {m.__name__ for m in cache._model_modules(inspect.getmodule(build), set())}


def test_code_version_covers_the_model_modules_a_builder_imports_and_nothing_else():
    vqvae2 = module_names(build_vqvae2)
    assert {"latent_notes.models.vqvae2", "latent_notes.models.quantise"} <= vqvae2
    assert all(name.startswith("latent_notes.models.") for name in vqvae2)
    assert "latent_notes.models.autoencoder" not in vqvae2
    # Every model module imports its Family record (models/family.py): recipes, not model code.
    vae = module_names(build_vae)
    assert {"latent_notes.models.vae", "latent_notes.models.common"} <= vae
    for builder in (build_vqvae2, build_vae, build_autoencoder, build_classifier):
        names = module_names(builder)
        assert not names & {"latent_notes.experiments.plots", "latent_notes.training",
                            "latent_notes.checks", "latent_notes.families",
                            "latent_notes.store.cache", "latent_notes.models.family"}
        assert len(code_version(builder)) == 8


@pytest.mark.parametrize("edited, retrains", [("latent_notes.models.quantise", True),
                                              ("latent_notes.models.vqvae2", True),
                                              ("latent_notes.models.autoencoder", False),
                                              ("latent_notes.experiments.plots", False),
                                              ("latent_notes.training", False),
                                              ("latent_notes.models.family", False)])
def test_editing_a_module_changes_the_code_version_of_models_built_from_it(
        edit_source, edited, retrains):
    importlib.import_module(edited)
    before = code_version(build_vqvae2)
    edit_source(edited)
    assert (code_version(build_vqvae2) != before) == retrains


def test_an_edited_model_is_not_loaded_from_its_old_checkpoint(edit_source, tmp_path):
    config = {"model": {"arch": "cnn3x3", "channels": 1, "image_size": 28, "num_classes": 10,
                        "width": 4, "fc_width": 8, "dropout": 0.5, "batch_norm": False}, "seed": 0}

    def history(model, state):  # no training needed to see which file is used
        return pd.DataFrame({"epoch": [1]})

    first = Store(tmp_path).load_or_train("cnn", config, build_classifier, history, device="cpu")
    store = Store(tmp_path)
    assert store.load_or_train("cnn", config, build_classifier, history,
                               device="cpu").status == "loaded"
    (tmp_path / "edited").mkdir()
    edit_source("latent_notes.models.classifier")
    again = Store(tmp_path).load_or_train("cnn", config, build_classifier, history, device="cpu")
    assert again.status == "trained" and again.path != first.path


# -- what a file, a full disk or a kill can do: nothing is run, nothing trained is lost ----------

TINY = {"model": {"arch": "cnn3x3", "channels": 1, "image_size": 28, "num_classes": 10,
                  "width": 4, "fc_width": 8, "dropout": 0.5, "batch_norm": False}, "seed": 0}


def untrained(model, state):  # no training needed to see which file is used
    return pd.DataFrame({"epoch": [1]})


@pytest.mark.parametrize("builder, config", [
    ("builtins:exec", "open({marker!r}, 'w')"),
    ("subprocess:run", ["touch", "{marker}"]),
    ("latent_notes.models.classifier:torch.os.system", "touch {marker}")])
def test_a_cached_checkpoint_cannot_choose_the_function_that_rebuilds_it(tmp_path, builder,
                                                                          config):
    marker = tmp_path / "pwned"
    config = ([part.format(marker=marker) for part in config] if isinstance(config, list)
              else config.format(marker=str(marker)))
    path = cache.entry_path(tmp_path, "cnn", TINY, build_classifier)
    torch.save({"format_version": 1, "name": "cnn", "key": config_key(TINY), "config": config,
                "builder": builder, "state_dict": {}, "history": {}}, path)
    with pytest.raises(CheckpointError, match="not one of the package's"):
        load_checkpoint(path)  # no builder given: the file's name is looked up, never imported
    calls = []
    with pytest.warns(UserWarning, match="moved to"):
        again = Store(tmp_path).load_or_train(
            "cnn", TINY, build_classifier, lambda m, s: calls.append(1) or untrained(m, s),
            device="cpu")
    assert not marker.exists() and calls == [1] and again.status == "retrained"
    assert list(tmp_path.glob("*.corrupt-*"))


def test_an_unregistered_builder_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="not in latent_notes.store.checkpoint.BUILDERS"):
        Store(tmp_path).load_or_train("cnn", TINY, lambda config: build_classifier(config),
                                      untrained, device="cpu")


def test_a_cache_that_cannot_be_created_is_named_before_any_training(tmp_path):
    (tmp_path / "file").write_text("a regular file, not a folder")
    calls = []
    with pytest.raises(cache.CacheError, match="file/cache cannot be used.*LATENT_NOTES_CACHE"):
        Store(tmp_path / "file" / "cache").load_or_train(
            "cnn", TINY, build_classifier, lambda m, s: calls.append(1), device="cpu")
    assert calls == []


def test_a_full_disk_keeps_the_trained_model_in_memory(tmp_path, small_digits, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.torch, "save", no_space)
    with pytest.warns(UserWarning, match="could not be saved.*disk is full.*stays in memory"):
        trained = train_small(small_digits, tmp_path)
    assert trained.status == "trained" and trained.history["epoch"].tolist() == [1]
    x = small_digits.test.images[:4]
    assert trained.model(x).shape == (4, 10)  # the chapter goes on with it
    assert not list(tmp_path.glob("*.pt"))


def test_a_read_only_cache_that_holds_the_model_is_only_read(tmp_path, small_digits,
                                                             monkeypatch):
    """As root, chmod stops no write: every way of writing is made to fail instead."""
    first = train_small(small_digits, tmp_path)
    Store(tmp_path).store_alias(first.path, "judge-digits")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    for target, name in [(cache.os, "replace"), (cache.shutil, "copyfile"), (cache.torch, "save"),
                         (cache.FileLock, "acquire"), (Path, "write_bytes"),
                         (Path, "mkdir"), (Path, "unlink")]:
        monkeypatch.setattr(target, name, refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        again = Store(tmp_path).load_or_train(first.name, first.config, build_classifier,
                                              untrained, device="cpu", alias="judge-digits")
        by_alias = Store(tmp_path).load_alias("judge-digits", "cpu")
    assert again.status == "loaded" and by_alias is not None


@pytest.mark.parametrize("folder", ["/content/drive/MyDrive/" + "photos of my cats/" * 12,
                                    "/home/读者/" + "图片" * 48])
def test_long_and_non_ascii_folder_names_make_bounded_file_names(tmp_path, folder):
    alias = cache.alias_name("vae", f"folder:{folder}", "latent16")
    assert alias.isascii() and len(alias) <= cache.MAX_NAME_BYTES
    assert alias != cache.alias_name("vae", f"folder:{folder}x", "latent16")
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    assert Store(tmp_path).store_alias(path, alias).read_bytes() == b"x"  # no "File name too long"
    entry = cache.entry_path(tmp_path, alias, TINY, build_classifier)
    assert len(entry.name.encode()) <= cache.MAX_NAME_BYTES + 3


def test_temporary_files_of_dead_processes_are_swept(tmp_path):
    import subprocess
    import sys

    from latent_notes.training import HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:  # files of this machine's processes (another machine's: tests/test_trust_store.py)
        stale = tmp_path / f".cnn-abc.pt.{dead}@{HOST}.tmp"
        stale_folder = tmp_path / f".download.ab12.{dead}@{HOST}.tmp"
        busy = tmp_path / f".cnn-abc.pt.{alive.pid}@{HOST}.tmp"
        stale.write_bytes(b"half")
        stale_folder.mkdir()
        busy.write_bytes(b"being written")
        cache.require_writable(tmp_path)
        assert not stale.exists() and not stale_folder.exists() and busy.exists()
    finally:
        alive.kill()


def test_a_state_is_written_after_each_epoch_and_removed_once_saved(tmp_path, small_digits,
                                                                   monkeypatch):
    written = []
    real = cache.TrainingState.save
    monkeypatch.setattr(cache.TrainingState, "save",
                        lambda self, state: written.append(state["epoch"]) or real(self, state))
    trained = train_small(small_digits, tmp_path, epochs=3)
    assert written == [1, 2]  # the last epoch's state would be the saved model itself
    assert not list(tmp_path.glob("*.state.pt")) and trained.path.exists()


def test_a_non_finite_loss_stops_training_and_caches_nothing(tmp_path, small_digits):
    from latent_notes.models.classifier import classification_loss
    from latent_notes.training import TrainingDiverged, train_model

    def exploding(model, x, y):
        terms = classification_loss(model, x, y)
        return {**terms, "loss": terms["loss"] * float("inf")}

    def run(model, state):
        return train_model(model, exploding, small_digits.train.loader(32, shuffle=True), None,
                           CLASSIFIER.train_config(epochs=2, batch_size=32, lr=5e-3),
                           device="cpu", name="cnn", state=state)

    with pytest.raises(TrainingDiverged, match="cnn diverged.*epoch 1 of 2.*Lower the learning"):
        Store(tmp_path).load_or_train("cnn", TINY, build_classifier, run, device="cpu")
    assert not [p for p in tmp_path.iterdir() if p.name != ".locks"]


@pytest.mark.parametrize("make", [
    lambda: __import__("latent_notes.models.vae", fromlist=["x"]).VAEConfig(beta=float("inf")),
    lambda: __import__("latent_notes.models.vae", fromlist=["x"]).VAEConfig(
        recon_weight=float("inf")),
    lambda: __import__("latent_notes.models.vae", fromlist=["x"]).VAEConfig(
        noise_std=float("inf")),
    lambda: __import__("latent_notes.models.vqvae2", fromlist=["x"]).VQVAE2Config(
        commitment_weight=float("inf")),
    lambda: __import__("latent_notes.models.vqvae2", fromlist=["x"]).VQVAE2Config(
        restart_threshold=float("inf"))])
def test_configs_refuse_infinite_weights_and_thresholds(make):
    from latent_notes.checks import ParameterError

    with pytest.raises(ParameterError, match="finite number"):
        make()


RUN = '''
import json, os, sys, time
import torch
from latent_notes.store.cache import Store
from latent_notes.data import load_data
from latent_notes.families import CLASSIFIER
from latent_notes.models.family import sized
from latent_notes.models.classifier import CNNConfig, build_classifier, classification_loss
from latent_notes.training import train_model

cache_dir, out, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
torch.set_num_threads(1)
data = load_data("digits", subset=200)
model_config = sized(CNNConfig, data, arch="cnn3x3", num_classes=10, width=8)
recipe = CLASSIFIER.train_config(epochs=3, batch_size=32, lr=5e-3)

calls = [0]

def slow_loss(model, x, y):
    calls[0] += 1
    time.sleep(pause)
    return classification_loss(model, x, y)

def run(model, state):
    return train_model(model, slow_loss, data.train.loader(32, shuffle=True, seed=0), None, recipe,
                 device="cpu", name="cnn", state=state)

config = {"model": model_config.__dict__, "train": recipe.__dict__, "data": data.spec, "seed": 0}
result = Store(cache_dir).load_or_train("cnn", config, build_classifier, run, device="cpu")
torch.save(result.model.state_dict(), out)
print(json.dumps({"status": result.status, "batches": calls[0]}))
'''


def run_script(tmp_path, cache_dir, out, pause=0.0, wait=True):
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(RUN)
    env = {**os.environ, "LATENT_NOTES_PROGRESS": "0",
           "LATENT_NOTES_EVENTS": str(tmp_path / f"{Path(out).stem}.events")}
    process = subprocess.Popen([sys.executable, str(script), str(cache_dir), str(out), str(pause)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_a_run_killed_at_epoch_2_of_3_resumes_to_the_same_weights(tmp_path):
    import signal

    whole = run_script(tmp_path, tmp_path / "whole", tmp_path / "whole.pt")
    killed = run_script(tmp_path, tmp_path / "cache", tmp_path / "killed.pt", pause=0.05,
                        wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None:
        states = list((tmp_path / "cache").glob("*.state.pt"))
        if states and torch.load(states[0], weights_only=True)["epoch"] == 2:
            killed.send_signal(signal.SIGKILL)  # in epoch 3: the state of epoch 2 is on disk
            break
        time.sleep(0.02)
    assert killed.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert not list((tmp_path / "cache").glob("*.pt")) or all(
        p.name.endswith(".state.pt") for p in (tmp_path / "cache").glob("*.pt"))
    resumed = run_script(tmp_path, tmp_path / "cache", tmp_path / "resumed.pt")
    assert whole["status"] == resumed["status"] == "trained"
    assert resumed["batches"] * 3 == whole["batches"] == 21  # only epoch 3 was trained again
    a, b = torch.load(tmp_path / "whole.pt"), torch.load(tmp_path / "resumed.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    event = json.loads((tmp_path / "resumed.events").read_text().splitlines()[-1])
    assert event["resumed_from"] == 2
    assert not list((tmp_path / "cache").glob("*.state.pt"))  # removed once the model is saved
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # the killed run's temporaries swept


@pytest.mark.integration
def test_two_builds_on_one_cache_with_a_corrupt_file(tmp_path):
    """The first quarantines and trains; the second waits for it, then loads what it saved."""
    run_script(tmp_path, tmp_path / "cache", tmp_path / "first.pt")
    (path,) = (tmp_path / "cache").glob("cnn-*.pt")
    path.write_bytes(path.read_bytes()[:300])
    runs = [run_script(tmp_path, tmp_path / "cache", tmp_path / f"{i}.pt", pause=0.02, wait=False)
            for i in range(2)]
    statuses = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-2000:]
        statuses.append(json.loads(stdout.strip().splitlines()[-1])["status"])
    assert sorted(statuses) == ["loaded", "retrained"]
