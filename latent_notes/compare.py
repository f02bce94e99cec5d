"""The comparison chapter's tools: one face for three models, probes, and sample scores.

Each model family is wrapped in a :class:`LatentModel` with the same four verbs, so every test
of chapter 5 is one loop over the three models:

- ``codes(images)``: the latent vectors a probe reads, (N, D) (VQ-VAE-2: both quantised maps,
  flattened);
- ``reconstruct(images)``: images through the latent and back;
- ``sample(n, seed, labels)``: new images from the model's own generator;
- ``interpolate(x_a, x_b, steps)``: the straight line between two images' latents, decoded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import latent
from .metrics import classifier_features, frechet_distance, gaussian_stats, psnr


@dataclass
class LatentModel:
    """Three model families behind one interface (see the module docstring)."""

    name: str
    net: torch.nn.Module  # the trained model itself
    codes: Callable[[torch.Tensor], torch.Tensor]
    reconstruct: Callable[[torch.Tensor], torch.Tensor]
    sample: Callable[..., torch.Tensor]
    interpolate: Callable[..., torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None  # vector codes → images


def autoencoder_model(model, train_codes: torch.Tensor, device, name: str = "ae") -> LatentModel:
    """A plain AE; it samples from a Gaussian fitted to its training codes (its best chance)."""
    mean, cov = latent.fit_gaussian(train_codes)
    model.eval()
    return LatentModel(
        name, model, decode=model.decode,
        codes=lambda x: latent.encode_all(model.encode, x, device),
        reconstruct=lambda x: latent.decode_all(model.decode, latent.encode_all(model.encode, x, device), device),
        sample=lambda n, seed=0, labels=None: latent.decode_all(
            model.decode, latent.sample_gaussian(mean, cov, n, seed), device),
        interpolate=lambda a, b, steps=9: latent.interpolate(
            model.decode, *latent.encode_all(model.encode, torch.stack([a, b]), device), steps, device),
    )


def vae_model(model, device, name: str = "vae") -> LatentModel:
    """A VAE: codes and reconstructions use the posterior mean μ; samples come from N(0, I)."""
    model.eval()
    mu = lambda x: latent.encode_all(lambda b: model.encode(b).mu, x, device)  # noqa: E731
    return LatentModel(
        name, model, decode=model.decode,
        codes=mu,
        reconstruct=lambda x: latent.decode_all(model.decode, mu(x), device),
        sample=lambda n, seed=0, labels=None: model.sample(n, seed).cpu(),
        interpolate=lambda a, b, steps=9: latent.interpolate(
            model.decode, *mu(torch.stack([a, b])), steps, device),
    )


def vqvae2_model(model, top_prior, bottom_prior, device, temperature: float = 1.0,
                 name: str = "vqvae2") -> LatentModel:
    """A VQ-VAE-2 with its two PixelCNN priors (class-conditional when they were trained so)."""
    from .pixelcnn import generate
    from .vqvae2 import interpolate_quantized, reconstruct

    model.eval()

    @torch.no_grad()
    def codes(x):
        parts = []
        for i in range(0, len(x), 500):
            enc = model.encode(x[i:i + 500].to(device))
            parts.append(torch.cat([enc.quant_top.flatten(1), enc.quant_bottom.flatten(1)], 1).cpu())
        return torch.cat(parts)

    def sample(n, seed=0, labels=None):
        torch.manual_seed(seed)
        return generate(model, top_prior, bottom_prior, n, labels=labels,
                        temperature=temperature, device=device).cpu()

    return LatentModel(
        name, model, codes=codes, reconstruct=lambda x: reconstruct(model, x, device), sample=sample,
        interpolate=lambda a, b, steps=9: interpolate_quantized(model, a.to(device), b.to(device),
                                                                steps),
    )


def reconstruction_scores(model: LatentModel, images: torch.Tensor) -> dict:
    """Mean per-pixel MSE and mean PSNR (dB) of the reconstructions of ``images``."""
    recon = model.reconstruct(images)
    return {"test_mse": float((recon - images).pow(2).mean()), "psnr": psnr(recon, images)}


def knn_probe(train_codes, train_labels, test_codes, test_labels, k: int = 5,
              max_train: int | None = None, seed: int = 0) -> float:
    """Test accuracy of k-nearest-neighbours on standardised codes."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(train_codes, dtype=np.float32).reshape(len(train_codes), -1)
    y = np.asarray(train_labels).ravel()
    if max_train is not None and max_train < len(x):
        keep = np.random.default_rng(seed).choice(len(x), max_train, replace=False)
        x, y = x[keep], y[keep]
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k))
    knn.fit(x, y)
    test = np.asarray(test_codes, dtype=np.float32).reshape(len(test_codes), -1)
    return float(knn.score(test, np.asarray(test_labels).ravel()))


