"""What a code costs, in bits per image: the rate of each family, for chapter 5's
rate-distortion figure (Alemi et al. 2018, "Fixing a broken ELBO", plot rate against distortion
the same way).

- The VAE's rate is its KL term, E_x KL(q(z|x) || N(0, I)), over ln 2. It is an upper bound
  on the information the code carries, not that information: E_x KL(q(z|x) || p(z)) =
  I_q(x; z) + KL(q(z) || p(z)), q(z) the aggregate posterior (Hoffman & Johnson 2016); and a
  code length only through bits-back coding (Hinton & van Camp 1993; Alemi et al. 2018,
  section 2).
- VQ-VAE-2's rate is the length of its code grids under its own priors, −log2 p(codes), as an
  entropy coder driven by the two PixelCNNs would write it. The priors are class-conditional:
  given the class the length is −log2 p(c_top | y) − log2 p(c_bottom | c_top, y). Priors that
  learnt with label dropout also model the codes with no label, and −log2 p(c_top | ∅) −
  log2 p(c_bottom | c_top, ∅) is the unconditional length; sending the class first (log2 C
  more bits) and the grids given it is another code a receiver that is not told the class can
  decode. The rate to set beside the VAE's (neither is told the class) is the shorter of the
  two (``shorter_code``). The storage bound, positions × log2 K per level, is what the codes
  would take with no prior.
- The AE has no rate: its code is a deterministic vector of real numbers, and nothing in its
  loss charges for what those numbers carry (storage, 32 bits a float, is not information).
  Neither has VQ-VAE-2's backbone with a continuous bottleneck, for the same reason; with a
  Gaussian one (a VAE with a spatial latent) its rate is its KL over ln 2, as the VAE's.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..checks import ParameterError
from ..models.common import batched, seeded
from ..models.pixelcnn import prior_inputs
from ..models.vqvae2 import code_grids

LN2 = math.log(2)


@torch.no_grad()
def vae_rate_bits(model, images: torch.Tensor, device) -> float:
    """E_x KL(q(z|x) || N(0, I)) / ln 2 over ``images``: the VAE's rate in bits per image."""
    from ..models.vae import kl_to_standard_normal

    model.eval()
    kl = batched(lambda x: kl_to_standard_normal(*model.posterior(x)).sum(1), images, device)
    return float(kl.double().mean()) / LN2


@torch.no_grad()
def spatial_vae_rate_distortion(model, images: torch.Tensor, device,
                                seed: int = 0) -> dict[str, float]:
    """Rate and distortion over ``images`` of VQ-VAE-2's backbone with a Gaussian bottleneck
    (a VAE with a spatial latent), from one seeded draw of q(z | x) per image.

    ``top``, ``bottom``, ``total``: E_x KL(q || N(0, I)) / ln 2 in bits per image (the bottom
    posterior depends on the drawn top code, so its KL at that draw is an unbiased estimate of
    E_q(z_top) KL_bottom; the top's is exact); ``sampled_mse``: the per-pixel MSE of the images
    decoded from the draw, the ELBO's distortion E_q (``reconstruct`` decodes μ instead).
    """
    if getattr(model.config, "bottleneck", None) != "gaussian":
        raise ParameterError("spatial_vae_rate_distortion needs a VQ-VAE-2 built with "
                             "bottleneck='gaussian' (its KL is the rate); got bottleneck="
                             f"{getattr(model.config, 'bottleneck', None)!r}.")
    model.eval()

    def terms(x):  # (B, 3): the top's KL, the bottom's, the squared error per pixel
        flow, q = model.flow(x, sample=True)
        error = (flow.x_rec - x).pow(2).flatten(1).mean(1)
        return torch.stack([q.kl_top, q.kl - q.kl_top, error], 1)

    with seeded(seed):
        top, bottom, mse = batched(terms, images, device).double().mean(0).tolist()
    return {"top": top / LN2, "bottom": bottom / LN2, "total": (top + bottom) / LN2,
            "sampled_mse": mse}


def storage_bits(config) -> float:
    """What VQ-VAE-2's two code grids take with no prior: positions × log2 K per level."""
    return (config.top_grid ** 2 * math.log2(config.codebook_size_top)
            + config.bottom_grid ** 2 * math.log2(config.codebook_size_bottom))


