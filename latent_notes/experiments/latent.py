"""Latent-space helpers shared by every model with an encoder and a decoder.

Everything here takes plain callables, such as a model's ``decode: codes -> images`` (tensors
in, tensors out), so the same traversal, interpolation and t-SNE map serve every family. What a
classifier reads from the codes is in ``latent_notes.experiments.probes``. Images are
(N, C, H, W) in [0, 1]; codes are (N, D) unless a model says otherwise.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..checks import ParameterError
from ..models.common import batched


def _one_thread():
    """Run scikit-learn single-threaded: its OpenMP/BLAS pools fight torch's for the same cores
    (measured: a t-SNE of 360 points took 47 s instead of 3 s after torch had run on 2 threads)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


# -- walking through the latent space ----------------------------------------------------------

@torch.no_grad()
def traverse(decode, z: torch.Tensor, values, dims=None, relative: bool = True,
             device="cpu") -> torch.Tensor:
    """Change one coordinate of ``z`` (D,) at a time: (len(dims), len(values), C, H, W).

    Row d, column j decodes z with z[d] replaced by z[d] + values[j] (``relative``) or by
    values[j]; all other coordinates stay as they are.
    """
    z = torch.as_tensor(z, dtype=torch.float32).detach().cpu().flatten()  # ``batched`` moves it
    values = torch.as_tensor(list(values), dtype=torch.float32)
    dims = list(range(len(z))) if dims is None else list(dims)
    if not dims or len(values) == 0:
        raise ParameterError("traverse needs at least one dimension and one value; got "
                             f"dims={dims!r} and {len(values)} values.")
    if min(dims) < 0 or max(dims) >= len(z):
        raise ParameterError(f"traverse: dims must lie in 0..{len(z) - 1} for a code of size "
                             f"{len(z)}, got {dims!r}.")
    codes = z.repeat(len(dims), len(values), 1)  # (dims, values, D)
    for row, d in enumerate(dims):
        codes[row, :, d] = z[d] + values if relative else values
    images = batched(decode, codes.flatten(0, 1), device)  # (dims * values, C, H, W)
    return images.unflatten(0, (len(dims), len(values)))


@torch.no_grad()
def interpolate(decode, z_a: torch.Tensor, z_b: torch.Tensor, steps: int = 9,
                device="cpu") -> torch.Tensor:
    """Decode the straight line z_a → z_b at ``steps`` evenly spaced points: (steps, C, H, W)."""
    if steps < 2:
        raise ParameterError(f"interpolate needs steps >= 2 (both ends), got {steps!r}.")
    t = torch.linspace(0, 1, steps).view(-1, *([1] * z_a.dim()))  # (steps, 1, ...)
    codes = (1 - t) * z_a.cpu().unsqueeze(0) + t * z_b.cpu().unsqueeze(0)
    codes[0], codes[-1] = z_a.cpu(), z_b.cpu()  # exact ends, no rounding from the blend
    return batched(decode, codes, device)


def perturb_codes(codes: torch.Tensor, scale: float, spread: torch.Tensor, seed: int = 0):
    """codes + scale · spread · ε, ε ~ N(0, I): noise in units of ``spread`` (D,), seeded."""
    # Drawn on the CPU, so the same seed gives the same noise on every device, then moved to
    # where the codes are.
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(codes.shape, generator=generator).to(codes.device)
    return codes + scale * torch.as_tensor(spread, device=codes.device) * eps


def pixel_blend(x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 9) -> torch.Tensor:
    """The same straight line in pixel space, (1 - t) x_a + t x_b: (steps, C, H, W)."""
    if steps < 2:
        raise ParameterError(f"pixel_blend needs steps >= 2 (both ends), got {steps!r}.")
    t = torch.linspace(0, 1, steps).view(-1, 1, 1, 1)
    return (1 - t) * x_a.cpu().unsqueeze(0) + t * x_b.cpu().unsqueeze(0)


# -- what the codes know -----------------------------------------------------------------------

