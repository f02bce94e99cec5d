"""The checkpoint file: what it holds, how it is written, and how a model is rebuilt from it.

A checkpoint stores the model's weights, its config (the model is rebuilt from it, so no
architecture number is written twice), its training history, the name of the function that
rebuilds it and the machine it was trained on. The name is looked up in :data:`BUILDERS`, the
package's own table: nothing is ever imported or called by a name read from a file, and loads
use ``weights_only=True``. Writes are atomic (a temporary file, then a rename).

A file is checked before its model is built (:func:`load_checkpoint`): its config must pass
the config class's checks, every size bounded (``latent_notes.checks.SIZE_LIMITS``), describe
at most :data:`MAX_NUMBERS` numbers (counted on the meta device: shapes, no memory), and be
the one the caller expects (a cache key, a stable name's family, the manifest's entry); every
tensor it holds must be finite. A 2 KB file can thus ask for nothing large.

This module imports only the model builders (and the training module's naming of temporary
files); the cache (``latent_notes.store.cache``) and the weights source
(``latent_notes.store.weights``) both build on it, so the import graph runs one way.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib
import inspect
import json
import os
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from ..models.autoencoder import build_autoencoder
from ..models.classifier import build_classifier
from ..models.pixelcnn import build_pixelcnn
from ..models.vae import build_vae
from ..models.vqvae2 import build_vqvae2
from ..training import temporary_path

FORMAT_VERSION = 1
MODELS = "latent_notes.models"
RECIPES = "latent_notes.models.family"  # recipes and names, no model code: not hashed
EXPERIMENTS = "latent_notes.experiments"  # the code a cached table depends on
# The only functions a checkpoint can be rebuilt with, by the short name stored in the file.
BUILDERS = {"classifier": build_classifier, "autoencoder": build_autoencoder, "vae": build_vae,
            "vqvae2": build_vqvae2, "pixelcnn": build_pixelcnn}
# Weights and buffers a checkpoint's model may hold (1 GB in float32): the book's models hold
# 1 to 6 million; its largest possible, chapter 1's deep CNN on 128-pixel photos, 32 million.
MAX_NUMBERS = 250_000_000


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
    trained_on: dict = field(default_factory=dict)  # device and versions (not in the key)


def config_key(config: dict) -> str:
    """A stable 16-hex-digit hash of a JSON-able config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _model_modules(module, seen: set, prefix: str = MODELS) -> list:
    """``module`` and the modules under ``prefix`` (by default the model code) it imports
    from, recursively."""
    if module.__name__ in seen:
        return []
    seen.add(module.__name__)
    found = [module]
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if (isinstance(name, str) and name.startswith(prefix) and name != module.__name__
                and name != RECIPES):
            found += _model_modules(importlib.import_module(name), seen, prefix)
    return found


def code_version(build, prefix: str = MODELS) -> str:
    """A hash of the model-defining code of ``build``: its module and the model modules it
    imports (blocks, quantiser), nothing else. Editing a model retrains it; editing a plot,
    a chapter or the training loop's bookkeeping does not. With another ``prefix``
    (``latent_notes.experiments``) it is the version of an experiment's code, for tables."""
    module = inspect.getmodule(build)
    if module is None:
        return "none"
    h = hashlib.sha256()
    for m in sorted(_model_modules(module, set(), prefix), key=lambda m: m.__name__):
        h.update(Path(inspect.getsourcefile(m)).read_bytes())
    return h.hexdigest()[:8]


def builder_name(build) -> str:
    """The short name :data:`BUILDERS` knows ``build`` by (what a checkpoint stores)."""
    for name, known in BUILDERS.items():
        if known is build:
            return name
    raise ValueError(f"{build!r} is not in latent_notes.store.checkpoint.BUILDERS; a model the "
                     "cache stores must be rebuilt by one of the package's builders: add it there.")


def builder_of(name):
    """The package's builder a checkpoint names: a name of :data:`BUILDERS` (or, for files
    written before short names, the exact ``module:function`` spelling of one of them);
    anything else is refused unread."""
    legacy = {f"{b.__module__}:{b.__qualname__}": b for b in BUILDERS.values()}
    build = BUILDERS.get(name) if isinstance(name, str) else None
    build = build or (legacy.get(name) if isinstance(name, str) else None)
    if build is None:
        raise CheckpointError(f"it names the builder {str(name)[:80]!r}, which is not one of "
                              f"the package's ({', '.join(BUILDERS)}); nothing was called")
    return build


