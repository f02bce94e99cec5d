"""Shared fixtures: small data sets in their real on-disk formats, written by the tests."""
import gzip
import inspect
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format (gzipped when the name ends in .gz)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root, rng, train: int = 50, test: int = 20) -> None:
    """A tiny MNIST in torchvision's layout under ``root``: random 28x28 images, labels 0-9."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", train), ("t10k", test)):
        write_idx(raw / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def write_cifar(root, rng, per_batch: int = 8, test: int = 6) -> None:
    """A tiny CIFAR-10 in its python-pickle batches under ``root``: 5 training batches + test."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        batch = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 "labels": list(rng.integers(0, 10, n))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


@pytest.fixture
def mnist_root(tmp_path):
    """A tiny MNIST in torchvision's layout: 50 train and 20 test images of 28x28."""
    write_mnist(tmp_path, np.random.default_rng(0))
    return tmp_path


@pytest.fixture
def cifar_root(tmp_path):
    """A tiny CIFAR-10 in its python-pickle batches: 5 x 8 train and 6 test images."""
    write_cifar(tmp_path, np.random.default_rng(0))
    return tmp_path


@pytest.fixture
def edit_source(monkeypatch, tmp_path):
    """``edit_source("latent_notes.x")``: code versions are read from an edited copy of that
    module's source file (what an edit of the module would do to every key)."""
    from latent_notes.store import checkpoint

    real = inspect.getsourcefile

    def edit(module_name: str) -> None:
        def fake(module):
            path = real(module)
            if getattr(module, "__name__", None) == module_name:
                copy = tmp_path / "edited" / Path(path).name
                copy.parent.mkdir(exist_ok=True)
                copy.write_bytes(Path(path).read_bytes() + b"\n# edited\n")
                return str(copy)
            return path

        monkeypatch.setattr(checkpoint.inspect, "getsourcefile", fake)

    return edit
