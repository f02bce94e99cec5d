"""The checkpoint cache: train a model once, load it every time after.

A checkpoint is keyed by a hash of everything that determines its weights: the model config,
the training config, the data spec (with a fingerprint of the pixels), the seed, and a hash of
the model-defining code in ``latent_notes.models`` (so a changed model is never loaded from an
old file, and a changed plot never retrains one). The config travels inside the checkpoint and
the model is rebuilt from it, so no architecture number is written twice.

Nothing read from a file is trusted: a checkpoint is rebuilt only through the package's own
table of builders (``latent_notes.store.checkpoint``, the file format), and only once its config
is the one its name says, every size in it is bounded and every tensor finite; a corrupt,
mismatched, oversized, non-finite or unknown file is moved aside and the model trained again; a
stable name (an alias) gives only the family and sizes it names; file names are plain and of
bounded length (long names are shortened with a hash).

Nothing computed is lost: the folder is checked to be writable *before* a model is trained; a
run writes its training state after every epoch and a killed run resumes from it; a save that
fails after training (a full disk) keeps the model in memory with one warning; writes are
atomic (a temporary file, then a rename); a model whose weights are not finite is never saved.
A lock per entry lets two builds share a cache (the second waits, then loads). A read-only cache
that holds the model is only read.

A cache folder shared by several machines (a network drive, Colab's Drive, a CI volume) is
safe to read and to add models to: every write is a temporary file named by its process and
machine (``.NAME.PID@HOST.tmp``), then a rename, so no machine sees another's half-written
file. A temporary file is deleted only when its writer is known dead (a process of *this*
machine that no longer runs) or it is older than :data:`STALE_AFTER` (hours); another
machine's fresh file is left alone. What is not guaranteed there: the entry locks are advisory
files, which some network file systems do not share between machines, so two machines that
train the *same* model at the same moment may both train it (the last rename wins; both files
are whole).

Experiment tables that take minutes to compute are kept in the same folder (``Store.table``:
plain CSV, keyed by a hash of their inputs, parameters and code; ``latent_notes.store.tables``).

Every train or load is appended as one JSON line to ``$LATENT_NOTES_EVENTS`` when that is set:
the book's build report reads it to say what was trained and how fast.
"""
from __future__ import annotations

import contextlib
import errno
import filecmp
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock, Timeout

from ..training import (
    HOST,
    TrainingDiverged,
    TrainingState,
    as_device,
    machine,
    nonfinite_weights,
    seed_everything,
    temporary_path,
)
from .checkpoint import (  # noqa: F401  (re-exported: the cache's readers need the format too)
    BUILDERS,
    CheckpointError,
    Trained,
    _atomic,
    _model_modules,
    builder_name,
    code_version,
    config_key,
    load_checkpoint,
    rebuild,
    save_checkpoint,
)
from .tables import TableError, load_table, save_table
from .weights import Source

MAX_NAME_BYTES = 120  # a file name's stem: far below the 255 bytes file systems allow
STALE_AFTER = 6 * 3600  # seconds: a temporary file this old is dead, whoever wrote it
PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class CacheError(RuntimeError):
    """The checkpoint cache folder cannot be used; the message names it and the way out."""


def default_cache_dir() -> Path:
    """``$LATENT_NOTES_CACHE`` if set, else ``~/.cache/latent-notes``."""
    return Path(os.environ.get("LATENT_NOTES_CACHE") or Path.home() / ".cache" / "latent-notes")


def bounded(stem: str) -> str:
    """A file-name stem of at most MAX_NAME_BYTES ASCII bytes: a long or non-ASCII stem keeps
    a readable ASCII head and ends in a hash of the whole (distinct stems stay distinct)."""
    if stem.isascii() and len(stem) <= MAX_NAME_BYTES and PLAIN_NAME.fullmatch(stem):
        return stem
    head = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in stem)
    digest = hashlib.sha256(stem.encode()).hexdigest()[:16]
    return f"{head.lstrip('.')[:MAX_NAME_BYTES - 17]}-{digest}"


def _log_event(**event) -> None:
    target = os.environ.get("LATENT_NOTES_EVENTS")
    if target:
        with open(target, "a") as f:
            f.write(json.dumps(event) + "\n")


def entry_path(cache: Path, name: str, config: dict, build) -> Path:
    """The cache file of a model: its name, config key and code version, bounded in length."""
    return Path(cache) / f"{bounded(f'{name}-{config_key(config)}-{code_version(build)}')}.pt"


