"""What every chapter does first: check its parameters, seed, pick a device, load the data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .checks import check_positive
from .data import ImageData, load_data
from .results import Results
from .training import pick_device, seed_everything, set_deterministic


@dataclass
class Chapter:
    """The context of one chapter run: data, device, results table, seed and cache folder."""

    name: str
    data: ImageData
    device: torch.device
    results: Results
    seed: int
    cache_dir: Path | None


def start_chapter(name: str, *, dataset: str, data_root, epochs: int, subset, seed: int,
                  device: str, results_dir, cache_dir=None, weights=None, image_size=None,
                  channels=None, deterministic: bool = False) -> Chapter:
    """Validate the shared parameters, choose the weights source, seed, load the data set."""
    from . import weights as weights_source

    check_positive(epochs=epochs)
    source = weights_source.configure(weights)
    if source:
        print(f"trained models missing from the cache are fetched from {source}")
    set_deterministic(deterministic)
    seed_everything(seed)
    chosen = pick_device(device)
    data = load_data(dataset, data_root=data_root, subset=subset, image_size=image_size,
                     channels=channels, seed=seed)
    results = Results(name, data.name, results_dir)
    return Chapter(name, data, chosen, results, seed, Path(cache_dir) if cache_dir else None)


def glue(name: str, value, display: bool = False):
    """Store a computed value for the text ({glue:text}`name`); a no-op without myst-nb (Colab)."""
    if hasattr(value, "item"):  # NumPy and torch scalars → Python numbers, so formats apply
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value


def download_link(table, filename: str):
    """A link that downloads ``table`` as a CSV file, with the data inside the page itself: it
    works in the rendered book, in Jupyter and in Colab, and writes no file anywhere."""
    import base64
    import html

    from IPython.display import HTML

    payload = base64.b64encode(table.to_csv(index=False).encode()).decode()
    name = html.escape(filename)
    return HTML(f'<a download="{name}" href="data:text/csv;base64,{payload}">'
                f'Download {name} ({len(table)} rows)</a>')
