"""One plain training loop for every model of the book, plus seeding and device choice.

A model's loss function has the signature ``loss_fn(model, x, y) -> dict`` with a scalar tensor
under ``"loss"`` (what is minimised) and any other scalar terms worth logging (``"recon"``,
``"kl"``, ``"accuracy"``, ...). :func:`fit` averages every term over each epoch, on the training
and on the test batches, and returns the history as a table, one row per epoch.
"""
from __future__ import annotations

import os
import random
import time
from collections import defaultdict

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

DEVICES = ("auto", "cpu", "cuda", "mps")


class ParameterError(ValueError):
    """A chapter parameter has a value the code cannot use; the message says which and why."""


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


def check_positive(**values) -> None:
    """Raise a clear ParameterError unless each value is a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name} must be a positive integer, got {value!r}.")


def progress_enabled() -> bool:
    return os.environ.get("LATENT_NOTES_PROGRESS", "1") != "0"


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


def fit(model, loss_fn, train_batches, test_batches=None, *, epochs: int, optimizer,
        device, scheduler=None, batch_scheduler=None, name: str = "model") -> pd.DataFrame:
    """Train for ``epochs`` passes; return one row per epoch with train_/test_ terms and speed.

    ``scheduler`` steps once per epoch, ``batch_scheduler`` once per batch. Columns: ``epoch``,
    ``train_<term>``, ``test_<term>``, ``seconds`` (the training pass) and ``images_per_s``.
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
            if batch_scheduler is not None:
                batch_scheduler.step()
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
        rows.append(row)
        if scheduler is not None:
            scheduler.step()
    bar.close()
    model.eval()
    return pd.DataFrame(rows)
