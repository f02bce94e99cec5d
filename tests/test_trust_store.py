"""What the store trusts: each test starts from one fault a file, a source or a shared folder can
bring, and checks that it is refused (or left alone) the way the issue's rows ask.

1. a config bomb (a 2 KB checkpoint naming a huge size), in the cache, under an alias, from a
   weights source: refused before anything is allocated, under a memory limit;
2. NaN and inf checkpoints, in the cache and served on 127.0.0.1: moved aside, retrained;
3. the last optimizer step making the weights NaN: stopped, never saved;
4. a stable name holding another family or another size: a miss, with one warning;
14. a cache folder shared with another machine: its fresh temporary files are left alone.
"""
import contextlib
import functools
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import asdict, fields
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import torch

from latent_notes import families
from latent_notes.checks import SIZE_LIMITS, ParameterError
from latent_notes.data import load_data
from latent_notes.models.autoencoder import AEConfig, build_autoencoder
from latent_notes.models.pixelcnn import PixelCNNConfig, build_pixelcnn
from latent_notes.models.vae import VAEConfig, build_vae
from latent_notes.store import cache, weights
from latent_notes.store.cache import Run, Store
from latent_notes.store.checkpoint import (
    MAX_NUMBERS,
    config_key,
    load_checkpoint,
    model_size,
    save_checkpoint,
)
from latent_notes.training import HOST, TrainingDiverged, TrainingState, fit, temporary_path

CONFIGS = [family.config for family in (*families.FAMILIES.values(), families.CLASSIFIER,
                                        families.PRIOR)]


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("LATENT_NOTES_PROGRESS", "0")
    monkeypatch.delenv("LATENT_NOTES_WEIGHTS", raising=False)


def ae_config(**model) -> dict:
    """A cache config of a small autoencoder (the model section overridden by ``model``)."""
    return {"model": {**asdict(AEConfig(latent_size=3, width=4)), **model},
            "train": {"epochs": 1}, "data": {"name": "digits", "fingerprint": "f00d"}, "seed": 0}


def untrained(model, state):  # a finite model, no training needed to see which file is used
    return pd.DataFrame({"epoch": [1], "train_loss": [0.5]})


def bomb(path, **model) -> dict:
    """A 2 KB checkpoint whose config asks for ``model`` (no tensors at all); returns it."""
    config = ae_config(**model)
    torch.save({"format_version": 1, "name": "ae-latent3", "key": config_key(config),
                "config": config, "builder": "autoencoder", "state_dict": {},
                "history": {"epoch": [1]}}, path)
    assert path.stat().st_size < 4096
    return config


