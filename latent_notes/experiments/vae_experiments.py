"""Chapter 3's experiments on a trained VAE: the bound and the likelihood, active units,
denoising, perturbing μ and σ, the 2-D manifold, and plots.

Each function takes a trained :class:`latent_notes.models.vae.VAE` and returns image tensors
shaped for :func:`latent_notes.experiments.plots.image_grid` (rows of images, flattened) or a
matplotlib figure.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from ..checks import ParameterError, check_positive
from ..models.common import batched, seeded
from ..models.vae import VAE, add_pixel_noise, elbo_terms, kl_to_standard_normal, reconstruction_nll
from .latent import traverse
from .metrics import psnr

# -- evaluation ------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_elbo(model: VAE, images: torch.Tensor, device, seed: int = 0) -> dict[str, float]:
    """Test-set means of the reconstruction term, the KL term and -ELBO (β = 1), nats per image."""
    model.eval()
    with seeded(seed):  # z is sampled: the same seed gives the same estimate
        terms = batched(lambda x: torch.stack(elbo_terms(model, model(x), x), 1), images, device)
    recon, kl = terms.double().mean(0).tolist()
    return {"recon": recon, "kl": kl, "neg_elbo": recon + kl}


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, σ²) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def importance_sampled_nll(model: VAE, images: torch.Tensor, device, samples: int = 100,
                           seed: int = 0) -> float:
    """-log p(x) estimated with ``samples`` draws from q(z|x) per image (Burda et al. 2016).

    log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x). For K = 1 its
    expectation is the ELBO; for K > 1 it is a tighter bound, so the estimate is <= -ELBO on
    average.
    """
    check_positive(samples=samples)
    model.eval()
    cfg = model.config

    def log_px(x):  # (B,)
        mu, logvar = model.posterior(x)  # (B, D)
        log_weights = []
        for _ in range(samples):
            z = model.reparameterise(mu, logvar)
            log_px_z = -reconstruction_nll(model.decode_logits(z), x, cfg.likelihood,
                                           cfg.decoder_std)
            log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
            log_weights.append(log_px_z + log_pz - _log_normal(z, mu, logvar))
        return torch.logsumexp(torch.stack(log_weights), 0) - math.log(samples)

    with seeded(seed):
        return -float(batched(log_px, images, device, batch_size=100).double().mean())


@torch.no_grad()
def kl_per_dimension(model: VAE, images: torch.Tensor, device) -> torch.Tensor:
    """Mean KL(q(z_j|x) || N(0,1)) over the images, per latent dimension j: (D,)."""
    model.eval()
    return batched(lambda x: kl_to_standard_normal(*model.posterior(x)), images, device).mean(0)


@torch.no_grad()
def active_units(model: VAE, images: torch.Tensor, device, threshold: float = 0.01) -> int:
    """Burda et al. 2016 (section 5.2): dimension j is active when A_j = Cov_x(E_q[z_j | x]),
    the variance over the images of its posterior mean μ_j(x), exceeds ``threshold``.

    An inactive dimension encodes the same μ_j for every image, so the decoder cannot read
    anything from it (posterior collapse), whatever its KL: a posterior narrower than the
    prior costs KL without carrying information.
    """
    model.eval()
    means = batched(model.encode, images, device).double()  # (N, D), μ(x)
    return int((means.var(0, unbiased=False) > threshold).sum())


class Denoised(NamedTuple):
    psnr_in: float  # mean PSNR (dB) of the noisy inputs against the clean images
    psnr_out: float  # mean PSNR (dB) of the model's outputs against the clean images
    noisy: torch.Tensor  # (N, C, H, W)
    output: torch.Tensor  # (N, C, H, W)


@torch.no_grad()
def denoise(model: VAE, images: torch.Tensor, noise_std: float, device, seed: int = 0) -> Denoised:
    """Add seeded noise to clean images, reconstruct them, and measure both against the clean."""
    with seeded(seed):
        noisy = add_pixel_noise(images, noise_std)
    model.eval()
    output = batched(model.reconstruct, noisy, device)
    return Denoised(psnr(noisy, images), psnr(output, images), noisy, output)


# -- perturbing the code ---------------------------------------------------------------------

@torch.no_grad()
def decode_mu_plus_uniform(model: VAE, images: torch.Tensor, scales, device,
                           seed: int = 0) -> torch.Tensor:
    """decode(μ + u), u ~ U(-s, s)^D, per image and scale s: (N, len(scales), C, H, W)."""
    model.eval()
    mu = model.encode(images.to(device))  # (N, D)
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
    mu, logvar = model.posterior(images.to(device))
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
        raise ParameterError("manifold needs a 2-D latent, "
                             f"this model has {model.config.latent_size}.")
    quantiles = torch.distributions.Normal(0, 1).icdf(torch.linspace(edge, 1 - edge, steps))
    z2, z1 = torch.meshgrid(quantiles.flip(0), quantiles, indexing="ij")  # (steps, steps) each
    z = torch.stack([z1.flatten(), z2.flatten()], 1).to(device)
    model.eval()
    return model.decode(z).cpu()


@torch.no_grad()
def traversal_by_beta(models: dict, image: torch.Tensor, images: torch.Tensor, values,
                      device, n_top: int = 3) -> tuple[torch.Tensor, list, pd.DataFrame]:
    """What β does to the latent dimensions, shown and measured: for each {β: VAE}, one test
    ``image`` (C, H, W) traversed along the ``n_top`` dimensions of largest mean KL on
    ``images`` and along the one of smallest, each row shifting μ by ``values``.

    Returns the frames (rows · len(values), C, H, W), a label per row, and a table with each
    row's β, dimension, its KL (nats) and the mean absolute pixel change of the row against
    the unshifted image (what a reader sees change).
    """
    values = torch.as_tensor(list(values), dtype=torch.float32)
    frames, labels, rows = [], [], []
    for beta, model in models.items():
        model.eval()
        kl = kl_per_dimension(model, images, device)
        order = kl.argsort(descending=True)
        dims = order[:n_top].tolist() + order[-1:].tolist()
        z = batched(model.encode, image[None], device)[0]
        walk = traverse(model.decode, z, values, dims=dims, relative=True, device=device)
        still = model.decode(z[None].to(device)).cpu()[0]  # the image with nothing shifted
        for row, dim in enumerate(dims):
            change = float((walk[row] - still).abs().mean())
            rank = "largest KL" if row < n_top else "smallest KL"
            rows.append({"beta": beta, "dimension": dim, "rank": rank, "kl": float(kl[dim]),
                         "mean_change": change})
            labels.append(f"β={beta:g}, z[{dim}]")
        frames.append(walk.flatten(0, 1))
    return torch.cat(frames), labels, pd.DataFrame(rows)


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