def _load_cached(path: Path, key: str, device, build) -> Trained:
    """The checkpoint at ``path``, checked to hold the config its name says before its model
    is built."""
    def same_key(builder, config):
        return (None if config_key(config) == key
                else "it holds a different config than its name says")

    return load_checkpoint(path, device, build, checks=(same_key,))


# -- the folder: writable before training, no stale files, one writer per entry -------------

def require_writable(cache: Path) -> None:
    """Create ``cache`` and write a file there, or raise CacheError *before* any training."""
    cache = Path(cache)
    probe = temporary_path(cache / "probe")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise CacheError(
            f"The checkpoint cache {cache} cannot be used ({type(err).__name__}: "
            f"{err.strerror or err}), so a model trained now could not be kept and nothing was "
            f"trained. Make that folder writable (and its parents, which must be folders), or "
            f"point the book at another one: set the environment variable LATENT_NOTES_CACHE "
            f"(or the build's --cache-dir, or a chapter's cache_dir parameter).") from None
    remove_stale(cache)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours
        return True
    return True


def _age(path: Path, now: float) -> float:
    """Seconds since ``path`` (or, for a folder, anything directly in it) last changed."""
    times = [path.stat().st_mtime]
    if path.is_dir():
        times += [p.stat().st_mtime for p in path.iterdir()]
    return now - max(times)


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether a temporary file ``.NAME.PID@HOST.tmp`` is dead: written by a process of this
    machine that no longer runs, or older than STALE_AFTER. A file of another machine (or of a
    version that did not name its machine) is never judged by a process id looked up here."""
    writer = path.name.rsplit(".", 2)[-2] if path.name.count(".") >= 2 else ""
    pid, _, host = writer.partition("@")
    if (host == HOST and pid.isdigit() and int(pid) != os.getpid()
            and not _alive(int(pid))):
        return True
    try:
        return _age(path, time.time() if now is None else now) > STALE_AFTER
    except OSError:  # gone already, or being removed by someone else
        return False


def remove_stale(cache: Path) -> list[Path]:
    """Delete the temporary files (``.NAME.PID@HOST.tmp``) that :func:`is_stale` says are dead;
    safe on a folder that several machines share."""
    removed = []
    for path in Path(cache).glob(".*.tmp"):
        if is_stale(path):
            with contextlib.suppress(OSError):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    return removed


@contextlib.contextmanager
def entry_lock(path: Path):
    """Hold the lock of one cache entry: a second build on the same cache waits, then loads
    what the first saved. A folder where no lock can be made (read-only) is only read."""
    try:  # the lock files live in <cache>/.locks (empty files, as the Hugging Face cache does)
        (path.parent / ".locks").mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path.parent / ".locks" / f"{path.stem}.lock"))
        lock.acquire(timeout=2)
    except Timeout:
        print(f"waiting for another process that holds {path.name} ...", flush=True)
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _quarantine(path: Path, name: str, err: Exception) -> None:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    try:
        os.replace(path, aside)
        where = f"was moved to {aside}"
    except OSError:
        where = "could not be moved aside (the cache is read-only) and is ignored"
    warnings.warn(f"Cached checkpoint for {name!r} was unusable and {where}; training again. "
                  f"({err})", stacklevel=3)


# -- the store: load, fetch or train ---------------------------------------------------------

class Store:
    """The checkpoint cache in ``folder`` and, when the cache misses, a weights ``source``.

    Every model of the book goes through :meth:`load_or_train`: load the checkpoint for a
    config, else fetch it from the source, else build, train and save it. Stable names
    (aliases) let a later chapter find a model without knowing its config: :meth:`load_alias`.
    """

    def __init__(self, folder=None, source=None):
        self.folder = Path(folder) if folder else default_cache_dir()
        self.source = source  # a weights.Source, or None: train what the cache lacks
        self._writable = False  # checked (and swept) once

    def __repr__(self) -> str:
        return f"Store({str(self.folder)!r}, {self.source!r})"

    def require_writable(self) -> None:
        """Create the folder and write a file there, or raise CacheError before any training."""
        if not self._writable:
            require_writable(self.folder)
            self._writable = True

    def entry_path(self, name: str, config: dict, build) -> Path:
        return entry_path(self.folder, name, config, build)

    def _fetch(self, file: str, target: Path, alias: str | None = None) -> str | None:
        return self.source.fetch(file, target, alias) if self.source is not None else None

    def load_or_train(self, name: str, config: dict, build, train, *, device,
                      alias: str | None = None) -> Trained:
        """Load the checkpoint for ``config``, else fetch it from the source, else train it.

        ``build(config) -> model`` must be one of :data:`BUILDERS` and read every architecture
        number from ``config``. ``train(model, state) -> history`` trains in place, passing the
        :class:`~latent_notes.training.TrainingState` on to ``fit`` so that a killed run
        resumes, and returns the per-epoch table. The seed is ``config["seed"]``: seeding
        happens before the model is built. ``alias`` also stores a copy under a stable name.
        """
        builder_name(build)  # refuse an unregistered builder before anything is trained
        key = config_key(config)
        path = self.entry_path(name, config, build)
        with entry_lock(path):
            status = "trained"
            if path.exists():  # 1. the cache
                try:
                    return self._found(_load_cached(path, key, device, build), "loaded", alias)
                except CheckpointError as err:
                    _quarantine(path, name, err)
                    status = "retrained"
            self.require_writable()  # before anything is downloaded or trained
            if self._fetch(path.name, path):  # 2. the weights source
                try:
                    return self._found(_load_cached(path, key, device, build), "downloaded",
                                       alias)
                except CheckpointError as err:
                    _quarantine(path, name, err)
            return self._train_and_save(name, config, build, train, device, path, status,
                                        alias)  # 3. here

    def _found(self, result: Trained, status: str, alias) -> Trained:
        result.status = status
        _log_event(name=result.name, key=config_key(result.config), status=status, seconds=0.0,
                   images_per_s=None, file=result.path.name, aliases=[alias] if alias else [],
                   trained_on=result.trained_on)
        if alias:
            self.store_alias(result.path, alias)
        return result

    def _train_and_save(self, name, config, build, train, device, path: Path, status,
                        alias) -> Trained:
        seed_everything(int(config.get("seed", 0)))
        model = build(config).to(device)
        state = TrainingState(path.with_name(f"{path.stem}.state.pt"), config_key(config))
        start = time.perf_counter()
        history = train(model, state)
        seconds = time.perf_counter() - start
        bad = nonfinite_weights(model)  # fit checks every epoch; a step after it may not
        if bad:
            state.remove()
            raise TrainingDiverged(
                f"Training {name} ended with weights that hold NaN or infinite numbers "
                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}), so nothing was cached. "
                "A step after the training loop (the autoencoder's fitted Gaussian, a custom "
                "train function) made them so: lower the learning rate, or check that step.")
        trained_on = machine(device)
        saved = _save_or_keep(path, model, config, build, history, name, trained_on)
        if saved:
            state.remove()
        speed = float(history["images_per_s"].mean()) if "images_per_s" in history else None
        _log_event(name=name, key=config_key(config),
                   status=status if saved else f"{status}, not saved",
                   seconds=round(seconds, 2), images_per_s=speed,
                   file=path.name if saved else None, aliases=[alias] if alias and saved else [],
                   resumed_from=state.resumed_from, state_seconds=round(state.seconds, 3),
                   trained_on=trained_on)
        if alias and saved:
            self.store_alias(path, alias)
        model.eval()
        return Trained(model, history, status, path, json.loads(json.dumps(config, default=str)),
                       name, builder_name(build), trained_on)

    def table(self, name: str, key: dict, compute) -> pd.DataFrame:
        """The table ``compute()`` returns, computed once per ``key`` and read from
        ``<folder>/tables/`` after that (the file format: ``latent_notes.store.tables``).

        ``key`` must hold everything that determines the table: the inputs' fingerprints,
        every parameter, the computing code's version. An unusable file is computed again
        (one warning); a table that cannot be written (a read-only cache, a full disk) is
        returned all the same (one warning) and computed again next time.
        """
        if self.folder is None:  # a store without a folder caches nothing
            return compute()
        digest = config_key(key)
        path = self.folder / "tables" / f"{bounded(f'{name}-{digest}')}.csv"
        with entry_lock(path):
            if path.exists():
                try:
                    return load_table(path, digest)
                except TableError as err:
                    warnings.warn(f"The cached table {path} is unusable ({err}); computing it "
                                  "again.", stacklevel=2)
            table = compute()
            remove_stale(path.parent)
            try:
                save_table(path, table, digest)
            except (OSError, TableError) as err:
                full = " (the disk is full)" if getattr(err, "errno", None) == errno.ENOSPC else ""
                warnings.warn(f"The table {name!r} could not be cached in {path}{full}: "
                              f"{type(err).__name__}: {getattr(err, 'strerror', None) or err}. "
                              "It is computed again next time.", stacklevel=2)
            return table

    def load_alias(self, alias: str, device, *checks) -> Trained | None:
        """The model stored under ``alias``, or None when there is none, or (with one warning)
        when it is unusable or one of ``checks`` complains: each is called with the file's
        builder name and config *before* the model is built, and returns a complaint or None
        (``same_data``; ``latent_notes.families`` checks the family and its sizes). Its
        ``path`` is the original cache entry when that still exists, so that models keyed on
        it (a prior trained on its codes) are found again."""
        path = self.folder / f"{bounded(alias)}.pt"
        downloaded = False
        if not path.exists():
            try:
                self.require_writable()
            except CacheError:
                return None  # nothing to load, nowhere to download to: the caller trains
            fetched = self._fetch(path.name, path, alias=alias)
            if not fetched:
                return None
            self.store_alias(self.folder / fetched, alias)
            downloaded = True
        try:
            found = load_checkpoint(path, device, checks=tuple(map(_tolerant, checks)))
        except CheckpointError as err:
            warnings.warn(f"Ignoring the model stored as {alias!r}; one is trained here instead. "
                          f"{err}", stacklevel=2)
            return None
        original = self.entry_path(found.name, found.config, BUILDERS[found.builder])
        if original.exists():
            found.path = original
        _log_event(name=found.name, key=config_key(found.config),
                   status=f"{'downloaded' if downloaded else 'loaded'} as {alias}", seconds=0.0,
                   images_per_s=None, file=found.path.name if found.path != path else None,
                   aliases=[alias])
        return found

    def store_alias(self, path: Path, alias: str) -> Path | None:
        """Copy a checkpoint to ``<folder>/<alias>.pt`` (atomically): a stable name for later.

        An identical copy is left alone (a read-only cache is never written on a hit); a copy
        that fails costs one warning, never the model. Returns the alias file, or None.
        """
        target = self.folder / f"{bounded(alias)}.pt"
        if target.exists() and filecmp.cmp(path, target, shallow=False):
            return target
        try:
            _atomic(target, lambda tmp: shutil.copyfile(path, tmp))
        except OSError as err:
            warnings.warn(f"Could not store {Path(path).name} under the name {alias!r} in "
                          f"{self.folder} ({err.strerror or err}); later chapters will look for "
                          "it by its key.", stacklevel=3)
            return None
        return target


def _save_or_keep(path: Path, model, config, build, history, name, trained_on) -> bool:
    """Save the trained model; when the disk refuses (full, read-only), keep it in memory."""
    try:
        save_checkpoint(path, model, config, build, history, name, trained_on)
        return True
    except OSError as err:
        full = " (the disk is full)" if err.errno == errno.ENOSPC else ""
        warnings.warn(f"The trained model {name!r} could not be saved to {path}{full}: "
                      f"{type(err).__name__}: {err.strerror or err}. It stays in memory for the "
                      f"rest of this chapter and will be trained again next time; free space, or "
                      f"set LATENT_NOTES_CACHE to another folder.", stacklevel=4)
        return False


def alias_name(*parts) -> str:
    """A file-safe stable cache name, e.g. alias_name("vae", "folder:/x", "latent16"): ASCII,
    and of bounded length however long or non-ASCII a folder's path is."""
    return bounded("-".join("".join(ch if ch.isascii() and (ch.isalnum() or ch in ".-") else "_"
                                    for ch in str(p)) for p in parts))


