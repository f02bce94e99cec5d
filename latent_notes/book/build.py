"""Build the book: jupytext → papermill (with a profile's parameters) → Jupyter Book.

    python -m latent_notes.book.build                      # quick profile, all chapters, render
    python -m latent_notes.book.build --profile standard --data-root ../shared/data
    python -m latent_notes.book.build --chapters 01 -p epochs=3 -p 01.subset=5000 --no-render

Each chapter (``book/NN_name.py``, jupytext percent format) is converted to a notebook in
``_build/src/book``, executed there by papermill with the profile's parameters, and the staged
book (``_build/src``) is rendered by Jupyter Book with execution off into ``_build/html``.
A chapter whose source, parameters and package code are unchanged since its last successful
execution is not executed again. The build report (``_build/reports/build-report.json`` and
``.md``) gives per chapter the wall time, the peak memory of the executing processes and what
each model did (trained or loaded from the checkpoint cache, with training throughput).
The staged notebooks install the package from the repository URL of ``_config.yml``. What is
published holds nothing of the building machine: the executed notebooks (pages and downloads)
are tidied by ``tidy_notebook`` (parameters, papermill's metadata, outputs), the models by
``onnx_export.strip_notes``. A chapter's explorer files go next to its executed notebook
(``$LATENT_NOTES_PAGE_FOLDER``), never into a working directory.

A profile's ``editions`` execute a chapter once more with other parameters (chapter 5 on
CIFAR-10 in the full profile): each edition is a page of its own, ``NN_name-SUFFIX``, placed
under its chapter in the staged table of contents, with its own report entry and events.

After rendering, the explorers (chapters' live models) are installed into the built book
(``install_explorers``): each chapter's exported models from ``_build/src/book/explorers``, the
explorers' scripts into ``_static/explorers`` and the in-page runtime (onnxruntime-web, fetched
once into ``.cache/web``, see ``web_runtime``) into ``_static/ort``. Installed after Jupyter Book
has rendered, no page but an explorer's loads them; without the runtime (built offline) the
explorers show their still figures.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from ..data import DESCRIPTIONS
from . import claims, parameters, runtimes, web_runtime

ROOT = Path(__file__).resolve().parents[2]  # latent_notes/book/build.py -> the repository
PROFILES = ROOT / "profiles"
BUILD = Path(os.environ.get("LATENT_NOTES_BUILD_DIR") or ROOT / "_build")  # tests use another
STAGE = BUILD / "src"
# Jupyter Book renders into <--path-output>/_build/html: the repository's _build, or the build
# folder's own when LATENT_NOTES_BUILD_DIR names another
RENDERED = BUILD.parent if BUILD.name == "_build" else BUILD
HTML = RENDERED / "_build" / "html"
WEB_CACHE = Path(os.environ.get("LATENT_NOTES_WEB_CACHE") or ROOT / ".cache" / "web")
REPORTS = BUILD / "reports"
STAGED_FILES = ("_config.yml", "_toc.yml", "references.bib")
INSTALL_URL = re.compile(r"git\+https?://[^\s\"']+")
# papermill's injected lines (``name = value``, strings in double quotes) and the strings in them
INJECTED_LINE = re.compile(r"^(?P<name>\w+) = (?P<value>.*)$", re.M)
STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
# a path of the building machine: POSIX, home, Windows drive or share, alone or after folder:
MACHINE_PATH = re.compile(r"^(folder:|file://)?(/|~|[A-Za-z]:[\\/]|\\\\)")
USERINFO = re.compile(r"(?<=://)[^/?#@\s\"'<>]+@")  # a URL's user name and password
PLACEHOLDERS = {"cache_dir": "this build's checkpoint cache",
                "data_root": "this build's data folder", "weights": "this build's weights source"}


EDITION_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")  # the suffix of an edition's page name


class BuildError(RuntimeError):
    """The book could not be built; the message says where and what to do."""


def repository_url() -> str:
    """The repository's URL, kept in one place: ``repository.url`` in _config.yml (read by the
    store, which derives the published weights' address from it)."""
    from ..store.weights import repository_url as configured  # torch only once it is needed

    return configured(ROOT)


