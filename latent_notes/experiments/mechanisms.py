"""The mechanisms of chapter 4 made visible: the PixelCNN's masks, its receptive field (measured
through gradients, as Oord et al. 2016 and the UvA tutorial show it: a blind spot of holes inside
the field, and the positions beyond a finite stack's reach) and the quantiser (nearest code,
straight-through gradient, EMA update), each run through the package's own code."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.colors import ListedColormap

from ..models.common import seeded
from ..models.pixelcnn import (
    MaskedConv2d,
    PixelCNN,
    PixelCNNConfig,
    horizontal_mask,
    vertical_mask,
)
from ..models.quantise import VectorQuantiserEMA


def plain_mask(k: int, include_centre: bool) -> torch.Tensor:
    """The original PixelCNN's k x k mask (van den Oord et al. 2016a): the rows above, and the
    pixels to the left in the centre row; "A" (first layer) without the centre, "B" with it."""
    mask = torch.zeros(k, k)
    mask[:k // 2] = 1
    mask[k // 2, :k // 2 + int(include_centre)] = 1
    return mask


class PlainPixelCNN(nn.Module):
    """A single stack of masked k x k convolutions (mask A, then B): the design whose receptive
    field has a blind spot, kept here only to measure it."""

    def __init__(self, channels: int, layers: int, kernel: int = 3):
        super().__init__()
        self.convs = nn.ModuleList(
            MaskedConv2d(channels, channels, (kernel, kernel), plain_mask(kernel, i > 0))
            for i in range(layers))

    def logits_from_embedded(self, x: torch.Tensor, context=None) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x) if i == 0 else conv(F.relu(x))
        return x


def dependence(model, channels: int, grid: int, position: tuple[int, int],
               context=None) -> torch.Tensor:
    """(G, G) map of |d output[position] / d input|, summed over channels: which positions of
    the embedded grid the output at ``position`` depends on."""
    x = torch.randn(1, channels, grid, grid, requires_grad=True)
    out = model.logits_from_embedded(x, context)
    out[0, :, position[0], position[1]].sum().backward()
    return x.grad[0].abs().sum(0)


PLAIN = "plain masked convolutions"  # the designs receptive_fields measures
GATED = "gated, vertical + horizontal stacks (this book's)"


def receptive_fields(grid: int = 9, layers: int = 6, channels: int = 8, kernel: int = 3,
                     position: tuple[int, int] | None = None, seed: int = 0) -> dict:
    """The dependence maps of one output position for the plain stack and for the gated
    two-stack PixelCNN the book uses, both untrained (masks decide what is seen, not weights)."""
    position = position or (grid // 2 + 1, grid // 2)
    with seeded(seed):
        plain = PlainPixelCNN(channels, layers, kernel)
        gated = PixelCNN(PixelCNNConfig(codebook_size=4, grid_size=grid, channels=channels,
                                        layers=layers, kernel_size=kernel))
        maps = {PLAIN: dependence(plain, channels, grid, position),
                GATED: dependence(gated, channels, grid, position, gated.context(n=1))}
    return {"position": position, "grid": grid, "layers": layers, "kernel": kernel,
            "maps": maps}


LATER, SEEN, BLIND, BEYOND, OUTPUT = range(5)  # what field_kinds calls each position


def field_kinds(field: torch.Tensor, position: tuple[int, int]) -> torch.Tensor:
    """(G, G) map of what each position is to the output at ``position``, from its dependence
    map ``field``: LATER (must not be seen), SEEN, BLIND (an earlier position inside the field's
    outline, the smallest block of rows and columns holding every position it sees, that it
    does not see: a hole), BEYOND (an earlier position outside that outline, past the reach of
    a finite stack) or the OUTPUT itself."""
    g = field.shape[-1]
    i, j = position
    earlier = torch.arange(g * g).view(g, g) < i * g + j
    seen = earlier & (field != 0)
    kinds = torch.full((g, g), LATER, dtype=torch.long)
    kinds[earlier] = BEYOND
    rows, cols = seen.nonzero(as_tuple=True)
    if len(rows):  # the outline: rows from the highest seen to the output's, columns across
        outline = torch.zeros_like(earlier)  # every seen one
        outline[int(rows.min()):, int(cols.min()):int(cols.max()) + 1] = True
        kinds[earlier & outline] = BLIND
    kinds[seen] = SEEN
    kinds[i, j] = OUTPUT
    return kinds


def unseen(field: torch.Tensor, position: tuple[int, int]) -> dict[str, int]:
    """What the output at ``position`` sees of the ``earlier`` positions: how many it has
    ``seen``, how many are its ``blind`` spot and how many lie ``beyond`` its field
    (:func:`field_kinds`)."""
    kinds = field_kinds(field, position)
    counts = {name: int((kinds == kind).sum())
              for name, kind in (("seen", SEEN), ("blind", BLIND), ("beyond", BEYOND))}
    return {"earlier": sum(counts.values()), **counts}


def field_counts(fields: dict) -> dict[str, dict[str, int]]:
    """Per design of :func:`receptive_fields` (or :func:`prior_field`): :func:`unseen`'s
    counts."""
    return {name: unseen(m, fields["position"]) for name, m in fields["maps"].items()}


def prior_field(config: PixelCNNConfig, name: str | None = None, seed: int = 0) -> dict:
    """The dependence map of the last position of a prior's grid, which has every other
    position before it, through an untrained PixelCNN built from ``config`` (the masks, the
    kernel and the number of layers decide it, not the weights), in
    :func:`receptive_fields`' form."""
    g = config.grid_size
    with seeded(seed):
        prior = PixelCNN(config)
        labels = torch.zeros(1, dtype=torch.long) if config.num_classes else None
        cond = (torch.zeros(1, g, g, dtype=torch.long) if config.cond_codebook_size
                else None)
        name = name or f"{g}×{g} grid, {config.layers} layers"
        field = dependence(prior, config.channels, g, (g - 1, g - 1),
                           prior.context(labels, cond, n=1))
    return {"position": (g - 1, g - 1), "grid": g, "layers": config.layers,
            "kernel": config.kernel_size, "maps": {name: field}}


