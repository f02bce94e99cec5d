import numpy as np
import pytest
import torch

from latent_notes.metrics import frechet_distance, gaussian_stats, psnr


def test_frechet_distance_of_gaussians_in_closed_form():
    # Diagonal covariances commute: d² = ‖Δμ‖² + Σ_i (√a_i − √b_i)².
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(expected)
    # A rotated (non-diagonal) covariance against itself: distance 0.
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    cov = rotation @ np.diag(var_a) @ rotation.T
    assert frechet_distance(mean_a, cov, mean_a, cov) == pytest.approx(0, abs=1e-6)
    # One dimension: (μa − μb)² + (σa − σb)².
    assert frechet_distance(0.0, 4.0, 3.0, 1.0) == pytest.approx(9 + 1)


def test_frechet_distance_from_samples_converges():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 2))
    b = rng.normal(2, 3, (20000, 2))
    d = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    assert d == pytest.approx(2 * 4 + 2 * (3 - 1) ** 2, rel=0.05)


def test_psnr():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 → 20 dB
