"""Chapter 3's experiments on a trained VAE: perturbing μ and σ, the 2-D manifold, and plots.

Each function takes a trained :class:`latent_notes.vae.VAE` and returns image tensors shaped
for :func:`latent_notes.plots.image_grid` (rows of images, flattened) or a matplotlib figure.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from .vae import VAE, seeded


def one_per_class(labels: torch.Tensor, num_classes: int) -> list[int]:
    """Index of the first image of each class present in ``labels``."""
    found = {}
    for i, label in enumerate(labels.tolist()):
        found.setdefault(label, i)
    return [found[k] for k in range(num_classes) if k in found]


@torch.no_grad()
def decode_mu_plus_uniform(model: VAE, images: torch.Tensor, scales, device,
                           seed: int = 0) -> torch.Tensor:
    """decode(μ + u), u ~ U(-s, s)^D, per image and scale s: (N, len(scales), C, H, W)."""
    model.eval()
    mu = model.encode(images.to(device)).mu  # (N, D)
    rows = []
    with seeded(seed):
        for s in scales:
            noise = (torch.rand_like(mu) * 2 - 1) * s
            rows.append(model.decode(mu + noise).cpu())
    return torch.stack(rows, 1)


@torch.no_grad()
def decode_scaled_sigma(model: VAE, images: torch.Tensor, factors, device,
                        seed: int = 0) -> torch.Tensor:
    """decode(μ + k·σ·ε), ε ~ N(0, I), per image and factor k: (N, len(factors), C, H, W)."""
    model.eval()
    mu, logvar = model.encode(images.to(device))
    sigma = torch.exp(0.5 * logvar)
    rows = []
    with seeded(seed):
        for k in factors:
            rows.append(model.decode(mu + k * sigma * torch.randn_like(mu)).cpu())
    return torch.stack(rows, 1)


@torch.no_grad()
def manifold(model: VAE, device, steps: int = 15, edge: float = 0.03) -> torch.Tensor:
    """Decode a 2-D latent on a grid of prior quantiles (Kingma & Welling 2014, fig. 4).

    The grid is evenly spaced in probability, from ``edge`` to 1 - ``edge``, and mapped through
    the inverse Gaussian CDF, so each cell covers the same prior mass. Returns
    (steps * steps, C, H, W), row by row from the top (z_2 large) to the bottom.
    """
    if model.config.latent_size != 2:
        raise ValueError(f"manifold needs a 2-D latent, this model has {model.config.latent_size}.")
    quantiles = torch.distributions.Normal(0, 1).icdf(torch.linspace(edge, 1 - edge, steps))
    z2, z1 = torch.meshgrid(quantiles.flip(0), quantiles, indexing="ij")  # (steps, steps) each
    z = torch.stack([z1.flatten(), z2.flatten()], 1).to(device)
    model.eval()
    return model.decode(z).cpu()


def rate_distortion_plot(table: pd.DataFrame, title: str):
    """Reconstruction term (distortion) against KL term (rate), one point per β."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(table["kl"], table["recon"], "-o", color=sns.color_palette()[0])
    for _, row in table.iterrows():
        ax.annotate(f"β={row['beta']:g}", (row["kl"], row["recon"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=9)
    ax.set_xlabel("rate: KL(q(z|x) || N(0, I)), nats per image")
    ax.set_ylabel("distortion: -log p(x|z), nats per image")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def kl_per_dimension_plot(kl_by_beta: dict, threshold: float, title: str):
    """Sorted KL per latent dimension for each β, with the active-unit threshold."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for beta, kl in kl_by_beta.items():
        values = np.sort(np.asarray(kl))[::-1]
        ax.plot(np.arange(1, len(values) + 1), np.maximum(values, 1e-4), "-o", markersize=3,
                label=f"β={beta:g}")
    ax.axhline(threshold, color="gray", linestyle=":", label=f"threshold {threshold:g} nats")
    ax.set_yscale("log")
    ax.set_xlabel("latent dimension, sorted by KL")
    ax.set_ylabel("mean KL per dimension (nats)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def psnr_plot(table: pd.DataFrame, title: str):
    """PSNR of the noisy input and of the VAE's output against the noise level."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table["noise_std"], table["psnr_in"], "-o", label="noisy input")
    ax.plot(table["noise_std"], table["psnr_out"], "-o", label="VAE output")
    ax.set_xlabel("noise standard deviation σ")
    ax.set_ylabel("PSNR against the clean image (dB)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
