"""The comparison chapter's tools: sample scores over seeded draws, the most used codes,
what each model is (the fairness table), wording, summary figure.

The models themselves share one interface (see the package docstring), so every test of
chapter 5 is one loop over ``latent_notes.families.FAMILIES``; what a code is worth to a
classifier is measured by ``latent_notes.experiments.probes``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch

from ..checks import ParameterError
from ..models.common import batched
from ..models.vqvae2 import code_grids
from .metrics import (
    classifier_features,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
)


@torch.no_grad()
def sample_scores(judge, samples: torch.Tensor, reference_stats, device,
                  reference_features=None) -> dict:
    """Fréchet distance to the test images in the judge's feature space, mean confidence, and,
    given the reference's features themselves, the KID (``kid_cnn``, unbiased)."""
    features = classifier_features(judge, samples, device)
    logits = judge.classify(torch.as_tensor(features, device=device))
    confidence = torch.softmax(logits, 1).max(1).values.mean()
    scores = {"fid_cnn": frechet_distance(*gaussian_stats(features), *reference_stats),
              "sample_confidence": float(confidence)}
    if reference_features is not None:
        scores["kid_cnn"] = kernel_inception_distance(features, reference_features)
    return scores


# -- generation: samples with and without a label, scored over seeded draws ------------------

@torch.no_grad()
def draw_samples(model, n: int, seed: int, conditional: bool = False) -> torch.Tensor:
    """n samples of one family's model, seeded, on the CPU. Unconditional (the default): the
    AE's fitted Gaussian, the VAE's N(0, I), VQ-VAE-2's priors given their "no label"
    embedding (priors trained with label dropout). Conditional: VQ-VAE-2's class-conditional
    priors given labels drawn uniformly with ``seed``; a model without labels has none."""
    model.eval()
    priors = getattr(model, "priors", None)
    labelled = priors is not None and priors.top.config.num_classes > 0
    if conditional and not labelled:
        raise ParameterError(f"A {type(model).__name__} samples without labels: it has no "
                             "conditional samples. Ask for conditional=False.")
    if labelled and not conditional:
        no_label = priors.top.no_label(n)
        if priors.bottom.config.num_classes:
            priors.bottom.no_label(n)  # the bottom prior must know "no label" too
        return model.sample(n, seed=seed, labels=no_label).cpu()
    return model.sample(n, seed=seed).cpu()


def disjoint_draws(images: torch.Tensor, n: int, draws: int, seed: int = 0) -> list:
    """``draws`` seeded sets of ``n`` of ``images``, no image in two sets: real images for the
    real-versus-real floor of the Fréchet distance."""
    if n < 1 or draws < 1 or n * draws > len(images):
        raise ParameterError(f"{draws} disjoint draws of {n} images each cannot be taken from "
                             f"{len(images)} images: ask for at least one draw of at least one "
                             f"image, and at most {len(images)} images in all.")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return [images[order[i * n:(i + 1) * n]] for i in range(draws)]


class Drawn(NamedTuple):
    scores: dict  # fid_cnn (mean over draws), fid_cnn_std, [kid_cnn, kid_cnn_std,]
    #               sample_confidence, fid_draws
    first: torch.Tensor  # the first draw's images, to show


def frechet_over_draws(judge, draw: Callable[[int], torch.Tensor], reference_stats,
                       draws: int, device, reference_features=None) -> Drawn:
    """Score ``draws`` sets of images (``draw(i)``: the i-th) against a fixed reference: the
    Fréchet distance's mean and sample standard deviation over the sets (the spread of the
    sets alone, the reference being the same), the same for the KID when the reference's
    features are given, the mean confidence, and ``draws``."""
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
        raise ParameterError(f"fid_draws must be a whole number of at least 2 (a standard "
                             f"deviation needs two draws), got {draws!r}.")
    first, each = None, []
    for i in range(draws):
        images = draw(i)
        first = images if first is None else first
        each.append(sample_scores(judge, images, reference_stats, device, reference_features))
    scores = {}
    for metric in ("fid_cnn", "kid_cnn"):
        if metric in each[0]:
            values = [e[metric] for e in each]
            scores.update({metric: float(np.mean(values)),
                           f"{metric}_std": float(np.std(values, ddof=1))})
    scores.update(sample_confidence=float(np.mean([e["sample_confidence"] for e in each])),
                  fid_draws=draws)
    return Drawn(scores, first)


