"""Nothing of the building machine is published: no path, user name, home folder or URL password
in a page, a downloadable notebook, a model file or the site's JSON; and a chapter run from
anywhere writes only into its results and its cache."""
import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_output
from papermill.execute import prepare_notebook_metadata
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from latent_notes.book import build

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "02_autoencoder"  # the smallest chapter with an explorer (its models as ONNX files)
PASSWORD = "hunter2"
# chapter 2 with the tiny budgets of the integration tests (tests/test_full_profile.py)
TINY = {"epochs": 1, "subset": 300, "tsne_points": 100}


def executed(home: Path, params: dict, outputs: list) -> Path:
    """Chapter 2 as papermill leaves it in the build (parameters injected, its metadata
    recorded), with ``outputs`` in the cell that starts the chapter; the file's path."""
    source = load_notebook_node(str(ROOT / "book" / f"{CHAPTER}.ipynb"))
    notebook = parameterize_notebook(source, params, kernel_name="python3", language="python")
    stage = home / "_build" / "src" / "book"
    prepare_notebook_metadata(notebook, str(stage / f"{CHAPTER}.input.ipynb"),
                              str(stage / f"{CHAPTER}.ipynb"))
    first = next(c for c in notebook.cells if "start_chapter(" in c.source
                 and c.cell_type == "code" and "import" not in c.source)
    first.outputs = outputs
    stage.mkdir(parents=True)
    nbformat.write(notebook, stage / f"{CHAPTER}.ipynb")
    return stage / f"{CHAPTER}.ipynb"


@pytest.mark.parametrize("kind", ["url with a password", "folder"])
def test_a_weights_source_shows_neither_its_password_nor_its_folder(tmp_path, capsys, kind):
    """The line a chapter prints about its weights source, read in Jupyter as on the page, and
    the published parameters (the injected cell, papermill's metadata)."""
    from latent_notes.book.notebook import start_chapter

    home = tmp_path / "home-alice-secret"
    folder = home / "weights"
    folder.mkdir(parents=True)
    weights = str(folder) if kind == "folder" else f"http://alice:{PASSWORD}@127.0.0.1:9/weights"
    start_chapter(CHAPTER, dataset="digits", data_root=None, epochs=1, subset=None, seed=0,
                  device="cpu", results_dir=home / "results", cache_dir=home / "cache",
                  weights=weights)
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if "are fetched from" in line)
    assert PASSWORD not in line and "alice" not in line, line
    assert line.endswith("http://127.0.0.1:9/weights" if kind != "folder"
                         else "the folder 'weights'"), line
    path = executed(home, {"weights": weights, **TINY},
                    [new_output("stream", name="stdout", text=printed)])
    build.tidy_notebook(path)
    published = nbformat.read(path, as_version=4)
    injected = next(c.source for c in published.cells
                    if "injected-parameters" in c.metadata.get("tags", []))
    shown = published.metadata.papermill.parameters["weights"]
    for text in (injected, str(shown), nbformat.writes(published)):
        assert PASSWORD not in text and "alice" not in text, text
    assert shown == ("http://127.0.0.1:9/weights" if kind != "folder" else None)


def test_a_published_notebook_keeps_nothing_of_the_building_machine(tmp_path):
    """papermill's metadata (its paths, the parameters), stderr (the virtual environment's
    paths in warnings), and outputs naming the cache, the repository or a temporary file:
    the downloadable notebook names none of them; pictures are left as they are."""
    home = tmp_path / "home-alice-secret"
    params = {"results_dir": str(home / "results"), "cache_dir": str(home / "cache"),
              "data_root": str(home / "data"), "dataset": f"folder:{home / 'photos'}",
              "weights": f"https://alice:{PASSWORD}@example.org/w", **TINY}
    picture = base64.b64encode(b"\x89PNG" + str(home).encode()).decode()  # left alone
    temporary = Path(tempfile.gettempdir()) / "ipykernel_7" / "3037.py"
    path = executed(home, params, [
        new_output("stream", name="stderr",
                   text=f"{sys.prefix}/lib/site-packages/tqdm/auto.py:21: TqdmWarning\n"),
        new_output("stream", name="stdout", text=f"saved {home / 'cache' / 'ae.pt'}\n"),
        new_output("display_data", data={"text/html": f"<p>{ROOT / 'latent_notes'}</p>",
                                         "image/png": picture}),
        new_output("error", ename="ValueError", evalue=f"{temporary}: bad",
                   traceback=[f"File {temporary}:6", f"File {Path.home() / 'x.py'}:1"])])
    build.tidy_notebook(path)
    text = path.read_text()
    for machine in (str(home), sys.prefix, str(ROOT), str(temporary), str(Path.home()),
                    PASSWORD, "input_path\": \"/"):
        assert machine not in text.replace(picture, ""), machine
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "start_chapter(" in c.source
                and c.cell_type == "code" and "import" not in c.source)
    assert [o.get("name") for o in cell.outputs] == ["stdout", None, None]  # no stderr
    assert cell.outputs[0].text == "saved <checkpoint cache>/ae.pt\n"
    assert cell.outputs[1].data["image/png"] == picture
    injected = next(c.source for c in notebook.cells
                    if "injected-parameters" in c.metadata.get("tags", []))
    papermill = notebook.metadata.papermill
    assert papermill.parameters == build.parameters_of(injected)  # the page's parameters
    assert papermill.parameters["dataset"] == "folder:<your image folder>"
    assert papermill.input_path == f"{CHAPTER}.input.ipynb"
    build.tidy_notebook(path)  # the build tidies every chapter at every build: no change
    assert path.read_text() == text


