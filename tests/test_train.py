import pytest
import torch

from latent_notes import checks, training
from latent_notes.book.notebook import start_chapter
from latent_notes.book.results import Results, ResultsError, gather, read_results
from latent_notes.data import Batches, load_data
from latent_notes.families import CLASSIFIER, train
from latent_notes.models.classifier import ARCHS, CNN, CNNConfig
from latent_notes.models.family import sized
from latent_notes.store.cache import Run
from latent_notes.training import (
    ParameterError,
    TrainConfig,
    fit,
    pick_device,
    seed_everything,
    train_model,
)

CPU = torch.device("cpu")


def classifier(data, arch, **options):
    return sized(CNNConfig, data, arch=arch, num_classes=len(data.classes), **options)


def test_same_seed_same_losses_on_cpu(tmp_path):
    data = load_data("digits", subset=150)
    model_config = classifier(data, "cnn5x5", width=8)
    recipe = CLASSIFIER.train_config(epochs=2, batch_size=32, lr=5e-3)
    runs = [train(CLASSIFIER, data, model_config, recipe, run=Run.here(7, CPU, tmp_path / str(i)))
            for i in range(2)]
    columns = ["train_loss", "val_loss", "val_accuracy"]
    assert runs[0].history[columns].equals(runs[1].history[columns])
    other = train(CLASSIFIER, data, model_config, recipe,
                             run=Run.here(8, CPU, tmp_path / "other"))
    assert not other.history["train_loss"].equals(runs[0].history["train_loss"])


def test_training_learns_and_history_has_one_row_per_epoch(tmp_path):
    data = load_data("digits")
    result = train(CLASSIFIER, data, classifier(data, "cnn3x3", width=8),
                   CLASSIFIER.train_config(epochs=3, batch_size=32, lr=5e-3),
                   run=Run.here(0, CPU, tmp_path))
    history = result.history
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "seconds",
            "images_per_s"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_accuracy"].iloc[-1] > 0.9


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_classifier_shapes(arch, channels, size):
    model = CNN(CNNConfig(arch=arch, channels=channels, image_size=size))
    x = torch.rand(4, channels, size, size)
    assert model(x).shape == (4, 10)
    assert model.features(x).ndim == 2


@pytest.mark.parametrize("options, named", [(dict(arch="resnet"), "arch"),
                                            (dict(fc_width=0), "fc_width"),
                                            (dict(dropout=1.0), "dropout"),
                                            (dict(arch="cnn_deep", image_size=4), "cnn_deep")])
def test_classifier_config_rejects_impossible_values(options, named):
    with pytest.raises(ParameterError, match=named):
        CNNConfig(**options)
    model = CNN(CNNConfig(fc_width=24))  # cnn_deep: the hidden layer has fc_width units
    assert model.features(torch.rand(2, 1, 28, 28)).shape == (2, 24)


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
    with pytest.raises(ParameterError, match="seed"):
        seed_everything(1.5)
    with pytest.raises(ParameterError, match="seed"):
        seed_everything(-1)
    seed_everything(3)
    first = torch.rand(3)
    seed_everything(3)
    assert torch.equal(first, torch.rand(3))


def test_parameter_error_is_one_class_everywhere():
    assert training.ParameterError is checks.ParameterError
    assert issubclass(ParameterError, ValueError)
    with pytest.raises(ParameterError, match="epochs must be a positive integer"):
        checks.check_positive(epochs=0)


# -- the loop: fit and train ------------------------------------------------------------------