def versus(score: float, reference: float, tolerance: float = 0.005) -> str:
    """How ``score`` compares with ``reference`` in words, for text glued into a chapter."""
    if score > reference + tolerance:
        return "better than"
    if score < reference - tolerance:
        return "less well than"
    return "about as well as"


@torch.no_grad()
def sample_scores(judge, samples: torch.Tensor, reference_stats, device) -> dict:
    """Fréchet distance to the test images in the judge's feature space, and mean confidence."""
    features = classifier_features(judge, samples, device)
    logits = judge.classify(torch.as_tensor(features, device=device))
    confidence = torch.softmax(logits, 1).max(1).values.mean()
    return {"fid_cnn": frechet_distance(*gaussian_stats(features), *reference_stats),
            "sample_confidence": float(confidence)}


# -- the three models: chapter 2-4's when the cache has them, else trained here -------------

def load_models(data, *, latent_size: int, epochs: int, seed: int, device, cache_dir=None,
                temperature: float = 1.0) -> tuple[dict, "pd.DataFrame"]:
    """Chapters 2-4's models (found under their stable cache names) or, where one is missing,
    a model trained here with the family's default settings and ``epochs``.

    Returns the three LatentModels and a table saying where each came from.
    """
    import pandas as pd

    from .autoencoder import ae_alias, train_autoencoder
    from .cache import alias_name, load_alias, same_data
    from .pixelcnn import train_prior
    from .vae import train_vae, vae_alias, vae_config
    from .vqvae2 import encode_codes, train_vqvae2

    origin = []

    def stored_or_train(label, alias, check, train):
        found = load_alias(alias, device, cache_dir, check)
        result = found or train()
        origin.append({"model": label, "source": "its chapter (cache)" if found else "trained here",
                       "checkpoint": result.path.name})
        return result

    fits_data = same_data(data.spec)
    common = dict(epochs=epochs, seed=seed, device=device, cache_dir=cache_dir)
    ae = stored_or_train("ae", ae_alias(data.name, latent_size), fits_data,
                         lambda: train_autoencoder(data, latent_size, **common))
    vae = stored_or_train("vae", vae_alias(data.name, latent_size), fits_data,
                          lambda: train_vae(data, vae_config(data, latent_size), **common))
    vq = stored_or_train("vqvae2", alias_name("vqvae2", data.name), fits_data,
                         lambda: train_vqvae2(data, **common))
    codes = {}

    def prior(level):
        def train():
            if not codes:
                codes["train"] = encode_codes(vq.model, data.train.images, data.train.labels, device)
                codes["test"] = encode_codes(vq.model, data.test.images, data.test.labels, device)
            return train_prior(vq, codes["train"], codes["test"], level,
                               num_classes=len(data.classes), **common)
        made_from_vq = lambda config: config["data"].get("codes_of") == vq.path.stem  # noqa: E731
        return stored_or_train(f"prior ({level})", alias_name(f"prior-{level}", data.name),
                               made_from_vq, train)

    top, bottom = prior("top"), prior("bottom")
    train_codes = latent.encode_all(ae.model.encode, data.train.images, device)
    models = {"ae": autoencoder_model(ae.model, train_codes, device),
              "vae": vae_model(vae.model, device),
              "vqvae2": vqvae2_model(vq.model, top.model, bottom.model, device, temperature)}
    return models, pd.DataFrame(origin)


def most_used_codes(vq_model, images: torch.Tensor, device, n: int) -> torch.Tensor:
    """The ``n`` top-level codes VQ-VAE-2 uses most often on ``images``."""
    from .vqvae2 import encode_codes

    top = encode_codes(vq_model, images, torch.zeros(len(images)), device).top
    counts = torch.bincount(top.flatten(), minlength=vq_model.config.codebook_size_top)
    return counts.argsort(descending=True)[:n]


SUMMARY_METRICS = {"test_mse": "test MSE (lower is better)", "psnr": "PSNR, dB (higher is better)",
                   "probe_accuracy": "linear probe accuracy", "knn_accuracy": "k-NN accuracy",
                   "fid_cnn": "Fréchet distance (lower is better)",
                   "sample_confidence": "judge confidence on samples"}


def summary_figure(table, title: str):
    """One bar chart per comparison metric, one bar per model (rows with an empty setting)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = table[table["setting"] == ""]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (metric, label) in zip(axes.flat, SUMMARY_METRICS.items()):
        rows = table[table["metric"] == metric]
        sns.barplot(data=rows, x="model", y="value", hue="model", ax=ax, legend=False,
                    order=[m for m in ("ae", "vae", "vqvae2", "pixels") if m in set(rows.model)])
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
