"""The checkpoint cache: train a model once, load it every time after.

A checkpoint is keyed by a hash of everything that determines its weights: the model config,
the training config, the data spec (with a fingerprint of the pixels), the seed, and a hash of
the model-defining code in ``latent_notes.models`` (so a changed model is never loaded from an
old file, and a changed plot never retrains one). The config
travels inside the checkpoint and the model is rebuilt from it, so no architecture number is
written twice. Writes are atomic (write a temporary file, then rename), loads use
``weights_only=True``, and a corrupt or mismatched file is moved aside and the model retrained.

Every train or load is appended as one JSON line to ``$LATENT_NOTES_EVENTS`` when that is set:
the book's build report reads it to say what was trained and how fast.
"""
from __future__ import annotations

import datetime
import hashlib
import importlib
import inspect
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .training import seed_everything

FORMAT_VERSION = 1
MODELS = "latent_notes.models"


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable or does not hold what it should."""


@dataclass
class Trained:
    """What :func:`load_or_train` hands back."""

    model: torch.nn.Module
    history: pd.DataFrame
    status: str  # "trained", "loaded", "downloaded" or "retrained" (the cached file was corrupt)
    path: Path
    config: dict
    name: str = ""
    builder: str = ""


def default_cache_dir() -> Path:
    """``$LATENT_NOTES_CACHE`` if set, else ``~/.cache/latent-notes``."""
    return Path(os.environ.get("LATENT_NOTES_CACHE") or Path.home() / ".cache" / "latent-notes")


def config_key(config: dict) -> str:
    """A stable 16-hex-digit hash of a JSON-able config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _model_modules(module, seen: set) -> list:
    """``module`` and the ``latent_notes.models`` modules it imports from, recursively."""
    if module.__name__ in seen:
        return []
    seen.add(module.__name__)
    found = [module]
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.startswith(MODELS) and name != module.__name__:
            found += _model_modules(importlib.import_module(name), seen)
    return found


def code_version(build) -> str:
    """A hash of the model-defining code of ``build``: its module and the model modules it
    imports (blocks, quantiser), nothing else. Editing a model retrains it; editing a plot,
    a chapter or the training loop's bookkeeping does not."""
    module = inspect.getmodule(build)
    if module is None:
        return "none"
    h = hashlib.sha256()
    for m in sorted(_model_modules(module, set()), key=lambda m: m.__name__):
        h.update(Path(inspect.getsourcefile(m)).read_bytes())
    return h.hexdigest()[:8]


def _builder_name(build) -> str:
    return f"{build.__module__}:{build.__qualname__}"


def _import_builder(name: str):
    module, _, attr = name.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _plain(history: pd.DataFrame) -> dict:
    """A history table as a dict of lists of Python numbers (safe under weights_only)."""
    return {col: [v.item() if hasattr(v, "item") else v for v in history[col]] for col in history}


def save_checkpoint(path: Path, model, config: dict, build, history: pd.DataFrame, name: str):
    """Write atomically: a reader never sees a half-written file, even after a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION, "name": name, "key": config_key(config),
        "config": json.loads(json.dumps(config, default=str)), "builder": _builder_name(build),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": _plain(history), "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path, device="cpu", build=None) -> Trained:
    """Rebuild the model from the config stored in the checkpoint and load its weights."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
            raise CheckpointError("not a latent-notes checkpoint of this format")
        build = build or _import_builder(payload["builder"])
        model = build(payload["config"])
        model.load_state_dict(payload["state_dict"])
    except Exception as err:
        raise CheckpointError(f"{path} is unreadable or incomplete ({type(err).__name__}: {err}). "
                              "Delete it (or let load_or_train move it aside) and train again.") from err
    model.to(device).eval()
    return Trained(model, pd.DataFrame(payload["history"]), "loaded", path, payload["config"],
                   payload.get("name", ""), payload["builder"])


def _log_event(**event) -> None:
    target = os.environ.get("LATENT_NOTES_EVENTS")
    if target:
        with open(target, "a") as f:
            f.write(json.dumps(event) + "\n")


def _load_cached(path: Path, key: str, device, build) -> Trained:
    """The checkpoint at ``path``, checked to hold the config its name says."""
    result = load_checkpoint(path, device, build)
    if config_key(result.config) != key:
        raise CheckpointError(f"{path} holds a different config than its name says")
    return result