def toy_problem(n=64, seed=0):
    """A linear regression y = x·w: a model, its loss (with a second logged term), batches."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])

    def loss_fn(model, x, y):
        error = model(x).squeeze(1) - y
        return {"loss": error.pow(2).mean(), "mae": error.abs().mean()}

    torch.manual_seed(seed)
    return (torch.nn.Linear(3, 1), loss_fn, Batches(x, y, 16, shuffle=True, seed=seed),
            Batches(x, y, 32))


def test_fit_runs_callbacks_once_per_epoch_and_their_dict_joins_the_row():
    model, loss_fn, batches, val_batches = toy_problem()
    calls = []

    def probe(epoch, seen):
        calls.append((epoch, seen))
        return {"probe": 10 * epoch, "weight_norm": float(seen.weight.detach().norm())}

    def silent(epoch, seen):  # a callback may return nothing
        calls.append((epoch, "silent"))

    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    history = fit(model, loss_fn, batches, val_batches, epochs=3, optimizer=optimizer, device=CPU,
                  callbacks=[probe, silent])
    assert calls == [(1, model), (1, "silent"), (2, model), (2, "silent"), (3, model),
                     (3, "silent")]
    assert list(history["epoch"]) == [1, 2, 3]
    assert list(history["probe"]) == [10, 20, 30]
    assert history["weight_norm"].iloc[-1] == pytest.approx(float(model.weight.detach().norm()))
    assert {"train_loss", "train_mae", "val_loss", "val_mae", "seconds",
            "images_per_s"} <= set(history.columns)
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]  # it learns
    assert history["val_loss"].iloc[-1] == pytest.approx(
        training.evaluate(model, loss_fn, val_batches, CPU)["loss"])


@pytest.mark.parametrize("per_batch, expected", [(False, [1.0, 0.5, 0.25]),
                                                 (True, [0.5 ** 4, 0.5 ** 8, 0.5 ** 12])])
def test_fit_steps_the_scheduler_per_epoch_or_per_batch(per_batch, expected):
    model, loss_fn, batches, _ = toy_problem()  # 64 images in batches of 16: 4 steps an epoch
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    lrs = lambda epoch, model: {"lr": optimizer.param_groups[0]["lr"]}  # noqa: E731
    history = fit(model, loss_fn, batches, epochs=3, optimizer=optimizer, device=CPU,
                  scheduler=scheduler, step_per_batch=per_batch, callbacks=[lrs])
    assert history["lr"].tolist() == pytest.approx(expected)
    assert not any(column.startswith("val_") for column in history)  # no batches to watch


@pytest.mark.parametrize("config, lrs", [
    (TrainConfig(epochs=3, batch_size=16, lr=0.1), [0.1, 0.1, 0.1]),
    (TrainConfig(epochs=3, batch_size=16, lr=0.1, schedule="step", lr_drop_at=2),
     [0.1, 0.1, 0.01]),
])
def test_train_uses_adam_and_the_schedule_of_its_config(monkeypatch, config, lrs):
    made = []

    class RecordedAdam(torch.optim.Adam):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.optim, "Adam", RecordedAdam)
    model, loss_fn, batches, val_batches = toy_problem()
    history = train_model(model, loss_fn, batches, val_batches, config, device=CPU,
                    callbacks=[lambda epoch, m: {"lr": made[0].param_groups[0]["lr"]}])
    assert len(made) == 1 and list(history["epoch"]) == [1, 2, 3]
    assert history["lr"].tolist() == pytest.approx(lrs)  # the rate each epoch ran with


def test_onecycle_schedule_warms_up_then_anneals_per_batch():
    config = TrainConfig(epochs=2, batch_size=16, lr=0.1, schedule="onecycle", warmup=0.25)
    optimizer = torch.optim.Adam(torch.nn.Linear(3, 1).parameters(), lr=config.lr)
    scheduler, per_batch = training.make_schedule(optimizer, config, steps_per_epoch=4)
    assert per_batch
    lrs = []
    for _ in range(8):  # 2 epochs of 4 batches: the whole cycle
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = lrs.index(max(lrs))
    assert 0 < peak < 4 and max(lrs) == pytest.approx(0.1)  # rises in the first quarter
    assert lrs[0] < 0.1 / 10 and lrs[-1] < 0.1 / 10  # starts low, anneals to (almost) zero
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:], strict=False))


@pytest.mark.parametrize("options, named", [
    (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch_size"),
    (dict(epochs=2.5), "epochs"),
    (dict(lr=-1), "lr"),
    (dict(lr=0), "lr"),
    (dict(schedule="cosine"), "schedule"),
    (dict(warmup=1.5), "warmup"),
    (dict(schedule="onecycle", warmup=0.0), "warmup"),
    (dict(lr_drop_at=2), "lr_drop_at"),  # a drop needs schedule="step"
    (dict(schedule="step"), "lr_drop_at"),  # ... and schedule="step" needs a drop
    (dict(schedule="step", lr_drop_at=0), "lr_drop_at"),
])
def test_train_config_rejects_impossible_values_naming_the_parameter(options, named):
    with pytest.raises(ParameterError, match=rf"^{named}\b") as error:
        TrainConfig(**options)
    assert isinstance(error.value, ValueError)


def test_train_config_accepts_the_schedules():
    assert TrainConfig().schedule == "constant"
    assert TrainConfig(schedule="onecycle", warmup=0.15).warmup == 0.15
    assert TrainConfig(epochs=4, schedule="step", lr_drop_at=3).lr_drop_at == 3
    recipe = CLASSIFIER.train_config(epochs=5, batch_size=32, lr=1e-3)
    assert (recipe.epochs, recipe.batch_size, recipe.lr, recipe.schedule) == (5, 32, 1e-3,
                                                                              "onecycle")


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
    assert sorted(zip(table["dataset"], table["model"], table["value"], strict=True)) == [
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


def test_a_gpu_this_machine_does_not_have_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ParameterError, match=r"'cuda:7'.*sees 1 CUDA GPU\(s\) here \(cuda:0\)"):
        pick_device("cuda:7")
    with pytest.raises(ParameterError, match="'cuda:1'"):
        pick_device(torch.device("cuda", 1))
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ParameterError, match="device must be one of"):
        pick_device("cuda:x")


def test_a_torch_device_is_accepted_as_well_as_a_name():
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    assert isinstance(pick_device(torch.device("cpu")), torch.device)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            pick_device(torch.device("cuda"))


# -- every reader's device: names or torch.device, data moved once, the machine recorded -------

@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_fit_takes_a_device_by_name_or_as_torch_device(device):
    model, loss_fn, batches, val_batches = toy_problem()
    history = fit(model, loss_fn, batches, val_batches, epochs=2, device=device,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
    assert list(history["epoch"]) == [1, 2] and history["images_per_s"].gt(0).all()


def test_fit_reads_the_losses_once_per_epoch(monkeypatch):
    """Summed on the device: one host read per term and epoch, not one per step."""
    model, loss_fn, batches, _ = toy_problem()
    reads = []
    real = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: reads.append(1) or real(t))
    fit(model, loss_fn, batches, None, epochs=2, device="cpu",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
    assert len(batches) > 2 and len(reads) == 2 * 2  # 2 epochs x (loss, mae)


def val_batches_moved_to_a_device_keep_their_shuffles():
    x, y = torch.arange(40.0).view(20, 2), torch.arange(20)
    here = Batches(x, y, 6, shuffle=True, seed=3)
    moved = Batches(x, y, 6, shuffle=True, seed=3).to("cpu")
    assert moved.generator is not here.generator and moved.nbytes == x.nbytes + y.nbytes
    for _ in range(2):  # two epochs: the stream goes on in both the same way
        for (a, la), (b, lb) in zip(here, moved, strict=True):
            assert torch.equal(a, b) and torch.equal(la, lb)
    same = here.to("cpu")
    assert same.generator is here.generator  # one stream: resuming a run restores it


def test_data_stays_where_it_is_on_the_cpu():
    batches = Batches(torch.zeros(4, 1), torch.zeros(4), 2)
    assert training.on_device(batches, "cpu") is batches


def test_a_checkpoint_records_its_machine_outside_the_key(tmp_path):
    from latent_notes.models.classifier import build_classifier
    from latent_notes.store import cache

    data = load_data("digits", subset=60)
    config = sized(CNNConfig, data, arch="cnn3x3", num_classes=10, width=4)
    first = train(CLASSIFIER, data, config,
                  CLASSIFIER.train_config(epochs=1, batch_size=32, lr=5e-3),
                  run=Run.here(0, "cpu", tmp_path))
    assert first.trained_on["device"] == "cpu" and first.trained_on["torch"] == torch.__version__
    # the published file says CUDA: a reader on the CPU still finds it by its key
    payload = torch.load(first.path, weights_only=True)
    payload["trained_on"] = {"device": "cuda", "name": "NVIDIA H200", "cuda": "12.8",
                             "torch": "2.13.0"}
    torch.save(payload, first.path)
    again = cache.Store(tmp_path).load_or_train(first.name, first.config, build_classifier, None,
                                                device="cpu")
    assert again.status == "loaded" and again.trained_on["name"] == "NVIDIA H200"
    assert training.describe_machine(again.trained_on).startswith("an NVIDIA H200 (CUDA 12.8")
    assert training.describe_machine({}) == "a machine that was not recorded"


def test_the_deterministic_mode_sets_and_clears_every_switch(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        training.set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        training.set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.allow_tf32
    with pytest.raises(ParameterError, match="deterministic must be True or False"):
        training.set_deterministic("yes")


def test_each_device_type_is_synchronised_on_its_own_device(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append("mps"))
    training.synchronize("cuda:1")
    training.synchronize(torch.device("mps"))
    training.synchronize("cpu")
    assert calls == [torch.device("cuda:1"), "mps"]  # the GPU named, not the current one


@pytest.mark.parametrize("free, moved", [(10**9, True), (10**5, False)])
def test_data_moves_to_a_gpu_once_when_it_fits(monkeypatch, free, moved):
    batches = Batches(torch.zeros(100, 1, 28, 28), torch.zeros(100, dtype=torch.long), 10)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    monkeypatch.setattr(Batches, "to", lambda self, device: ("moved to", str(device)))
    result = training.on_device(batches, "cuda:0")
    assert (result == ("moved to", "cuda:0")) is moved and (result is batches) is not moved