def model_size(build, config: dict) -> int:
    """The numbers (weights and buffers) ``build(config)`` would hold, counted without memory:
    the model is built on the meta device (shapes only) and the random streams are left as
    they were. The config class's checks run first (a ParameterError names a bad field)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = build(config)
    return sum(t.numel() for t in chain(model.parameters(), model.buffers()))


def check_buildable(build, config) -> None:
    """Raise CheckpointError unless ``config`` passes its config class's checks and describes a
    model of at most :data:`MAX_NUMBERS` numbers; nothing is allocated."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError("its config has no model section")
    try:
        size = model_size(build, config)
    except Exception as err:  # a ParameterError of the config class, or an unknown field
        raise CheckpointError(f"its config is not one the package builds ({type(err).__name__}: "
                              f"{err})") from None
    if size > MAX_NUMBERS:
        raise CheckpointError(f"its config describes a model of {size:,} numbers, more than the "
                              f"{MAX_NUMBERS:,} any model of the book may hold "
                              f"({json.dumps(config['model'])[:200]})")


def rebuild(name, config):
    """The model a checkpoint describes, built by the package's builder called ``name``, once
    :func:`check_buildable` has passed its config."""
    build = builder_of(name)
    check_buildable(build, config)
    return build, build(config)


def nonfinite(state_dict: dict) -> list[str]:
    """The names of the floating-point tensors of ``state_dict`` that hold a NaN or an inf."""
    return [key for key, value in state_dict.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()
            and not bool(torch.isfinite(value).all())]


def _plain(history: pd.DataFrame) -> dict:
    """A history table as a dict of lists of Python numbers (safe under weights_only)."""
    return {col: [v.item() if hasattr(v, "item") else v for v in history[col]] for col in history}


def save_checkpoint(path: Path, model, config: dict, build, history: pd.DataFrame, name: str,
                    trained_on: dict | None = None):
    """Write atomically: a reader never sees a half-written file, even after a kill.
    ``trained_on`` (the device and versions) travels in the file, outside the cache key."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION, "name": name, "key": config_key(config),
        "config": json.loads(json.dumps(config, default=str)), "builder": builder_name(build),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": _plain(history),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__), "trained_on": trained_on or {},
    }
    _atomic(path, lambda tmp: torch.save(payload, tmp))


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it into place."""
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


Check = Callable[[str, dict], "str | None"]  # (builder, config) → a complaint, or None


def load_checkpoint(path: Path, device="cpu", build=None, checks: tuple[Check, ...] = ()
                    ) -> Trained:
    """Rebuild the model from the config stored in the checkpoint and load its weights.

    The builder is the one :data:`BUILDERS` holds under the name the file stores; with
    ``build`` given, the file must name that builder. Before the model is built, each of
    ``checks`` (the caller's expectation: a cache key, a stable name, a manifest entry) is
    called with the builder's name and the config and may return a complaint; the config
    must pass :func:`check_buildable`, and every tensor must be finite. Any failure raises
    CheckpointError.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
            raise CheckpointError("not a latent-notes checkpoint of this format")
        stored, config = builder_of(payload.get("builder")), payload.get("config")
        if build is not None and stored is not build:
            raise CheckpointError(f"it was made by {payload['builder']!r}, not by "
                                  f"{builder_name(build)!r}")
        for check in checks:
            complaint = check(builder_name(stored), config)
            if complaint:
                raise CheckpointError(complaint)
        bad = nonfinite(payload["state_dict"])
        if bad:
            raise CheckpointError(f"its weights hold NaN or infinite numbers ({', '.join(bad[:3])}"
                                  f"{', ...' if len(bad) > 3 else ''})")
        _, model = rebuild(payload["builder"], config)
        model.load_state_dict(payload["state_dict"])
    except CheckpointError as err:
        raise CheckpointError(f"{path} was refused before its model was built: {err}. Delete it "
                              "(or let load_or_train move it aside) and train again.") from err
    except Exception as err:
        raise CheckpointError(f"{path} is unreadable or incomplete ({type(err).__name__}: {err}). "
                              "Delete it (or let load_or_train move it aside) "
                              "and train again.") from err
    model.to(device).eval()
    trained_on = payload.get("trained_on")
    return Trained(model, pd.DataFrame(payload["history"]), "loaded", path, payload["config"],
                   payload.get("name", ""), builder_name(stored),
                   trained_on if isinstance(trained_on, dict) else {})
