"""The table cache (Store.table, store/tables.py): a computed table is read back equal, under a
key that sees every input value, parameter and line of experiment code; a broken file is
computed again with one warning; a cache that cannot be written still gives the table."""
import errno
import inspect
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from latent_notes.experiments import efficiency
from latent_notes.store import cache, tables
from latent_notes.store.cache import Store, config_key


@pytest.fixture(scope="module")
def digits():
    """200 training and 100 test images of sklearn's 8x8 digits, pixels in [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return x[:200], y[:200], x[200:300], y[200:300]


def awkward_table() -> pd.DataFrame:
    """Every kind of value the CSV must give back exactly."""
    return pd.DataFrame({
        "model": ["pixels", 'a "quoted", comma', "line\nbreak", "ünïcode"],
        "value": [0.1 + 0.2, np.nan, -np.inf, 5e-324],
        "labels_per_class": [1.0, np.inf, 1 / 3, 1e300],
        "draws": [5, 1, 0, -2],
        "kept": [True, False, True, True],
    })


class Counted:
    """A compute function that counts its calls."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def __call__(self):
        self.calls += 1
        return self.table.copy()


def table_file(folder: Path) -> Path:
    (found,) = (folder / "tables").glob("*.csv")
    return found


# -- round trip --------------------------------------------------------------------------------

def test_a_cached_table_reads_back_equal_to_the_computed_one(tmp_path):
    compute = Counted(awkward_table())
    first = Store(tmp_path).table("awkward", {"a": 1}, compute)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = Store(tmp_path).table("awkward", {"a": 1}, compute)
    assert compute.calls == 1
    pd.testing.assert_frame_equal(first, awkward_table(), check_exact=True)
    pd.testing.assert_frame_equal(second, awkward_table(), check_exact=True)
    assert second["value"].tolist()[3] == 5e-324 and np.isneginf(second["value"][2])
    assert table_file(tmp_path).read_text().startswith(tables.HEADER)  # text, not pickle


def test_label_efficiency_with_a_store_is_computed_once_and_read_back_equal(
        tmp_path, digits, monkeypatch):
    x, y, x_test, y_test = digits
    settings = dict(labels_per_class=(1, None), repeats=2, spread_at=(1,), progress=False)
    store = Store(tmp_path)
    computed = efficiency.label_efficiency({"pixels": (x, x_test)}, y, y_test, store=store,
                                           **settings)
    assert np.isfinite(computed["labels_per_class"]).all()  # "all" sits at the mean class size

    def refuse(*args, **kwargs):
        raise AssertionError("a cached table was computed again")

    monkeypatch.setattr(efficiency, "_run_tasks", refuse)
    loaded = efficiency.label_efficiency({"pixels": (x, x_test)}, y, y_test, store=store,
                                         **settings)
    pd.testing.assert_frame_equal(loaded, computed, check_exact=True)
    with pytest.raises(AssertionError, match="computed again"):  # without a store: as before
        efficiency.label_efficiency({"pixels": (x, x_test)}, y, y_test, **settings)


def test_a_store_without_a_folder_computes_every_time(tmp_path):
    store = Store(tmp_path)
    store.folder = None
    compute = Counted(awkward_table())
    store.table("awkward", {"a": 1}, compute)
    store.table("awkward", {"a": 1}, compute)
    assert compute.calls == 2 and not list(tmp_path.iterdir())


# -- the key -----------------------------------------------------------------------------------

class KeySpy:
    """A store that records the key label_efficiency asks for and computes nothing."""

    def __init__(self):
        self.keys = []

    def table(self, name, key, compute):
        self.keys.append(key)
        return pd.DataFrame()


def key_of(inputs, y, y_test, **settings) -> dict:
    spy = KeySpy()
    efficiency.label_efficiency(inputs, y, y_test, store=spy, **settings)
    return spy.keys[0]


def test_every_input_value_label_and_parameter_is_in_the_key(digits):
    x, y, x_test, y_test = digits
    base = config_key(key_of({"pixels": (x, x_test)}, y, y_test))
    one_pixel = x.copy()
    one_pixel[17, 5] += 1e-6
    one_label = y_test.copy()
    one_label[3] = (one_label[3] + 1) % 10
    changed = [key_of({"pixels": (one_pixel, x_test)}, y, y_test),
               key_of({"pixels": (x, x_test)}, y, one_label),
               key_of({"codes": (x, x_test)}, y, y_test),
               key_of({"pixels": (x, x_test), "again": (x, x_test)}, y, y_test)]
    # every parameter of label_efficiency but the inputs, the progress bar and the store
    signature = inspect.signature(efficiency.label_efficiency).parameters
    other = {"labels_per_class": (1, 10), "repeats": 4, "repeats_large": 2, "large_from": 100,
             "spread_at": (), "spread_neighbors": 5, "cv_max": 100, "seed": 1}
    assert set(other) == set(signature) - {"inputs", "train_labels", "test_labels", "progress",
                                           "store"}
    changed += [key_of({"pixels": (x, x_test)}, y, y_test, **{name: value})
                for name, value in other.items()]
    keys = [config_key(key) for key in changed]
    assert base not in keys and len(set(keys)) == len(keys)
    # the codes as the probes see them (flat float32), or a quieter bar: the same table
    assert config_key(key_of({"pixels": (x.astype(np.float64).reshape(200, 8, 8), x_test)},
                             list(y), y_test, progress=False)) == base


