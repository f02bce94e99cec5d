"""An explorer writes its models, a fixture of PyTorch's outputs and its HTML (still figure,
live part, the file:// message)."""
import json

import pytest
import torch

pytest.importorskip("onnxruntime")

from latent_notes.book import explorers  # noqa: E402
from latent_notes.models.vae import VAE, VAEConfig  # noqa: E402


def test_vae_plane_exports_its_decoders_and_a_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_NOTES_PAGE_FOLDER", str(tmp_path))  # as the build sets it
    torch.manual_seed(0)
    models = {f"β = {b}": VAE(VAEConfig(latent_size=2, width=4, fc_width=8)) for b in (1, 4)}
    images, labels = torch.rand(50, 1, 28, 28), torch.arange(50) % 10
    page = explorers.vae_plane(models, images, labels, list("0123456789"), "03_vae",
                               points=40)._repr_html_()
    folder = tmp_path / "explorers" / "03_vae"
    assert sorted(p.name for p in folder.iterdir()) == [
        "fixture.json", "vae-decoder-0.onnx", "vae-decoder-1.onnx"]
    fixture = json.loads((folder / "fixture.json").read_text())
    for name, model in models.items():
        want = model.eval().decode(torch.tensor(fixture["inputs"]))
        assert torch.allclose(torch.tensor(fixture["outputs"][name]).view_as(want), want)
    assert 'class="ln-explorer"' in page and "data:image/png;base64," in page
    assert "refuse to load from a file" in page and "vae_plane.js" in page
    config = json.loads(page.split('data-config="')[1].split('"')[0].replace("&quot;", '"'))
    assert config["kind"] == "vae-plane" and len(config["scatter"]["β = 1"]["x"]) == 40


def test_ae_sliders_start_from_one_digit_per_class(tmp_path, monkeypatch):
    from latent_notes.models.autoencoder import AEConfig, Autoencoder

    monkeypatch.setenv("LATENT_NOTES_PAGE_FOLDER", str(tmp_path))
    torch.manual_seed(0)
    model = Autoencoder(AEConfig(latent_size=3, width=4))
    images, labels = torch.rand(30, 1, 28, 28), torch.arange(30) % 3
    page = explorers.ae_sliders(model, images, labels, ["a", "b", "c"], "02_autoencoder")
    config = json.loads(page.text.split('data-config="')[1].split('"')[0].replace("&quot;", '"'))
    assert [e["name"] for e in config["examples"]] == ["a test a", "a test b", "a test c"]
    assert len(config["sd"]) == 3 and all(s > 0 for s in config["sd"])
    codes = model.eval().encode(images[:3])
    assert torch.allclose(torch.tensor([e["code"] for e in config["examples"]]), codes,
                          atol=1e-4)
    folder = tmp_path / "explorers" / "02_autoencoder"
    assert (folder / "ae-decoder.onnx").exists() and (folder / "fixture.json").exists()


def test_vq_grid_exports_the_decoder_and_both_priors_with_a_fixture(tmp_path, monkeypatch):
    from latent_notes.models.pixelcnn import PixelCNN, prior_config
    from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config

    monkeypatch.setenv("LATENT_NOTES_PAGE_FOLDER", str(tmp_path))
    torch.manual_seed(0)
    vq = VQVAE2(VQVAE2Config(width=8, res_channels=4, embed_dim=4, codebook_size_top=6,
                             codebook_size_bottom=7))
    vq.attach_priors(*[PixelCNN(prior_config(vq.config, level, channels=8, layers=2,
                                             num_classes=3, label_dropout=0.1))
                       for level in ("top", "bottom")])
    page = explorers.vq_grid(vq, torch.rand(1, 28, 28), ["a", "b", "c"], "04_vqvae2")
    config = json.loads(page.text.split('data-config="')[1].split('"')[0].replace("&quot;", '"'))
    assert config["no_label"] == 3 and config["priors"]["top"] == "prior-top.onnx"
    folder = tmp_path / "explorers" / "04_vqvae2"
    fixture = json.loads((folder / "fixture.json").read_text())
    for (level, r, c, code), output in zip(fixture["edits"], fixture["outputs"], strict=True):
        top, bottom = torch.tensor(fixture["top"]), torch.tensor(fixture["bottom"])
        (top if level == "top" else bottom)[r, c] = code
        want = vq.eval().decode_code(top[None], bottom[None]).flatten()
        assert torch.allclose(torch.tensor(output), want)


