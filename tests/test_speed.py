"""What makes the book faster keeps its numbers: the training step's precision, the explorers'
exporter, the figures' mosaic, the benchmark and the build report's costly cells."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from latent_notes import bench, families, training
from latent_notes.book import build, onnx_export
from latent_notes.checks import ParameterError
from latent_notes.data import ImageData, ImageSet
from latent_notes.experiments.plots import mosaic
from latent_notes.models.autoencoder import AEConfig, Autoencoder
from latent_notes.models.vae import VAE, VAEConfig, vae_loss
from latent_notes.store.cache import Run

ROOT = Path(__file__).resolve().parent.parent


# -- precision of the training steps ---------------------------------------------------------

def test_precision_auto_follows_the_hardware_and_unknown_names_are_refused(monkeypatch):
    monkeypatch.setattr(training, "native_bfloat16", lambda device: False)
    assert training.resolve_precision("auto", "cpu") == "float32"
    monkeypatch.setattr(training, "native_bfloat16", lambda device: True)
    assert training.resolve_precision("auto", "cpu") == "bfloat16"
    assert training.resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(ParameterError, match="precision must be one of float32, bfloat16, auto"):
        training.resolve_precision("half", "cpu")


def test_a_bfloat16_step_keeps_the_vaes_code_and_losses_in_float32():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_size=2, width=4, fc_width=8))
    x = torch.rand(8, 1, 28, 28)
    with training.autocast("bfloat16", "cpu"):
        out = model(x)
        terms = vae_loss(model, x)
    assert out.mu.dtype == out.logvar.dtype == out.logits.dtype == torch.float32
    assert all(value.dtype == torch.float32 for value in terms.values())
    # the convolutions did run in bfloat16: the outputs differ from float32's, but little
    with torch.no_grad():
        exact = model.posterior(x).mu
        with training.autocast("bfloat16", "cpu"):
            rounded = model.posterior(x).mu
    assert not torch.equal(exact, rounded)
    assert torch.allclose(exact, rounded, atol=0.05)


def tiny_digits(n=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    labels = torch.arange(n) % 3
    split = ImageSet(images, labels)
    return ImageData("tiny", split, ImageSet(images[:24], labels[:24]), ["a", "b", "c"],
                     {"dataset": "tiny", "n": n}, ImageSet(images[:24], labels[:24]))


def test_the_precision_enters_the_key_and_the_checkpoint_only_when_not_float32(tmp_path):
    data = tiny_digits()
    family = families.FAMILIES["ae"]
    model, recipe = family.recipe(data, epochs=1, latent_size=2, width=4, batch_size=32)
    plain = families._key(model, recipe, data.spec, 0)
    assert "precision" not in plain["train"]  # every float32 model keeps the key it had
    assert families._key(model, recipe, data.spec, 0, "float32") == plain
    assert families._key(model, recipe, data.spec, 0, "bfloat16")["train"]["precision"] \
        == "bfloat16"
    full = families.train(family, data, model, recipe,
                           run=Run.here(cache_dir=tmp_path, precision="float32"))
    half = families.train(family, data, model, recipe,
                          run=Run.here(cache_dir=tmp_path, precision="bfloat16"))
    assert full.path != half.path and half.status == "trained"
    assert half.config["train"]["precision"] == "bfloat16"
    assert "precision" not in full.config["train"]
    # the same seed, other rounding: other weights, close to float32's
    a, b = full.model.state_dict(), half.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_fit_runs_the_step_make_step_builds():
    torch.manual_seed(0)
    model = Autoencoder(AEConfig(latent_size=2, width=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    calls = []

    def loss_fn(model, x, y):
        calls.append(torch.is_autocast_enabled("cpu"))
        return {"loss": ((model(x).recon - x) ** 2).mean()}

    data = tiny_digits(32)
    from latent_notes.data import Batches
    history = training.fit(model, loss_fn, Batches(data.train.images, data.train.labels, 16),
                           epochs=1, optimizer=optimizer, device="cpu", precision="bfloat16")
    assert calls == [True, True] and len(history) == 1


# -- explorers' ONNX files --------------------------------------------------------------------

def test_export_leaves_batch_norm_in_eval_mode_and_parity_holds(tmp_path):
    torch.manual_seed(0)
    model = Autoencoder(AEConfig(latent_size=3, width=4)).eval()
    for name in ("ae-encoder", "ae-decoder"):
        view = onnx_export.view_named("ae", model, name)
        assert not view.module.training
        path = onnx_export.export(view, tmp_path / f"{name}.onnx")
        assert not model.training and not any(m.training for m in model.modules())
        assert onnx_export.parity(view, path) <= onnx_export.PARITY_LIMIT


def test_export_falls_back_to_the_other_exporter(tmp_path, monkeypatch):
    torch.manual_seed(0)
    view = onnx_export.view_named("ae", Autoencoder(AEConfig(latent_size=3, width=4)),
                                  "ae-decoder")
    real, used = torch.onnx.export, []

    def export(*args, dynamo, **kwargs):
        used.append(dynamo)
        if not dynamo:
            raise RuntimeError("this exporter is gone")
        return real(*args, dynamo=dynamo, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export)
    path = onnx_export.export(view, tmp_path / "ae-decoder.onnx")
    assert used == [False, True] and path.exists()
    assert not path.with_name(path.name + ".partial").exists()
    assert onnx_export.parity(view, path) <= onnx_export.PARITY_LIMIT


# -- figures -----------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_mosaic_lays_thumbnails_out_as_make_grid_does(channels):
    make_grid = pytest.importorskip("torchvision.utils").make_grid
    images = torch.rand(13, channels, 7, 9)
    want = make_grid(images, nrow=5, padding=2, pad_value=0.3)
    assert torch.equal(mosaic(images, 5, padding=2, pad_value=0.3),
                       want[:1] if channels == 1 else want)


def test_the_chapters_import_no_torchvision():
    code = ("import sys; from latent_notes.experiments import vq_experiments, plots, compare; "
            "from latent_notes.book import explorers, notebook; "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "False"


# -- the build report's most expensive cells ---------------------------------------------------

def test_the_report_lists_the_most_expensive_cells_with_what_they_call(tmp_path, monkeypatch):
    notebook = nbformat.v4.new_notebook()
    sources = ["import torch", "# the seven autoencoders\ntrained = {}",
               "trained = {}\nfor size in sizes:\n    trained[size] = families.train(a, b)\n"
               "    print(len(trained))\nplots.training_curves(trained.items())",
               "x = 1"]
    for source, seconds in zip(sources, [5.0, 50.0, 40.0, None], strict=True):
        cell = nbformat.v4.new_code_cell(source)
        if seconds is not None:
            cell.metadata["papermill"] = {"duration": seconds}
        notebook.cells.append(cell)
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell("text"))
    path = tmp_path / "02_autoencoder.ipynb"
    nbformat.write(notebook, path)
    rows = build.cell_costs(path, "02_autoencoder")
    assert [row["cell"] for row in build.most_expensive(rows, 2)] == [2, 3]
    assert build.most_expensive(rows, 2)[1]["what"] == \
        "calls families.train, plots.training_curves"
    assert rows[1]["what"] == "the seven autoencoders"
    monkeypatch.setattr(build, "REPORTS", tmp_path)
    text = build.write_report({"profile": "quick", "total_seconds": 99.0, "chapters": {},
                               "expensive_cells": build.most_expensive(rows, 2)})
    assert "| 02_autoencoder | 2 | 50.0 | the seven autoencoders |" in text


# -- the benchmark -----------------------------------------------------------------------------

def test_the_benchmark_refuses_a_folder_that_is_no_checkout(tmp_path):
    with pytest.raises(SystemExit, match="is not a checkout of this book"):
        bench.check_checkout(str(tmp_path))
    assert bench.check_checkout(str(ROOT)) == ROOT


def test_the_benchmark_table_compares_checkouts_case_by_case():
    def result(rate):
        row = {"case": "vae", "images_per_s": rate, "mflop_per_image": 10.2, "gflops": 5.0,
               "precision": "float32", "fit_seconds": 3.0, "outside": 0.25, "batch_size": 256,
               "threads": 2, "share_of_peak": 0.4}
        return bench.medians([{"peaks": {"float32": 130.0, "bfloat16": 370.0}, "cpu": "AVX512",
                               "torch": "2.13.0", "cases": [row]}])
    text = bench.table({"before": result(1000.0), "after": result(1500.0)})
    assert "| chapter 3's VAE, latent 16, batch 256 | 10.2 | 1,000 | 40 % (float32) | 25 % " \
           "| 1,500 | 40 % (float32) | 25 % | ×1.50 |" in text
    two = bench.medians([{"peaks": {"float32": 130.0, "bfloat16": 370.0}, "cpu": "AVX2",
                          "torch": "2.13.0", "cases": [{**row, "images_per_s": rate}]}
                         for row in result(0)["cases"].values() for rate in (900.0, 1100.0)])
    assert "| 1,000 (900-1,100) |" in bench.table({"this": two})
    assert "130 GFLOP/s in float32" in text


def test_the_matrix_peak_is_a_positive_rate():
    assert bench.matmul_peak("float32", size=256, repeats=3)[0] > 0


@pytest.mark.integration
def test_the_benchmark_runs_against_another_checkout(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "latent_notes.bench", "--cases", "vae",
                           "--seconds", "0.5", "--rounds", "1", "--compare", str(ROOT),
                           "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "LATENT_NOTES_PROGRESS": "0"}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())["medians"]
    assert len(results) == 2
    for result in results.values():
        row = result["cases"]["vae"]
        assert row["images_per_s"] > 0 and 0 < row["share_of_peak"] < 1.5
        assert 0 <= row["outside"] < 1 and row["mflop_per_image"] > 1
    assert "chapter 3's VAE" in done.stdout and "×" in done.stdout
