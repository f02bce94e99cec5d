"""Damaged data files and awkward image folders, each test starting from the fault itself:
every reader names the file and the fix, a damaged download is fetched again, and a folder's
images, class names and name come out as they are, in the data and in the figures."""
import gzip
import io
import json
import pickle
import struct

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torchvision
from conftest import write_idx
from matplotlib.cbook import is_math_text
from matplotlib.text import Text
from PIL import ExifTags, Image

from latent_notes.data import (
    ClassName,
    DamagedFile,
    DataError,
    class_index,
    load_data,
    read_idx,
)
from latent_notes.experiments import plots


def offline(*args, **kwargs):
    raise RuntimeError("Error downloading: <urlopen error Name or service not known>")


def idx_header(*dims) -> bytes:
    return struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def every_image(data) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.cat([data.train.images, data.val.images, data.test.images]),
            torch.cat([data.train.labels, data.val.labels, data.test.labels]))


# -- row 5: MNIST's IDX archives ----------------------------------------------------------------

def test_a_truncated_gzip_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (50, 28, 28)))
    path.write_bytes(path.read_bytes()[:2000])  # a download cut short
    with pytest.raises(DamagedFile) as err:
        read_idx(path)
    message = str(err.value)
    assert str(path) in message and "cut short" in message and "Delete it" in message


def test_a_file_that_is_not_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"<html><body>404 Not Found</body></html>")  # what a proxy sends
    with pytest.raises(DamagedFile, match="not a readable gzip archive") as err:
        read_idx(path)
    assert str(path) in str(err.value) and "Delete it" in str(err.value)


@pytest.mark.parametrize("raw, why", [(b"\x00\x00", "only 2 bytes"),
                                      (idx_header(50, 28, 28)[:9], "short header")])
def test_a_short_header_names_the_file(tmp_path, raw, why):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DamagedFile, match=why) as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("dims", [(2**32 - 1,) * 3, (2**16, 2**12, 2**12)])
def test_header_dimensions_that_overflow_are_refused_before_anything_is_read(tmp_path, dims):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx_header(*dims) + bytes(4096))
    with pytest.raises(DamagedFile, match="header out of bounds") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_a_damaged_mnist_archive_is_fetched_again(mnist_root, monkeypatch):
    raw = mnist_root / "MNIST" / "raw"
    damaged = raw / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:200])
    fetched = []

    def fetch(root, train, download):  # torchvision's MNIST, downloading what is missing
        fetched.append(train)
        if not damaged.exists():
            write_idx(damaged, np.random.default_rng(1).integers(0, 256, (20, 28, 28)))

    monkeypatch.setattr(torchvision.datasets, "MNIST", fetch)
    data = load_data("mnist", data_root=mnist_root)
    assert fetched and len(data.test) == 20
    assert not list(raw.glob("*.damaged"))  # nothing left aside


def test_a_damaged_archive_offline_is_put_back_and_named_with_the_fix(mnist_root, monkeypatch):
    damaged = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    cut = damaged.read_bytes()[:30]
    damaged.write_bytes(cut)
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DamagedFile) as err:
        load_data("mnist", data_root=mnist_root)
    message = str(err.value)
    assert str(damaged) in message and "fetching the mnist data set again failed" in message
    assert "LATENT_NOTES_DATA" in message and "\n" not in message  # one paragraph
    assert damaged.read_bytes() == cut  # back in place, as it was


def test_mnist_images_and_labels_that_disagree_are_refused(mnist_root, monkeypatch):
    raw = mnist_root / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(49) % 10)  # one label short
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DamagedFile, match="50 images but 49 labels"):
        load_data("mnist", data_root=mnist_root)


# -- row 6: CIFAR-10's pickle batches -----------------------------------------------------------

def write_batch(path, n_images, n_labels):
    rng = np.random.default_rng(1)
    with open(path, "wb") as f:
        pickle.dump({"data": rng.integers(0, 256, (n_images, 3072)).astype(np.uint8),
                     "labels": list(rng.integers(0, 10, n_labels))}, f)


def test_a_cifar_batch_with_fewer_labels_than_images_is_refused(cifar_root, monkeypatch):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_2"
    write_batch(path, 8, 7)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DamagedFile, match="data_batch_2 holds 8 images but 7 labels") as err:
        load_data("cifar10", data_root=cifar_root)
    assert "fetching the cifar10 data set again failed" in str(err.value)
    assert path.exists()


def test_a_damaged_cifar_batch_is_fetched_again(cifar_root, monkeypatch):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_2"
    write_batch(path, 8, 7)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10",
                        lambda root, train, download: path.exists() or write_batch(path, 8, 8))
    data = load_data("cifar10", data_root=cifar_root)
    assert len(data.train) + len(data.val) == 40


# -- row 7: 16-bit and float images --------------------------------------------------------------

def write_grey(root, images: dict):
    """root/<class>/<i>.<suffix>: {(class, suffix): [2-D arrays]} saved by Pillow as they are."""
    for (label, suffix), arrays in images.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i, array in enumerate(arrays):
            Image.fromarray(array).save(root / label / f"{i}.{suffix}")


def test_a_16_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    level = lambda share: np.full((16, 16), round(share * 65535), np.uint16)  # noqa: E731
    write_grey(tmp_path, {("dark", "png"): [level(0.25)] * 3, ("light", "png"): [level(0.75)] * 3})
    assert Image.open(tmp_path / "dark" / "0.png").mode.startswith("I")  # 16 bits on disk
    data = load_data(f"folder:{tmp_path}", image_size=8, channels=1)
    images, labels = every_image(data)
    for k, share in enumerate((0.25, 0.75)):
        assert (images[labels == k] - share).abs().max() < 1 / 255