def prior_reach(config: PixelCNNConfig) -> dict[str, int]:
    """:func:`unseen`'s counts at the last position of a prior built from ``config``, with the
    prior's ``grid`` and ``layers``."""
    fields = prior_field(config)
    (field,) = fields["maps"].values()
    return {"grid": fields["grid"], "layers": fields["layers"],
            **unseen(field, fields["position"])}


def receptive_field_figure(*fields: dict, title: str | None = None):
    """Side by side: for each design (each map of each ``fields``), the positions the output
    sees, the earlier positions it misses inside its field (the blind spot) and beyond it, the
    later positions it must not see, and the output itself."""
    panels = [(f, name, m) for f in fields for name, m in f["maps"].items()]
    colors = ["#f0f0f0", "#3182bd", "#de2d26", "#fdd0a2", "#636363"]  # by kind
    labels = ["later (must not be seen)", "earlier, seen", "earlier, NOT seen: blind spot",
              "earlier, NOT seen: beyond the field", "the output position"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 5.2))
    for ax, (f, name, m) in zip(np.atleast_1d(axes), panels, strict=True):
        g = f["grid"]
        kind = field_kinds(m, f["position"])
        counts = unseen(m, f["position"])
        ax.imshow(kind.numpy(), cmap=ListedColormap(colors), vmin=0, vmax=4)
        ax.set_xticks(range(g))
        ax.set_yticks(range(g))
        ax.set_xticks(np.arange(-0.5, g), minor=True)
        ax.set_yticks(np.arange(-0.5, g), minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="both", length=0, labelsize=7)
        ax.set_title(f"{name}\nof {counts['earlier']} earlier: {counts['blind']} in the blind "
                     f"spot, {counts['beyond']} beyond the field", fontsize=9)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="#999") for c in colors]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    if title is None and len(fields) == 1:
        f = fields[0]
        title = (f"What output {f['position']} depends on: gradients through {f['layers']} "
                 f"layers of {f['kernel']}×{f['kernel']} masks, {f['grid']}×{f['grid']} grid")
    fig.suptitle(title or "What each output depends on (gradients)", fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    return fig


def masks_figure(kernel: int = 3):
    """The 0/1 masks: the plain design's A and B, and the gated design's vertical stack and
    horizontal stack (first layer, then the rest)."""
    masks = {"plain, A (first layer)": plain_mask(kernel, False),
             "plain, B (later layers)": plain_mask(kernel, True),
             "vertical stack (rows ≤ i, then shifted down one row)": vertical_mask(kernel),
             "horizontal stack, first layer": horizontal_mask(kernel, False),
             "horizontal stack, later layers": horizontal_mask(kernel, True)}
    fig, axes = plt.subplots(1, len(masks), figsize=(2.6 * len(masks), 2.9))
    for ax, (name, mask) in zip(axes, masks.items(), strict=True):
        ax.imshow(mask.numpy(), cmap=ListedColormap(["#f0f0f0", "#3182bd"]), vmin=0, vmax=1)
        h, w = mask.shape
        centre = (h // 2 if h > 1 else 0, w // 2)
        ax.add_patch(plt.Rectangle((centre[1] - 0.5, centre[0] - 0.5), 1, 1, fill=False,
                                   edgecolor="#de2d26", linewidth=2))
        for (r, c), v in np.ndenumerate(mask.numpy()):
            ax.text(c, r, int(v), ha="center", va="center", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(textwrap.fill(name, 26), fontsize=8)
    fig.suptitle(f"{kernel}×{kernel} masks (1: weight used, 0: zeroed; red: the position "
                 "being predicted)", fontsize=10)
    fig.tight_layout()
    return fig


def quantiser_demo(codes: int = 6, points: int = 60, seed: int = 0) -> dict:
    """The book's quantiser on 2-D vectors: which code each vector snaps to, the straight-through
    gradient (the decoder's gradient at the code arrives unchanged at the encoder output), and
    where one EMA update moves the codes (towards the mean of the vectors they won)."""
    with seeded(seed):
        quantiser = VectorQuantiserEMA(2, codes, decay=0.5, restart=False)
        z = torch.randn(1, 2, points, 1) * 1.2 + torch.tensor([0.5, 0.0]).view(1, 2, 1, 1)
        z.requires_grad_(True)
        before = quantiser.embed.clone()
        quantiser.train()
        out = quantiser(z)
        upstream = torch.randn_like(out.quantised)  # any gradient the decoder might send back
        out.quantised.backward(upstream)
    return {"z": z.detach()[0, :, :, 0].t(), "codes": out.codes.flatten(),
            "before": before, "after": quantiser.embed.clone(),
            "straight_through": bool(torch.equal(z.grad, upstream)), "decay": 0.5}


def quantiser_figure(demo: dict):
    """Left: vectors and the code each snaps to (the nearest); right: one EMA step of the
    codebook (arrows from each code's old to its new position)."""
    z, assigned, before, after = demo["z"], demo["codes"], demo["before"], demo["after"]
    palette = sns.color_palette("tab10", len(before))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True, sharey=True)
    for k, colour in enumerate(palette):
        mine = z[assigned == k]
        for p in mine:
            left.plot([p[0], before[k, 0]], [p[1], before[k, 1]], color=colour, lw=0.6,
                      alpha=0.6)
        left.scatter(mine[:, 0], mine[:, 1], s=14, color=colour)
        right.scatter(mine[:, 0], mine[:, 1], s=10, color=colour, alpha=0.35)
        right.annotate("", xy=tuple(after[k].tolist()), xytext=tuple(before[k].tolist()),
                       arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.5))
    for ax in (left, right):
        ax.scatter(before[:, 0], before[:, 1], marker="*", s=180, c=palette,
                   edgecolors="black", linewidths=0.8, label="code $e_k$ (before)", zorder=3)
        ax.set_xlabel("first dimension")
        ax.set_ylabel("second dimension")
    right.scatter(after[:, 0], after[:, 1], marker="P", s=90, c=palette, edgecolors="black",
                  linewidths=0.8, label="code after one EMA step", zorder=3)
    left.set_title("forward: each encoder output $z$ (dot) is replaced by its nearest code\n"
                   "backward: its gradient is the code's, copied straight through"
                   + (" (checked)" if demo["straight_through"] else ""), fontsize=9)
    right.set_title(f"EMA update (decay γ = {demo['decay']:g}, for a visible step): each code "
                    "moves\ntowards the mean of the vectors it won; a code that won none "
                    "stays", fontsize=9)
    left.legend(fontsize=8, loc="lower left")
    right.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"The quantiser on {len(z)} two-dimensional vectors and {len(before)} codes "
                 "(the book's VectorQuantiserEMA)", fontsize=10)
    fig.tight_layout()
    return fig
