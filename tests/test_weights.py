"""Trained models for readers: export, serve on 127.0.0.1, fetch verified, fall back to training."""
import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from latent_notes import families
from latent_notes.checks import ParameterError
from latent_notes.data import load_data
from latent_notes.store import weights
from latent_notes.store.cache import Run, Store

ALIAS = "ae-latent3-digits"  # the stable name train gives its chapter's model
SOURCE = {}  # the weights source the test under way uses (see `use`)


def use(weights_value):
    """Let load_again (and the test) fetch from the source ``weights_value`` names."""
    SOURCE["now"] = weights.Source.of(weights_value)
    return SOURCE["now"]


@pytest.fixture(autouse=True)
def fresh_source(monkeypatch):
    """Each test starts with no weights source and no memory of earlier manifests."""
    monkeypatch.delenv("LATENT_NOTES_WEIGHTS", raising=False)
    SOURCE.clear()
    monkeypatch.setenv("LATENT_NOTES_PROGRESS", "0")


def train_tiny(data, cache_dir):
    aes = families.FAMILIES["ae"]
    return families.train(aes, data, *aes.recipe(data, epochs=1, latent_size=3, width=4),
                          run=Run.here(0, "cpu", cache_dir))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny 'build': one autoencoder trained with its events logged, then exported."""
    root = tmp_path_factory.mktemp("build")
    data = load_data("digits", subset=100)
    reports = root / "reports"
    reports.mkdir()
    (reports / "build-report.json").write_text(json.dumps({"profile": "tiny", "chapters": {}}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LATENT_NOTES_EVENTS", str(reports / "02_autoencoder.events.jsonl"))
        trained = train_tiny(data, root / "cache")
    manifest = weights.export("tiny", root / "export", root / "cache", reports)
    return root / "export", manifest, trained, data


@contextlib.contextmanager
def serve(folder, handler_class=None):
    """``folder`` served over HTTP on 127.0.0.1 (a free port), stopped afterwards; by
    ``handler_class`` when a test needs a server that misbehaves."""
    handler = functools.partial(handler_class or QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(exported):
    with serve(exported[0]) as url:
        yield url


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def no_training(model, state):
    raise AssertionError("the model was trained although the weights source has it")


def test_export_writes_every_checkpoint_with_its_manifest(exported):
    folder, manifest, trained, _ = exported
    (entry,) = manifest["models"]
    assert entry["file"] == trained.path.name and (folder / entry["file"]).exists()
    assert entry["bytes"] == trained.path.stat().st_size
    assert entry["sha256"] == weights.sha256_of(trained.path)
    assert entry["aliases"] == [ALIAS]
    assert entry["config"]["model"]["latent_size"] == 3
    assert entry["headline"]["metric"] == "val_loss" and entry["headline"]["value"] > 0
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_export_refuses_a_build_of_another_profile(exported, tmp_path):
    reports = exported[0].parent / "reports"
    with pytest.raises(weights.WeightsError, match="'tiny' profile, not 'standard'"):
        weights.export("standard", tmp_path / "out", exported[0].parent / "cache", reports)


def load_again(trained, data, cache_dir, train=no_training):
    """load_or_train with the trained model's exact config, in another cache."""
    from latent_notes.models.autoencoder import build_autoencoder

    return Store(cache_dir, SOURCE.get("now")).load_or_train(
        trained.name, trained.config, build_autoencoder, train, device=torch.device("cpu"))


@pytest.mark.parametrize("via", ["http", "folder"])
def test_an_empty_cache_downloads_verifies_and_trains_nothing(exported, server, tmp_path, via):
    folder, _, trained, data = exported
    use(server if via == "http" else str(folder))
    result = load_again(trained, data, tmp_path)
    assert result.status == "downloaded"
    x = data.test.images[:8]
    assert torch.allclose(result.model(x).recon, trained.model(x).recon, atol=1e-6)
    assert (tmp_path / trained.path.name).exists()  # now in the cache: next time it is loaded
    assert load_again(trained, data, tmp_path).status == "loaded"


def test_a_model_found_by_its_alias(exported, server, tmp_path):
    _, _, trained, data = exported
    use(server)
    found = Store(tmp_path, SOURCE["now"]).load_alias(ALIAS, torch.device("cpu"))
    assert found is not None and found.name == trained.name
    assert (tmp_path / f"{ALIAS}.pt").exists() and (tmp_path / trained.path.name).exists()


