"""Chapter 4's code traversal: what one code of a VQ-VAE-2 grid controls.

Fix every code of an image's two grids but one position of one level, put each of that level's
K codes there in turn, and decode: one row of K images per position. Two measures read the
row against the unedited reconstruction: how local the change is (the share of the absolute
pixel change that falls inside the cell the position sits over) and, given a classifier, how
often the class it reads changes. A top code that changes the class and a bottom code whose
change stays in its cell is the division of labour the two levels are meant to learn
(Razavi et al. 2019, section 3.1); the numbers say whether a run learnt it.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.patches import Rectangle

from ..checks import ParameterError
from .compare import unit_effect
from .metrics import predict
from .plots import _to_hwc, mosaic, plain

LEVELS = ("top", "bottom")


def grid_size(config, level: str) -> int:
    """Positions per side of ``level``'s code grid."""
    if level not in LEVELS:
        raise ParameterError(f"level must be 'top' or 'bottom', got {level!r}.")
    return config.top_grid if level == "top" else config.bottom_grid


def code_box(config, position: tuple[int, int], level: str = "top") -> tuple[slice, slice]:
    """The pixels (rows, columns of the image) one code of ``level`` sits over: its cell of the
    padded image, less the padding."""
    cell = config.padded_size // grid_size(config, level)
    pad = (config.padded_size - config.image_size) // 2
    rows, cols = (slice(max(p * cell - pad, 0), min((p + 1) * cell - pad, config.image_size))
                  for p in position)
    return rows, cols


def inked_positions(config, image: torch.Tensor, level: str, n: int) -> list[tuple[int, int]]:
    """The ``n`` positions of ``level``'s grid whose cells hold the most ink of ``image``
    (C, H, W): where a digit is, so that a changed code has something to change."""
    side = grid_size(config, level)
    ink = image.sum(0)
    cells = [(row, col) for row in range(side) for col in range(side)]
    amount = [float(ink[code_box(config, cell, level)].sum()) for cell in cells]
    order = sorted(range(len(cells)), key=lambda i: (-amount[i], i))  # ties: raster order
    return [cells[i] for i in order[:n]]


@torch.no_grad()
def decoded(model, codes_top: torch.Tensor, codes_bottom: torch.Tensor) -> torch.Tensor:
    """One image's two code grids (no batch dimension) decoded as they are: (C, H, W) on the
    CPU, the unedited image a traversal is read against."""
    model.eval()
    return model.decode_code(codes_top[None], codes_bottom[None]).cpu()[0]


@torch.no_grad()
def every_code(model, codes_top: torch.Tensor, codes_bottom: torch.Tensor, level: str,
               position: tuple[int, int]) -> torch.Tensor:
    """One image's grids decoded once per code of ``level``'s codebook put at ``position``,
    the rest of both grids fixed: (K, C, H, W) on the CPU, row k decoded with code k."""
    size = (model.config.codebook_size_top if level == "top"
            else model.config.codebook_size_bottom)
    return model.edit_code(codes_top, codes_bottom, level, position, torch.arange(size))


def traversal_effects(row: torch.Tensor, reference: torch.Tensor, box, judge=None,
                      device="cpu") -> dict[str, float]:
    """How a row of K decoded images differs from the unedited ``reference`` (C, H, W):
    ``mean_change`` (mean absolute pixel change over the row, per pixel and channel),
    ``share_inside`` (the share of the change inside ``box``), ``area`` (the box's share of
    the image) and, given a ``judge`` classifier, ``class_changed`` (the share of the K images
    it reads as another class than the reference) and ``classes_reached``."""
    height, width = row.shape[-2:]
    box_area = (box[0].stop - box[0].start) * (box[1].stop - box[1].start)
    effects = {**unit_effect(row, reference, box), "area": box_area / (height * width)}
    if judge is not None:
        read = predict(judge, torch.cat([reference[None], row]), device).argmax(1)
        effects["class_changed"] = float((read[1:] != read[0]).mean())
        effects["classes_reached"] = len(np.unique(read[1:]))
    return effects


def code_traversal(model, images: torch.Tensor, codes, which, positions: int, device,
                   judge=None) -> pd.DataFrame:
    """The traversal of ``positions`` inked positions per level of the images ``which``
    (indices) of ``images`` (N, C, H, W), whose code grids are ``codes`` (``.top``,
    ``.bottom``, N first): one row per image, level and position with
    :func:`traversal_effects`' measures."""
    model.eval()
    rows = []
    for index in which:
        top, bottom = codes.top[index].to(device), codes.bottom[index].to(device)
        reference = decoded(model, top, bottom)
        for level in LEVELS:
            for position in inked_positions(model.config, images[index], level, positions):
                row = every_code(model, top, bottom, level, position)
                box = code_box(model.config, position, level)
                effects = traversal_effects(row, reference, box, judge, device)
                rows.append({"image": index, "level": level, "position": position, **effects})
    return pd.DataFrame(rows)


