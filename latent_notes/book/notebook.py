"""What every chapter does first (check its parameters, seed, pick a device, load the data), and
how it records a measured number for its results table and its text."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..checks import check_positive
from ..data import ImageData, load_data
from ..store.cache import Run, Store
from ..store.weights import Source, shown_location
from ..training import pick_device, resolve_precision, seed_everything, set_deterministic
from . import explorers
from .parameters import ChapterParameters
from .results import Results
from .runtimes import PROFILES

DEVICE_NAMES = {"cpu": "the CPU", "cuda": "a CUDA GPU", "mps": "an Apple GPU (MPS)"}


@dataclass
class Chapter:
    """The context of one chapter run: its data, results table, the run (seed, device, store)
    that every training call takes as one argument, and its own checked parameters."""

    name: str
    data: ImageData
    results: Results
    run: Run
    parameters: ChapterParameters | None = None

    @property
    def device(self) -> torch.device:
        return self.run.device

    @property
    def seed(self) -> int:
        return self.run.seed

    def record(self, model: str, metric: str, value, setting: str = "",
               glue: str | None = None) -> float:
        """Record a measured number in the results table and, given a ``glue`` name, glue it
        for the text ({glue:text}`NAME`); returns the number."""
        value = self.results.add(model, metric, value, setting)
        if glue:
            _glue(glue, value)
        return value

    def record_all(self, model: str, scores: dict, setting: str = "",
                   glue: str | None = None) -> dict:
        """Record several metrics of one model: ``scores`` is {metric: value}. ``glue`` names
        each glued value from a template, e.g. ``"{metric}_{model}"``; returns the numbers."""
        return {metric: self.record(model, metric, value, setting,
                                    glue and glue.format(model=model, metric=metric))
                for metric, value in scores.items()}


def start_chapter(name: str, *, dataset: str, data_root, epochs: int, subset, seed: int,
                  device: str, results_dir, cache_dir=None, weights=None, image_size=None,
                  channels=None, deterministic: bool = False, precision: str = "float32",
                  parameters: ChapterParameters | None = None,
                  label: str | None = None) -> Chapter:
    """Validate the shared parameters, choose the weights source, seed, load the data set.

    ``parameters`` are the chapter's own, already checked (``book.parameters``: a dataclass that
    checks itself when it is made); ``label`` is the results table's ``chapter`` column.
    """
    check_positive(epochs=epochs)
    source = Source.of(weights)
    if source:
        print(f"trained models missing from the cache are fetched from "
              f"{shown_location(source.location)}")
    set_deterministic(deterministic)
    seed_everything(seed)
    chosen = pick_device(device)
    resolve_precision(precision, chosen)  # an unknown precision is refused before any work
    data = load_data(dataset, data_root=data_root, subset=subset, image_size=image_size,
                     channels=channels, seed=seed)
    results = Results(name, data.name, results_dir, label=label)
    glue("page_run", page_run(data, seed, chosen, os.environ.get("LATENT_NOTES_PROFILE")))
    store = Store(cache_dir, source)
    explorers.use_cache(store.folder)  # outside the build, not the working directory
    return Chapter(name, data, results, Run(seed, chosen, store, precision), parameters)


def page_run(data: ImageData, seed: int, device, profile: str | None) -> str:
    """The page's first line: the data, profile and seed it was executed with ("This page
    was executed on ...")."""
    kind = torch.device(device).type
    how = (f"the {profile} profile" if profile in PROFILES
           else "parameters given by hand (no profile of the book's build)")
    return (f"{data.description}: {len(data.train):,} training, {len(data.val):,} validation "
            f"and {len(data.test):,} test images of {data.channels}×{data.image_size}×"
            f"{data.image_size}, with {how}, seed {seed}, on {DEVICE_NAMES.get(kind, kind)}")


def glue(name: str, value, display: bool = False) -> None:
    """Store a computed value for the text ({glue:text}`name`); a no-op without myst-nb (Colab).

    It returns nothing, so a glue on a cell's last line adds no output to the page.
    """
    if hasattr(value, "item"):  # NumPy and torch scalars → Python numbers, so formats apply
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


_glue = glue  # for Chapter's methods, whose ``glue`` argument is a name


def lead_figure(figure) -> None:
    """Make ``figure`` the page's lead figure: in the built book it is shown once, at the top
    of the page ({glue:figure}`lead_figure`, before the set-up cells), not where it was drawn;
    without myst-nb (Colab, Jupyter) it stays where it was drawn."""
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        return
    import matplotlib.pyplot as plt

    glue("lead_figure", figure, display=False)
    plt.close(figure)


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


def source_text(obj, between: tuple[str, str] | None = None) -> str:
    """The source of a function, method or class, as it is in the package; with ``between``
    (first, last), only the lines from the first containing ``first`` to the next containing
    ``last``, both kept (a marker that is not there raises: the page must not show stale
    code)."""
    import inspect
    import textwrap

    lines = textwrap.dedent(inspect.getsource(obj)).splitlines()
    if between is None:
        return "\n".join(lines)
    first, last = between
    try:
        start = next(i for i, line in enumerate(lines) if first in line)
        end = next(i for i in range(start, len(lines)) if last in lines[i])
    except StopIteration:
        raise ValueError(f"{obj.__qualname__} has no line with {first!r} followed by one with "
                         f"{last!r}: update the chapter's show_source call.") from None
    return "\n".join(textwrap.dedent("\n".join(lines[start:end + 1])).splitlines())


def show_source(*objects, between: tuple[str, str] | None = None):
    """The package's own code on the page, highlighted: what the reader reads is what ran.
    Each object is headed by a comment naming its module."""
    from IPython.display import Code

    parts = []
    for obj in objects:
        where = f"# {obj.__module__}.{obj.__qualname__}"
        parts.append(where + (" (excerpt)" if between else "") + "\n"
                     + source_text(obj, between))
    return Code("\n\n".join(parts), language="python")
