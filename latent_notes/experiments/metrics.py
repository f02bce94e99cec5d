"""Image-quality numbers shared by the chapters: MSE, PSNR and a Fréchet distance."""
from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..models.common import batched


def psnr_of_mse(mse: float, max_value: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error: 10 log10(max² / MSE)."""
    return 10 * float(np.log10(max_value ** 2 / max(float(mse), 1e-10)))  # MSE 0: capped


def psnr(x: torch.Tensor, y: torch.Tensor, max_value: float = 1.0) -> float:
    """PSNR in dB of the MSE pooled over every pixel of every image, 10 log10(max² / MSE),
    as the chapters define it. (The mean of per-image PSNRs is larger, by Jensen's
    inequality: -log is convex, so it rewards a few near-perfect images.)"""
    return psnr_of_mse((x.double() - y.double()).pow(2).mean(), max_value)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and covariance (F, F) of a feature matrix (N, F)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """Fréchet distance of two Gaussians (Dowson & Landau 1982; the FID of Heusel et al. 2017):

    d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}).
    """
    mean_a, mean_b = np.atleast_1d(mean_a), np.atleast_1d(mean_b)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    # Tr((Σa Σb)^½) = Σ √λ_i of the symmetric PSD matrix Σa^½ Σb Σa^½ (same eigenvalues as
    # Σa Σb): two symmetric eigen-decompositions, stable and fast, instead of a general sqrtm.
    with threadpool_limits(limits=1):  # BLAS threads fighting torch's cost 1000x here
        w, v = np.linalg.eigh(cov_a)
        root_a = (v * np.sqrt(w.clip(min=0))) @ v.T
        middle = root_a @ cov_b @ root_a
        trace_root = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    diff = mean_a - mean_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def reconstruction_scores(model, images: torch.Tensor, device) -> dict:
    """The book's one test-MSE: mean per-pixel squared error of ``model.reconstruct`` over all
    ``images``, and the PSNR (dB) of that MSE."""
    model.eval()
    recon = batched(model.reconstruct, images, device)
    mse = float((recon.double() - images.double()).pow(2).mean())
    return {"test_mse": mse, "psnr": psnr_of_mse(mse)}


def classifier_features(model, images: torch.Tensor, device) -> np.ndarray:
    """Penultimate-layer features (N, F) of a classifier that has a ``features`` method."""
    model.eval()
    return batched(model.features, images, device, 1000).numpy()


def predict(model, images: torch.Tensor, device) -> np.ndarray:
    """A classifier's class probabilities (N, classes) for a tensor of images."""
    model.eval()
    return batched(lambda x: torch.softmax(model(x), 1), images, device, 1000).numpy()


def kernel_inception_distance(features_a, features_b) -> float:
    """KID (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimate of the
    squared maximum mean discrepancy between two feature sets (N, F) and (M, F), with the cubic
    polynomial kernel k(a, b) = (a·b / F + 1)³,

    MMD²_u = Σ_{i≠j} k(a_i, a_j) / N(N−1) + Σ_{i≠j} k(b_i, b_j) / M(M−1)
             − 2 Σ_{i,j} k(a_i, b_j) / NM.

    Its expectation is 0 for two samples of one distribution at any sample size (the Fréchet
    distance's is not: its bias depends on the covariances, Chong & Forsyth 2020), so a single
    estimate can be slightly negative.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"KID needs two feature sets (N, F) and (M, F) of at least 2 rows "
                         f"each, got shapes {a.shape} and {b.shape}.")
    n, m, dim = len(a), len(b), a.shape[1]
    with threadpool_limits(limits=1):
        k_aa = (a @ a.T / dim + 1) ** 3
        k_bb = (b @ b.T / dim + 1) ** 3
        k_ab = (a @ b.T / dim + 1) ** 3
    within_a = (k_aa.sum() - np.trace(k_aa)) / (n * (n - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within_a + within_b - 2 * k_ab.mean())
