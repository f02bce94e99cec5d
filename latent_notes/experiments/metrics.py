"""Image-quality numbers shared by the chapters: MSE, PSNR and a Fréchet distance."""
from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..models.common import batched


def mse_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels of each image pair: (N, C, H, W) x 2 → (N,)."""
    return (x - y).pow(2).flatten(1).mean(1)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, max_value: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image pair in dB: 10 log10(max² / MSE), shape (N,)."""
    return 10 * torch.log10(max_value ** 2 / mse_per_image(x, y).clamp_min(1e-10))


def psnr(x: torch.Tensor, y: torch.Tensor, max_value: float = 1.0) -> float:
    """Mean PSNR in dB over the images."""
    return float(psnr_per_image(x, y, max_value).mean())


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
    ``images``, and the mean PSNR (dB) of the same reconstructions."""
    model.eval()
    recon = batched(model.reconstruct, images, device)
    return {"test_mse": float((recon.double() - images.double()).pow(2).mean()),
            "psnr": psnr(recon, images)}


def classifier_features(model, images: torch.Tensor, device) -> np.ndarray:
    """Penultimate-layer features (N, F) of a classifier that has a ``features`` method."""
    model.eval()
    return batched(model.features, images, device, 1000).numpy()


def predict(model, images: torch.Tensor, device) -> np.ndarray:
    """A classifier's class probabilities (N, classes) for a tensor of images."""
    model.eval()
    return batched(lambda x: torch.softmax(model(x), 1), images, device, 1000).numpy()
