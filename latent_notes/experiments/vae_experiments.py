"""Chapter 3's experiments on a trained VAE: the bound and the likelihood, active units,
denoising, perturbing μ and σ, the 2-D manifold, what chapter 1's judge reads, and plots.

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
from tqdm.auto import tqdm

from ..checks import ParameterError, check_positive
from ..models.common import batched, seeded
from ..models.vae import VAE, add_pixel_noise, elbo_terms, kl_to_standard_normal, reconstruction_nll
from ..training import progress_enabled
from .latent import pair_difference, traverse
from .metrics import predict, psnr, reconstruction_scores

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


def log_importance_weights(model: VAE, x: torch.Tensor, samples: int,
                           codes_per_pass: int = 2048) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x): (samples, B).

    The K codes of all B images are decoded together, ``codes_per_pass`` at a time, so no
    Python loop runs per image or per sample. A pass holds about 50 kB per code for 28x28
    images at width 16 (measured: 2,048 codes add about 150 MB to the peak), besides the
    K·B·D numbers of noise drawn at once (32 MB for K = 5,000, B = 100, D = 16); on a CPU
    passes of a few thousand codes are also the fastest (larger ones leave the caches).
    """
    cfg = model.config
    mu, logvar = model.posterior(x)  # (B, D)
    # all the noise at once (K·B·D numbers), so the draws do not depend on the pass size
    eps = torch.randn(samples, *mu.shape, device=mu.device)  # (K, B, D)
    chunk = max(1, min(samples, codes_per_pass // len(x)))  # samples per decoder pass
    parts = []
    for start in range(0, samples, chunk):
        c = min(chunk, samples - start)
        z = mu + torch.exp(0.5 * logvar) * eps[start:start + c]  # (c, B, D)
        logits = model.decode_logits(z.flatten(0, 1))  # (c·B, C, H, W)
        target = x.expand(c, *x.shape).flatten(0, 1)
        log_px_z = -reconstruction_nll(logits, target, cfg.likelihood, cfg.decoder_std)
        log_pz = _log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar))  # (c, B)
        parts.append(log_px_z.view(c, len(x)) + log_pz - _log_normal(z, mu, logvar))
    return torch.cat(parts)  # (samples, B)


@torch.no_grad()
def importance_sampled_nll(model: VAE, images: torch.Tensor, device, samples: int = 100,
                           seed: int = 0, batch_size: int = 100,
                           codes_per_pass: int = 2048) -> float:
    """-log p(x) estimated with ``samples`` draws from q(z|x) per image (Burda et al. 2016),
    averaged over the images, in nats.

    log p(x) ≈ log (1/K) Σ_k w_k, w_k = p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x): a
    log-sum-exp over K. For K = 1 its expectation is the ELBO; it grows with K towards
    log p(x), so the estimate of -log p(x) is at most -ELBO on average and falls with K.
    """
    check_positive(samples=samples, batch_size=batch_size, codes_per_pass=codes_per_pass)
    model.eval()
    total = 0.0
    bar = tqdm(total=len(images), desc=f"log p(x), K={samples}", unit="image",
               mininterval=5.0, disable=not progress_enabled())
    with seeded(seed):
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            log_w = log_importance_weights(model, x, samples, codes_per_pass)
            log_px = torch.logsumexp(log_w.double(), 0) - math.log(samples)  # (B,)
            total += float(log_px.sum())
            bar.update(len(x))
    bar.close()
    return -total / len(images)


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
    psnr_in: float  # PSNR (dB) of the noisy inputs' MSE against the clean images
    psnr_out: float  # PSNR (dB) of the model's outputs' MSE against the clean images
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
    ``images`` and along the one of smallest, each row shifting μ by ``values``. A latent of
    ``n_top`` dimensions or fewer has ``latent_size - 1`` top ones, so that the smallest is
    never one of them (:func:`traversal_top`); it needs two dimensions.

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
        n_top = traversal_top(len(kl), n_top)
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


def traversal_top(latent_size: int, n_top: int = 3) -> int:
    """How many dimensions of largest KL :func:`traversal_by_beta` shows besides the one of
    smallest: ``n_top``, or ``latent_size - 1`` when the latent has fewer to spare."""
    if latent_size < 2:
        raise ParameterError("a traversal by KL compares the dimensions of largest and "
                             f"smallest KL, which needs a latent of 2 or more, got {latent_size}.")
    return min(n_top, latent_size - 1)


