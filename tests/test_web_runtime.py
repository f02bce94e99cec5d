"""The in-page runtime is fetched with its registry hash checked, and only its three files are
read out of the tarball; without it the build goes on (None, with a warning)."""
import functools
import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from latent_notes.book import web_runtime


def npm_tarball(path, files=web_runtime.FILES, extra=("package/dist/evil.js",)):
    with tarfile.open(path, "w:gz") as archive:
        for name in [f"package/dist/{f}" for f in files] + list(extra):
            data = f"contents of {name}".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha512(path.read_bytes()).hexdigest()


@pytest.fixture
def served(tmp_path):
    """A folder served on 127.0.0.1: yields (folder, base URL)."""
    folder = tmp_path / "registry"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_fetch_checks_the_hash_and_reads_only_the_pinned_files(tmp_path, served):
    folder, base = served
    sha = npm_tarball(folder / "ort.tgz")
    runtime = web_runtime.fetch(tmp_path / "cache", url=f"{base}/ort.tgz", sha512=sha)
    assert sorted(p.name for p in runtime.iterdir()) == sorted(web_runtime.FILES)
    assert (runtime / "ort.wasm.min.js").read_text() == "contents of package/dist/ort.wasm.min.js"
    (folder / "ort.tgz").unlink()  # cached: no second download
    assert web_runtime.fetch(tmp_path / "cache", url=f"{base}/ort.tgz", sha512=sha) == runtime
    static = tmp_path / "html" / "_static"
    assert web_runtime.install(runtime, static) == sum(
        (runtime / f).stat().st_size for f in web_runtime.FILES)
    assert sorted(p.name for p in (static / "ort").iterdir()) == sorted(web_runtime.FILES)


def test_a_tarball_with_another_hash_is_refused_with_a_warning(tmp_path, served):
    folder, base = served
    npm_tarball(folder / "ort.tgz")
    with pytest.warns(UserWarning, match="still figures"):
        assert web_runtime.fetch(tmp_path / "cache", url=f"{base}/ort.tgz",
                                 sha512="0" * 128) is None
    assert not (tmp_path / "cache" / f"onnxruntime-web-{web_runtime.VERSION}").exists()


def test_no_network_means_no_runtime_and_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="not available"):
        assert web_runtime.fetch(tmp_path, url="http://127.0.0.1:9/ort.tgz") is None


def test_a_tarball_without_the_files_is_not_the_package(tmp_path):
    path = tmp_path / "other.tgz"
    npm_tarball(path, files=web_runtime.FILES[:1])
    with pytest.raises(web_runtime.RuntimeUnavailable, match="has no package/dist"):
        web_runtime.extract(path, tmp_path / "out")


@pytest.mark.parametrize("online", [True, False])
def test_the_build_installs_explorers_after_rendering(tmp_path, monkeypatch, online):
    """Models of every page, the scripts and (online) the runtime go into the rendered book;
    offline, runtime.js says null and the explorers stay still figures."""
    from latent_notes.book import build

    html, stage = tmp_path / "html", tmp_path / "src" / "book"
    (html / "book" / "explorers" / "old_page").mkdir(parents=True)  # a page no longer built
    for page in ("02_autoencoder", "05_comparison-cifar10"):
        (stage / "explorers" / page).mkdir(parents=True)
        (stage / "explorers" / page / "ae-decoder.onnx").write_bytes(b"x" * 10)
    (stage / "explorers" / "notes").mkdir()  # not a page's name: not installed
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in web_runtime.FILES:
        (runtime / name).write_bytes(b"r" * 5)
    monkeypatch.setattr(web_runtime, "fetch", lambda cache: runtime if online else None)
    sizes = build.install_explorers(html, stage, tmp_path / "cache")
    assert sorted(p.name for p in (html / "book" / "explorers").iterdir()) == [
        "02_autoencoder", "05_comparison-cifar10"]
    assert sizes["pages"] == {"02_autoencoder": 10, "05_comparison-cifar10": 10}
    scripts = html / "_static" / "explorers"
    assert {"explorers.js", "compare.js", "runtime.js"} <= {p.name for p in scripts.iterdir()}
    says = (scripts / "runtime.js").read_text()
    if online:
        assert sizes["runtime_bytes"] == 5 * len(web_runtime.FILES)
        assert sorted(p.name for p in (html / "_static" / "ort").iterdir()) == sorted(
            web_runtime.FILES)
        assert web_runtime.VERSION in says
    else:
        assert sizes["runtime_bytes"] == 0 and not (html / "_static" / "ort").exists()
        assert "runtimeFiles = null;" in says