def publish(folder, file, path, config, aliases=()) -> None:
    """``path`` copied into the export ``folder`` as ``file``, with an honest manifest."""
    folder.mkdir(exist_ok=True)
    (folder / file).write_bytes(path.read_bytes())
    entry = {"file": file, "name": "ae-latent3", "key": config_key(config),
             "bytes": path.stat().st_size, "sha256": weights.sha256_of(path),
             "aliases": list(aliases), "config": config, "headline": {}}
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "models": [entry]}))


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    """``folder`` over HTTP on 127.0.0.1 (a free port), stopped afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- 1. a config bomb is refused before anything is allocated -----------------------------------

BOMB_RUN = '''
import json, resource, sys, warnings
from pathlib import Path
import pandas as pd
from latent_notes.models.autoencoder import build_autoencoder
from latent_notes.store import weights
from latent_notes.store.cache import Store
from latent_notes.store.checkpoint import CheckpointError, load_checkpoint

root, url = Path(sys.argv[1]), sys.argv[2]
expected = json.loads((root / "expected.json").read_text())
untrained = lambda model, state: pd.DataFrame({"epoch": [1]})
# What is mapped now, plus 2 GiB: the bombs ask for 6 to 34 GB (a 12 GB Colab kernel dies).
mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (mapped + 2 * 2**30, mapped + 2 * 2**30))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cases = {
    "file": lambda: load_checkpoint(root / "bomb.pt"),
    "oversized": lambda: load_checkpoint(root / "oversized.pt"),
    "cache": lambda: Store(root / "cache").load_or_train(
        "ae-latent3", expected, build_autoencoder, untrained, device="cpu").status,
    "alias": lambda: Store(root / "cache").load_alias("ae-latent3-digits", "cpu"),
    "download": lambda: Store(root / "empty", weights.Source(url)).load_or_train(
        "ae-latent3", expected, build_autoencoder, untrained, device="cpu").status,
    "download-alias": lambda: Store(root / "empty2", weights.Source(url)).load_alias(
        "ae-latent3-digits", "cpu"),
}
out = {}
for case, load in cases.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = load()
            result = result if isinstance(result, (str, type(None))) else "a model"
        except (CheckpointError, MemoryError, RuntimeError) as err:
            result = f"raised {type(err).__name__}: {err}"
    out[case] = {"result": result, "warnings": [str(w.message) for w in caught]}
out["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(out))
'''


def test_a_config_bomb_is_refused_before_anything_is_allocated(tmp_path):
    """Row 1, from the fault: 2 KB files naming latent_size=40,000 (a 6.4 GB prior covariance
    after 1 GB of linear layers) or sizes within bounds that multiply to 8.6e9 weights, loaded
    directly, from the cache, under an alias and from a weights source on 127.0.0.1, in a
    process that may map only 2 GiB more than it has: every load is refused, naming the field
    or the count, and the process grows by less than 200 MB."""
    expected = ae_config()
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    (tmp_path / "cache").mkdir()
    bomb(tmp_path / "bomb.pt", latent_size=40_000, width=32)
    bomb(tmp_path / "oversized.pt", latent_size=4096, width=1024, image_size=512)
    entry = cache.entry_path(tmp_path / "cache", "ae-latent3", expected, build_autoencoder)
    bomb(entry, latent_size=40_000, width=32)  # where the expected model's file should be
    bomb(tmp_path / "cache" / "ae-latent3-digits.pt", latent_size=40_000, width=32)
    served = bomb(tmp_path / "served.pt", latent_size=40_000, width=32)
    publish(tmp_path / "source", entry.name, tmp_path / "served.pt", served,
            aliases=["ae-latent3-digits"])  # an honest manifest of a hostile model
    with serve(tmp_path / "source") as url:
        done = subprocess.run([sys.executable, "-c", BOMB_RUN, str(tmp_path), url],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "LATENT_NOTES_PROGRESS": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    named = "latent_size must be at most 4096"
    assert named in out["file"]["result"] and "refused before its model was built" in \
        out["file"]["result"]
    assert f"more than the {MAX_NUMBERS:,}" in out["oversized"]["result"]
    # the cache: the file's config is not the one its name says, checked before building it
    assert out["cache"]["result"] == "retrained"
    assert any("different config than its name says" in w for w in out["cache"]["warnings"])
    assert out["alias"]["result"] is None and named in out["alias"]["warnings"][0]
    assert out["download"]["result"] == "trained"
    assert any("rejected" in w and named in w for w in out["download"]["warnings"])
    assert out["download-alias"]["result"] is None
    assert any(named in w for w in out["download-alias"]["warnings"])
    assert out["grew_mb"] < 200, out


def test_a_download_must_hold_the_model_its_manifest_entry_names(tmp_path):
    """Row 1, the source's side: the manifest lists a small autoencoder, the file (its sha256
    duly listed) holds another one; it is refused before being built or entering the cache."""
    listed = ae_config()
    path = tmp_path / "other.pt"
    model_config = ae_config(latent_size=5)
    save_checkpoint(path, build_autoencoder(model_config), model_config, build_autoencoder,
                    pd.DataFrame({"epoch": [1]}), "ae-latent5")
    publish(tmp_path / "source", "ae.pt", path, listed)
    (tmp_path / "cache").mkdir()
    with serve(tmp_path / "source") as url, \
            pytest.warns(UserWarning, match="another config than the manifest's entry 'ae.pt'"):
        fetched = weights.Source(url).fetch("ae.pt", tmp_path / "cache" / "ae.pt")
    assert fetched is None and not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_every_size_field_of_every_config_has_a_bound_that_names_it(config_class):
    sizes = [f for f in fields(config_class)
             if type(f.default) is int and "choices" not in f.metadata]
    assert sizes and all(f.name in SIZE_LIMITS for f in sizes), [f.name for f in sizes]
    for f in sizes:
        with pytest.raises(ParameterError, match=f"^{f.name} must be at most"):
            config_class(**{f.name: SIZE_LIMITS[f.name] + 1})


def test_a_models_size_is_counted_without_building_it():
    config = ae_config(latent_size=4096, width=1024, image_size=512)
    state = torch.get_rng_state()
    assert model_size(build_autoencoder, config) > 8 * 10**9  # counted on the meta device
    assert torch.equal(torch.get_rng_state(), state)  # the random streams are untouched
    small = ae_config()
    model = build_autoencoder(small)
    assert model_size(build_autoencoder, small) == sum(
        t.numel() for t in [*model.parameters(), *model.buffers()])


# -- 2. NaN and inf checkpoints are moved aside and retrained ------------------------------------

def poisoned(path, value: float) -> dict:
    """A well-formed checkpoint of a small autoencoder, one weight set to ``value``."""
    config = ae_config()
    model = build_autoencoder(config)
    with torch.no_grad():
        model.decoder[0].weight[0, 0] = value
    save_checkpoint(path, model, config, build_autoencoder, pd.DataFrame({"epoch": [1]}),
                    "ae-latent3")
    return config


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("via", ["cache", "http", "alias"])
def test_a_non_finite_checkpoint_is_never_used(tmp_path, value, via):
    """Row 2, from the fault: a checkpoint holding NaN or ±inf, in the cache, served on
    127.0.0.1 by a weights source, or under a stable name."""
    config = ae_config()
    store = tmp_path / "cache"
    store.mkdir()
    entry = cache.entry_path(store, "ae-latent3", config, build_autoencoder)
    if via == "cache":
        poisoned(entry, value)
        with pytest.warns(UserWarning, match="moved to.*NaN or infinite"):
            result = Store(store).load_or_train("ae-latent3", config, build_autoencoder,
                                                untrained, device="cpu")
        assert result.status == "retrained" and list(store.glob("*.corrupt-*"))
    elif via == "http":
        poisoned(tmp_path / "nan.pt", value)
        publish(tmp_path / "source", entry.name, tmp_path / "nan.pt", config)
        with serve(tmp_path / "source") as url, \
                pytest.warns(UserWarning, match="rejected.*NaN or infinite"):
            result = Store(store, weights.Source(url)).load_or_train(
                "ae-latent3", config, build_autoencoder, untrained, device="cpu")
        assert result.status == "trained"
        assert sorted(p.name for p in store.iterdir() if p.name != ".locks") == [entry.name]
    else:
        poisoned(store / "ae-latent3-digits.pt", value)
        with pytest.warns(UserWarning, match="NaN or infinite"):
            assert Store(store).load_alias("ae-latent3-digits", "cpu") is None
        return
    assert all(torch.isfinite(t).all() for t in result.model.state_dict().values()
               if t.is_floating_point())
    assert load_checkpoint(entry).status == "loaded"  # what the cache holds now is finite


# -- 3. weights that the last step made NaN are never saved --------------------------------------

class PoisonAt(torch.optim.SGD):
    """SGD whose step number ``at`` writes a NaN into the first weight: a divergence that the
    loss of that step (computed before it) does not show."""

    def __init__(self, params, at: int):
        super().__init__(params, lr=0.01)
        self.at, self.steps = at, 0

    def step(self, closure=None):
        super().step(closure)
        self.steps += 1
        if self.steps == self.at:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = float("nan")


def toy(n_batches: int = 4):
    torch.manual_seed(0)
    x = torch.randn(8 * n_batches, 2)
    batches = [(x[i:i + 8], x[i:i + 8].sum(1, keepdim=True)) for i in range(0, len(x), 8)]
    return torch.nn.Linear(2, 1), batches, lambda model, x, y: {
        "loss": torch.nn.functional.mse_loss(model(x), y)}


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_nan_made_by_the_last_step_of_an_epoch_stops_training(tmp_path, epoch):
    """Row 3, from the fault: the last step of epoch 1 (then of the last epoch, 2 of 2) writes
    a NaN; every loss of the epoch was computed before it."""
    model, batches, loss = toy()
    state = TrainingState(tmp_path / "run.state.pt", "k")
    saved = []
    state.save = lambda snapshot: saved.append(snapshot["epoch"])
    with pytest.raises(TrainingDiverged, match=f"after the last step of epoch {epoch} of 2 its "
                                               r"weights held NaN.*weight.*mean training loss"):
        fit(model, loss, batches, epochs=2, optimizer=PoisonAt(model.parameters(), 4 * epoch),
            device="cpu", name="toy", state=state)
    assert saved == [1] * (epoch - 1)  # no state holding the NaN was written


def test_a_model_made_non_finite_after_training_is_not_saved(tmp_path):
    """Row 3, the cache's side: a step after the loop (an autoencoder fits its sampling
    Gaussian after training) leaves a NaN; the trained model is refused, nothing is cached."""
    def train(model, state):
        history = untrained(model, state)
        model.prior_cov[0, 0] = float("nan")  # what a fit to non-finite codes would leave
        return history

    with pytest.raises(TrainingDiverged, match="ended with weights that hold NaN.*prior_cov"):
        Store(tmp_path).load_or_train("ae-latent3", ae_config(), build_autoencoder, train,
                                      device="cpu")
    assert not [p for p in tmp_path.iterdir() if p.name != ".locks"]


def test_the_finiteness_check_leaves_the_numbers_alone(monkeypatch):
    """Same seed, same numbers: with the check and without it, the same losses, the same
    weights and the same random stream afterwards (it reads the weights and draws nothing)."""
    from latent_notes import training

    def one_run():
        model, batches, loss = toy()
        torch.manual_seed(1)
        history = fit(model, loss, batches, epochs=2, device="cpu",
                      optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
        return history["train_loss"].tolist(), model.weight.detach().clone(), torch.rand(3)

    checked = one_run()
    monkeypatch.setattr(training, "nonfinite_weights", lambda model: [])
    unchecked = one_run()
    assert checked[0] == unchecked[0]
    assert torch.equal(checked[1], unchecked[1]) and torch.equal(checked[2], unchecked[2])


# -- 4. a stable name gives only what it names ----------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return load_data("digits", subset=100)


def store_under(path, build, model_config, data, name: str) -> None:
    config = {"model": asdict(model_config), "train": {"epochs": 1}, "data": data.spec,
              "seed": 0}
    save_checkpoint(path, build(config), config, build, pd.DataFrame({"epoch": [1]}), name)


@pytest.mark.parametrize("impostor, complaint", [
    ("vae", "holds a vae model, not the autoencoder"),
    ("ae16", "'ae-latent16' model, not the 'ae-latent4'")])
def test_a_stable_name_holding_another_family_or_size_is_a_miss(tmp_path, digits, impostor,
                                                                complaint):
    """Row 4, from the fault: "ae-latent4-digits" holds a VAE, or an autoencoder of latent 16,
    trained on the very same images (so the data fingerprint alone would pass it)."""
    aes = families.FAMILIES["ae"]
    path = tmp_path / f"{families.alias(aes, digits, latent_size=4)}.pt"
    if impostor == "vae":
        store_under(path, build_vae, VAEConfig(channels=1, image_size=digits.image_size,
                                               latent_size=4, width=4, fc_width=8), digits,
                    "vae-latent4")
    else:
        store_under(path, build_autoencoder, aes.configure(digits, latent_size=16, width=4),
                    digits, "ae-latent16")
    run = Run.here(0, "cpu", tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, rows = families.load_family("ae", digits, latent_size=4, epochs=1, run=run)
    ignored = [str(w.message) for w in caught if "Ignoring the model stored as" in str(w.message)]
    assert len(ignored) == 1 and complaint in ignored[0], [str(w.message) for w in caught]
    assert type(model).__name__ == "Autoencoder" and model.config.latent_size == 4
    assert rows[0]["source"] == "trained here"
    # ... and the name now holds what it stands for: found again, with no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, rows = families.load_family("ae", digits, latent_size=4, epochs=1, run=run)
    assert rows[0]["source"] == "its chapter (cache)"


def test_a_prior_of_other_codebooks_is_not_taken_for_this_vqvae2s(tmp_path, digits):
    expected = PixelCNNConfig(codebook_size=64, grid_size=4, channels=8, layers=2,
                              num_classes=10)
    check = families.stands_for(families.PRIOR, expected, "codebook_size", "grid_size",
                                "cond_codebook_size", "num_classes")
    other = PixelCNNConfig(codebook_size=512, grid_size=4, channels=8, layers=2, num_classes=10)
    store_under(tmp_path / "prior-top-digits.pt", build_pixelcnn, other, digits, "prior-top")
    with pytest.warns(UserWarning, match=r"codebook_size=512 \(not 64\)"):
        assert Store(tmp_path).load_alias("prior-top-digits", "cpu", check) is None
    store_under(tmp_path / "prior-top-digits.pt", build_pixelcnn, expected, digits, "prior-top")
    assert Store(tmp_path).load_alias("prior-top-digits", "cpu", check) is not None


# -- 14. a cache folder shared by several machines -----------------------------------------------

def test_a_shared_cache_leaves_another_machines_fresh_files_alone(tmp_path):
    """Row 14, from the fault: another machine's fresh temporary file and download folder,
    whose process ids mean nothing here (one of them is the id of a dead process of ours)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        theirs = [tmp_path / f".ae-latent4-abc.pt.{dead}@other-machine.tmp",
                  tmp_path / f".download.ab12cd34.{dead}@other-machine.tmp",
                  tmp_path / f".ae-latent4-abc.pt.{dead}.tmp"]  # a writer that named no host
        theirs[0].write_bytes(b"being written over there")
        theirs[1].mkdir()
        (theirs[1] / "model.pt").write_bytes(b"downloading")
        theirs[2].write_bytes(b"an older version's file")
        ours_dead = tmp_path / f".ae-latent4-abc.pt.{dead}@{HOST}.tmp"
        ours_busy = tmp_path / f".ae-latent4-abc.pt.{alive.pid}@{HOST}.tmp"
        ours_dead.write_bytes(b"half")
        ours_busy.write_bytes(b"being written here")
        old = tmp_path / f".state.pt.{dead}@other-machine.tmp"
        old.write_bytes(b"left a day ago")
        day_ago = time.time() - 24 * 3600
        os.utime(old, (day_ago, day_ago))
        cache.require_writable(tmp_path)
        assert all(path.exists() for path in theirs) and ours_busy.exists()
        assert not ours_dead.exists() and not old.exists()
        # ... and once they are hours old, whoever wrote them, they go
        later = time.time() + cache.STALE_AFTER + 60
        assert all(cache.is_stale(path, now=later) for path in theirs)
    finally:
        alive.kill()


def test_temporary_files_name_their_machine(tmp_path):
    tmp = temporary_path(tmp_path / "ae.pt")
    assert tmp.name == f".ae.pt.{os.getpid()}@{HOST}.tmp" and "." not in HOST
    assert not cache.is_stale(tmp)  # our own, alive