def load_or_train(name: str, config: dict, build, train, *, device, cache_dir=None,
                  alias: str | None = None) -> Trained:
    """Load the checkpoint for ``config``, else fetch it from the weights source, else build,
    train and save it.

    ``build(config) -> model`` must read every architecture number from ``config``.
    ``train(model) -> history`` trains in place and returns the per-epoch table.
    The seed is ``config["seed"]``: seeding happens before the model is built.
    ``alias`` also stores a copy under a stable name (``<alias>.pt``) for later chapters.
    """
    from . import weights

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    key = config_key(config)
    path = cache / f"{name}-{key}-{code_version(build)}.pt"
    status = "trained"
    found = "loaded" if path.exists() else "downloaded" if weights.fetch(path.name, path) else None
    if found:
        try:
            result = _load_cached(path, key, device, build)
            result.status = found
            _log_event(name=name, key=key, status=found, seconds=0.0, images_per_s=None,
                       file=path.name, aliases=[alias] if alias else [])
            if alias:
                store_alias(path, alias, cache)
            return result
        except CheckpointError as err:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            os.replace(path, aside)
            warnings.warn(f"Cached checkpoint for {name!r} was unusable and was moved to {aside}; "
                          f"training again. ({err})", stacklevel=2)
            status = "retrained"
    seed_everything(int(config.get("seed", 0)))
    model = build(config).to(device)
    start = time.perf_counter()
    history = train(model)
    seconds = time.perf_counter() - start
    save_checkpoint(path, model, config, build, history, name)
    speed = float(history["images_per_s"].mean()) if "images_per_s" in history else None
    _log_event(name=name, key=key, status=status, seconds=round(seconds, 2), images_per_s=speed,
               file=path.name, aliases=[alias] if alias else [])
    if alias:
        store_alias(path, alias, cache)
    model.eval()
    return Trained(model, history, status, path, json.loads(json.dumps(config, default=str)), name,
                   _builder_name(build))


def alias_name(*parts) -> str:
    """A file-safe stable cache name, e.g. alias_name("vae", "folder:/x", "latent16")."""
    return "-".join("".join(ch if ch.isalnum() or ch == "." else "_" for ch in str(p)) for p in parts)


def load_alias(alias: str, device, cache_dir=None, check=None) -> Trained | None:
    """The model stored under ``alias``, or None when there is none or ``check(config)`` fails.

    Its ``path`` is the original cache entry when that still exists, so that models keyed on
    it (a prior trained on its codes) are found again.
    """
    from . import weights

    path = Path(cache_dir or default_cache_dir()) / f"{alias}.pt"
    downloaded = False
    if not path.exists():
        fetched = weights.fetch(f"{alias}.pt", path, alias=alias)
        if not fetched:
            return None
        store_alias(path.parent / fetched, alias, path.parent)
        downloaded = True
    try:
        found = load_checkpoint(path, device)
    except CheckpointError as err:
        warnings.warn(f"Ignoring the stored model {path.name}: {err}", stacklevel=2)
        return None
    if check is not None and not check(found.config):
        return None
    original = path.parent / (f"{found.name}-{config_key(found.config)}-"
                              f"{code_version(_import_builder(found.builder))}.pt")
    if original.exists():
        found.path = original
    _log_event(name=found.name, key=config_key(found.config),
               status=f"{'downloaded' if downloaded else 'loaded'} as {alias}", seconds=0.0,
               images_per_s=None, file=found.path.name if original.exists() else None,
               aliases=[alias])
    return found


def same_data(data_spec: dict):
    """A ``check`` for load_alias: the model was trained on exactly these images."""
    return lambda config: config.get("data", {}).get("fingerprint") == data_spec.get("fingerprint")


def store_alias(path: Path, alias: str, cache_dir=None) -> Path:
    """Copy a checkpoint to ``<cache>/<alias>.pt`` (atomically): a stable name for later use."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / f"{alias}.pt"
    tmp = cache / f".{alias}.{os.getpid()}.tmp"
    shutil.copyfile(path, tmp)
    os.replace(tmp, target)
    return target