def test_a_float_tiff_is_scaled_by_its_range_and_a_nan_one_refused(tmp_path):
    unit = lambda value: np.full((16, 16), value, np.float32)  # noqa: E731
    ramp = np.tile(np.linspace(-3.0, 1000.0, 16, dtype=np.float32), (16, 1))
    broken = unit(0.5)
    broken[3, 3] = np.nan
    write_grey(tmp_path, {("dark", "tif"): [unit(0.25)] * 3, ("light", "tif"): [unit(0.75)] * 3,
                          ("ramp", "tif"): [ramp] * 3, ("nan", "tif"): [broken]})
    with pytest.warns(UserWarning, match=r"nan/0.tif \(a float image with NaN"):
        data = load_data(f"folder:{tmp_path}", image_size=16, channels=1)
    images, labels = every_image(data)
    dark, light, ramp_k = (data.classes.index(c) for c in ("dark", "light", "ramp"))
    assert (images[labels == dark] - 0.25).abs().max() < 1 / 255  # in [0, 1]: as they are
    assert (images[labels == light] - 0.75).abs().max() < 1 / 255
    ramps = images[labels == ramp_k]
    assert ramps.min() == 0 and ramps.max() == 1  # another range: over its own min to max
    assert (ramps[..., 1:] >= ramps[..., :-1]).all()  # still a ramp from left to right


# -- row 8: phone photos --------------------------------------------------------------------------

def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    folder = tmp_path / "phone"
    folder.mkdir()
    stored = np.zeros((32, 32, 3), np.uint8)
    stored[:16] = 255  # white on top as stored: the sensor's rows
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # to be shown turned 90° clockwise: white on the right
    for i in range(4):
        Image.fromarray(stored).save(folder / f"{i}.jpg", exif=exif, quality=95)
    data = load_data(f"folder:{folder}", image_size=32, channels=1)
    images, _ = every_image(data)
    assert images[..., 16:].mean() > 0.9 and images[..., :16].mean() < 0.1


# -- row 9: class names with dollar signs ---------------------------------------------------------

def dollar_folder(root):
    rng = np.random.default_rng(0)
    for label in ("$5_$", "$x$"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                root / label / f"{i}.png")
    return load_data(f"folder:{root}", image_size=8)


def drawn_texts(fig) -> list[str]:
    """Every text of ``fig`` after a real draw (savefig raises where mathtext cannot parse)."""
    fig.savefig(io.BytesIO(), format="png")
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
    plt.close(fig)
    return texts


def test_dollar_class_names_are_plain_text_in_every_figure(tmp_path):
    data = dollar_folder(tmp_path / "money")
    classes = data.classes
    assert classes == ["$5_$", "$x$"]
    x, y = data.train.images[:4], data.train.labels[:4]
    figures = [
        plots.image_grid(x, 2, captions=[classes[k] for k in y],
                         title=f"Images of {data.name}, the first a '{classes[int(y[0])]}'"),
        plots.image_grid(torch.cat([x[:2], x[:2]]), 2, row_labels=["$z_{1}$", "$z_{2}$"],
                         col_labels=classes),
        plots.image_grid(x[:2], 1, row_labels=[*classes]),
        plots.confusion_matrix_plot([0, 1, 1], [1, 1, 0], classes, title=f"{classes[0]} or not"),
        plots.class_shares({"samples": [0.4, 0.6]}, classes, title="shares"),
        plots.code_maps(x[:2], torch.zeros(2, 2, 2, dtype=torch.long),
                        torch.zeros(2, 4, 4, dtype=torch.long), 4, 4, captions=classes),
    ]
    texts = [t for fig in figures for t in drawn_texts(fig)]
    for name in classes:
        assert plots.plain(name) in texts  # drawn as typed ...
    assert not any(is_math_text(t) for t in texts if "5_" in t or "x$" in t)  # ... never maths
    assert "$z_{1}$" in texts and is_math_text("$z_{1}$")  # a figure's own maths stays maths


def test_class_names_stay_the_strings_they_were_made_from(tmp_path):
    data = dollar_folder(tmp_path / "money")
    name = data.classes[0]
    assert isinstance(name, ClassName) and name == "$5_$" and hash(name) == hash("$5_$")
    assert json.dumps(data.classes) == json.dumps(["$5_$", "$x$"])
    assert pickle.loads(pickle.dumps(data.classes)) == data.classes
    assert f"class {name}" == "class $5_$"  # sentences and web pages get the name itself
    assert class_index(data.classes, "$x$") == 1


# -- row 10: a folder's name, never its path ------------------------------------------------------

def test_a_folder_data_set_shows_its_own_name_and_no_path(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home" / "someone"
    folder = home / "photos" / "cars"
    dollar_folder(folder)  # any images will do
    (folder / "$x$" / "broken.png").write_bytes(b"not a png")
    monkeypatch.setenv("HOME", str(home))
    with pytest.warns(UserWarning) as record:
        data = load_data("folder:~/photos/cars", image_size=8)
    print(data)
    shown = [capsys.readouterr().out, repr(data), data.name, data.description,
             *[str(w.message) for w in record],
             *drawn_texts(plots.image_grid(data.train.images[:4], 2,
                                           title=f"The first images of {data.name}"))]
    assert data.name == "folder:cars"
    for text in shown:
        assert str(tmp_path) not in text and "someone" not in text and "photos" not in text
    assert data.spec["dataset"] == "folder:~/photos/cars"  # the cache key keeps what was asked
    monkeypatch.chdir(folder)
    with pytest.warns(UserWarning, match="folder:cars: skipped 1"):
        assert load_data("folder:.", image_size=8).name == "folder:cars"
    with pytest.raises(DataError, match="nope is not a folder"):  # an error names the path
        load_data("folder:~/nope")