def overlapping(means: dict, stds: dict) -> list[tuple[str, str]]:
    """Neighbours in the order of ``means`` whose gap is at most their two standard deviations
    added: pairs the draws do not separate."""
    order = sorted(means, key=means.get)
    return [(a, b) for a, b in zip(order, order[1:], strict=False)
            if means[b] - means[a] <= stds[a] + stds[b]]


@torch.no_grad()
def interpolation_frames(models: dict, images: torch.Tensor, pairs: int, steps: int, device,
                         seed: int = 0) -> tuple[dict, torch.Tensor]:
    """The inner frames of straight lines between ``pairs`` seeded random pairs of ``images``,
    in each model's latent space and in pixel space: ({"pixels": ..., name: ...}, the rest).

    Each entry holds pairs · (steps − 2) images (the ends left out); the rest are the images
    that are no end of any pair, for a reference set of real images that shares none with the
    paths. The same pairs and the same t for every space.
    """
    inner = steps - 2
    if pairs < 1 or inner < 1 or 2 * pairs > len(images):
        raise ParameterError(f"interpolation_frames needs 1 <= pairs <= {len(images) // 2} "
                             f"and steps >= 3, got pairs={pairs}, steps={steps}.")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    ends_a, ends_b = images[order[:pairs]], images[order[pairs:2 * pairs]]
    t = torch.linspace(0, 1, steps)[1:-1]  # (inner,)

    def blend(a, b):  # (P, ...) x (P, ...) → (P · inner, ...), pair-major
        w = t.view(1, inner, *([1] * (a.dim() - 1)))
        return ((1 - w) * a.unsqueeze(1) + w * b.unsqueeze(1)).flatten(0, 1)

    frames = {"pixels": blend(ends_a, ends_b)}
    for name, model in models.items():
        model.eval()
        codes = blend(batched(model.encode, ends_a, device), batched(model.encode, ends_b, device))
        frames[name] = batched(model.decode, codes, device)
    return frames, images[order[2 * pairs:]]


def frechet_to_real(judge, frames: dict, real: torch.Tensor, floor_images: torch.Tensor,
                    device, seed: int = 0) -> dict:
    """Fréchet distance (in the judge's feature space) from each set of ``frames`` to as many
    real images drawn from ``real``, and the floor: as many other real images
    (``floor_images``, e.g. training images) to the same reference. Equal counts everywhere,
    so the small-sample bias of the distance is the same in every row."""
    n = min(len(f) for f in frames.values())
    if len(real) < n or len(floor_images) < n:
        raise ParameterError(f"frechet_to_real needs at least {n} real and {n} floor images, "
                             f"got {len(real)} and {len(floor_images)}.")
    generator = torch.Generator().manual_seed(seed)
    pick = lambda x: x[torch.randperm(len(x), generator=generator)[:n]]  # noqa: E731
    reference = gaussian_stats(classifier_features(judge, pick(real), device))
    sets = {"real images (floor)": pick(floor_images),
            **{name: pick(f) for name, f in frames.items()}}
    return {name: frechet_distance(*gaussian_stats(classifier_features(judge, x, device)),
                                   *reference) for name, x in sets.items()}


@torch.no_grad()
def ranked_units(model, images: torch.Tensor, device, n: int) -> tuple[torch.Tensor, str]:
    """The ``n`` coordinates of a vector code worth traversing first, and how they were ranked:
    a VAE's by their mean KL to the prior (what chapter 3 reads: an inactive coordinate, KL ≈ 0,
    changes nothing), any other code's by its spread over ``images``."""
    model.eval()
    if hasattr(model, "posterior"):
        from ..models.vae import kl_to_standard_normal

        score = batched(lambda x: kl_to_standard_normal(*model.posterior(x)), images,
                        device).mean(0)
        how = "mean KL"
    else:
        score = batched(model.encode, images, device).std(0)
        how = "spread over the test images"
    return score.argsort(descending=True)[:n], how