@pytest.mark.parametrize("edited, recomputes", [("latent_notes.experiments.efficiency", True),
                                                ("latent_notes.experiments.probes", True),
                                                ("latent_notes.experiments.plots", False),
                                                ("latent_notes.models.vae", False)])
def test_editing_the_experiment_code_changes_the_key(edit_source, digits, edited,
                                                     recomputes):
    x, y, x_test, y_test = digits
    before = config_key(key_of({"pixels": (x, x_test)}, y, y_test))
    edit_source(edited)
    after = config_key(key_of({"pixels": (x, x_test)}, y, y_test))
    assert (after != before) == recomputes


# -- a broken file, a cache that cannot be written ---------------------------------------------

def cut_last_row(text):
    return text[:text.rstrip("\n").rfind("\n") + 1]


def header_says_int(text):  # a header whose types the rows do not have
    return text.replace('["value", "float64"]', '["value", "int64"]', 1)


@pytest.mark.parametrize("corrupt", [
    lambda text: text.replace("0.30000000000000004", "0.3"),  # one value changed
    cut_last_row,
    header_says_int,
    lambda text: text.replace('"key": "', '"key": "0', 1),  # another key's file
    lambda text: text.split("\n", 1)[1],  # no header: a bare CSV
    lambda text: b"\x00\xff garbage",  # not even text
], ids=["value", "cut", "dtype", "key", "bare", "garbage"])
def test_a_corrupted_table_is_computed_again_with_one_warning(tmp_path, corrupt):
    compute = Counted(awkward_table())
    Store(tmp_path).table("awkward", {"a": 1}, compute)
    path = table_file(tmp_path)
    broken = corrupt(path.read_text(encoding="utf-8"))
    path.write_bytes(broken if isinstance(broken, bytes) else broken.encode())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = Store(tmp_path).table("awkward", {"a": 1}, compute)
    assert len(caught) == 1 and "unusable" in str(caught[0].message)
    assert compute.calls == 2
    pd.testing.assert_frame_equal(again, awkward_table(), check_exact=True)
    pd.testing.assert_frame_equal(tables.load_table(path, path.stem.rsplit("-", 1)[1]),
                                  awkward_table(), check_exact=True)  # and written anew


WRITES = [(cache.os, "replace"), (cache.FileLock, "acquire"), (Path, "write_bytes"),
          (Path, "mkdir"), (Path, "unlink")]


def refuse_writes(monkeypatch, error, ways=WRITES):
    """As root, chmod stops no write: every way of writing is made to fail instead."""
    def refuse(*args, **kwargs):
        raise error

    for target, name in ways:
        monkeypatch.setattr(target, name, refuse)


def test_a_read_only_cache_that_holds_the_table_is_only_read(tmp_path, monkeypatch):
    compute = Counted(awkward_table())
    Store(tmp_path).table("awkward", {"a": 1}, compute)
    refuse_writes(monkeypatch, PermissionError(errno.EROFS, "Read-only file system"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        loaded = Store(tmp_path).table("awkward", {"a": 1}, compute)
    assert compute.calls == 1
    pd.testing.assert_frame_equal(loaded, awkward_table(), check_exact=True)


@pytest.mark.parametrize("error, ways, says", [
    (PermissionError(errno.EROFS, "Read-only file system"), WRITES, "Read-only file system"),
    (OSError(errno.ENOSPC, "No space left on device"), [(Path, "write_bytes")],
     "the disk is full")], ids=["read-only", "full"])
def test_a_table_that_cannot_be_written_is_returned_with_one_warning(tmp_path, monkeypatch,
                                                                      error, ways, says):
    refuse_writes(monkeypatch, error, ways)
    compute = Counted(awkward_table())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = Store(tmp_path / "cache").table("awkward", {"a": 1}, compute)
    assert len(caught) == 1 and says in str(caught[0].message)
    pd.testing.assert_frame_equal(table, awkward_table(), check_exact=True)
    monkeypatch.undo()
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob(".*.tmp"))


def test_a_table_csv_cannot_hold_exactly_is_returned_and_not_cached(tmp_path):
    compute = Counted(pd.DataFrame({"name": ["", "empty string"], "n": [1, 2]}))  # "" vs NaN
    with pytest.warns(UserWarning, match="could not be cached.*CSV round trip"):
        table = Store(tmp_path).table("odd", {"a": 1}, compute)
    assert table["name"].tolist() == ["", "empty string"]
    assert not list(tmp_path.rglob("*.csv"))