def _tiny_run_env(home: Path) -> dict:
    """The environment of a run on a machine whose home, temporary folder and every folder of
    the run are named by ``home`` (a name to search the published files for)."""
    for folder in ("home", "tmp"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home / "home"), "TMPDIR": str(home / "tmp"),
           "LATENT_NOTES_PROGRESS": "0",
           # this checkout's package, in the chapters' kernels too (scripts/claims_matrix.py)
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for variable in ("LATENT_NOTES_CACHE", "LATENT_NOTES_DATA", "LATENT_NOTES_WEIGHTS",
                     "LATENT_NOTES_PAGE_FOLDER", "MPLBACKEND"):
        env.pop(variable, None)
    return env


@pytest.mark.integration
def test_a_tiny_book_built_in_a_home_folder_publishes_nothing_of_it(tmp_path):
    """Chapter 2 built and rendered (tiny budgets) with its build, cache, results, data and
    weights folders, the home and the temporary folder all inside a folder named like a user's
    home: no file of the published site (pages, notebooks, figures, ONNX models, JSON) holds
    that name or the checkout's path."""
    home = tmp_path / "home-alice-secret"
    for folder in ("data", "weights"):
        (home / folder).mkdir(parents=True)
    env = {**_tiny_run_env(home), "LATENT_NOTES_BUILD_DIR": str(home / "_build")}
    command = [sys.executable, "-m", "latent_notes.book.build", "--chapters", CHAPTER[:2],
               "--cache-dir", str(home / "cache"), "--results-dir", str(home / "results"),
               "--data-root", str(home / "data"), "-p", f"weights={home / 'weights'}"]
    for key, value in TINY.items():
        command += ["-p", f"{key}={value}"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    html = home / "_build" / "html"  # Jupyter Book renders into <build>/../_build/html
    published = [p for p in html.rglob("*") if p.is_file()]
    names = {p.relative_to(html).as_posix() for p in published}
    assert {f"book/{CHAPTER}.html", f"_sources/book/{CHAPTER}.ipynb",
            f"book/explorers/{CHAPTER}/ae-decoder.onnx",
            f"book/explorers/{CHAPTER}/fixture.json"} <= names, sorted(names)[:50]
    machine = [b"home-alice-secret", str(ROOT).encode()]
    holding = {p.relative_to(html).as_posix(): [m.decode() for m in machine if m in p.read_bytes()]
               for p in published}
    assert not {name: found for name, found in holding.items() if found}


@pytest.mark.integration
def test_a_chapter_run_by_papermill_from_elsewhere_writes_nothing_there(tmp_path):
    """papermill as the README shows it, from a folder of one's own: the chapter writes its
    results and its cache where its parameters say, and nothing in the working directory (its
    explorer's models included); the line about the weights source shows no password."""
    home = tmp_path / "home-alice-secret"
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    weights = f"http://alice:{PASSWORD}@127.0.0.1:9/weights"  # refused: trained here instead
    command = [sys.executable, "-m", "papermill", str(ROOT / "book" / f"{CHAPTER}.ipynb"),
               str(out / f"{CHAPTER}.ipynb"), "-k", "python3",
               "-p", "results_dir", str(home / "results"), "-p", "cache_dir", str(home / "cache"),
               "-p", "weights", weights]
    for key, value in TINY.items():
        command += ["-p", key, str(value)]
    run = subprocess.run(command, cwd=work, env=_tiny_run_env(home), capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in work.iterdir()) == []
    assert (home / "results" / f"{CHAPTER}.csv").exists()
    assert (home / "cache" / "explorers" / CHAPTER / "ae-decoder.onnx").exists()
    notebook = nbformat.read(out / f"{CHAPTER}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                      for o in c.outputs if o.get("name") == "stdout")
    assert "fetched from http://127.0.0.1:9/weights" in printed
    assert PASSWORD not in printed


def test_scrub_replaces_whole_paths_and_leaves_pictures_inside_text_alone():
    """A path where a path stands (not inside a longer name), the longest first; base64 text
    of an inlined picture (the explorers' still figures) can hold the same characters by
    chance, and stays as it is."""
    replace = {"/tmp": "<tmp>", "/srv/a": "<a>", "/srv/a/cache": "<checkpoint cache>"}
    picture = '<img src="data:image/png;base64,QUJD+/tmp+/srv/a==">'
    text = f"/tmp/x, /tmpfile, /srv/a/cache/m.pt, /srv/ab; {picture} https://u:p@h.org/w"
    assert build.scrub(text, replace) == (f"<tmp>/x, /tmpfile, <checkpoint cache>/m.pt, "
                                          f"/srv/ab; {picture} https://h.org/w")