def test_compare_families_blends_codes_and_reconstructs_a_drawn_digit(tmp_path, monkeypatch):
    from latent_notes.models.autoencoder import AEConfig, Autoencoder
    from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config

    monkeypatch.setenv("LATENT_NOTES_PAGE_FOLDER", str(tmp_path))
    torch.manual_seed(0)
    models = {"ae": Autoencoder(AEConfig(latent_size=3, width=4)),
              "vae": VAE(VAEConfig(latent_size=4, width=4, fc_width=8)),
              "vqvae2": VQVAE2(VQVAE2Config(width=8, res_channels=4, embed_dim=4,
                                            codebook_size_top=6, codebook_size_bottom=7))}
    models = {name: model.eval() for name, model in models.items()}
    images, labels = torch.rand(40, 1, 28, 28), torch.arange(40) % 4
    page = explorers.compare_families(models, images, labels, list("abcd"), images[:2],
                                      ["2", "7"], "05_comparison", points=30).text
    config = json.loads(page.split('data-config="')[1].split('"')[0].replace("&quot;", '"'))
    folder = tmp_path / "explorers" / "05_comparison"
    assert sorted(p.name for p in folder.glob("*.onnx")) == sorted(
        ["ae-decoder.onnx", "ae-encoder.onnx", "vae-decoder.onnx", "vae-encoder.onnx",
         "vqvae2-flat-decoder.onnx", "vqvae2-encoder.onnx"])
    fixture = json.loads((folder / "fixture.json").read_text())
    for name, model in models.items():
        a, b = (torch.tensor(z) for z in config["families"][name]["ends"])
        assert torch.allclose(a, model.encode(images[:1])[0], atol=1e-6)
        want = model.decode((0.5 * a + 0.5 * b)[None]).flatten()
        assert torch.allclose(torch.tensor(fixture["interpolation"][name][1]), want, atol=1e-6)
    # the drawn digit's point on the plane is its μ projected on the two principal axes
    plane = config["plane"]
    mu = models["vae"].encode(images[:1])[0]
    point = (mu - torch.tensor(plane["mean"])) @ torch.tensor(plane["axes"]).T
    assert torch.allclose(point, torch.tensor(fixture["drawn"]["plane"]), atol=1e-5)
    assert len(plane["scatter"]["x"]) == 30 and 'class="ln-pad"' in page


def test_a_chapter_run_from_anywhere_writes_its_explorer_into_its_cache(tmp_path, monkeypatch):
    """papermill by hand (no build): the chapter's explorer files go to its checkpoint cache,
    the working directory stays empty, and the page still loads them from explorers/<chapter>/
    (the URL the build serves them under)."""
    from latent_notes.book.notebook import start_chapter
    from latent_notes.models.autoencoder import AEConfig, Autoencoder

    monkeypatch.delenv("LATENT_NOTES_PAGE_FOLDER", raising=False)
    monkeypatch.setattr(explorers, "_cache", None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    start_chapter("02_autoencoder", dataset="digits", data_root=None, epochs=1, subset=None,
                  seed=0, device="cpu", results_dir=tmp_path / "results",
                  cache_dir=tmp_path / "cache")
    torch.manual_seed(0)
    images, labels = torch.rand(30, 1, 28, 28), torch.arange(30) % 3
    page = explorers.ae_sliders(Autoencoder(AEConfig(latent_size=3, width=4)), images, labels,
                                ["a", "b", "c"], "02_autoencoder")
    assert list(work.iterdir()) == []
    folder = tmp_path / "cache" / "explorers" / "02_autoencoder"
    assert sorted(p.name for p in folder.iterdir()) == ["ae-decoder.onnx", "fixture.json"]
    config = json.loads(page.text.split('data-config="')[1].split('"')[0].replace("&quot;", '"'))
    assert config["folder"] == "explorers/02_autoencoder/"
