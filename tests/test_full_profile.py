"""The full profile's parameters, exercised on the CPU with tiny budgets: a parameter or shape
error in the published (GPU) edition is caught here, with MNIST and CIFAR-10 as small files in
torchvision's layout and a folder of photographs written by the test."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_cifar, write_mnist
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration

# Tiny budgets on top of profiles/full.yml: every other parameter is the full profile's own.
TINY = ["epochs=1", "subset=300", "judge_epochs=1", "02.tsne_points=100", "03.side_epochs=1",
        "03.colour_epochs=1", "03.size_epochs=1", "03.is_samples=3", "03.eval_images=40",
        "03.tsne_points=100",
        "04.prior_epochs=1", "04.colour_epochs=1", "04.samples_per_class=2",
        "04.judged_per_class=2", "05.vq_epochs=1", "05.n_samples=40", "05.fid_draws=2",
        "05.label_repeats=1",
        "05.labels_per_class=[1, 10]"]  # not the full profile's own: the chapter's defaults


def test_every_chapter_runs_with_the_full_profile(tmp_path):
    data = tmp_path / "data"
    write_mnist(data, np.random.default_rng(0), train=400, test=120)
    write_cifar(data, np.random.default_rng(1), per_batch=40, test=60)
    rng = np.random.default_rng(2)  # the full profile's folder:photos, 128-px photographs
    for label in ("coast", "forest"):
        (data / "photos" / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(data / "photos" / label / f"{i}.png")
    env = {**os.environ, "LATENT_NOTES_BUILD_DIR": str(tmp_path / "build"),
           "LATENT_NOTES_PROGRESS": "0"}
    command = [sys.executable, "-m", "latent_notes.book.build", "--profile", "full", "--no-render",
               "--data-root", str(data), "--cache-dir", str(tmp_path / "cache"),
               "--results-dir", str(tmp_path / "results")]
    for item in TINY:
        command += ["-p", item]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-4000:])
    report = json.loads((tmp_path / "build" / "reports" / "build-report.json").read_text())
    assert report["profile"] == "full"
    assert all(c["status"] == "executed" for c in report["chapters"].values())
    assert "05_comparison-cifar10" in report["chapters"]  # chapter 5 again, on CIFAR-10
    for chapter in report["chapters"]:
        assert (tmp_path / "results" / f"{chapter.split('-')[0]}.csv").exists()
    from latent_notes.book.results import read_results

    comparison = read_results(tmp_path / "results" / "05_comparison.csv")
    assert {"mnist", "cifar10"} <= set(comparison.dataset)  # one table, both editions
    on_cifar = comparison[comparison.dataset == "cifar10"]
    assert {"ae", "vae", "vqvae2"} <= set(on_cifar.model)
    vae = (tmp_path / "build" / "reports" / "03_vae.params.yml").read_text()
    assert f"colour_dataset: folder:{(data / 'photos').resolve()}" in vae
    assert "colour_image_size: 128" in vae
    params = (tmp_path / "build" / "reports" / "04_vqvae2.params.yml").read_text()
    assert "width: 128" in params and "colour_dataset: cifar10" in params  # the full profile's
