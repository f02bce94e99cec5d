import pytest
import torch

from latent_notes.classifier import ARCHS, CNN, CNNConfig, train_classifier
from latent_notes.data import load_data
from latent_notes.notebook import start_chapter
from latent_notes.results import Results, ResultsError, gather, read_results
from latent_notes.train import ParameterError, pick_device, seed_everything


def test_same_seed_same_losses_on_cpu(tmp_path):
    data = load_data("digits", subset=150)
    runs = [train_classifier(data, "cnn5x5", epochs=2, seed=7, device=torch.device("cpu"),
                             batch_size=32, cache_dir=tmp_path / str(i)) for i in range(2)]
    columns = ["train_loss", "test_loss", "test_accuracy"]
    assert runs[0].history[columns].equals(runs[1].history[columns])
    other = train_classifier(data, "cnn5x5", epochs=2, seed=8, device=torch.device("cpu"),
                             batch_size=32, cache_dir=tmp_path / "other")
    assert not other.history["train_loss"].equals(runs[0].history["train_loss"])


def test_training_learns_and_history_has_one_row_per_epoch(tmp_path):
    data = load_data("digits")
    result = train_classifier(data, "cnn3x3", epochs=3, seed=0, device=torch.device("cpu"),
                              cache_dir=tmp_path)
    history = result.history
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"train_loss", "test_loss", "train_accuracy", "test_accuracy", "seconds",
            "images_per_s"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["test_accuracy"].iloc[-1] > 0.9


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_classifier_shapes(arch, channels, size):
    model = CNN(CNNConfig(arch=arch, channels=channels, image_size=size))
    x = torch.rand(4, channels, size, size)
    assert model(x).shape == (4, 10)
    assert model.features(x).ndim == 2


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ParameterError, match="device must be one of"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            pick_device("cuda")


@pytest.mark.parametrize("kwargs, word", [({"epochs": 0}, "epochs"), ({"seed": -1}, "seed"),
                                          ({"device": "gpu"}, "device"),
                                          ({"dataset": "nope"}, "Unknown dataset")])
def test_bad_chapter_parameters_are_explained(tmp_path, kwargs, word):
    params = dict(dataset="digits", data_root=None, epochs=1, subset=None, seed=0, device="cpu",
                  results_dir=tmp_path)
    params.update(kwargs)
    with pytest.raises(ValueError, match=word):
        start_chapter("01_test", **params)


def test_seed_everything_rejects_non_integers():
    with pytest.raises(ParameterError):
        seed_everything(1.5)


def test_results_are_tidy_saved_at_once_and_replaced_per_dataset(tmp_path):
    results = Results("01_x", "digits", tmp_path)
    results.add("cnn5x5", "test_accuracy", 0.9)
    table = read_results(tmp_path / "01_x.csv")  # on disk after the first number
    assert table.to_dict("records") == [{"chapter": "01_x", "dataset": "digits", "model": "cnn5x5",
                                         "setting": "", "metric": "test_accuracy", "value": 0.9}]
    results.add("cnn5x5", "test_accuracy", 0.95)  # same key: replaced, not duplicated
    Results("01_x", "mnist", tmp_path).add("cnn5x5", "test_accuracy", 0.99, setting="a=1")
    rerun = Results("01_x", "digits", tmp_path)  # a new digits run drops the old digits rows
    rerun.add("cnn3x3", "test_accuracy", 0.8)
    table = read_results(tmp_path / "01_x.csv")
    assert sorted(zip(table["dataset"], table["model"], table["value"])) == [
        ("digits", "cnn3x3", 0.8), ("mnist", "cnn5x5", 0.99)]


def test_gather_names_missing_chapters(tmp_path):
    Results("01_x", "digits", tmp_path).add("m", "k", 1.0)
    assert len(gather(tmp_path, ["01_x"])) == 1
    with pytest.raises(ResultsError, match="02_y"):
        gather(tmp_path, ["01_x", "02_y"])
    with pytest.warns(UserWarning, match="02_y.*--chapters 02_y"):
        partial = gather(tmp_path, ["01_x", "02_y"], strict=False)
    assert list(partial["chapter"]) == ["01_x"]
    Results("05_z", "digits", tmp_path, label="comparison").add("ae", "psnr", 20.0)
    assert read_results(tmp_path / "05_z.csv")["chapter"].tolist() == ["comparison"]