@pytest.mark.parametrize("via", ["http", "folder"])
def test_a_tampered_file_is_rejected_by_its_hash_and_the_model_trained(exported, tmp_path, via):
    folder, _, trained, data = exported
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for path in folder.iterdir():
        tampered.joinpath(path.name).write_bytes(path.read_bytes())
    blob = bytearray((tampered / trained.path.name).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tampered / trained.path.name).write_bytes(bytes(blob))
    calls = []
    with serve(tampered) as url, pytest.warns(UserWarning, match="rejected.*trained here"):
        use(url if via == "http" else str(tampered))
        result = load_again(trained, data, tmp_path / "cache",
                            train=lambda model, state: calls.append(1) or trained.history)
    assert calls == [1] and result.status == "trained"
    files = [p.name for p in (tmp_path / "cache").iterdir() if p.name != ".locks"]
    assert files == [trained.path.name]  # no debris


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_costs_one_warning_and_a_training_run(exported, tmp_path):
    _, _, trained, data = exported
    port = free_port()
    use(f"http://127.0.0.1:{port}")
    with pytest.warns(UserWarning, match="could not be read.*trained here"):
        result = load_again(trained, data, tmp_path, train=lambda model, state: trained.history)
    assert result.status == "trained"
    assert SOURCE["now"].fetch("other.pt", tmp_path / "other.pt") is None  # no second try


def test_a_password_in_the_weights_url_is_never_shown(exported, tmp_path):
    _, _, trained, data = exported
    port = free_port()
    use(f"http://alice:hunter2@127.0.0.1:{port}")
    with pytest.warns(UserWarning) as seen:
        load_again(trained, data, tmp_path, train=lambda model, state: trained.history)
    text = " ".join(str(w.message) for w in seen) + repr(SOURCE["now"])
    assert f"http://127.0.0.1:{port}" in text
    assert "hunter2" not in text and "alice" not in text
    assert weights.shown_location("/home/alice/weights") == "the folder 'weights'"


def test_a_broken_manifest_is_named_and_training_goes_on(exported, tmp_path):
    _, _, trained, data = exported
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "manifest.json").write_text('{"models": [{"file": "x.pt"}]}')
    use(str(tmp_path / "source"))
    with pytest.warns(UserWarning,
                      match="manifest.json of the folder 'source' is not a valid weights manifest"):
        result = load_again(trained, data, tmp_path / "cache",
                            train=lambda m, state: trained.history)
    assert result.status == "trained"


@pytest.mark.parametrize("value", ["ftp://example.org/w", "/no/such/folder", "on",
                                   "http://example.org/w"])
def test_a_bad_weights_value_names_the_three_forms(value):
    with pytest.raises((ParameterError, weights.WeightsError), match='"auto".*"off".*URL|https'):
        weights.Source.of(value)


def test_off_and_the_environment(monkeypatch, tmp_path):
    assert weights.Source.of("off") is None
    monkeypatch.setenv("LATENT_NOTES_WEIGHTS", str(tmp_path))
    assert weights.Source.of(None).location == str(tmp_path.resolve())
    assert weights.resolve("auto").endswith("/releases/latest/download")


# Lighter evaluations than the quick book's (fewer samples, draws and points): what the models
# are is unchanged, so their cache keys are the quick build's.
LIGHT = ["04.samples_per_class=2", "04.judged_per_class=2", "05.n_samples=40",
         "05.fid_draws=2", "05.label_repeats=1", "05.labels_per_class=[10]"]


