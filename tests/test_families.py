"""One interface for every family, the registry chapter 5 loops over, and the one judge."""
import ast
import inspect
import re
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from latent_notes import families
from latent_notes.data import load_data
from latent_notes.families import FAMILIES
from latent_notes.models.autoencoder import Autoencoder, build_autoencoder
from latent_notes.models.common import batched
from latent_notes.models.pixelcnn import PixelCNN, prior_config
from latent_notes.models.vae import VAE
from latent_notes.models.vqvae2 import VQVAE2, build_vqvae2
from latent_notes.store.cache import Run, _model_modules, code_version
from latent_notes.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = {"ae": dict(latent_size=5, width=4), "vae": dict(latent_size=5, width=4, fc_width=16),
        "vqvae2": dict(width=8, res_channels=4, embed_dim=4, codebook_size_top=8,
                       codebook_size_bottom=16)}


def tiny_model(name, channels=1, image_size=28):
    family = FAMILIES[name]
    torch.manual_seed(0)
    config = family.config(channels=channels, image_size=image_size, **TINY[name])
    model = family.build({"model": asdict(config)})
    assert type(model) is {"ae": Autoencoder, "vae": VAE, "vqvae2": VQVAE2}[name]
    if family.has_priors:  # its sampler: two (untrained) priors of the right shapes
        priors = [PixelCNN(prior_config(config, level, channels=8, layers=2))
                  for level in ("top", "bottom")]
        model.attach_priors(*priors)
    return model.eval()


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 32)])
def test_every_family_has_the_same_verbs(name, channels, image_size):
    model = tiny_model(name, channels, image_size)
    x = torch.rand(3, channels, image_size, image_size)
    codes = model.encode(x)
    assert codes.ndim == 2 and len(codes) == 3  # (B, D): what probes and traversals read
    images = model.decode(codes)
    assert images.shape == x.shape and 0 <= images.min() and images.max() <= 1
    assert torch.allclose(model.reconstruct(x), images, atol=1e-5)
    drawn = model.sample(4, seed=0)
    assert drawn.shape == (4, channels, image_size, image_size)
    assert torch.equal(drawn, model.sample(4, seed=0))
    assert not torch.equal(drawn, model.sample(4, seed=1))
    assert model.sample(2, seed=0, labels=torch.tensor([0, 1])).shape[0] == 2
    shifted = codes.clone()
    shifted[:, 0] += 1.0  # any code of that shape decodes: the latent is a space
    assert model.decode(shifted).shape == x.shape


def test_family_specific_verbs_stay_on_their_model():
    assert hasattr(tiny_model("vae"), "posterior") and hasattr(tiny_model("vqvae2"), "edit_code")
    assert not hasattr(tiny_model("ae"), "edit_code")


def test_a_family_and_its_chapters_parameters_cell_name_the_same_defaults():
    """A parameters cell holds plain numbers (papermill overrides them), and chapter 5 trains a
    missing model with its family's defaults: where a chapter exposes a setting as a
    parameter, the two must agree (a setting it does not expose comes from the family)."""
    checked = 0
    for family, prefix in [*((f, "") for f in FAMILIES.values()), (families.PRIOR, "prior_")]:
        defaults = parameters_cell(family.chapter)
        for key, value in {**family.model_options, **family.train_options}.items():
            if prefix + key in defaults:
                assert defaults[prefix + key] == value, (family.name, key)
                checked += 1
    assert checked >= 12  # widths, codebooks, β_c, batch sizes, rates, the priors' size


def parameters_cell(chapter: str) -> dict:
    source = (ROOT / "book" / f"{chapter}.py").read_text()
    cell = re.split(r'# %% tags=\["parameters"[^\]]*\]', source, maxsplit=1)[1].split("# %%", 1)[0]
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell).body
            if isinstance(node, ast.Assign)}


@pytest.mark.parametrize("profile", ["quick", "standard", "full"])
def test_chapters_3_4_and_5_name_chapter_1s_judge_recipe_in_every_profile(profile):
    chapters = (yaml.safe_load((ROOT / "profiles" / f"{profile}.yml").read_text()) or {}).get(
        "chapters") or {}
    resolved = {c: {**parameters_cell(c), **(chapters.get(c) or {})}
                for c in ("01_cnn_warmup", "03_vae", "04_vqvae2", "05_comparison")}
    first = resolved["01_cnn_warmup"]
    for chapter in ("03_vae", "04_vqvae2", "05_comparison"):
        for key in ("epochs", "batch_size", "lr"):
            assert resolved[chapter][f"judge_{key}"] == first[key], (chapter, key)


@pytest.mark.parametrize("profile", ["quick", "standard", "full"])
def test_chapter_5_trains_its_same_backbone_models_with_chapter_4s_recipe(profile):
    chapters = (yaml.safe_load((ROOT / "profiles" / f"{profile}.yml").read_text()) or {}).get(
        "chapters") or {}
    resolved = {c: {**parameters_cell(c), **(chapters.get(c) or {})}
                for c in ("04_vqvae2", "05_comparison")}
    for key in ("epochs", "batch_size", "lr"):
        assert resolved["05_comparison"][f"vq_{key}"] == resolved["04_vqvae2"][key], key


