"""Plot helpers: image grids with captions, training curves, confusion matrices, class shares.

Names that come from the data are plain text in every figure, whatever they hold: a title
(it names the data set, often a class) is drawn through :func:`plain`, and so is a class name
among captions, labels and ticks (a data set's ``classes`` are
:class:`~latent_notes.data.ClassName` strings), so a folder named ``$5_$`` is shown as typed,
not read as maths. Any other caption or label may hold matplotlib maths (a chapter's
``$z_{1}$``). Text composed around a class name (an f-string caption) is a new string: wrap the
name in :func:`plain` where it is composed.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..data import ClassName

sns.set_theme(context="notebook", style="whitegrid")


def plain(text) -> str:
    """``text`` as matplotlib shows it, letter for letter: each ``$`` escaped (matplotlib's
    ``\\$``), so that no part is read as maths, whatever a folder or class is named."""
    return str(text).replace("$", r"\$")


def _shown(label) -> str:
    """A caption or label as drawn: a class name as plain text, anything else as given."""
    return plain(label) if isinstance(label, ClassName) else str(label)


def _to_hwc(image) -> np.ndarray:
    """(C, H, W) tensor/array in [0, 1] → (H, W) or (H, W, 3) array for imshow."""
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    x = np.clip(x, 0, 1)
    return x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))


def mosaic(images: torch.Tensor, per_line: int, padding: int = 2,
           pad_value: float = 0.0) -> torch.Tensor:
    """(N, C, H, W) → one (C, H', W') image: ``per_line`` thumbnails a line, each with
    ``padding`` pixels of ``pad_value`` around it (shared between neighbours, as in
    torchvision's ``make_grid``)."""
    n, c, h, w = images.shape
    lines = -(-n // per_line)
    step_h, step_w = h + padding, w + padding
    out = images.new_full((c, lines * step_h + padding, per_line * step_w + padding), pad_value)
    for k in range(n):
        top, left = (k // per_line) * step_h + padding, (k % per_line) * step_w + padding
        out[:, top:top + h, left:left + w] = images[k]
    return out


def image_grid(images, nrow: int | None = None, *, title: str = "", captions=None,
               row_labels=None, col_labels=None, size: float = 1.1, cmap: str = "gray_r"):
    """Show (N, C, H, W) images in a grid; optional caption per image and labels per row/column.

    Grayscale images are drawn dark on light (``gray_r``), as ink on paper.
    """
    images = list(images)
    n = len(images)
    ncol = nrow if nrow else int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / ncol))
    extra = 0.3 if captions is not None else 0.0
    fig, axes = plt.subplots(rows, ncol, figsize=(size * ncol + (0.8 if row_labels else 0),
                                                  (size + extra) * rows + (0.5 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(_to_hwc(images[i]), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        if captions is not None:
            ax.set_title(plain(captions[i]), fontsize=8, pad=2)  # captions hold no maths
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(_shown(label), rotation=0, ha="right", va="center", fontsize=9)
    if col_labels is not None:
        for c, label in enumerate(col_labels):
            axes[0, c].set_title(_shown(label), fontsize=9)
    if title:
        fig.suptitle(plain(title))
    fig.tight_layout()
    return fig


def training_curves(histories: dict, metrics=("loss",), title: str = "Training curves",
                    log_y: bool = False):
    """One panel per metric: train (dashed) and validation (solid) per epoch for each named
    history."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    colors = sns.color_palette(n_colors=max(len(histories), 1))
    for ax, metric in zip(axes[0], metrics, strict=False):
        for color, (name, history) in zip(colors, histories.items(), strict=True):
            for split, style, label in (("train", "--", "train"), ("val", "-", "validation")):
                column = f"{split}_{metric}"
                if column in history:
                    ax.plot(history["epoch"], history[column], style, color=color, marker=".",
                            label=f"{name} ({label})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(metric.replace("_", " "))
        if log_y:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(plain(title))
    fig.tight_layout()
    return fig


def confusion_matrix_plot(true, predicted, classes, title: str = "Confusion matrix"):
    """Counts of true (rows) against predicted (columns) labels, annotated."""
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(true, predicted, labels=range(len(classes)))
    names = [plain(c) for c in classes]  # class names as plain text
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(classes), 0.6 + 0.5 * len(classes)))
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=names, yticklabels=names, annot_kws={"fontsize": 8})
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(plain(title))
    fig.tight_layout()
    return fig


# one colour per model in every figure of the book (seaborn's default palette, colour-blind
# safe in this order); the baselines in greys
MODEL_COLOURS = {"ae": "#1f77b4", "vae": "#ff7f0e", "vqvae2": "#2ca02c", "pixels": "#7f7f7f",
                 "pca": "#b0b0b0", "train images": "#000000"}


def model_colour(name: str, fallback_index: int = 0) -> str:
    """The book's colour of a model (``MODEL_COLOURS``), else a colour of the tab10 cycle."""
    return MODEL_COLOURS.get(name) or plt.get_cmap("tab10").colors[fallback_index % 10]


def sweep_plot(table, x: str, columns: dict, *, title: str, ylabel: str, log_y: bool = False):
    """Lines of ``table[column]`` against ``table[x]`` (log-2 x axis), one per {column: label};
    a column named after a model takes that model's colour."""
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    for i, (column, label) in enumerate(columns.items()):
        ax.plot(table[x], table[column], marker="o", label=label, color=model_colour(column, i))
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(table[x]), [str(v) for v in table[x]])
    ax.minorticks_off()
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(ylabel)
    ax.set_title(plain(title))
    ax.legend()
    fig.tight_layout()
    return fig


def code_maps(images, codes_top, codes_bottom, codebook_size_top: int, codebook_size_bottom: int,
              title: str = "", captions=None):
    """Each image beside its top and bottom code grids, drawn as coloured index maps."""
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n + 0.9, 4.3), squeeze=False)
    rows = [("image", None, None), (f"top codes\n(K={codebook_size_top})", codes_top,
                                    codebook_size_top),
            (f"bottom codes\n(K={codebook_size_bottom})", codes_bottom, codebook_size_bottom)]
    for r, (label, codes, k) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if codes is None:
                ax.imshow(_to_hwc(images[i]), cmap="gray_r", vmin=0, vmax=1)
                if captions is not None:
                    ax.set_title(_shown(captions[i]), fontsize=8)
            else:
                ax.imshow(codes[i].cpu().numpy(), cmap="tab20", vmin=0, vmax=k - 1,
                          interpolation="nearest")
        axes[r, 0].set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(plain(title))
    fig.tight_layout()
    return fig


def class_shares(shares: dict, classes, *, title: str, ylabel: str = "share"):
    """Grouped bars: one group per class, one bar per named set of shares {name: (classes,)}."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(classes), 3.6))
    width = 0.8 / max(len(shares), 1)
    x = np.arange(len(classes))
    for i, (name, values) in enumerate(shares.items()):
        ax.bar(x + (i - (len(shares) - 1) / 2) * width, np.asarray(values), width, label=name)
    ax.set_xticks(x, [plain(c) for c in classes])
    ax.set_xlabel("class")
    ax.set_ylabel(ylabel)
    ax.set_title(plain(title))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
