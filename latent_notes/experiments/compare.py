"""The comparison chapter's tools: sample scores, the most used codes, wording, summary figure.

The models themselves share one interface (see the package docstring), so every test of
chapter 5 is one loop over ``latent_notes.families.FAMILIES``; what a code is worth to a
classifier is measured by ``latent_notes.experiments.probes``.
"""
from __future__ import annotations

import torch

from ..families import code_grids
from .metrics import classifier_features, frechet_distance, gaussian_stats


@torch.no_grad()
def sample_scores(judge, samples: torch.Tensor, reference_stats, device) -> dict:
    """Fréchet distance to the test images in the judge's feature space, and mean confidence."""
    features = classifier_features(judge, samples, device)
    logits = judge.classify(torch.as_tensor(features, device=device))
    confidence = torch.softmax(logits, 1).max(1).values.mean()
    return {"fid_cnn": frechet_distance(*gaussian_stats(features), *reference_stats),
            "sample_confidence": float(confidence)}


def most_used_codes(vq_model, images: torch.Tensor, device, n: int) -> torch.Tensor:
    """The ``n`` top-level codes VQ-VAE-2 uses most often on ``images``."""
    top = code_grids(vq_model, images, torch.zeros(len(images)), device).top
    counts = torch.bincount(top.flatten(), minlength=vq_model.config.codebook_size_top)
    return counts.argsort(descending=True)[:n]


SUMMARY_METRICS = {"test_mse": "test MSE (lower is better)", "psnr": "PSNR, dB (higher is better)",
                   "probe_accuracy": "linear probe accuracy", "knn_accuracy": "k-NN accuracy",
                   "fid_cnn": "Fréchet distance (lower is better)",
                   "sample_confidence": "judge confidence on samples"}


def summary_figure(table, title: str):
    """One bar chart per comparison metric, one bar per model (the probes with every label)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = table[table["setting"].isin(["", "labels=all"]) & (table["model"] != "test images")]
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