# -- what chapter 1's judge reads, and how far images differ ---------------------------------

def confident_share(judge, images: torch.Tensor, device, confidence: float = 0.9) -> float:
    """The share of ``images`` to which the judge (chapter 1's classifier) gives one class a
    probability of at least ``confidence``; NaN without a judge or images."""
    if judge is None or len(images) == 0:
        return math.nan
    return float((predict(judge, images, device).max(1) >= confidence).mean())


def same_reading(judge, images: torch.Tensor, reference, device) -> float:
    """The share of ``images`` the judge reads as ``reference``: labels (N,), or images whose
    reading is the reference; NaN without a judge."""
    if judge is None or len(images) == 0:
        return math.nan
    if reference.dim() > 1:  # images: the classes the judge reads in them
        reference = torch.as_tensor(predict(judge, reference, device).argmax(1))
    return float((torch.as_tensor(predict(judge, images, device).argmax(1)) == reference)
                 .float().mean())


def neighbour_difference(grid: torch.Tensor, steps: int) -> float:
    """Mean absolute pixel difference between neighbouring cells (side by side, or one above
    the other) of a decoded ``steps`` x ``steps`` grid, :func:`manifold`'s output."""
    cells = grid.double().view(steps, steps, -1)  # (rows, columns, pixels)
    across = (cells[:, 1:] - cells[:, :-1]).abs().mean(-1)  # (steps, steps - 1)
    down = (cells[1:] - cells[:-1]).abs().mean(-1)  # (steps - 1, steps)
    return float(torch.cat([across.flatten(), down.flatten()]).mean())


@torch.no_grad()
def judged_scores(model: VAE, images: torch.Tensor, labels: torch.Tensor, device, judge=None,
                  samples: int = 500, seed: int = 0, confidence: float = 0.9) -> dict:
    """What a trained VAE's code and samples look like, in numbers: the median σ of q(z | x)
    and the mean standard deviation of μ over ``images``; the share of its reconstructions
    the judge reads as their ``labels``; the share of ``samples`` prior samples it reads with
    probability ≥ ``confidence``, and how much two samples differ per pixel."""
    model.eval()
    mu, logvar = batched(lambda x: torch.cat(model.posterior(x), 1), images,
                         device).chunk(2, 1)  # (N, D) each
    drawn = model.sample(samples, seed=seed).cpu()
    return {"sigma_median": float(torch.exp(0.5 * logvar).median()),
            "mu_spread": float(mu.std(0).mean()),
            "recon_same_label": same_reading(judge, batched(model.reconstruct, images, device),
                                             labels, device),
            "sample_confident_share": confident_share(judge, drawn, device, confidence),
            "sample_difference": pair_difference(drawn, seed)}


def perturbation_effect(frames: torch.Tensor, still: torch.Tensor, amounts, device,
                        judge=None) -> pd.DataFrame:
    """How far each column of ``frames`` (N, len(amounts), C, H, W) moved from ``still``
    (N, C, H, W), the undisturbed decode(μ): its mean absolute pixel change and the share the
    judge reads as the same digit as ``still`` (NaN without a judge), one row per amount."""
    return pd.DataFrame([{"amount": float(amount),
                          "mean_change": float((frames[:, j] - still).abs().mean()),
                          "same_reading": same_reading(judge, frames[:, j], still, device)}
                         for j, amount in enumerate(amounts)])


@torch.no_grad()
def judged_paths(model: VAE, images: torch.Tensor, labels: torch.Tensor, device, judge,
                 pairs: int = 100, steps: int = 9, confidence: float = 0.9,
                 seed: int = 0) -> dict:
    """Up to ``pairs`` random pairs of ``images`` with different labels, joined in the latent
    space (decode the line between their μ) and in pixels (blend them): the share of each
    path's inner frames (the ends left out) the judge reads with probability ≥ ``confidence``."""
    generator = torch.Generator().manual_seed(seed)
    a, b = (torch.randperm(len(images), generator=generator) for _ in range(2))
    keep = labels[a] != labels[b]
    a, b = a[keep][:pairs], b[keep][:pairs]
    if len(a) == 0:  # every image has the same label: no pair to join
        return {"latent": math.nan, "pixels": math.nan, "pairs": 0}
    model.eval()
    mu_a, mu_b = (batched(model.encode, images[i], device) for i in (a, b))
    t = torch.linspace(0, 1, steps)[1:-1]  # the inner frames' positions, (steps - 2,)
    codes = (1 - t.view(-1, 1, 1)) * mu_a + t.view(-1, 1, 1) * mu_b  # (steps - 2, pairs, D)
    t = t.view(-1, 1, 1, 1, 1)
    blends = (1 - t) * images[a] + t * images[b]  # (steps - 2, pairs, C, H, W)
    latent_frames = batched(model.decode, codes.flatten(0, 1), device)
    return {"latent": confident_share(judge, latent_frames, device, confidence),
            "pixels": confident_share(judge, blends.flatten(0, 1), device, confidence),
            "pairs": len(a)}


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