def toc_chapters(root: Path = ROOT) -> list[str]:
    """Chapter stems (``01_cnn_warmup``, ...) listed in ``_toc.yml``, in order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [entry["file"] for part in [toc] + toc.get("parts", [])
             for entry in part.get("chapters", [])]
    return [Path(f).name for f in files if (root / f"{f}.py").exists()]


def load_profile(name: str) -> dict:
    """A profile: parameters for all chapters (``all``) and per chapter (``chapters``)."""
    path = PROFILES / f"{name}.yml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yml")))
        raise BuildError(f"Unknown profile {name!r}: there is no {path}. Known profiles: {known}.")
    profile = yaml.safe_load(path.read_text()) or {}
    editions = profile.get("editions") or {}
    for chapter, named in editions.items():
        for suffix, params in (named or {}).items():
            if not (isinstance(suffix, str) and EDITION_NAME.fullmatch(suffix)
                    and isinstance(params, dict) and params):
                raise BuildError(
                    f"{path}: the edition {suffix!r} of {chapter} must be named by lower-case "
                    "letters, digits and single hyphens (it becomes part of a file name) and "
                    "hold the parameters it changes, e.g. editions: {05_comparison: {cifar10: "
                    "{dataset: cifar10}}}.")
    return {"all": profile.get("all") or {}, "chapters": profile.get("chapters") or {},
            "editions": {chapter: dict(named or {}) for chapter, named in editions.items()}}


def editions_of(profile: dict, chapter: str) -> dict[str, dict]:
    """{page name: the parameters it changes} for the editions of ``chapter`` in ``profile``."""
    return {f"{chapter}-{suffix}": params
            for suffix, params in profile.get("editions", {}).get(chapter, {}).items()}


def parse_overrides(items: list[str], chapters: list[str]) -> tuple[dict, dict]:
    """``key=value`` for every chapter, ``CHAPTER.key=value`` for one (CHAPTER may be '01').

    Values follow papermill's ``-p`` (:func:`parse_value`); paths are made absolute here
    (:func:`absolute_paths`). A key must be a Python name (papermill writes it into a cell as
    code); whether the chapters have it, :func:`check_override_names` checks.
    """
    common, per_chapter = {}, {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise BuildError(f"-p {item!r} is not KEY=VALUE (e.g. -p epochs=3 or -p 01.epochs=3).")
        name = key.split(".", 1)[-1]
        if not name.isidentifier() or keyword.iskeyword(name):  # it becomes code in a cell
            raise BuildError(f"-p {item!r}: {name!r} is not a parameter's name (a Python name "
                             "such as epochs, after an optional chapter: -p 01.epochs=3).")
        if "." in key:
            prefix, key = key.split(".", 1)
            chapter = _match_chapter(prefix, chapters)
            per_chapter.setdefault(chapter, {})[key] = absolute_paths(key, parse_value(item, raw))
        else:
            common[key] = absolute_paths(key, parse_value(item, raw))
    return common, per_chapter


def check_override_names(common: dict, per_chapter: dict, chapters: list[str]) -> None:
    """Refuse a -p name that no chapter it is given to has (a typo that would be ignored),
    before any chapter runs: ``01.KEY`` one of chapter 1's, ``KEY`` one of ``chapters``'."""
    try:
        for chapter, params in per_chapter.items():
            parameters.check_names(params, _parameters_of(chapter), f"book/{chapter}.py")
        for key in common:
            if not any(key in _parameters_of(chapter) for chapter in chapters):
                names = [_parameters_of(chapter) for chapter in chapters]
                parameters.check_names([key], list(dict.fromkeys(sum(names, []))),
                                       f"any of the chapters {', '.join(chapters)}")
    except parameters.ParameterError as err:
        raise BuildError(f"-p {err}") from None


def _parameters_of(chapter: str) -> list[str]:
    return parameters.chapter_parameter_names(ROOT / "book" / f"{chapter}.py")


def parse_value(item: str, raw: str):
    """papermill's ``-p`` rules: True, False, None, an int, a float, else the text itself; a
    list or a dict (text starting with ``[`` or ``{``) as a Python literal."""
    if raw == "":
        raise BuildError(f"-p {item!r} has no value. Write one after '=', e.g. -p {item}None "
                         "for None.")
    if raw[0] in "[{":
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as err:
            value = err
        if not isinstance(value, (list, dict)):
            reason = " ".join(str(value).split())
            raise BuildError(f"-p {item!r}: a value starting with {raw[0]!r} is read as a Python "
                             f"list or dict, and this one is neither ({reason}). Write it as in "
                             "Python, e.g. -p sizes=[8,16] or -p \"names={'a': 1}\" (quoted for "
                             "the shell).")
        return value
    constants = {"True": True, "False": False, "None": None}
    if raw in constants:
        return constants[raw]
    for number in (int, float):  # int("010") is 10, float("1e-3") is 0.001
        try:
            return number(raw)
        except ValueError:
            pass
    return raw


def absolute_paths(key: str, value):
    """Paths typed on the command line, made absolute against the directory the command runs in
    (papermill executes in _build/src/book): ``data_root``, any ``folder:PATH`` (``dataset``,
    ``colour_dataset``) and a ``weights`` folder."""
    if not isinstance(value, str):
        return value
    if key == "data_root":
        return _absolute(value)
    if value.startswith("folder:") and value != "folder:":
        return "folder:" + _absolute(value[len("folder:"):])
    if key == "weights" and value.strip() not in ("off", "auto") and "://" not in value:
        return _absolute(value)
    return value


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def all_chapters(root: Path = ROOT) -> list[str]:
    """Every chapter source in book/ (``NN_name.py``), listed in _toc.yml or not yet."""
    return sorted(p.stem for p in (root / "book").glob("[0-9][0-9]_*.py"))


def _match_chapter(prefix: str, chapters: list[str]) -> str:
    matches = [c for c in chapters if c == prefix or c.startswith(prefix)]
    if len(matches) != 1:
        raise BuildError(f"{prefix!r} names {len(matches)} chapters; "
                         f"use one of {', '.join(chapters)} "
                         "(a unique prefix such as '01' is enough).")
    return matches[0]


def chapter_parameters(chapter, profile, common, per_chapter, args, edition=None) -> dict:
    """The profile's parameters, then the command line's; an ``edition``'s own parameters last,
    so that ``-p epochs=1`` shortens an edition too but cannot turn it into its chapter."""
    # a -p for all chapters that is another chapter's parameter goes to those that have it
    # (a chapter refuses a name it lacks); one that no chapter has, _build refused before
    others = {name for other in all_chapters() if other != chapter
              for name in _parameters_of(other)} - set(_parameters_of(chapter))
    params = {**profile["all"], **profile["chapters"].get(chapter, {}),
              **{key: value for key, value in common.items() if key not in others},
              **per_chapter.get(chapter, {}), **(edition or {})}
    params["results_dir"] = str(Path(args.results_dir).resolve())
    params["cache_dir"] = str(Path(args.cache_dir).resolve())
    if args.data_root:
        params["data_root"] = str(Path(args.data_root).resolve())
    for key, value in params.items():  # a profile's folder:NAME is a folder of the data root
        if isinstance(value, str) and value.startswith("folder:") and value != "folder:":
            folder = Path(value[len("folder:"):]).expanduser()
            if not folder.is_absolute():
                root = Path(args.data_root or os.environ.get("LATENT_NOTES_DATA")
                            or ROOT / "data").expanduser().resolve()
                inside = (root / folder).resolve()
                if not inside.is_relative_to(root):
                    raise BuildError(f"{key}={value!r} in the profile leads outside the data "
                                     f"root {root}: a profile's relative folder: must name a "
                                     "folder inside it, such as folder:photos.")
                params[key] = f"folder:{inside}"
    return params


def package_hash() -> str:
    """A hash of the package's source: code changes re-execute the chapters."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "latent_notes").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def convert(chapter: str, name: str | None = None, edition: dict | None = None) -> Path:
    """book/NN.py (jupytext percent) → _build/src/book/<name>.input.ipynb; an edition's title
    names its data, and a note under it says what the page is."""
    import jupytext

    notebook = jupytext.read(ROOT / "book" / f"{chapter}.py")
    if edition:
        mark_edition(notebook, chapter, edition)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    install = f"git+{repository_url()}"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = INSTALL_URL.sub(lambda _: install, cell.source)
    target = STAGE / "book" / f"{name or chapter}.input.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def mark_edition(notebook, chapter: str, edition: dict) -> None:
    """Add the edition's data to the first heading of ``notebook`` and a note under it."""
    data = str(edition.get("dataset", ""))
    label = DESCRIPTIONS.get(data.split(":")[0], data) or ", ".join(
        f"{key} = {value}" for key, value in edition.items())
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            title, _, rest = cell.source.partition("\n")
            settings = ", ".join(f"`{key} = {value!r}`" for key, value in edition.items())
            note = (f"```{{note}}\nThis page is chapter {chapter[:2].lstrip('0')} executed again "
                    f"with {settings}: the text is the chapter's, every number and figure is "
                    "this run's. Its Colab button opens the chapter itself; set the same "
                    "parameters in its first code cell to run this edition.\n```\n")
            cell.source = f"{title} ({label})\n\n{note}{rest}"
            return


def _watch_memory(pid: int, peak: list, stop: threading.Event) -> None:
    """Sample the resident memory of a process and all its children (the kernel) every 0.2 s."""
    import psutil

    try:
        root = psutil.Process(pid)
        while not stop.is_set():
            total = 0
            for proc in [root, *root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            stop.wait(0.2)
    except psutil.Error:
        pass


def execute(chapter: str, params: dict, events: Path, name: str | None = None,
            edition: dict | None = None, profile: str | None = None) -> dict:
    """Run one chapter (or its edition ``name``) with papermill in a child process; return
    wall time and peak memory."""
    name = name or chapter
    source = convert(chapter, name, edition)
    output = STAGE / "book" / f"{name}.ipynb"
    params_file = REPORTS / f"{name}.params.yml"
    params_file.write_text(yaml.safe_dump(params))
    events.unlink(missing_ok=True)
    env = {**os.environ, "LATENT_NOTES_EVENTS": str(events), "PYTHONUNBUFFERED": "1",
           "LATENT_NOTES_PROFILE": profile or "",  # the page's first line names it
           "LATENT_NOTES_PAGE_FOLDER": str(output.parent)}  # where explorers write their files
    env.pop("MPLBACKEND", None)  # a non-inline backend (Agg) would leave the book without figures
    command = [sys.executable, "-m", "papermill", str(source), str(output), "-f", str(params_file),
               "--cwd", str(output.parent), "-k", "python3"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    peak, stop = [0], threading.Event()
    watcher = threading.Thread(target=_watch_memory, args=(process.pid, peak, stop), daemon=True)
    watcher.start()
    code = process.wait()
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - start
    source.unlink(missing_ok=True)
    if code != 0:
        raise BuildError(f"Chapter {name} failed (papermill exit {code}). The executed notebook "
                         f"with the error is {output}; models trained before the error are cached "
                         f"and will not be trained again.")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak[0] / 2**20, 1)}


def show_parameters(source: str) -> str:
    """The injected-parameters cell without the building machine's paths, whatever the parameter:
    ``results_dir`` relative to the repository, the other known ones a placeholder that keeps
    their meaning, any other path string ``"<a path of the building machine>"``; a URL without
    the user name and password it may carry."""
    def shown(line) -> str:
        name, value = line["name"], line["value"]
        text = ast.literal_eval(value) if STRING.fullmatch(value) else ""
        if not MACHINE_PATH.match(text):
            return line[0]
        if name == "results_dir":
            path = Path(text)
            inside = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else "results"
            return f"{name} = {json.dumps(inside)}"
        if name in PLACEHOLDERS:
            return f"{name} = None  # {PLACEHOLDERS[name]}"
        if text.startswith("folder:"):
            return f'{name} = "folder:<your image folder>"'
        return line[0]

    def hidden(string) -> str:  # what is left: paths in lists, dicts, other parameters
        text = ast.literal_eval(string[0])
        if MACHINE_PATH.match(text):
            return '"<a path of the building machine>"'
        return json.dumps(USERINFO.sub("", text)) if USERINFO.search(text) else string[0]
    return STRING.sub(hidden, INJECTED_LINE.sub(shown, source))


def parameters_of(source: str) -> dict:
    """The values an injected-parameters cell assigns, {name: value} (papermill writes one
    literal per line; anything else is kept as its text)."""
    assigned = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = ast.get_source_segment(source, node.value)
            assigned[node.targets[0].id] = value
    return assigned


def machine_strings(params: dict) -> dict[str, str]:
    """{a path of the building machine: what a published notebook says instead}: the folders a
    chapter was executed with (``params``, as papermill records them), the build's and the
    repository's folders, Python's, the temporary and the home folder."""
    named = {"results_dir": "results", "cache_dir": "<checkpoint cache>",
             "data_root": "<data folder>", "weights": "<weights folder>"}
    found = {}

    def add(path, shown: str) -> None:
        path = str(path)
        if len(path) > 1 and MACHINE_PATH.match(path):
            for form in {path, os.path.realpath(os.path.expanduser(path))}:
                found.setdefault(form.rstrip("/\\"), shown)

    def walk(name, value) -> None:
        if isinstance(value, str) and value.startswith("folder:"):
            add(value[len("folder:"):], "<your image folder>")
        elif isinstance(value, str):
            add(value, named.get(name, "<a path of the building machine>"))
        elif isinstance(value, (list, tuple, dict)):
            for item in value.values() if isinstance(value, dict) else value:
                walk(None, item)
    for name, value in params.items():
        walk(name, value)
    for variable in ("LATENT_NOTES_CACHE", "LATENT_NOTES_DATA", "LATENT_NOTES_WEIGHTS"):
        walk(None, os.environ.get(variable))
    for path, shown in [(STAGE / "book", "."), (BUILD, "<build folder>"),
                        (ROOT, "<repository>"), (sys.prefix, "<python>"),
                        (sys.base_prefix, "<python>"), (tempfile.gettempdir(), "<tmp>"),
                        (Path.home(), "~")]:
        add(path, shown)
    return found


def scrub(value, replace: dict[str, str]):
    """``value`` (text, or lists and dicts of it) with every path of ``replace`` replaced where
    a whole path or its start stands (the longest first), and every URL's user name and
    password removed. Images other than SVG are left as they are."""
    if isinstance(value, dict):
        return type(value)({key: item if key.startswith("image/") and key != "image/svg+xml"
                            else scrub(item, replace) for key, item in value.items()})
    if isinstance(value, list):
        return [scrub(item, replace) for item in value]
    if not isinstance(value, str):
        return value
    if replace:  # an image inside the text (a data: URI, as the explorers' still figure) stays
        paths = sorted(replace, key=len, reverse=True)
        pattern = (r"(data:[\w/+.-]*;base64,[A-Za-z0-9+/=]+)|(?<![\w.~-])("
                   + "|".join(map(re.escape, paths)) + r")(?![\w.-])")
        value = re.sub(pattern, lambda m: m[1] or replace[m[2]], value)
    return USERINFO.sub("", value)


def tidy_notebook(path: Path) -> None:
    """Make an executed notebook what the book publishes (the page is rendered from it, and
    readers download it): nothing of the building machine. The injected-parameters cell goes
    through show_parameters and is folded behind a toggle (``hide-input``) like the chapter's
    own parameters cell; papermill's metadata records the same parameters and its files by
    name; stderr is dropped (the page shows none: ``nb_output_stderr: remove``); the other
    outputs and the metadata keep no path of the building machine and no URL's password
    (``scrub``). The chapter's own cells are left as they are."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    papermill = notebook.metadata.get("papermill", {})
    replace = machine_strings(papermill.get("parameters") or {})
    shown = {}
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            cell.source = show_parameters(cell.source)
            shown = parameters_of(cell.source)
            if "hide-input" not in tags:
                cell.metadata["tags"] = [*tags, "hide-input"]
        if cell.cell_type == "code":
            cell.outputs = scrub([output for output in cell.outputs
                                  if output.get("name") != "stderr"], replace)
        cell.metadata = scrub(cell.metadata, replace)
    if papermill:
        papermill["parameters"] = shown
        for key in ("input_path", "output_path"):
            if papermill.get(key):
                papermill[key] = Path(papermill[key]).name
        papermill["environment_variables"] = {}
    notebook.metadata = scrub(notebook.metadata, replace)
    nbformat.write(notebook, path)


def cell_costs(path: Path, chapter: str) -> list[dict]:
    """The code cells of an executed notebook with their wall times (papermill's), each with
    what it does: its first comment line, else its first line of code (80 characters)."""
    import nbformat

    rows = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.cell_type != "code" or not isinstance(seconds, (int, float)):
            continue
        lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
        comments = [line.lstrip("# ") for line in lines if line.startswith("#")]
        what = comments[0] if comments else _calls(cell.source) or (lines or ["(empty)"])[0]
        rows.append({"chapter": chapter, "cell": index, "seconds": round(float(seconds), 1),
                     "what": what[:77] + "..." if len(what) > 80 else what})
    return rows


COMMON_METHODS = {"items", "keys", "values", "update", "append", "extend", "get", "round",
                  "itertuples", "tolist", "cpu", "mean", "sum", "format", "join", "copy"}


def _calls(source: str) -> str:
    """'calls a, b.c, ...': the functions a cell calls, in order; builtins and the methods of
    containers (items, update, ...) left out."""
    import builtins

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    calls = sorted((node for node in ast.walk(tree) if isinstance(node, ast.Call)),
                   key=lambda node: (node.lineno, node.col_offset))
    names = []
    for node in calls:
        name = ast.unparse(node.func)
        if ("(" in name or "[" in name or name in names or hasattr(builtins, name)
                or name.rsplit(".", 1)[-1] in COMMON_METHODS):
            continue
        names.append(name)
    return f"calls {', '.join(names[:4])}" if names else ""


def most_expensive(rows: list[dict], top: int = 10) -> list[dict]:
    return sorted(rows, key=lambda row: -row["seconds"])[:top]


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_edition(chapter: str, profile: str, params: dict) -> None:
    """Remember with what a chapter's page was executed: the intro page states it."""
    data = str(params.get("dataset", "mnist5k"))
    edition = {"profile": profile, "dataset": data.split(":")[0],  # folder:PATH → folder
               "executed": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (REPORTS / f"{chapter}.edition.json").write_text(json.dumps(edition))


def edition_text(chapters: list[str]) -> str:
    """The intro page's "This edition" section, from what each chapter was executed with."""
    rows = []
    for chapter in chapters:
        path = REPORTS / f"{chapter}.edition.json"
        if path.exists():
            e = json.loads(path.read_text())
            data = DESCRIPTIONS.get(e["dataset"], e["dataset"])
            rows.append(f"| {chapter} | {e['profile']} | {data} | {e['executed']} |")
    if not rows:
        return ""
    profiles = sorted({row.split(" | ")[1] for row in rows})
    return ("\n## This edition\n\n"
            f"These pages were executed with the **{' and '.join(profiles)}** profile "
            "(`profiles/*.yml`); every number on them was computed by that run:\n\n"
            "| chapter | profile | data | executed |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")


def staged_toc(toc: dict, editions: dict[str, list[str]], left_out: tuple = ()) -> dict:
    """``toc`` with each chapter's executed editions as sections under it, without the chapters
    ``left_out``."""
    for part in [toc] + toc.get("parts", []):
        if "chapters" in part:
            part["chapters"] = [entry for entry in part["chapters"]
                                if Path(entry["file"]).name not in left_out]
        for entry in part.get("chapters", []):
            pages = editions.get(Path(entry["file"]).name, [])
            if pages:
                entry["sections"] = entry.get("sections", []) + [
                    {"file": f"book/{page}"} for page in pages]
    return toc


def stage_book(chapters: list[str], editions: dict[str, list[str]] | None = None) -> None:
    """Copy the book's static files next to the executed notebooks (the table of contents with
    ``editions`` {chapter: executed edition pages}); the intro page says which profile and data
    each chapter was executed with, and when. A chapter never executed in this build folder
    (a first build with --chapters) is left out of the book, not rendered as a broken link."""
    for name in STAGED_FILES:
        shutil.copy2(ROOT / name, STAGE / name)
    left_out = tuple(c for c in chapters if not (STAGE / "book" / f"{c}.ipynb").exists())
    if left_out:
        print(f"never executed in {BUILD}, left out of the book: {', '.join(left_out)}")
    if editions or left_out:
        toc = staged_toc(yaml.safe_load((ROOT / "_toc.yml").read_text()), editions or {},
                         left_out)
        (STAGE / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    for path in (ROOT / "book").iterdir():
        if path.suffix not in {".py", ".ipynb"} and path.is_file():
            shutil.copy2(path, STAGE / "book" / path.name)
    intro = STAGE / "book" / "intro.md"
    pages = [page for chapter in chapters
             for page in [chapter, *(editions or {}).get(chapter, [])]]
    intro.write_text(intro.read_text() + edition_text(pages)
                     + runtimes.table_markdown(chapters) + claims.matrix_markdown())


def render() -> float:
    """Render the staged book into _build/html; warnings fail the build."""
    start = time.perf_counter()
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(STAGE), "--path-output", str(RENDERED), "-W", "--keep-going", "-q"]
    if subprocess.run(command).returncode != 0:
        raise BuildError("Jupyter Book reported warnings or errors while rendering (above). "
                         "Fix them; the executed notebooks are kept in _build/src/book.")
    return round(time.perf_counter() - start, 1)


def install_explorers(html: Path = HTML, stage: Path = STAGE / "book",
                      cache: Path = WEB_CACHE) -> dict:
    """Put the explorers into the rendered book ``html``: the models every chapter exported
    (``<stage>/explorers/<chapter>/``, to ``book/explorers/``), the scripts (to
    ``_static/explorers/``) and the runtime (to ``_static/ort/``), with ``runtime.js`` saying
    whether the runtime is there. Returns the sizes for the build report."""
    from . import explorers  # imports torch: only once the book is rendered
    pages = html / "book" / explorers.FOLDER
    shutil.rmtree(pages, ignore_errors=True)
    sizes = {"pages": {}}
    for folder in sorted((stage / explorers.FOLDER).glob("*")):
        if folder.is_dir() and EXPLORER_FOLDER.fullmatch(folder.name):
            shutil.copytree(folder, pages / folder.name)
            sizes["pages"][folder.name] = sum(f.stat().st_size for f in folder.glob("*.onnx"))
    scripts = html / "_static" / "explorers"
    shutil.rmtree(scripts, ignore_errors=True)
    scripts.mkdir(parents=True)
    for script in explorers.SCRIPTS.glob("*.js"):
        shutil.copy2(script, scripts / script.name)
    runtime = web_runtime.fetch(cache) if sizes["pages"] else None
    shutil.rmtree(html / "_static" / "ort", ignore_errors=True)
    if runtime:
        sizes["runtime_bytes"] = web_runtime.install(runtime, html / "_static")
        files = json.dumps({"version": web_runtime.VERSION, "files": list(web_runtime.FILES)})
    else:
        sizes["runtime_bytes"] = 0
        files = "null"
    (scripts / "runtime.js").write_text(
        "// Written by the build: the in-page runtime's files under _static/ort, or null when "
        f"the book was built without it.\nexport const runtimeFiles = {files};\n")
    return sizes


EXPLORER_FOLDER = re.compile(r"\d\d_[a-z0-9_]+(-[a-z0-9-]+)?")  # a page's name


def write_report(report: dict) -> str:
    from ..training import describe_machine  # torch is imported only once a report is written

    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "build-report.json").write_text(json.dumps(report, indent=2))
    lines = [f"# Build report: profile {report['profile']}", "",
             "| chapter | status | wall s | peak memory MB | models |", "|---|---|---|---|---|"]
    for name, ch in report["chapters"].items():
        models = "; ".join(
            f"{e['name']} {e['status']}"
            + (f" (resumed from epoch {e['resumed_from']})" if e.get("resumed_from") else "")
            + (f" {e['seconds']} s, {e['images_per_s']:.0f} img/s" if e.get("images_per_s") else "")
            + (f" on {describe_machine(e.get('trained_on'))}" if e.get("images_per_s") else "")
            for e in ch.get("models", [])) or "-"
        lines.append(f"| {name} | {ch['status']} | {ch['seconds']} | {ch.get('peak_rss_mb', '-')} "
                     f"| {models} |")
    lines += ["", f"Render: {report.get('render_seconds', '-')} s. "
                  f"Total: {report['total_seconds']} s."]
    if report.get("expensive_cells"):
        lines += ["", f"The {len(report['expensive_cells'])} most expensive cells executed:", "",
                  "| chapter | cell | s | what it does |", "|---|---|---|---|"]
        lines += [f"| {row['chapter']} | {row['cell']} | {row['seconds']} | "
                  f"{str(row['what']).replace('|', '/')} |" for row in report["expensive_cells"]]
    if report.get("explorers"):
        sizes = report["explorers"]
        pages = ", ".join(f"{name} {size / 2**20:.2f} MB" for name, size in sizes["pages"].items())
        lines += ["", f"Explorers: models per page {pages or '-'}; runtime "
                      + (f"{sizes['runtime_bytes'] / 2**20:.1f} MB (onnxruntime-web "
                         f"{web_runtime.VERSION})" if sizes["runtime_bytes"]
                         else "not installed (still figures)") + "."]
    text = "\n".join(lines) + "\n"
    (REPORTS / "build-report.md").write_text(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick", help="quick (default), standard or full")
    parser.add_argument("--chapters", nargs="*",
                        help="chapters to execute (default: all in _toc.yml)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="[CHAPTER.]KEY=VALUE",
                        help="override a parameter for all chapters or for one")
    parser.add_argument("--data-root",
                        help="folder with MNIST/, FashionMNIST/, cifar-10-batches-py/")
    parser.add_argument("--results-dir", default=str(ROOT / "results"))
    parser.add_argument("--cache-dir", default=os.environ.get("LATENT_NOTES_CACHE")
                        or str(ROOT / ".cache" / "checkpoints"))
    parser.add_argument("--force", action="store_true", help="execute even unchanged chapters")
    parser.add_argument("--no-render", action="store_true", help="execute only, skip Jupyter Book")
    parser.add_argument("--record-times", action="store_true",
                        help="a build that trained every model it used: write each chapter's "
                             "wall time to profiles/run_times.json (the intro page's table)")
    args = parser.parse_args(argv)
    try:
        return _build(args)
    except BuildError as err:
        print(f"\nbuild failed: {err}", file=sys.stderr)
        return 1


def _build(args) -> int:
    start = time.perf_counter()
    chapters = toc_chapters()
    selected = ([_match_chapter(c, all_chapters()) for c in args.chapters] if args.chapters
                else chapters)
    profile = load_profile(args.profile)
    common, per_chapter = parse_overrides(args.param, all_chapters())
    check_override_names(common, per_chapter, selected)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (STAGE / "book").mkdir(parents=True, exist_ok=True)
    code_hash = package_hash()
    report, cells = {"profile": args.profile, "chapters": {}}, []
    runs = [(chapter, name, edition) for chapter in selected
            for name, edition in [(chapter, None), *editions_of(profile, chapter).items()]]
    for chapter, name, edition in runs:
        params = chapter_parameters(chapter, profile, common, per_chapter, args, edition)
        key = hashlib.sha256(json.dumps([params, code_hash, args.profile, (ROOT / "book" /
                             f"{chapter}.py").read_text(), repository_url(),
                             runtimes.load()],  # each chapter quotes its recorded times
                             sort_keys=True).encode()).hexdigest()
        stamp = REPORTS / f"{name}.key"
        executed = STAGE / "book" / f"{name}.ipynb"
        events = REPORTS / f"{name}.events.jsonl"
        if not args.force and executed.exists() and stamp.exists() and stamp.read_text() == key:
            print(f"== {name}: unchanged since its last execution, kept", flush=True)
            report["chapters"][name] = {"status": "unchanged", "seconds": 0.0, "models": []}
            continue
        print(f"== {name}: executing with {params}", flush=True)
        stamp.unlink(missing_ok=True)
        result = execute(chapter, params, events, name, edition, args.profile)
        stamp.write_text(key)
        record_edition(name, args.profile, params)
        report["chapters"][name] = {"status": "executed", **result,
                                    "models": read_events(events)}
        cells += cell_costs(executed, name)
    executed_editions = {chapter: [name for name in editions_of(profile, chapter)
                                   if (STAGE / "book" / f"{name}.ipynb").exists()]
                         for chapter in chapters}
    for chapter in dict.fromkeys(chapters + selected):
        for name in [chapter, *executed_editions.get(chapter, [])]:
            if (STAGE / "book" / f"{name}.ipynb").exists():
                tidy_notebook(STAGE / "book" / f"{name}.ipynb")
    stage_book(chapters, executed_editions)
    if not args.no_render:
        report["render_seconds"] = render()
        report["explorers"] = install_explorers()
    report["total_seconds"] = round(time.perf_counter() - start, 1)
    report["expensive_cells"] = most_expensive(cells)
    print("\n" + write_report(report))
    if args.record_times:
        try:
            runtimes.record(report, runtimes.machine_of(report))
        except ValueError as err:
            raise BuildError(str(err)) from None
        print(f"run times recorded in {runtimes.RUN_TIMES}")
    if not args.no_render:
        print(f"The book: {HTML / 'index.html'}")
    return 0


def _scripts_once(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files") or []
    unique = {(getattr(s, "filename", s) or "", str(getattr(s, "attributes", ""))): s
              for s in scripts}
    scripts[:] = unique.values()


EDITION_PAGE = re.compile(r"book/(?P<chapter>\d\d_[a-z0-9_]+)-[a-z0-9-]+$")


def _editions_launch_their_chapter(app, pagename, templatename, context, doctree) -> None:
    """An edition's page (``book/NN_name-SUFFIX``) has no notebook in the repository: its launch
    buttons open its chapter's (the page's note says which parameters to set)."""
    match = EDITION_PAGE.fullmatch(pagename)
    if not match:
        return
    for group in context.get("header_buttons") or []:
        if group.get("label") == "launch-buttons":
            for button in group.get("buttons", []):
                button["url"] = button["url"].replace(f"{pagename}.ipynb",
                                                      f"book/{match['chapter']}.ipynb")


def _add_static(app) -> None:
    """The book's own styles (latent_notes/book/static) among the files Sphinx publishes."""
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app) -> dict:
    """Sphinx extension (in _config.yml): a page loads each script once (Jupyter Book 1.x adds
    sphinx-thebe's and sphinx-togglebutton's inline scripts twice: a console error), and an
    edition's launch buttons open its chapter's notebook (sphinx-book-theme adds them at 501)."""
    app.connect("html-page-context", _scripts_once)
    app.connect("html-page-context", _editions_launch_their_chapter, priority=502)
    app.connect("builder-inited", _add_static)
    app.add_css_file("latent-notes.css")  # glued numbers in the sentence's own weight
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    sys.exit(main())
