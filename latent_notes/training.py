"""One plain training loop for every model of the book, its config, seeding and device choice.

A model's loss function has the signature ``loss_fn(model, x, y) -> dict`` with a scalar tensor
under ``"loss"`` (what is minimised) and any other scalar terms worth logging (``"recon"``,
``"kl"``, ``"accuracy"``, ...). :func:`fit` averages every term over each epoch, on the
training and on the validation batches, calls the per-epoch callbacks, and returns the history
as a table, one row per epoch. :func:`train_model` adds what every family shares: Adam and the
learning-rate schedule named in a :class:`TrainConfig` (the recipe, defined with the families
in ``latent_notes.models.family``).
"""
from __future__ import annotations

import os
import random
import re
import socket
import time
import warnings
from contextlib import nullcontext
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checks import ParameterError, check_positive
from .models.family import SCHEDULES, TrainConfig  # noqa: F401  (the recipe it trains with)

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("float32", "bfloat16", "auto")

__all__ = ["ParameterError", "TrainConfig", "fit", "train_model", "evaluate", "seed_everything",
           "pick_device", "check_positive", "make_step", "resolve_precision"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch: the same seed gives the same numbers on the CPU."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit choice (a name or a torch.device) is
    checked to exist."""
    name = str(device) if isinstance(device, torch.device) else device
    index = name[5:] if isinstance(name, str) and name.startswith("cuda:") else None
    if name not in DEVICES and not (index and index.isascii() and index.isdigit()):
        raise ParameterError(f"device must be one of {', '.join(DEVICES)} (or 'cuda:N'), "
                             f"got {device!r}.")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device={name!r} was asked for but torch sees no CUDA GPU here. "
                             "Use device='auto' to fall back to the CPU.")
    if index is not None and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        there = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise ParameterError(f"device={name!r} was asked for but torch sees {count} CUDA GPU(s) "
                             f"here ({there}). Use one of those, or device='cuda' for the first.")
    if name == "mps" and not has_mps:
        raise ParameterError("device='mps' was asked for but this torch has no Apple-GPU support. "
                             "Use device='auto' to fall back to the CPU.")
    return torch.device(name)


def set_deterministic(on: bool) -> None:
    """Bit-for-bit repeatable runs on CUDA, at a cost in speed (on the CPU they always are).

    Deterministic kernels only (an operation without one raises), cuDNN's autotuner off, TF32
    off (full float32 matrix products and convolutions), and the cuBLAS workspace setting that
    makes its reductions repeatable. Off (the default), a CUDA run repeats to within rounding.
    """
    if not isinstance(on, bool):
        raise ParameterError(f"deterministic must be True or False, got {on!r}.")
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = not on


def native_bfloat16(device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products in hardware: a CUDA GPU that
    supports it, a CPU with AVX-512 BF16 or AMX. Elsewhere bfloat16 is emulated in software
    (on a 2-core AVX2 CPU, matrix products ran at 1.2 GFLOP/s in bfloat16 against 109 in
    float32) or not offered."""
    device = as_device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(precision: str, device) -> str:
    """What the training steps compute in: ``float32``; ``bfloat16`` (autocast: matrix
    products and convolutions in bfloat16, the quantiser, the losses and the likelihoods in
    float32); or ``auto``, bfloat16 where ``device`` has it natively, else float32."""
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                             f"{precision!r}.")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


def autocast(precision: str, device):
    """The block a training step runs its forward pass in, for a resolved ``precision``."""
    if precision == "bfloat16":
        return torch.autocast(as_device(device).type, dtype=torch.bfloat16)
    return nullcontext()