@pytest.mark.integration
def test_the_quick_book_runs_from_exported_weights_and_trains_nothing(tmp_path):
    """Export the quick build's models, serve them on 127.0.0.1, and run chapters 4 and 5 with
    an empty cache: every model of the build report must say 'downloaded'. Between them they
    ask for every family (chapter 5 loads chapter 2's AE and chapter 3's VAE by their recipes,
    chapter 4 its VQ-VAE-2, priors and chapter 1's judge); the export holds every model of
    every chapter's build events by construction (`weights.export`), so running chapters 2
    and 3 as well (75 s more) would test the same download path again."""
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "weights"
    subprocess.run([sys.executable, "-m", "latent_notes.store.weights", "export", "--profile",
                    "quick", str(out)], cwd=root, check=True, capture_output=True)
    env = {**os.environ, "LATENT_NOTES_BUILD_DIR": str(tmp_path / "build"),
           "LATENT_NOTES_PROGRESS": "0"}
    with serve(out) as url:
        run = subprocess.run([sys.executable, "-m", "latent_notes.book.build", "--chapters",
                              "04", "05", "--no-render",
                              "--cache-dir", str(tmp_path / "cache"),
                              "--results-dir", str(tmp_path / "results"), "-p", f"weights={url}",
                              *[arg for p in LIGHT for arg in ("-p", p)]],
                             cwd=root, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "build" / "reports" / "build-report.json").read_text())
    events = [m for ch in report["chapters"].values() for m in ch["models"]]
    assert set(report["chapters"]) == {"04_vqvae2", "05_comparison"}
    names = {e["name"] for e in events}
    assert {"ae-latent16", "vae-latent16", "vqvae2", "cnn_deep"} <= names, names
    # each model file is downloaded the first time a chapter asks for it, and later chapters
    # load it from the (once empty) cache: nothing is trained
    first = {}
    for event in events:
        first.setdefault(event["file"], event["status"])
    assert all(status.startswith("downloaded") for status in first.values()), first
    assert all(e["status"].startswith(("downloaded", "loaded")) for e in events), events


# -- a weights source is data from elsewhere: every way it can lie ------------------------------

def hostile_source(tmp_path, exported, **changes):
    """A copy of the export whose manifest entry has ``changes`` (a key set to ... is dropped)."""
    folder, manifest, _, _ = exported
    source = tmp_path / "hostile"
    source.mkdir()
    for path in folder.iterdir():
        source.joinpath(path.name).write_bytes(path.read_bytes())
    entry = {**manifest["models"][0], **changes}
    entry = {k: v for k, v in entry.items() if v is not ...}
    (source / "manifest.json").write_text(json.dumps({**manifest, "models": [entry]}))
    return source


@pytest.mark.parametrize("via", ["http", "folder"])
@pytest.mark.parametrize("file", ["../../victim.pt", "ABSOLUTE", ".hidden.pt", "sub/x.pt"])
def test_a_manifest_file_name_cannot_write_outside_the_cache(exported, tmp_path, via, file):
    _, _, trained, data = exported
    cache = tmp_path / "a" / "b" / "cache"
    victims = [tmp_path / "a" / "victim.pt", tmp_path / "absolute-victim.pt"]
    victims[0].parent.mkdir()
    for victim in victims:
        victim.write_text("precious")
    file = str(victims[1]) if file == "ABSOLUTE" else file
    source = hostile_source(tmp_path, exported, file=file)
    with serve(source) as url, pytest.warns(UserWarning, match="file must be a plain name"):
        use(url if via == "http" else str(source))
        result = load_again(trained, data, cache, train=lambda model, state: trained.history)
    assert result.status == "trained"
    assert all(victim.read_text() == "precious" for victim in victims)
    assert not (tmp_path / "a" / "b" / "sub").exists()


@pytest.mark.parametrize("changes, complaint", [
    ({"sha256": None}, "no sha256"), ({"sha256": ""}, "sha256 must be 64"),
    ({"sha256": ...}, "no sha256"), ({"file": 7}, "no file of type str"),
    ({"bytes": "12"}, "no bytes of type int"), ({"bytes": 0}, "bytes must be a positive"),
    ({"bytes": True}, "no bytes of type int"), ({"aliases": ["../../x"]}, "not a plain name"),
    ({"config": "exec"}, "no config of type dict")])
def test_a_manifest_is_checked_field_by_field(exported, tmp_path, changes, complaint):
    _, _, trained, data = exported
    use(str(hostile_source(tmp_path, exported, **changes)))
    with pytest.warns(UserWarning, match=f"model 1.*{complaint}"):
        result = load_again(trained, data, tmp_path / "cache",
                            train=lambda model, state: trained.history)
    assert result.status == "trained"


def test_a_file_or_alias_listed_twice_is_refused(exported):
    entry = exported[1]["models"][0]
    for twice in ([entry, entry], [entry, {**entry, "file": "other.pt"}]):
        with pytest.raises(weights.WeightsError, match="listed twice"):
            weights.validate_manifest({"models": twice}, "m.json")


class EndlessHandler(QuietHandler):
    """Serves the manifest honestly, then every model file as an endless stream of bytes."""

    sent = [0]

    def do_GET(self):
        if self.path.endswith("manifest.json"):
            return super().do_GET()
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(4096):  # bounded: 256 MB at most, stopped by the client far earlier
                self.wfile.write(b"\0" * 65536)
                self.sent[0] += 65536
        except OSError:
            pass


