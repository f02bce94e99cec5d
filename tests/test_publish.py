"""Publishing: the GitHub Actions workflow, the make targets it calls, the repository's one URL."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

from latent_notes.book import build

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
NOT_SOURCES = {".git", ".venv", "_build", ".cache", "results", "data", "__pycache__"}


def test_workflow_matches_githubs_schema_and_passes_actionlint_where_installed():
    """check-jsonschema carries GitHub's workflow schema, so this runs offline everywhere;
    actionlint (a deeper check) runs too where it is installed."""
    schema = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", str(WORKFLOW)], capture_output=True,
                            text=True)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    binary = shutil.which("actionlint") or shutil.which("actionlint",
                                                        path=str(Path(sys.executable).parent))
    if binary:
        lint = subprocess.run([binary, "-no-color", str(WORKFLOW)], cwd=ROOT,
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_code_passes_ruff():
    """pyflakes, pycodestyle, import order and bugbear, as configured in pyproject.toml."""
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "latent_notes",
                           "tests", "scripts", "book"], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr


def test_every_make_target_the_workflow_calls_exists():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", [])
            if "run" in step]
    called = {target for run in runs for target in re.findall(r"\bmake\s+([\w-]+)", run)}
    defined = set(re.findall(r"^([\w-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))
    assert called, "the workflow calls no make target"
    assert called <= defined, f"the workflow calls make targets missing in the Makefile: " \
                              f"{called - defined}"


def test_repository_url_comes_from_config():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert build.repository_url() == config["repository"]["url"].rstrip("/")


def test_repository_url_is_written_only_in_config_and_the_chapters():
    url, found = build.repository_url().encode(), []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in NOT_SOURCES and not d.endswith(".egg-info")]
        found += [Path(folder, f).relative_to(ROOT).as_posix() for f in files
                  if url in Path(folder, f).read_bytes()]
    others = [f for f in found if f != "_config.yml" and not f.startswith("book/")]
    assert not others, (f"{others} hold the repository URL: read it with "
                        "latent_notes.book.build.repository_url() (from _config.yml) instead")


@pytest.mark.parametrize("chapter", build.all_chapters())
def test_chapter_install_cell_uses_the_config_url(chapter):
    for suffix in (".py", ".ipynb"):
        cells = jupytext.read(ROOT / "book" / f"{chapter}{suffix}").cells
        urls = {u for c in cells for u in build.INSTALL_URL.findall(c.source)}
        assert urls == {f"git+{build.repository_url()}"}, \
            f"book/{chapter}{suffix} installs from {urls}, not from _config.yml's repository.url"


def test_staged_notebooks_install_from_the_config_url(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "repository_url", lambda: "https://example.org/fork")
    monkeypatch.setattr(build, "STAGE", tmp_path)
    chapter = build.all_chapters()[0]
    notebook = json.loads(build.convert(chapter).read_text())
    sources = "".join("".join(c["source"]) for c in notebook["cells"])
    assert "git+https://example.org/fork" in sources
    assert not re.search(r"git\+https://github\.com", sources)


def test_injected_parameters_show_no_paths_of_the_building_machine():
    source = (f'# Parameters\nepochs = 3\nresults_dir = "{ROOT}/results"\n'
              f'cache_dir = "/tmp/x/checkpoints"\ndata_root = "/srv/data"\n')
    shown = build.show_parameters(source)
    assert shown == ('# Parameters\nepochs = 3\nresults_dir = "results"\n'
                     "cache_dir = None  # this build's checkpoint cache\n"
                     "data_root = None  # this build's data folder\n")
    assert build.show_parameters(shown) == shown
    assert build.show_parameters('results_dir = "/elsewhere/out"') == 'results_dir = "results"'
