"""Shared fixtures: small data sets in their real on-disk formats, written by the tests."""
import gzip
import pickle
import struct

import numpy as np
import pytest


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format (gzipped when the name ends in .gz)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_root(tmp_path):
    """A tiny MNIST in torchvision's layout: 50 train and 20 test images of 28x28."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 50), ("t10k", 20)):
        write_idx(raw / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


@pytest.fixture
def cifar_root(tmp_path):
    """A tiny CIFAR-10 in its python-pickle batches: 5 x 8 train and 6 test images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [(f"data_batch_{i}", 8) for i in range(1, 6)] + [("test_batch", 6)]:
        batch = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 "labels": list(rng.integers(0, 10, n))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return tmp_path
