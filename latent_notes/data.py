"""Data sets of the book, all as in-memory image tensors with values in [0, 1].

Every loader returns an :class:`ImageData`: a train and a test :class:`ImageSet` of shape
(N, C, H, W) plus the class names. Everything the chapters train on fits in memory (MNIST is
188 MB as float32), so batches are sliced straight out of one tensor: no per-image Python work,
which on a 2-core laptop is the difference between seconds and minutes per epoch.

Names understood by :func:`load_data`:

- ``digits``: scikit-learn's bundled 8x8 handwritten digits, resized to 28x28 (offline default);
- ``mnist``, ``fashion-mnist``: the IDX archives in torchvision's layout under ``data_root``;
- ``cifar10``: the python-pickle batches in torchvision's layout under ``data_root``;
- ``photos``: colour patches cut from scikit-learn's two bundled sample photos (offline);
- ``folder:PATH``: any folder of images; class sub-folders give the labels.
"""
from __future__ import annotations

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

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "photos", "folder:PATH")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
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
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.images[idx], self.labels[idx]


@dataclass
class ImageData:
    """A named data set with a fixed train/test split."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    spec: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}: {len(self.train)} train / {len(self.test)} test images, "
                f"{self.channels}x{self.image_size}x{self.image_size}, {len(self.classes)} classes)")


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


def load_data(dataset: str = "digits", data_root=None, subset: int | None = None,
              image_size: int | None = None, channels: int | None = None, seed: int = 0,
              test_fraction: float = 0.2) -> ImageData:
    """Load a data set by name; ``subset`` caps the training images (a seeded random choice)."""
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
    if name == "digits":
        train, test, classes = _digits()
    elif name in MNIST_LIKE:
        train, test, classes = _mnist_like(name, resolve_data_root(data_root))
    elif name == "cifar10":
        train, test, classes = _cifar10(resolve_data_root(data_root))
    elif name == "photos":
        train, test, classes = _photos(image_size or 64, test_fraction)
    elif name.startswith("folder:"):
        train, test, classes = _folder(name[len("folder:"):], image_size or 64,
                                       channels or 3, test_fraction)
    else:
        raise DataError(
            f"Unknown dataset {dataset!r}. Use one of {', '.join(DATASETS)} "
            "(for your own images: 'folder:/path/to/images', with one sub-folder per class).")
    train = _convert(train, image_size, channels)
    test = _convert(test, image_size, channels)
    if subset is not None and subset < len(train):
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:subset]
        keep = keep.sort().values  # keep the original order of the chosen images
        train = ImageSet(train.images[keep], train.labels[keep])
    spec = {"dataset": name, "subset": subset, "seed": seed if subset else None,
            "image_size": train.images.shape[-1], "channels": train.images.shape[1],
            "n_train": len(train), "n_test": len(test), "fingerprint": _fingerprint(train, test)}
    return ImageData(name, train, test, classes, spec)


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


def _fingerprint(train: ImageSet, test: ImageSet) -> str:
    """A short hash of the pixels and labels: the cache notices when the data changes."""
    h = hashlib.sha1()
    for part in (train, test):
        h.update((part.images * 255).round().to(torch.uint8).numpy().tobytes())
        h.update(part.labels.numpy().tobytes())
    return h.hexdigest()[:12]


def _from_uint8(images: np.ndarray, labels) -> ImageSet:
    """(N, H, W) or (N, H, W, C) uint8 → ImageSet with (N, C, H, W) float in [0, 1]."""
    x = torch.from_numpy(np.array(images, copy=True))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return ImageSet(x.float().div(255).contiguous(), torch.tensor(np.asarray(labels), dtype=torch.long))


def _split(images: np.ndarray, labels: np.ndarray, test_fraction: float):
    """A fixed, stratified split (seed 0, whatever the run's seed: every run tests the same images)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    stratify = labels if len(counts) > 1 and counts[counts > 0].min() >= 2 else None
    return train_test_split(images, labels, test_size=test_fraction, random_state=0,
                            stratify=stratify)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)  # 0..16 → 0..255
    x_train, x_test, y_train, y_test = _split(images, digits.target, test_fraction=0.2)
    # 8x8 → 28x28 so that every model built for MNIST takes these digits too.
    to28 = lambda s: _convert(_from_uint8(*s), 28, None)  # noqa: E731
    return to28((x_train, y_train)), to28((x_test, y_test)), [str(d) for d in range(10)]


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


def _cifar_batch(path: Path):
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"])
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


def _folder(path: str, image_size: int, channels: int, test_fraction: float):
    from PIL import Image, UnidentifiedImageError

    root = Path(path).expanduser()
    if not path or not root.is_dir():
        raise DataError(f"folder:{path} is not a folder. Give an existing folder of images, e.g. "
                        "dataset='folder:/home/me/cars' (sub-folders, if any, name the classes).")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    classes = sorted({p.parent.relative_to(root).parts[0] for p in files if p.parent != root})
    images, labels, skipped = [], [], []
    for p in files:
        if p.parent == root and classes:
            skipped.append(p)  # loose files beside class folders have no label
            continue
        try:
            with Image.open(p) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                images.append(np.asarray(_center_square(im).resize((image_size, image_size),
                                                                   Image.BICUBIC)))
        except (UnidentifiedImageError, OSError, ValueError):
            skipped.append(p)
            continue
        labels.append(classes.index(p.relative_to(root).parts[0]) if classes else 0)
    if skipped:
        warnings.warn(f"folder:{path}: skipped {len(skipped)} of {len(files)} files that are not "
                      f"readable images or have no class folder (e.g. {skipped[0].name}).",
                      stacklevel=3)
    if len(images) < 2:
        raise DataError(
            f"folder:{path} holds {len(images)} readable images (of {len(files)} files); at least 2 "
            f"are needed. Put image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in it, directly or "
            "in one sub-folder per class.")
    x_train, x_test, y_train, y_test = _split(np.stack(images), np.array(labels), test_fraction)
    return _from_uint8(x_train, y_train), _from_uint8(x_test, y_test), classes or [root.name]


def _center_square(im):
    w, h = im.size
    side = min(w, h)
    return im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