# -- the sweep over latent sizes ---------------------------------------------------------------

def latent_size_sweep(models: dict, images: torch.Tensor, device, seed: int = 0) -> pd.DataFrame:
    """One row per latent size D of ``models`` {D: trained VAE}, on ``images``: the rate
    (KL / ln 2, bits per image), the distortion (reconstruction term, nats per image, and the
    per-pixel MSE of decoding μ), the negative ELBO and the active units (Burda et al. 2016)."""
    rows = []
    for size, model in sorted(models.items()):
        terms = evaluate_elbo(model, images, device, seed=seed)
        rows.append({"latent_size": size, "rate_bits": terms["kl"] / math.log(2),
                     "recon": terms["recon"], "neg_elbo": terms["neg_elbo"],
                     "test_mse": reconstruction_scores(model, images, device)["test_mse"],
                     "active_units": active_units(model, images, device)})
    return pd.DataFrame(rows)


def latent_size_plot(table: pd.DataFrame, title: str):
    """Rate (bits per image) and distortion (test MSE per pixel) against the latent size, the
    active units written beside each rate."""
    colors = sns.color_palette()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(table["latent_size"], table["rate_bits"], "-o", color=colors[1],
              label="rate: KL / ln 2")
    for row in table.itertuples():
        left.annotate(f"{row.active_units} active", (row.latent_size, row.rate_bits),
                      textcoords="offset points", xytext=(5, -12), fontsize=8)
    left.set_ylabel("rate, bits per image")
    right.plot(table["latent_size"], table["test_mse"], "-o", color=colors[0],
               label="distortion: test MSE, decoding μ")
    right.set_ylabel("test MSE per pixel")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(table["latent_size"], [str(d) for d in table["latent_size"]])
        ax.set_xlabel("latent size D (log scale)")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_size_sentence(table: pd.DataFrame, flat: float = 0.1) -> str:
    """The trend of a latent-size sweep, read from its table: where rate and distortion go from
    the smallest size to the largest, where the rate peaks (or, if it keeps growing, whether it
    flattens: each further step adds less than ``flat``, a share), and how many dimensions of
    the largest model are active."""
    t = table.sort_values("latent_size").reset_index(drop=True)
    first, last = t.iloc[0], t.iloc[-1]
    if len(t) < 2:
        return (f"Only one latent size ({int(first.latent_size)}) was trained, so there is no "
                "trend to read.")
    text = (f"from D = {int(first.latent_size)} to D = {int(last.latent_size)} the rate goes "
            f"from {first.rate_bits:.1f} to {last.rate_bits:.1f} bits per image and the test "
            f"MSE from {first.test_mse:.4f} to {last.test_mse:.4f}")
    peak = t.loc[t.rate_bits.idxmax()]
    best = t.loc[t.test_mse.idxmin()]
    gains = t["rate_bits"].pct_change().iloc[1:].to_numpy()
    flat_from = next((i for i in range(len(gains)) if (gains[i:] < flat).all()), None)
    if peak.latent_size < last.latent_size:
        text += (f". The rate peaks at D = {int(peak.latent_size)} ({peak.rate_bits:.1f} bits) "
                 f"and the test MSE is lowest at D = {int(best.latent_size)} "
                 f"({best.test_mse:.4f}): past that, more dimensions buy no better code on "
                 "this run")
    elif flat_from is not None:
        text += (f". Beyond D = {int(t.latent_size.iloc[flat_from])} each step adds less than "
                 f"{flat:.0%} to the rate: the KL term stops paying for more dimensions")
    else:
        text += (f". The rate is still growing at D = {int(last.latent_size)}: this sweep has "
                 "not reached the size where more dimensions stop being used")
    units, size = int(last.active_units), int(last.latent_size)
    text += (f". At D = {size}, {units} of the {size} dimensions are active"
             + (": the rest are left to the prior" if units < size / 2 else ""))
    return text


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