def test_the_judge_is_chapter_1s_network_whichever_chapter_asks_first(tmp_path):
    data = load_data("digits", subset=100)
    recipe = dict(epochs=1, batch_size=32, lr=5e-3)
    where = dict(run=Run.here(0, "cpu", tmp_path))
    first = families.judge(data, **recipe, **where)
    assert first.status == "trained" and first.model.config.arch == "cnn_deep"
    stable = families.alias(families.CLASSIFIER, data, arch="cnn_deep")
    assert stable == "judge-digits" and (tmp_path / f"{stable}.pt").exists()
    again = families.judge(data, **recipe, **where)  # what chapters 4 and 5 do
    assert again.status == "loaded" and again.path == first.path
    x = data.test.images[:8]
    assert torch.allclose(first.model(x), again.model(x), atol=1e-6)
    other = families.judge(data, **{**recipe, "batch_size": 16}, **where)
    assert other.path != first.path  # another recipe is another network, never confused


def test_load_family_uses_the_chapters_model_else_trains_one(tmp_path):
    data = load_data("digits", subset=100)
    where = dict(run=Run.here(0, "cpu", tmp_path))
    model, rows = families.load_family("ae", data, latent_size=4, epochs=1, **where)
    assert rows[0]["source"] == "trained here" and model.config.width == 32
    model_again, rows = families.load_family("ae", data, latent_size=4, epochs=1, **where)
    assert rows[0]["source"] == "its chapter (cache)"
    x = data.test.images[:4]
    assert torch.allclose(model(x).recon, model_again(x).recon, atol=1e-6)
    with pytest.raises(Exception, match="families are"):
        families.load_family("gan", data, latent_size=4, epochs=1, **where)


def test_load_family_attaches_the_priors_of_vqvae2(tmp_path):
    data = load_data("digits", subset=60)
    where = dict(run=Run.here(0, "cpu", tmp_path))
    fam = FAMILIES["vqvae2"]
    original = fam.model_options
    object.__setattr__(fam, "model_options", TINY["vqvae2"])  # small, for speed
    try:
        model, rows = families.load_family("vqvae2", data, latent_size=16, epochs=1, **where)
    finally:
        object.__setattr__(fam, "model_options", original)
    assert [r["model"] for r in rows] == ["vqvae2", "prior (top)", "prior (bottom)"]
    assert model.sample(2, seed=0).shape == (2, 1, 28, 28)


def test_checkpoint_key_hashes_model_code_only(monkeypatch):
    names = {m.__name__ for m in _model_modules(inspect.getmodule(build_vqvae2), set())}
    assert names == {"latent_notes.models.vqvae2", "latent_notes.models.quantise",
                     "latent_notes.models.common"}  # not models.family: recipes, not code
    names = {m.__name__ for m in _model_modules(inspect.getmodule(build_autoencoder), set())}
    assert names == {"latent_notes.models.autoencoder", "latent_notes.models.common"}
    before = code_version(build_vqvae2)
    autoencoder_before = code_version(build_autoencoder)
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: real(self) + (
        b"# edited" if self.name == "quantise.py" else b""))
    assert code_version(build_vqvae2) != before  # the quantiser is part of the model
    assert code_version(build_autoencoder) == autoencoder_before  # ... not of the autoencoder


def test_batched_applies_in_batches_and_keeps_order():
    calls = []
    out = batched(lambda x: calls.append(len(x)) or x * 2, torch.arange(7.0)[:, None], "cpu",
                  batch_size=3)
    assert calls == [3, 3, 1] and torch.equal(out[:, 0], torch.arange(7.0) * 2)


def test_train_configs_check_themselves():
    with pytest.raises(Exception, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(Exception, match="beta"):
        FAMILIES["vae"].recipe(load_data("digits", subset=50), epochs=1, beta=-1)


class CountedReads:
    """A split that counts how often its images are read."""

    def __init__(self, split):
        self.split, self.reads = split, 0

    @property
    def images(self):
        self.reads += 1
        return self.split.images

    @property
    def labels(self):
        return self.split.labels

    def __len__(self):
        return len(self.split)


@pytest.mark.parametrize("name", ["classifier", "vqvae2"])
def test_training_watches_the_validation_set_and_the_test_set_is_read_once(tmp_path, name):
    data = load_data("digits", subset=120)
    test = data.test = CountedReads(data.test)
    family = families.CLASSIFIER if name == "classifier" else FAMILIES[name]
    options = dict(arch="cnn5x5", width=4) if name == "classifier" else TINY[name]
    model_config, recipe = family.recipe(data, epochs=2, batch_size=32, **options)
    trained = families.train(family, data, model_config, recipe, run=Run.here(0, "cpu", tmp_path))
    assert test.reads == 0, "training read the test images"
    assert {"val_loss", "train_loss"} <= set(trained.history.columns)
    if name == "vqvae2":  # its codebook monitor watches the validation codes too
        assert "val_usage_top" in trained.history.columns
    scores = families.score_on_test(family, trained, data, run=Run.here(0, "cpu", tmp_path))
    assert test.reads == 1 and scores["test_loss"] > 0
