"""The cached-table file: an experiment's result table as plain CSV, and the keys it is found by.

A table that takes minutes to compute (chapter 5's label-efficiency curve) is cached beside the
checkpoints (``Store.table``), keyed like them by a hash of everything that determines it: the
inputs' contents (:func:`fingerprint`), every parameter and the version of the code computing it
(``code_version(function, EXPERIMENTS)``).

The file is text and nothing read from it is executed (no pickle): a first line holds the key,
each column's name and dtype and a hash of the rest, which is the CSV. A file whose first line,
hash, columns or types are not what they should be is refused (:class:`TableError`). A table
is written only when its CSV reads back equal to it, floats bit for bit (NaN and ±inf
included), so a load always gives the table that was computed. Writes are atomic (a temporary
file, then a rename).
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .checkpoint import _atomic

HEADER = "# latent-notes table 1 "  # the first line: this, then JSON {key, columns, sha256}
DTYPES = ("int64", "float64", "bool", "str", "object")  # the column types a table may have
MISSING = ("float64", "str", "object")  # where an empty field is NaN


class TableError(ValueError):
    """A cached table file is unreadable, or a table cannot be stored as CSV."""


def fingerprint(array) -> dict:
    """What a key holds of an array: the sha256 of its bytes, its shape and its dtype."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise TableError("an array of Python objects has no fingerprint; give numbers")
    return {"sha256": hashlib.sha256(array.tobytes()).hexdigest(), "shape": list(array.shape),
            "dtype": str(array.dtype)}


def to_text(table: pd.DataFrame, key: str) -> str:
    """The file's text: the header line, then the table as CSV (floats in their shortest exact
    form, NaN as an empty field)."""
    body = table.to_csv(index=False, lineterminator="\n")
    columns = [[str(name), str(dtype)] for name, dtype in table.dtypes.items()]
    meta = {"key": key, "columns": columns, "sha256": hashlib.sha256(body.encode()).hexdigest()}
    return HEADER + json.dumps(meta, ensure_ascii=True) + "\n" + body


def from_text(text: str, key: str) -> pd.DataFrame:
    """The table in a file's text, checked: its key and hash, then its columns and dtypes."""
    head, _, body = text.partition("\n")
    if not head.startswith(HEADER):
        raise TableError("it is not a latent-notes table of this format")
    try:
        meta = json.loads(head.removeprefix(HEADER))
        columns = {str(name): str(dtype) for name, dtype in meta["columns"]}
        stored_key, digest = meta["key"], meta["sha256"]
    except (ValueError, KeyError, TypeError) as err:
        raise TableError(f"its first line is malformed ({type(err).__name__})") from None
    if stored_key != key:
        raise TableError("it holds another key than its name says")
    if digest != hashlib.sha256(body.encode()).hexdigest():
        raise TableError("its rows were changed or cut short since it was written")
    if len(columns) != len(meta["columns"]) or set(columns.values()) - set(DTYPES):
        raise TableError(f"its column names repeat or its types are not among {DTYPES}")
    try:
        table = pd.read_csv(io.StringIO(body), dtype=columns, keep_default_na=False,
                            na_values={c: [""] for c, t in columns.items() if t in MISSING})
    except Exception as err:  # whatever the parser says: the file is not what it claims
        raise TableError(f"its CSV does not parse as its header says ({err})") from None
    found = [[str(name), str(dtype)] for name, dtype in table.dtypes.items()]
    if found != [[name, dtype] for name, dtype in columns.items()]:
        raise TableError(f"its columns are {found}, not {list(columns.items())}")
    return table


def save_table(path: Path, table: pd.DataFrame, key: str) -> None:
    """Write ``table`` atomically, after checking that its CSV reads back equal to it."""
    try:
        text = to_text(table, key)
        pd.testing.assert_frame_equal(from_text(text, key), table, check_exact=True)
    except (ValueError, AssertionError) as err:  # TableError is a ValueError
        raise TableError(f"it does not survive a CSV round trip: {str(err).strip()[:200]}") \
            from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda tmp: tmp.write_bytes(text.encode()))  # no newline translation


def load_table(path: Path, key: str) -> pd.DataFrame:
    """The table stored at ``path``, checked (see :func:`from_text`)."""
    try:
        text = Path(path).read_bytes().decode()
    except (OSError, UnicodeDecodeError) as err:
        raise TableError(f"it cannot be read ({type(err).__name__}: {err})") from None
    return from_text(text, key)
