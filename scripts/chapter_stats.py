"""How much of each chapter is prose, and how much bookkeeping a reader sees on its page.

    python scripts/chapter_stats.py [book/01_cnn_warmup.py ...]   # default: every chapter

Per chapter (read from its jupytext source, nothing is executed):

- **cells**: markdown and code cells of the notebook, all of them (a Colab reader sees every
  cell, including those the rendered page removes); **prose** is markdown / all cells, and
  **prose on page** the same without the cells tagged ``remove-cell``.
- **bookkeeping lines**: the source lines spanned by a call of ``glue``, ``record``,
  ``record_all``, ``<...results>.add``, a ``checks.check_*`` function or a chapter's
  ``*Parameters`` dataclass, and by an ``if`` whose body raises ``ParameterError`` (each line
  counted once, a call over three lines as three). **visible**
  counts those in code cells whose input the page shows: not tagged ``remove-cell``,
  ``remove-input``, ``hide-input`` or ``hide-cell``.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
CALLS = {"glue", "record", "record_all", "check_positive", "check_number", "check_numbers",
         "check_choice", "check_latent_sizes", "check_config"}


def _is_bookkeeping(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    if name in CALLS or "Parameters" in ast.unparse(func):  # XParameters(...), .of(...)
        return True
    return name == "add" and "results" in ast.unparse(func.value)


def _raises_parameter_error(node: ast.If) -> bool:
    return any(isinstance(n, ast.Raise) and "ParameterError" in ast.unparse(n)
               for n in ast.walk(node))


def bookkeeping_lines(source: str) -> set[int]:
    """Line numbers (1-based) of ``source`` that record, glue or check parameters."""
    lines: set[int] = set()
    # a notebook's shell escapes and magics are not Python; they are never bookkeeping
    text = "\n".join("" if line.lstrip().startswith(("!", "%")) else line
                     for line in source.splitlines())
    for node in ast.walk(ast.parse(text)):
        if ((isinstance(node, ast.Call) and _is_bookkeeping(node))
                or (isinstance(node, ast.If) and _raises_parameter_error(node))):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def chapter_stats(path: Path) -> dict:
    notebook = jupytext.read(path)
    cells = notebook.cells
    removed = [c for c in cells if "remove-cell" in c.metadata.get("tags", [])]
    prose = sum(c.cell_type == "markdown" for c in cells)
    total = visible = 0
    for cell in cells:
        if cell.cell_type != "code":
            continue
        count = len(bookkeeping_lines(cell.source))
        total += count
        if not HIDDEN & set(cell.metadata.get("tags", [])):
            visible += count
    return {"chapter": path.stem, "cells": len(cells), "markdown": prose,
            "prose": prose / len(cells), "prose on page": prose / (len(cells) - len(removed)),
            "bookkeeping lines": total, "visible": visible}


def main(paths) -> None:
    paths = [Path(p) for p in paths] or sorted((ROOT / "book").glob("[0-9]*.py"))
    print(f"{'chapter':<16} {'cells':>5} {'prose':>6} {'on page':>8} "
          f"{'bookkeeping':>11} {'visible':>7}")
    for path in paths:
        s = chapter_stats(path)
        print(f"{s['chapter']:<16} {s['cells']:>5} {s['prose']:>6.0%} {s['prose on page']:>8.0%} "
              f"{s['bookkeeping lines']:>11} {s['visible']:>7}")


if __name__ == "__main__":
    main(sys.argv[1:])