def _numpy(x) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return x.reshape(len(x), -1)


def nearest_distance(codes, reference) -> float:
    """Mean distance from each code (N, D) to its nearest neighbour in ``reference`` (M, D)."""
    a = torch.as_tensor(_numpy(codes), dtype=torch.float32)
    b = torch.as_tensor(_numpy(reference), dtype=torch.float32)
    return float(torch.cdist(a, b).min(1).values.mean())


def fit_pca(train_images, n_components: int, seed: int = 0):
    """scikit-learn's PCA with ``n_components`` fitted on the training images (N, ...)."""
    from sklearn.decomposition import PCA

    train = _numpy(train_images)
    if not 1 <= n_components <= min(train.shape):
        raise ParameterError(f"PCA with {n_components} components needs at least that many "
                             f"training images and pixels; got {train.shape[0]} images of "
                             f"{train.shape[1]} pixels. Use fewer components or more images.")
    with _one_thread():
        return PCA(n_components=n_components, random_state=seed).fit(train)


def pca_baseline(train_images, test_images, n_components: int, seed: int = 0) -> float:
    """Mean per-pixel MSE of test images rebuilt from their first ``n_components`` PCA scores."""
    pca, test = fit_pca(train_images, n_components, seed), _numpy(test_images)
    with _one_thread():
        rebuilt = pca.inverse_transform(pca.transform(test))
    return float(np.mean((rebuilt - test) ** 2))


TSNE_MIN_POINTS = 3  # t-SNE's perplexity (at least 2 here) must be below the number of points


def _no_map(sentence: str, title: str):
    """The figure of a map that could not be drawn: its title and the sentence saying why."""
    print(f"{title}: {sentence}.")
    fig, ax = plt.subplots(figsize=(6.4, 1.2))
    ax.text(0.5, 0.5, f"{sentence[0].upper()}{sentence[1:]}.", ha="center", va="center")
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def tsne_map(codes, labels, classes, title: str, max_points: int = 1000, seed: int = 0):
    """A 2-D map of codes coloured by label: t-SNE (van der Maaten & Hinton 2008), or the codes
    themselves when they already have two dimensions (one: against the label). Fewer than
    :data:`TSNE_MIN_POINTS` codes make no map: the figure says so."""
    from sklearn.manifold import TSNE

    z, y = _numpy(codes), np.asarray(labels).ravel()
    if max_points is not None and max_points < len(z):
        keep = np.random.default_rng(seed).choice(len(z), max_points, replace=False)
        z, y = z[keep], y[keep]
    if z.shape[1] == 2:
        xy, axes = z, ("$z_1$", "$z_2$")
    elif z.shape[1] == 1:
        xy, axes = np.concatenate([z, y[:, None]], 1), ("$z_1$", "label")
    elif len(z) < TSNE_MIN_POINTS:  # its perplexity must stay below the number of points
        return _no_map(f"{len(z)} code{'s' * (len(z) != 1)} make no t-SNE map, which "
                       f"needs {TSNE_MIN_POINTS} or more", title)
    else:
        perplexity = min(30.0, max(2.0, (len(z) - 1) / 3))
        with _one_thread():
            xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                      ).fit_transform(z)
        axes = ("t-SNE 1", "t-SNE 2")
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    palette = "tab10" if len(classes) <= 10 else "husl"
    colors = sns.color_palette(palette, n_colors=max(len(classes), 1))
    for k, name in enumerate(classes):
        mask = y == k
        if mask.any():
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.7, color=colors[k % len(colors)],
                       label=str(name).replace("$", r"\$"))  # a '$' is not maths
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.legend(title="label", fontsize=8, markerscale=2.5, loc="center left",
              bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def pair_difference(images: torch.Tensor, seed: int = 0) -> float:
    """Mean absolute pixel difference between random pairs of ``images`` (each against the
    next in a seeded shuffle): how much two images of the set differ, per pixel."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    shuffled = images[order].double()
    return float((shuffled[1:] - shuffled[:-1]).abs().mean())
