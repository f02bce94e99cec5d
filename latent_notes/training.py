"""One plain training loop for every model of the book, its config, seeding and device choice.

A model's loss function has the signature ``loss_fn(model, x, y) -> dict`` with a scalar tensor
under ``"loss"`` (what is minimised) and any other scalar terms worth logging (``"recon"``,
``"kl"``, ``"accuracy"``, ...). :func:`fit` averages every term over each epoch, on the training
and on the test batches, calls the per-epoch callbacks, and returns the history as a table, one
row per epoch. :func:`train` adds what every family shares: Adam and the learning-rate schedule
named in a :class:`TrainConfig`.
"""
from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checks import ParameterError, check_config, check_positive, choice, number, positive

DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("constant", "onecycle", "step")

__all__ = ["ParameterError", "TrainConfig", "fit", "train", "evaluate", "seed_everything",
           "pick_device", "check_positive"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch: the same seed gives the same numbers on the CPU."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit choice is checked to exist."""
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ParameterError(f"device must be one of {', '.join(DEVICES)} (or 'cuda:N'), "
                             f"got {device!r}.")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} was asked for but torch sees no CUDA GPU here. "
                             "Use device='auto' to fall back to the CPU.")
    if device == "mps" and not has_mps:
        raise ParameterError("device='mps' was asked for but this torch has no Apple-GPU support. "
                             "Use device='auto' to fall back to the CPU.")
    return torch.device(device)


def progress_enabled() -> bool:
    return os.environ.get("LATENT_NOTES_PROGRESS", "1") != "0"


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: Adam with a learning-rate schedule (the same for every family)."""

    epochs: int = positive(10)  # passes over the training images
    batch_size: int = positive(64)  # images per gradient step
    lr: float = number(1e-3, 0.0, 1.0, low_open=True)  # (peak) learning rate of Adam
    schedule: str = choice("constant", SCHEDULES)  # constant | onecycle (per step) | step (÷10)
    warmup: float = number(0.3, 0.0, 1.0, low_open=True, high_open=True)  # onecycle: rising part
    lr_drop_at: int | None = None  # step: the epoch after which the learning rate drops tenfold

    def __post_init__(self):
        check_config(self)
        if (self.schedule == "step") != (self.lr_drop_at is not None):
            raise ParameterError(f"lr_drop_at goes with schedule='step' (the epoch after which the "
                                 f"learning rate drops tenfold); got schedule={self.schedule!r}, "
                                 f"lr_drop_at={self.lr_drop_at!r}.")
        if self.lr_drop_at is not None:
            check_positive(lr_drop_at=self.lr_drop_at)


@torch.no_grad()
def evaluate(model, loss_fn, batches, device) -> dict[str, float]:
    """Mean of every loss term over all batches (weighted by batch size), in eval mode."""
    model.eval()
    sums, count = defaultdict(float), 0
    for x, y in batches:
        terms = loss_fn(model, x.to(device), y.to(device))
        n = len(x)
        for key, value in terms.items():
            sums[key] += float(value) * n
        count += n
    return {key: total / max(count, 1) for key, total in sums.items()}


Callback = Callable[[int, torch.nn.Module], "dict | None"]


def fit(model, loss_fn, train_batches, test_batches=None, *, epochs: int, optimizer, device,
        scheduler=None, step_per_batch: bool = False, callbacks: Iterable[Callback] = (),
        name: str = "model") -> pd.DataFrame:
    """Train for ``epochs`` passes; return one row per epoch with train_/test_ terms and speed.

    ``scheduler`` steps once per batch when ``step_per_batch``, else once per epoch. After each
    epoch every ``callback(epoch, model)`` runs; a dict it returns joins that epoch's row.
    Columns: ``epoch``, ``train_<term>``, ``test_<term>``, ``seconds`` (the training pass),
    ``images_per_s`` and the callbacks' own.
    """
    check_positive(epochs=epochs)
    model.to(device)
    rows = []
    bar = tqdm(total=epochs * len(train_batches), desc=f"training {name}", unit="batch",
               mininterval=5.0, disable=not progress_enabled(), leave=True)
    for epoch in range(1, epochs + 1):
        model.train()
        sums, count, start = defaultdict(float), 0, time.perf_counter()
        for x, y in train_batches:
            x, y = x.to(device), y.to(device)
            terms = loss_fn(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            if scheduler is not None and step_per_batch:
                scheduler.step()
            n = len(x)
            for key, value in terms.items():
                sums[key] += float(value.detach()) * n
            count += n
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{sums['loss'] / count:.4g}", refresh=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        row = {"epoch": epoch, **{f"train_{k}": v / count for k, v in sums.items()}}
        if test_batches is not None:
            row.update({f"test_{k}": v for k, v in evaluate(model, loss_fn, test_batches,
                                                             device).items()})
        row.update(seconds=seconds, images_per_s=count / seconds)
        for callback in callbacks:
            row.update(callback(epoch, model) or {})
        rows.append(row)
        if scheduler is not None and not step_per_batch:
            scheduler.step()
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
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [config.lr_drop_at], gamma=0.1), False
    return None, False


def train(model, loss_fn, train_batches, test_batches, config: TrainConfig, *, device,
          callbacks: Iterable[Callback] = (), name: str = "model") -> pd.DataFrame:
    """Adam with the schedule of ``config``, through :func:`fit`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler, per_batch = make_schedule(optimizer, config, len(train_batches))
    return fit(model, loss_fn, train_batches, test_batches, epochs=config.epochs,
               optimizer=optimizer, device=device, scheduler=scheduler, step_per_batch=per_batch,
               callbacks=callbacks, name=name)