@torch.no_grad()
def vqvae2_code_bits(model, images: torch.Tensor, labels: torch.Tensor, device,
                     batch_size: int = 256) -> dict[str, float]:
    """Bits per image of VQ-VAE-2's code grids under its attached priors (−log2 of each
    level's probability, summed over its positions, averaged over the images).

    ``top`` and ``bottom`` given the class, ``given_class`` their sum, ``with_class`` plus
    log2 C (the class sent first); where both priors know "no label" (label dropout),
    ``top_unconditional``, ``bottom_unconditional`` and ``unconditional``, the length when no
    one is told the class; ``rate``: the unconditional length where there is one, else
    ``with_class``; ``storage``: positions × log2 K. The rate chapter 5 reports is the
    shorter of the two codes that need no class at the receiver: ``bits[shorter_code(bits)]``.
    """
    priors = getattr(model, "priors", None)
    if priors is None:
        raise ParameterError("vqvae2_code_bits needs the model's priors: attach them with "
                             "model.attach_priors(top, bottom) (families.load_family does).")
    model.eval()
    codes = code_grids(model, images, labels, device)
    device = next(model.parameters()).device
    classes = priors.top.config.num_classes
    knows_no_label = all(p.config.num_classes and p.config.label_dropout
                         for p in (priors.top, priors.bottom))
    bits = {}
    for level, prior in (("top", priors.top), ("bottom", priors.bottom)):
        prior.eval()
        grids = prior_inputs(codes.top, codes.bottom, level)  # (N, 1 or 2, G, G)
        told = [("", True)] + ([("_unconditional", False)] if knows_no_label else [])
        for suffix, with_label in told:
            total = torch.zeros((), dtype=torch.float64)
            for start in range(0, len(grids), batch_size):
                x = grids[start:start + batch_size].to(device)
                y = codes.labels[start:start + batch_size].to(device)
                cond = x[:, 1] if x.shape[1] > 1 else None
                y = y if prior.config.num_classes and with_label else None
                logits = prior(x[:, 0], y, cond)
                total += F.cross_entropy(logits, x[:, 0], reduction="sum").double().cpu()
            bits[level + suffix] = float(total) / LN2 / len(grids)
    storage = storage_bits(model.config)
    given = bits["top"] + bits["bottom"]
    bits.update(given_class=given,
                with_class=given + (math.log2(classes) if classes else 0.0), storage=storage)
    if knows_no_label:
        bits["unconditional"] = bits["top_unconditional"] + bits["bottom_unconditional"]
    bits["rate"] = bits[shorter_code(bits)]  # the shorter of the two valid code lengths
    return bits


def shorter_code(bits: dict[str, float]) -> str:
    """Which of the two codes a receiver that is not told the class can decode is shorter:
    "unconditional" (the grids under the priors' "no label") or "with_class" (the class sent
    first, then the grids given it); "with_class" where the priors learnt no "no label". Both
    are valid code lengths, so the rate is the shorter; a tie goes to "unconditional"."""
    if bits.get("unconditional", np.inf) <= bits["with_class"]:
        return "unconditional"
    return "with_class"


def beta_sweep(results: pd.DataFrame, dataset: str, latent_size: int) -> pd.DataFrame:
    """Chapter 3's β sweep at ``latent_size`` from the gathered results table: one row per β
    with its rate (KL / ln 2, bits per image) and its test MSE per pixel, sorted by β."""
    rows = results[(results["chapter"] == "03_vae") & (results["dataset"] == dataset)
                   & (results["model"] == "vae")
                   & results["setting"].str.fullmatch(rf"beta=[^,]+,latent={latent_size}")]
    wide = rows.pivot_table(index="setting", columns="metric", values="value")
    if wide.empty or not {"kl", "test_mse"} <= set(wide.columns):
        return pd.DataFrame(columns=["beta", "rate_bits", "test_mse"])
    beta = wide.index.str.extract(r"beta=([^,]+)", expand=False).astype(float)
    table = pd.DataFrame({"beta": beta, "rate_bits": wide["kl"].to_numpy() / LN2,
                          "test_mse": wide["test_mse"].to_numpy()})
    return table.dropna().sort_values("beta").reset_index(drop=True)


def sweep_is_a_trade(sweep: pd.DataFrame) -> bool:
    """True when, as β grows, the rate never rises and the distortion never falls."""
    return bool(len(sweep) > 1 and (np.diff(sweep["rate_bits"]) <= 0).all()
                and (np.diff(sweep["test_mse"]) >= 0).all())


def rate_distortion_plot(sweep: pd.DataFrame, points: dict, ae_mse: float | None, title: str,
                         lines: dict | None = None):
    """Test MSE per pixel against rate in bits per image (both log scales): the VAE's β sweep
    as a curve, ``points`` {label: (rate, mse)} as markers, the AE (no rate) as a line, and
    ``lines`` {label: mse}, other codes without a rate, as more lines."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    colors = sns.color_palette()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    if len(sweep):
        ax.plot(sweep["rate_bits"], sweep["test_mse"], "-o", color=colors[1],
                label="VAE, β sweep (chapter 3)")
        for row in sweep.itertuples():
            ax.annotate(f"β={row.beta:g}", (row.rate_bits, row.test_mse),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)
    markers = iter(["D", "s", "^", "v", "P"])
    for (label, (rate, mse)), color in zip(points.items(), colors[2:], strict=False):
        ax.plot([rate], [mse], next(markers, "o"), color=color, markersize=8, label=label,
                linestyle="")
    if ae_mse is not None:
        ax.axhline(ae_mse, color=colors[0], linestyle="--",
                   label="AE (a real-valued code: no rate)")
    for i, (label, mse) in enumerate((lines or {}).items()):
        ax.axhline(mse, color=colors[7 + i % 3], linestyle=":", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rate, bits per image (log scale)")
    ax.set_ylabel("distortion: test MSE per pixel (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