def make_step(model, loss_fn, optimizer, *, precision: str = "float32", device="cpu"):
    """One training step, ``step(x, y) -> terms``: the forward pass and the loss in
    ``precision`` (resolved), the backward pass, the optimiser's step. What :func:`fit` runs
    per batch, and what ``latent_notes.bench`` times."""
    device = as_device(device)
    precision = resolve_precision(precision, device)

    def step(x, y):
        with autocast(precision, device):
            terms = loss_fn(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return terms
    return step


def machine(device) -> dict:
    """What a timing or a trained model depends on: the device and the library versions."""
    device = as_device(device)
    info = {"device": device.type, "torch": str(torch.__version__),
            "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info.update(name=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    elif device.type == "cpu":
        import platform

        info.update(name=platform.processor() or platform.machine())
    return info


def describe_machine(info: dict | None) -> str:
    """One line for the page: 'a CPU (2 threads, torch 2.13.0)', 'an NVIDIA H200 (CUDA 12.8)'."""
    if not isinstance(info, dict) or not info:
        return "a machine that was not recorded"
    info = {key: str(value)[:60] for key, value in info.items()}  # read from a file: text only
    if info.get("device") == "cuda":
        return (f"an {info.get('name', 'unnamed GPU')} (CUDA {info.get('cuda')}, "
                f"torch {info['torch']})")
    if info.get("device") == "mps":
        return f"an Apple GPU (MPS, torch {info['torch']})"
    return f"a CPU ({info.get('threads')} threads, torch {info['torch']})"


def progress_enabled() -> bool:
    return os.environ.get("LATENT_NOTES_PROGRESS", "1") != "0"


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    """Sums of loss terms: float64 where the device has it (the CPU), else float32 (MPS)."""
    return torch.float64 if device.type in ("cpu", "cuda") else torch.float32


@torch.no_grad()
def evaluate(model, loss_fn, batches, device) -> dict[str, float]:
    """Mean of every loss term over all batches (weighted by batch size), in eval mode."""
    device = as_device(device)
    model.eval()
    sums, count, dtype = {}, 0, _accumulator_dtype(device)
    for x, y in batches:
        terms = loss_fn(model, x.to(device), y.to(device))
        n = len(x)
        for key, value in terms.items():  # summed on the device, read once at the end
            sums[key] = sums.get(key, 0.0) + value.detach().to(dtype) * n
        count += n
    return {key: float(total) / max(count, 1) for key, total in sums.items()}


Callback = Callable[[int, torch.nn.Module], "dict | None"]


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number: the run is stopped and nothing is cached."""


def as_device(device) -> torch.device:
    """A device given as a string ('cpu', 'cuda:0') or a torch.device, as a torch.device."""
    return device if isinstance(device, torch.device) else torch.device(device)


def on_device(batches, device):
    """``batches`` moved to ``device`` once when they fit in a quarter of its free memory
    (MNIST's 188 MB does on any GPU), else as they are: copied batch by batch."""
    device = as_device(device)
    if device.type == "cpu" or not hasattr(batches, "to") or not hasattr(batches, "nbytes"):
        return batches
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    elif device.type == "mps":
        free = torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    else:
        return batches
    return batches.to(device) if batches.nbytes < free / 4 else batches


def synchronize(device) -> None:
    """Wait for the device's queued work, so that a timing covers it (no-op on the CPU)."""
    device = as_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# -- temporary files: named by their writer, process and host ---------------------------------

# This machine's name as it goes into a file name: letters, digits and '-' only (no '.', which
# separates the parts of the name), at most 40 characters.
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "unknown-host"


def temporary_path(path: Path) -> Path:
    """``.NAME.PID@HOST.tmp`` beside ``path``: where ``path`` is written before it is renamed
    into place. The writer's process *and* machine are in the name, so that a cache folder
    shared by several machines (a network drive, Colab's Drive, a CI volume) never takes one
    machine's fresh file for a dead process's (``latent_notes.store.cache.remove_stale``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}@{HOST}.tmp")


# -- resumable training: a state written after every epoch ----------------------------------

def _rng_states() -> dict:
    """Every random stream training draws from (Python, NumPy, torch on each device)."""
    numpy_state = np.random.get_state()
    states = {"python": random.getstate(), "torch": torch.get_rng_state(),
              "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()),
                        *map(float, numpy_state[2:])]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in states["python"]))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy(), int(pos), int(has_gauss), cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states and getattr(torch.backends, "mps", None) is not None \
            and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["mps"])


class TrainingState:
    """Where a run keeps its state after every epoch, so that a killed run resumes.

    The state (model, optimizer, schedule, every random stream, the loader's shuffling stream,
    the history so far) is written atomically to ``path`` after each epoch. :func:`fit` resumes
    from it: the final model is identical to an uninterrupted run's (same seed, same machine).
    ``key`` ties the state to one configuration; a state of another, or an unreadable one, is
    ignored with a warning. A write that fails (a full disk) costs one warning, never the run.
    """

    def __init__(self, path, key: str):
        self.path, self.key = Path(path), key
        self.resumed_from: int | None = None  # the epoch a run resumed after, if it did
        self.seconds = 0.0  # time spent writing states
        self._failed = False

    def load(self, epochs: int) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            if state.get("key") != self.key or not 1 <= int(state["epoch"]) <= epochs:
                raise ValueError(f"it belongs to another run (key {state.get('key')!r}, "
                                 f"epoch {state.get('epoch')!r})")
        except Exception as err:
            warnings.warn(f"Ignoring the training state {self.path.name} ({type(err).__name__}: "
                          f"{err}); training from the first epoch.", stacklevel=3)
            self.remove()
            return None
        self.resumed_from = int(state["epoch"])
        return state

    def save(self, state: dict) -> None:
        if self._failed:
            return
        start = time.perf_counter()
        tmp = temporary_path(self.path)
        try:
            torch.save({"key": self.key, **state}, tmp)
            os.replace(tmp, self.path)
        except OSError as err:
            self._failed = True
            warnings.warn(f"Could not write the training state {self.path} ({err}); training "
                          "goes on, but a killed run would start again from the first epoch.",
                          stacklevel=3)
        finally:
            tmp.unlink(missing_ok=True)
        self.seconds += time.perf_counter() - start

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass


def _restore(saved: dict, model, optimizer, scheduler, train_batches) -> list[dict]:
    """Put a saved training state back in place; return the history rows so far."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    if getattr(train_batches, "generator", None) is not None:
        train_batches.generator.set_state(saved["loader"])
    _set_rng_states(saved["rng"])
    return list(saved["history"])


def _snapshot(epoch: int, rows: list, model, optimizer, scheduler, train_batches) -> dict:
    generator = getattr(train_batches, "generator", None)
    return {"epoch": epoch, "history": rows, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "loader": generator.get_state() if generator is not None else None,
            "rng": _rng_states()}


def nonfinite_weights(model) -> list[str]:
    """Names of the model's weights and buffers that hold a NaN or an infinity (one host read;
    nothing is changed and no random number drawn)."""
    named = [(name, t) for name, t in chain(model.named_parameters(), model.named_buffers())
             if t.is_floating_point()]
    if not named:
        return []
    with torch.no_grad():
        finite = torch.stack([torch.isfinite(t).all() for _, t in named])
        if bool(finite.all()):
            return []
        return [name for (name, _), ok in zip(named, finite.tolist(), strict=True) if not ok]


def _not_finite(model, loss: float, epoch: int, epochs: int) -> str | None:
    """What stopped being finite in an epoch: its mean loss, or the weights after its last step
    (a step whose loss the mean never sees); None when nothing did."""
    if not np.isfinite(loss):
        return (f"its mean training loss in epoch {epoch} of {epochs} was {loss}, not a finite "
                "number")
    bad = nonfinite_weights(model)
    if bad:
        return (f"after the last step of epoch {epoch} of {epochs} its weights held NaN or "
                f"infinite numbers ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}), "
                f"although the epoch's mean training loss was {loss:.4g}")
    return None


def _diverged(name: str, what: str, optimizer) -> TrainingDiverged:
    lr = optimizer.param_groups[0].get("max_lr") or optimizer.param_groups[0].get("initial_lr") \
        or optimizer.param_groups[0]["lr"]
    return TrainingDiverged(
        f"Training {name} diverged: {what}, so the run was stopped and nothing was cached. Lower "
        f"the learning rate (lr, {lr:g} here) first; then the loss weights that multiply a term "
        f"(beta or recon_weight of a VAE, commitment_weight of VQ-VAE-2) or the input noise "
        f"(noise_std); a one-cycle schedule (schedule='onecycle') also starts gently.")


def fit(model, loss_fn, train_batches, val_batches=None, *, epochs: int, optimizer, device,
        scheduler=None, step_per_batch: bool = False, callbacks: Iterable[Callback] = (),
        name: str = "model", state: TrainingState | None = None,
        precision: str = "float32") -> pd.DataFrame:
    """Train for ``epochs`` passes; return one row per epoch with train_/val_ terms and speed.

    ``scheduler`` steps once per batch when ``step_per_batch``, else once per epoch. After each
    epoch every ``callback(epoch, model)`` runs; a dict it returns joins that epoch's row.
    Columns: ``epoch``, ``train_<term>``, ``val_<term>`` (the validation batches, which watch
    training; the test set is for scoring the finished model), ``seconds`` (the training pass),
    ``images_per_s`` and the callbacks' own. With a ``state``, each epoch ends by writing it
    and a run resumes after the last epoch written. The loss terms are summed on the device
    and read once per epoch; a loss that is not finite stops training (TrainingDiverged), and so
    do weights that are not after the epoch's last step (whose loss the mean never sees).
    The steps compute in ``precision`` (:func:`resolve_precision`); the validation pass in
    float32.
    """
    check_positive(epochs=epochs)
    device = as_device(device)
    model.to(device)
    step = make_step(model, loss_fn, optimizer, precision=precision, device=device)
    train_batches = on_device(train_batches, device)  # shares the shuffling stream
    val_batches = on_device(val_batches, device) if val_batches is not None else None
    saved = state.load(epochs) if state is not None else None
    rows = _restore(saved, model, optimizer, scheduler, train_batches) if saved else []
    first = len(rows) + 1
    bar = tqdm(total=epochs * len(train_batches), initial=(first - 1) * len(train_batches),
               desc=f"training {name}", unit="batch", mininterval=5.0,
               disable=not progress_enabled(), leave=True)
    if saved:
        bar.write(f"training {name}: resumed after epoch {first - 1} of {epochs}")
    for epoch in range(first, epochs + 1):
        model.train()
        sums, count, start = {}, 0, time.perf_counter()
        dtype = _accumulator_dtype(device)
        for x, y in train_batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            terms = step(x, y)
            if scheduler is not None and step_per_batch:
                scheduler.step()
            n = len(x)
            for key, value in terms.items():  # on the device: no host sync per step
                sums[key] = sums.get(key, 0.0) + value.detach().to(dtype) * n
            count += n
            bar.update(1)
        synchronize(device)
        seconds = time.perf_counter() - start
        means = {key: float(total) / count for key, total in sums.items()}  # one read per epoch
        what = _not_finite(model, means["loss"], epoch, epochs)
        if what:
            bar.close()
            if state is not None:
                state.remove()
            raise _diverged(name, what, optimizer)
        bar.set_postfix(epoch=epoch, loss=f"{means['loss']:.4g}")
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in means.items()}}
        if val_batches is not None:
            row.update({f"val_{k}": v for k, v in evaluate(model, loss_fn, val_batches,
                                                             device).items()})
        row.update(seconds=seconds, images_per_s=count / seconds)
        for callback in callbacks:
            row.update(callback(epoch, model) or {})
        rows.append(row)
        if scheduler is not None and not step_per_batch:
            scheduler.step()
        if state is not None and epoch < epochs:
            state.save(_snapshot(epoch, rows, model, optimizer, scheduler, train_batches))
    bar.close()
    model.eval()
    return pd.DataFrame(rows)


def make_schedule(optimizer, config: TrainConfig, steps_per_epoch: int):
    """The scheduler a TrainConfig names and whether it steps per batch: (scheduler, per_batch)."""
    if config.schedule == "onecycle":
        # One-cycle (Smith & Topin 2019): warm up to lr, then anneal to ~0; stepped every batch.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, pct_start=config.warmup,
            total_steps=config.epochs * steps_per_epoch), True
    if config.schedule == "step":
        # Step-down: lr until epoch lr_drop_at, then lr / 10 (stepped once per epoch).
        return (torch.optim.lr_scheduler.MultiStepLR(optimizer, [config.lr_drop_at], gamma=0.1),
                False)
    return None, False


def train_model(model, loss_fn, train_batches, val_batches, config: TrainConfig, *, device,
                callbacks: Iterable[Callback] = (), name: str = "model",
                state: TrainingState | None = None, precision: str = "float32") -> pd.DataFrame:
    """Adam with the schedule of ``config``, through :func:`fit`, its steps in ``precision``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler, per_batch = make_schedule(optimizer, config, len(train_batches))
    return fit(model, loss_fn, train_batches, val_batches, epochs=config.epochs,
               optimizer=optimizer, device=device, scheduler=scheduler, step_per_batch=per_batch,
               callbacks=callbacks, name=name, state=state, precision=precision)