def same_data(data_spec: dict):
    """A check for load_alias: the model was trained on exactly these images."""
    def check(builder: str, config: dict) -> str | None:
        fingerprint = config["data"]["fingerprint"]
        if fingerprint == data_spec.get("fingerprint"):
            return None
        return (f"it was trained on other images (data fingerprint {str(fingerprint)[:20]!r}, "
                f"not {str(data_spec.get('fingerprint'))[:20]!r})")
    return check


def _tolerant(check):
    """``check``, with a config it cannot even read (a field missing, another type) taken as a
    complaint rather than an error."""
    def tolerant(builder: str, config) -> str | None:
        try:
            return check(builder, config)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            return f"its config lacks what this name needs ({type(err).__name__}: {err})"
    return tolerant


@dataclass(frozen=True)
class Run:
    """What every training call needs, passed as one argument: the seed, the device, the
    store (cache and weights source) and the precision of the training steps (``float32``,
    ``bfloat16`` or ``auto``: ``latent_notes.training.resolve_precision``). ``start_chapter``
    makes one per chapter."""

    seed: int
    device: torch.device
    store: Store
    precision: str = "float32"

    @classmethod
    def here(cls, seed: int = 0, device="cpu", cache_dir=None, weights="off",
             precision: str = "float32") -> "Run":
        """A run outside a chapter (tests, scripts): the CPU by default and no weights source."""
        return cls(seed, as_device(device), Store(cache_dir, Source.of(weights)), precision)
