"""Tidy results tables: one row per measured number, one CSV per chapter.

Columns: ``chapter, dataset, model, setting, metric, value``. A chapter's run replaces the rows
it wrote before for the same data set and keeps those of other data sets. The file is rewritten
atomically after every number, so a run that fails half-way keeps what it measured.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

COLUMNS = ["chapter", "dataset", "model", "setting", "metric", "value"]


class ResultsError(FileNotFoundError):
    """A results file the caller needs is missing or malformed."""


class Results:
    """The results table of one chapter run; ``add`` records and saves a number."""

    def __init__(self, chapter: str, dataset: str, results_dir="results", label: str | None = None):
        """``label`` is the ``chapter`` column's value (default: the chapter's file name)."""
        self.chapter, self.dataset = label or chapter, dataset
        self.path = Path(results_dir) / f"{chapter}.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = read_results(self.path) if self.path.exists() else pd.DataFrame(columns=COLUMNS)
        self._others = old[old["dataset"] != dataset]
        self._rows: dict[tuple, float] = {}

    def add(self, model: str, metric: str, value, setting: str = "") -> float:
        """Record one number (replacing an earlier value of the same model/setting/metric)."""
        self._rows[(model, setting, metric)] = float(value)
        self._save()
        return float(value)

    @property
    def frame(self) -> pd.DataFrame:
        rows = [(self.chapter, self.dataset, m, s, k, v) for (m, s, k), v in self._rows.items()]
        return pd.DataFrame(rows, columns=COLUMNS)

    def _save(self) -> None:
        table = self.frame if self._others.empty else pd.concat([self._others, self.frame])
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, self.path)


def read_results(path) -> pd.DataFrame:
    """Read one results CSV, checking its columns."""
    table = pd.read_csv(path, dtype={"setting": str}, keep_default_na=False,
                        na_values={"value": ["", "nan"]})
    if list(table.columns) != COLUMNS:
        raise ResultsError(f"{path} is not a results table: its columns are {list(table.columns)}, "
                           f"expected {COLUMNS}. Delete it and rerun its chapter.")
    return table


def gather(results_dir, chapters, strict: bool = True) -> pd.DataFrame:
    """All chapters' tables in one; a missing chapter is named with the command that makes it.

    ``strict=False`` warns about missing chapters and gathers the others.
    """
    missing = [c for c in chapters if not (Path(results_dir) / f"{c}.csv").exists()]
    if missing:
        message = (f"No results for chapter(s) {', '.join(missing)} in {results_dir}. Run them "
                   "first, e.g. `python -m latent_notes.book.build --chapters "
                   f"{' '.join(missing)}`, or pass the results_dir they wrote to.")
        if strict:
            raise ResultsError(message)
        warnings.warn(message, stacklevel=2)
    tables = [read_results(Path(results_dir) / f"{c}.csv") for c in chapters if c not in missing]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)


def select(table: pd.DataFrame, **match) -> pd.DataFrame:
    """The rows of a results table whose columns hold the given values, e.g.
    ``select(table, chapter="02_autoencoder", metric="test_mse")``."""
    unknown = set(match) - set(COLUMNS)
    if unknown:
        raise KeyError(f"results tables have no column {', '.join(sorted(unknown))}; "
                       f"their columns are {COLUMNS}")
    for column, value in match.items():
        table = table[table[column] == value]
    return table
