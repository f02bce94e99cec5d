"""The GPU check script runs its checks on the CPU too, so that it is ready when a GPU is."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def test_the_gpu_check_runs_every_step_on_the_cpu(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device",
                          "cpu", "--out", str(tmp_path), "--full-minutes", "0", "--subset", "200",
                          "--batches", "10"],
                         capture_output=True, text=True, timeout=600,
                         env={"LATENT_NOTES_PROGRESS": "0", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    assert result["failed"] == [] and result["machine"]["device"] == "cpu"
    assert set(result["families"]) == {"classifier", "ae", "vae", "vqvae2", "prior-top",
                                       "prior-bottom"}
    assert result["verbs"]["vqvae2.edit_code"][0] == 3
    assert all(difference < 1e-5 for difference in
               result["round trip (max abs difference)"].values())
    assert set(result["images per second"]) == {"data on cpu", "data on device"}


def test_it_refuses_to_pretend_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "no CUDA GPU" in run.stderr