def unit_effect(frames: torch.Tensor, reference: torch.Tensor, box=None) -> dict:
    """How much changing one latent unit changed the image: the mean absolute pixel change of
    ``frames`` (N, C, H, W) from ``reference`` (C, H, W), and, given a ``box`` (rows, columns),
    the share of that change inside it."""
    change = (frames - reference).abs().sum(1)  # (N, H, W), summed over channels
    result = {"mean_change": float(change.mean()) / frames.shape[1]}
    if box is not None:
        total = float(change.sum())
        result["share_inside"] = float(change[:, box[0], box[1]].sum()) / total if total else 0.0
    return result


def most_used_codes(vq_model, images: torch.Tensor, device, n: int) -> torch.Tensor:
    """The ``n`` top-level codes VQ-VAE-2 uses most often on ``images``."""
    top = code_grids(vq_model, images, torch.zeros(len(images)), device).top
    counts = torch.bincount(top.flatten(), minlength=vq_model.config.codebook_size_top)
    return counts.argsort(descending=True)[:n]


# -- what each model is: the fairness table ----------------------------------------------------

def own_parameters(model) -> int:
    """Trainable numbers of a model without the priors attached to it (a VQ-VAE-2 carries its
    PixelCNNs as a submodule, counted on their own rows)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if p.requires_grad and not name.startswith("priors."))


def stored_recipe(path) -> dict | None:
    """The training settings (epochs, batch_size, lr, ...) a checkpoint was trained with, read
    from the file; None when there is no such file (a model that could not be saved)."""
    if path is None or not Path(path).exists():
        return None
    config = torch.load(path, map_location="cpu", weights_only=True).get("config", {})
    return config.get("train")


def training_loss(config) -> str:
    """What a model was trained to minimise, in words, read from its config."""
    from ..models.autoencoder import AEConfig
    from ..models.pixelcnn import PixelCNNConfig
    from ..models.vae import VAEConfig
    from ..models.vqvae2 import VQVAE2Config

    if isinstance(config, AEConfig):
        return "per-pixel MSE"
    if isinstance(config, VAEConfig):
        decoder = ("Bernoulli decoder (binary cross-entropy)" if config.likelihood == "bernoulli"
                   else f"Gaussian decoder (σ = {config.decoder_std:g}, an MSE)")
        extra = "".join([f", reconstruction × {config.recon_weight:g}"
                         if config.recon_weight != 1 else "",
                         f", denoising (noise {config.noise_std:g})" if config.noise_std else "",
                         ", binarised inputs" if config.binarise else ""])
        return f"negative ELBO, {decoder}, β = {config.beta:g}{extra}"
    if isinstance(config, VQVAE2Config):
        if config.bottleneck == "continuous":
            return "per-pixel MSE"
        if config.bottleneck == "gaussian":
            return (f"negative ELBO × 2σ²/N (σ = {config.decoder_std:g}), β = {config.beta:g}")
        restarts = ", dead codes restarted" if config.restart else ""
        return (f"per-pixel MSE + {config.commitment_weight:g} × commitment; codebooks of "
                f"{config.codebook_size_top} and {config.codebook_size_bottom} codes learnt by "
                f"EMA (decay {config.decay:g}){restarts}")
    if isinstance(config, PixelCNNConfig):
        given = " given the top grid" if config.cond_codebook_size else ""
        return f"cross-entropy of the codes{given}"
    return type(config).__name__


def labels_seen(config) -> str:
    """What a model saw of the labels in training."""
    classes = getattr(config, "num_classes", 0)
    if not classes:
        return "none"
    return (f"class-conditional ({classes} classes); the label hidden (\"no label\") on "
            f"{config.label_dropout:.0%} of the training images")


def scored_here(config) -> str:
    """How chapter 5 scores a model of this config."""
    from ..models.autoencoder import AEConfig
    from ..models.pixelcnn import PixelCNNConfig
    from ..models.vae import VAEConfig

    if isinstance(config, PixelCNNConfig):
        return "code length in bits (the rate); samples with and without a label"
    if isinstance(config, VAEConfig):
        trained = "binary cross-entropy" if config.likelihood == "bernoulli" else "a Gaussian"
        return (f"test MSE of the decoded μ (trained on {trained}, scored in MSE); samples "
                "from N(0, I); rate = KL / ln 2")
    if isinstance(config, AEConfig):
        return "test MSE; samples from a Gaussian fitted to its training codes; no rate"
    return "test MSE; samples through its priors; rate = code length under its priors"


def fairness_table(models: dict, recipes: dict) -> pd.DataFrame:
    """One row per network chapter 5 compares, a VQ-VAE-2's priors on rows of their own: its
    parameters (counted from the model), training loss, epochs and batch size (``recipes``:
    {row name: its checkpoint's training settings, or None}), what it saw of the labels and
    how it is scored here. Every entry is read from the loaded models and their checkpoints."""
    networks = {}
    for name, model in models.items():
        networks[name] = model
        priors = getattr(model, "priors", None)
        if priors is not None:
            networks.update({f"prior ({level})": getattr(priors, level)
                             for level in ("top", "bottom")})
    rows = []
    for name, model in networks.items():
        recipe = recipes.get(name) or {}
        rows.append({"model": name, "parameters": own_parameters(model),
                     "training loss": training_loss(model.config),
                     "epochs": recipe.get("epochs"), "batch size": recipe.get("batch_size"),
                     "labels seen": labels_seen(model.config),
                     "scored here by": scored_here(model.config)})
    table = pd.DataFrame(rows).set_index("model")
    return table.astype({"epochs": "Int64", "batch size": "Int64"})  # None: not stored


SUMMARY_METRICS = {"test_mse": "test MSE (lower is better)", "psnr": "PSNR, dB (higher is better)",
                   "probe_accuracy": "linear probe accuracy", "knn_accuracy": "k-NN accuracy",
                   "fid_cnn": "Fréchet distance, unconditional (lower is better)",
                   "sample_confidence": "judge confidence on samples"}


def spatial_gap_sentence(vector: float, spatial: float, vq: float) -> str:
    """How much of the test-MSE gap between a vector code (the AE's) and VQ-VAE-2 the same
    backbone with a continuous bottleneck (``spatial``) closes, and what is left to
    quantisation: the one thing that differs between the spatial AE and VQ-VAE-2."""
    numbers = (f"The continuous spatial AE reaches a test MSE of {spatial:.4f}, VQ-VAE-2 "
               f"{vq:.4f} and the AE with a vector code {vector:.4f}")
    if vq >= vector:
        return (f"{numbers}: on this run VQ-VAE-2 is not below the vector AE, so there is no "
                "gap for the spatial code to close")
    closed = (vector - spatial) / (vector - vq)
    if spatial <= vq:
        return (f"{numbers}: the spatial layout alone closes the whole gap and goes past "
                f"VQ-VAE-2 ({closed:.0%} of the gap), so on this run VQ-VAE-2's lead over "
                "the vector AE comes from its spatial code, not from quantisation. "
                f"Quantisation costs reconstruction (VQ-VAE-2's error is {vq / spatial:.1f} "
                "times the continuous model's) and buys a finite rate (below)")
    if spatial >= vector:
        return (f"{numbers}: the spatial layout closes none of the gap; on this run all of "
                "it goes with quantisation")
    return (f"{numbers}: the spatial layout closes {closed:.0%} of the gap, and the other "
            f"{1 - closed:.0%} goes with quantisation (on this run the codebooks help "
            "reconstruction)")


def spatial_vae_sentence(vector: float, spatial: float, vq: float) -> str:
    """The Gaussian spatial VAE's test MSE beside the vector VAE's and VQ-VAE-2's."""
    side = "below" if spatial < vq else "above"
    if spatial < vector:
        against = f"{vector / spatial:.1f} times below the vector VAE's {vector:.4f}"
    else:
        against = f"not below the vector VAE's {vector:.4f}"
    return (f"The Gaussian spatial VAE, which pays in KL for what each position carries, "
            f"reaches {spatial:.4f}: {against}, and {side} VQ-VAE-2's {vq:.4f}")


def sampled_sentence(mean_mse: float, sampled_mse: float, top_bits: float,
                     total_bits: float) -> str:
    """The Gaussian spatial VAE decoded from one draw of q(z | x) against decoded from μ."""
    head = (f"Decoded from one draw of q(z | x) instead of μ, its test MSE is "
            f"{sampled_mse:.4f}")
    if sampled_mse < 0.9 * mean_mse:
        why = ("in training a channel that carries nothing hands the decoder pure noise, "
               "which it learns to expect; μ hands it zeros instead")
        if top_bits < 0.05 * total_bits:
            why = (f"its top grid carries {top_bits:.1f} of its {total_bits:.0f} bits, next "
                   f"to nothing, and {why}")
        return (f"{head}, {mean_mse / sampled_mse:.1f} times lower than from μ: {why}. The "
                "table keeps μ, as for every VAE in this book; the rate-distortion figure "
                "below plots both")
    if sampled_mse > 1.1 * mean_mse:
        return (f"{head}, higher than from μ, as for chapter 3's VAE: μ is the centre of what "
                "the code says")
    return f"{head}, about the same as from μ"


def spatial_rate_sentence(gaussian_bits: float, gaussian_mse: float, sampled_mse: float,
                          vq_bits: float, vq_mse: float, how: str = "class sent first") -> str:
    """The Gaussian spatial VAE's rate (KL / ln 2) against VQ-VAE-2's code length under its
    priors (``how`` they were measured: "no label", or "class sent first"), both in bits per
    image, and what each buys in test MSE (the VAE's decoded from μ and from a draw)."""
    more = gaussian_bits > vq_bits
    ratio = gaussian_bits / vq_bits if more else vq_bits / gaussian_bits
    head = (f"On the same backbone, the Gaussian spatial VAE's code carries "
            f"{gaussian_bits:.0f} bits per test image, {ratio:.1f} times "
            f"{'more' if more else 'fewer'} than VQ-VAE-2's codes take under its priors "
            f"({vq_bits:.0f}, {how})")
    sharper = [mse < vq_mse for mse in (gaussian_mse, sampled_mse)]
    if all(sharper) and more:
        tail = ("and it reconstructs better, from μ and from a draw: the two bottlenecks sit "
                "at different points of one trade-off, and the Gaussian one buys its lower "
                "error with bits")
    elif all(sharper):
        tail = ("and it still reconstructs better, from μ and from a draw: on this run the "
                "Gaussian bottleneck is the more efficient code")
    elif any(sharper):
        tail = (f"and it reconstructs better than VQ-VAE-2 only when decoded from "
                f"{'a draw' if sharper[1] else 'μ'}")
    elif more:
        tail = ("and it reconstructs worse, from μ and from a draw: on this run the codebooks "
                "are the more efficient code")
    else:
        tail = ("and it reconstructs worse, from μ and from a draw: it sits at a lower rate "
                "and a higher distortion, another point of the trade-off")
    return f"{head}, {tail}"


def summary_figure(table, title: str):
    """One bar chart per comparison metric, one bar per model (the probes with every label, the
    samples drawn without a label)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = table[table["setting"].isin(["", "labels=all", "unconditional"])]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (metric, label) in zip(axes.flat, SUMMARY_METRICS.items(), strict=False):
        rows = table[table["metric"] == metric]
        sns.barplot(data=rows, x="model", y="value", hue="model", ax=ax, legend=False,
                    order=[m for m in ("ae", "vae", "vqvae2", "pixels", "pca")
                           if m in set(rows.model)])
        ax.set_title(label)
        ax.set_xlabel("")
        ax.set_ylabel(metric)
        for bar in ax.patches:
            ax.annotate(f"{bar.get_height():.3g}", (bar.get_x() + bar.get_width() / 2,
                                                    bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