def test_a_download_stops_at_the_size_the_manifest_gives(exported, tmp_path):
    folder, manifest, trained, data = exported
    with serve(folder, EndlessHandler) as url, pytest.warns(UserWarning,
                                                            match="sent more than the .* bytes"):
        use(url)
        result = load_again(trained, data, tmp_path / "cache",
                            train=lambda model, state: trained.history)
    assert result.status == "trained"
    assert EndlessHandler.sent[0] < manifest["models"][0]["bytes"] + 64 * 2**20
    files = [p.name for p in (tmp_path / "cache").iterdir() if p.name != ".locks"]
    assert files == [trained.path.name]  # the model trained here; nothing of the download


class RedirectHandler(QuietHandler):
    target = ""

    def do_GET(self):
        if self.path.endswith("manifest.json"):
            return super().do_GET()
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.end_headers()


@pytest.mark.parametrize("target", ["https://127.0.0.1:9", "http://example.org",
                                    "ftp://127.0.0.1"])
def test_a_redirect_may_not_change_scheme_or_leave_loopback(exported, tmp_path, target):
    folder, _, trained, data = exported
    redirecting = type("Redirect", (RedirectHandler,), {"target": target})
    with serve(folder, redirecting) as url, pytest.warns(UserWarning,
                                                         match="changes the scheme|not an https"):
        use(url)
        result = load_again(trained, data, tmp_path / "cache",
                            train=lambda model, state: trained.history)
    assert result.status == "trained"


def test_plain_http_is_refused_off_loopback():
    for url in ("http://example.org/w", "http://10.0.0.1/w", "ftp://example.org/w"):
        with pytest.raises(weights.WeightsError, match="not an https"):
            weights.check_url(url)
    for url in ("https://example.org/w", "http://127.0.0.1:8000", "http://localhost/w",
                "http://[::1]:80/w"):
        weights.check_url(url)


def harmful_checkpoint(path: Path, builder: str, marker: Path) -> None:
    """A well-formed checkpoint whose builder, if imported and called, would run a command."""
    config = {"exec": f"open({str(marker)!r}, 'w')", "subprocess": ["touch", str(marker)],
              "system": f"touch {marker}"}[builder.split(":")[0].split(".")[0]
                                           .replace("builtins", "exec")
                                           .replace("latent_notes", "system")]
    torch.save({"format_version": 1, "name": "x", "key": "0", "config": config,
                "builder": builder, "state_dict": {}, "history": {}}, path)


HARMFUL = ["builtins:exec", "subprocess:run", "latent_notes.models.classifier:torch.os.system"]


@pytest.mark.parametrize("builder", HARMFUL)
def test_a_downloaded_checkpoint_cannot_choose_the_function_that_rebuilds_it(
        exported, tmp_path, builder):
    """The sha256 comes from the same manifest, so it does not help: the builder table does."""
    _, _, trained, data = exported
    marker = tmp_path / "pwned"
    source = hostile_source(tmp_path, exported)
    harmful_checkpoint(source / trained.path.name, builder, marker)
    blob = source / trained.path.name
    source_manifest = json.loads((source / "manifest.json").read_text())
    source_manifest["models"][0].update(sha256=weights.sha256_of(blob), bytes=blob.stat().st_size)
    (source / "manifest.json").write_text(json.dumps(source_manifest))
    with serve(source) as url, pytest.warns(UserWarning, match="not one of the package's"):
        use(url)
        result = load_again(trained, data, tmp_path / "cache",
                            train=lambda model, state: trained.history)
    assert result.status == "trained" and not marker.exists()


def test_the_release_carries_the_explorers_models(tmp_path):
    source = tmp_path / "src" / "book" / "explorers"
    (source / "03_vae").mkdir(parents=True)
    (source / "03_vae" / "vae-decoder-0.onnx").write_bytes(b"onnx bytes")
    (source / "03_vae" / "fixture.json").write_text("{}")  # the test's fixture stays behind
    (source / "stray.onnx").write_bytes(b"not a page's")
    entries = weights.export_explorers(source, tmp_path / "out")
    assert entries == [{"file": "explorer-03_vae-vae-decoder-0.onnx", "page": "03_vae",
                        "bytes": 10,
                        "sha256": weights.sha256_of(source / "03_vae" / "vae-decoder-0.onnx")}]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "explorer-03_vae-vae-decoder-0.onnx"]
    assert (tmp_path / "out" / entries[0]["file"]).read_bytes() == b"onnx bytes"