def traversal_sentence(summary: pd.DataFrame, grids: dict[str, int]) -> str:
    """What a top code and a bottom code each control, read from ``summary`` (indexed by level,
    the means of :func:`code_traversal`'s columns) and ``grids`` {level: cell side in pixels}."""
    parts = []
    for level in LEVELS:
        row = summary.loc[level]
        where = (f"{row.share_inside:.0%} of the change it makes falls inside its "
                 f"{grids[level]}×{grids[level]}-pixel cell ({row.area:.0%} of the image)")
        if "class_changed" in summary:
            where += (f", and the judge reads another class for {row.class_changed:.0%} of "
                      "its codes")
        parts.append(f"for a {level} code {where}")
    text = "Averaged over the positions and digits measured, " + "; ".join(parts) + "."
    text += (f" On average a top code moves each pixel by {summary.loc['top', 'mean_change']:.4f}"
             f" and a bottom code by {summary.loc['bottom', 'mean_change']:.4f}.")
    if "class_changed" in summary:
        top, bottom = summary.loc["top", "class_changed"], summary.loc["bottom", "class_changed"]
        if max(top, bottom) < 0.01:
            text += (" No single code, top or bottom, makes the judge read another class: on "
                     "this run one position is too small a part of the digit to change it.")
        elif top >= 2 * bottom and top >= 0.1:
            text += (" A top code can change which digit the image shows; a bottom code mostly "
                     "redraws a piece of stroke where it sits.")
        elif top > bottom:
            text += (" Top codes change the class more often than bottom codes, but not by "
                     "much on this run: the levels have only partly split shape from detail.")
        else:
            text += (" On this run the bottom codes change the class as often as the top "
                     "ones: the levels have not split shape from detail.")
    concentrated = summary["share_inside"] / summary["area"]
    if (concentrated > 2).all():
        text += (" Both levels act mostly where they sit: the change inside a cell is "
                 f"{concentrated['top']:.0f} (top) and {concentrated['bottom']:.0f} (bottom) "
                 "times as dense as it would be spread evenly.")
    return text


def traversal_figure(rows: dict, per_line: int, title: str, originals: dict | None = None):
    """One panel per traversal: ``rows`` {label: (K, C, H, W) images, code k in place k},
    wrapped ``per_line`` to a line; ``originals`` {label: the unedited code}, outlined red."""
    heights = [int(np.ceil(len(images) / per_line)) for images in rows.values()]
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 0.34 * sum(heights) + 0.45 * len(rows)
                                                    + 0.6),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items(), strict=True):
        side = images.shape[-1] + 2  # a padding of 2 on each thumbnail
        grey = images.shape[1] == 1  # grey digits are ink on paper, as image_grid's
        tiled = mosaic(images.clamp(0, 1), per_line, padding=2, pad_value=0.0 if grey else 1.0)
        ax.imshow(_to_hwc(tiled), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        if originals and label in originals:
            k = int(originals[label])
            ax.add_patch(Rectangle(((k % per_line) * side + 1, (k // per_line) * side + 1),
                                   side - 1, side - 1, fill=False, edgecolor="red", lw=1.5))
        ax.set_title(f"{label}: codes 0 to {len(images) - 1}, left to right", fontsize=9,
                     loc="left")
        ax.set_xticks([]), ax.set_yticks([])
        ax.grid(False)
    fig.suptitle(plain(title))  # a class or folder name is not maths
    fig.tight_layout()
    return fig


def change_maps(rows: dict, reference: torch.Tensor, boxes: dict, title: str):
    """Where each traversal acts: the mean absolute pixel change of its K images from the
    unedited ``reference`` (C, H, W), one heat map per traversal, the code's cell (``boxes``
    {label: (rows, columns)}) outlined."""
    fig, axes = plt.subplots(1, len(rows), figsize=(2.0 * len(rows) + 1.0, 2.6), squeeze=False)
    for ax, (label, images) in zip(axes[0], rows.items(), strict=True):
        change = (images - reference).abs().mean((0, 1)).numpy()
        shown = ax.imshow(change, cmap="magma", vmin=0, interpolation="nearest")
        box_rows, box_cols = boxes[label]
        ax.add_patch(Rectangle((box_cols.start - 0.5, box_rows.start - 0.5),
                               box_cols.stop - box_cols.start, box_rows.stop - box_rows.start,
                               fill=False, edgecolor="cyan", lw=1.5))
        ax.set_title(label, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        ax.grid(False)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04).set_label(
            "mean |pixel change|", fontsize=8)
    fig.suptitle(plain(title))  # a class or folder name is not maths
    fig.tight_layout()
    return fig
