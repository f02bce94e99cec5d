"""What a chapter is given from outside, through the book's build (``-p KEY=VALUE``) or through
papermill (``-p NAME VALUE``): a name no chapter has is refused before anything runs, with the
closest name; a key is a Python name, never code; a list given as text is read as a literal."""
import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from latent_notes.book import build
from latent_notes.book.parameters import (
    AutoencoderParameters,
    ComparisonParameters,
    VAEParameters,
    WarmupParameters,
    chapter_parameter_names,
)
from latent_notes.checks import ParameterError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = build.all_chapters()
WARMUP_CELL = "dataset = 'digits'\nepochs = 3\nsubset = None\nseed = 0\n"  # a parameters cell


# -- the book's build ----------------------------------------------------------------------------

@pytest.mark.parametrize("item, closest", [("01.epochz=1", "epochs"), ("subest=500", "subset"),
                                           ("03.betaz=[1, 2]", "betas")])
def test_a_misspelt_name_is_refused_with_the_closest_and_the_chapters_parameters(item, closest):
    common, per_chapter = build.parse_overrides([item], CHAPTERS)
    with pytest.raises(build.BuildError, match=rf"Did you mean {closest}\?") as error:
        build.check_override_names(common, per_chapter, CHAPTERS)
    assert "is not a parameter of" in str(error.value) and "dataset, data_root" in str(error.value)


def test_the_build_refuses_a_typo_before_any_chapter_runs(monkeypatch, capsys):
    def execute(*args, **kwargs):
        raise AssertionError("a chapter was executed")

    monkeypatch.setattr(build, "execute", execute)
    assert build.main(["--chapters", "01", "--no-render", "-p", "01.epochz=1"]) == 1
    assert "'epochz' is not a parameter of book/01_cnn_warmup.py" in capsys.readouterr().err


def test_a_name_for_all_chapters_goes_to_those_that_have_it_and_one_none_has_is_refused(
        tmp_path):
    common, per_chapter = build.parse_overrides(["latent_sizes=[2, 4]", "epochs=1"], CHAPTERS)
    build.check_override_names(common, per_chapter, ["01_cnn_warmup", "02_autoencoder"])
    with pytest.raises(build.BuildError, match="not a parameter of any of the chapters "
                                               "01_cnn_warmup"):
        build.check_override_names(common, per_chapter, ["01_cnn_warmup"])
    args = argparse.Namespace(results_dir=tmp_path, cache_dir=tmp_path, data_root=None)
    profile = {"all": {}, "chapters": {}}
    first = build.chapter_parameters("01_cnn_warmup", profile, common, per_chapter, args)
    second = build.chapter_parameters("02_autoencoder", profile, common, per_chapter, args)
    assert "latent_sizes" not in first and first["epochs"] == 1  # chapter 1 would refuse it
    assert second["latent_sizes"] == [2, 4] and second["epochs"] == 1


@pytest.mark.parametrize("item", ["print(7*6);z=1", "01.print(7*6);z=1", "01.a.b=1",
                                  "class=1", "01.x y=2", "9lives=1"])
def test_a_key_that_is_not_a_python_name_never_reaches_a_cell(item):
    with pytest.raises(build.BuildError, match="is not a parameter's name"):
        build.parse_overrides([item], CHAPTERS)


@pytest.mark.parametrize("item", ["99.epochs=1", "0.epochs=1", "print(1).epochs=1"])
def test_a_scope_must_name_one_chapter(item):
    with pytest.raises(build.BuildError, match=r"names \d+ chapters"):
        build.parse_overrides([item], CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_names_are_read_from_each_chapters_parameters_cell(chapter):
    names = chapter_parameter_names(ROOT / "book" / f"{chapter}.py")
    source = (ROOT / "book" / f"{chapter}.py").read_text()
    cell = re.split(r'# %% tags=\["parameters"[^\]]*\]', source, maxsplit=1)[1].split("# %%")[0]
    assert names == re.findall(r"^(\w+) = ", cell, re.M) and "epochs" in names


# -- papermill, running a chapter directly -----------------------------------------------------

def executed(*cells: str) -> dict:
    """A chapter's namespace as IPython leaves it: ``In`` lists the cells run so far."""
    return {"In": ["", "import torch", *cells], "epochs": 3}


def test_a_name_papermill_injected_that_the_chapter_lacks_is_refused():
    namespace = executed(WARMUP_CELL, "# Parameters\nepochz = 1\n", "chapter = start(...)")
    with pytest.raises(ParameterError, match=r"'epochz' is not a parameter of "
                                             r"book/01_cnn_warmup.py: .*Did you mean epochs\?"
                                             r" The parameters: dataset, epochs, subset, seed"):
        WarmupParameters.of(namespace)
    code = executed(WARMUP_CELL, "# Parameters\nprint(7 * 6)\nz = 1\n")  # papermill's own -p
    with pytest.raises(ParameterError, match="'z' is not a parameter"):
        WarmupParameters.of(code)


def test_known_injected_names_and_runs_outside_papermill_pass():
    assert WarmupParameters.of(executed(WARMUP_CELL, "# Parameters\nepochs = 1\nseed = 2\n")) \
        == WarmupParameters()
    assert WarmupParameters.of(executed(WARMUP_CELL)) == WarmupParameters()  # no injected cell
    assert WarmupParameters.of({"epochs": 3}) == WarmupParameters()  # not IPython: no In


@pytest.mark.integration
def test_papermill_run_of_a_chapter_stops_at_its_check_on_a_typo(tmp_path):
    run = subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "book" /
                          "01_cnn_warmup.ipynb"), str(tmp_path / "out.ipynb"), "-p", "epochz",
                          "1", "-p", "results_dir", str(tmp_path), "-k", "python3"],
                         capture_output=True, text=True, cwd=tmp_path)
    error = re.sub(r"\x1b\[[0-9;]*m", "", run.stderr)  # the traceback's colours off
    assert run.returncode != 0
    assert "ParameterError: 'epochz' is not a parameter of book/01_cnn_warmup.py" in error, \
        error[-3000:]
    assert "Did you mean epochs?" in error
    assert not (tmp_path / "01_cnn_warmup.csv").exists()  # nothing was measured


# -- a list given as text, as papermill's -p gives it ------------------------------------------

AUTOENCODER = dict(latent_sizes=[2, 8], traversal_latent=8, noise_latent=None,
                   traversal_units="std", traversal_range=1.0, traversal_step=0.25,
                   noise_scales=[0.0, 1.0])
VAE = dict(latent_size=16, betas=[0.5, 1, 4], noise_levels=[0.1, 0.3], is_samples=100,
           eval_images=None, latent_sizes=[4, 16], size_epochs=None)


@pytest.mark.parametrize("parameters, values, name, text, value", [
    (AutoencoderParameters, AUTOENCODER, "latent_sizes", "[2, 8]", [2, 8]),
    (AutoencoderParameters, AUTOENCODER, "noise_scales", "[0, 0.5]", [0, 0.5]),
    (VAEParameters, VAE, "betas", "[0.5, 1]", [0.5, 1]),
    (VAEParameters, VAE, "noise_levels", "(0.2,)", [0.2]),
    (VAEParameters, VAE, "latent_sizes", " [16, 4] ", [4, 16]),
    (ComparisonParameters, dict(fid_draws=2, labels_per_class=[1, 10], spread_at=[10]),
     "labels_per_class",
     "[1, 10, None]", [1, 10, None])])
def test_a_list_given_as_text_is_read_as_a_python_literal(parameters, values, name, text,
                                                           value):
    checked = parameters.of({**values, name: text})
    assert getattr(checked, name) == value


@pytest.mark.parametrize("text", ["[2, 8", "__import__('os').system('echo x')", "{2: 8}"])
def test_a_list_that_does_not_read_names_papermills_ways_to_give_one(text):
    with pytest.raises(ParameterError, match=r"^latent_sizes must be a list") as error:
        AutoencoderParameters.of({**AUTOENCODER, "latent_sizes": text})
    message = str(error.value)
    assert repr(text) in message
    assert '-y "latent_sizes: [...]"' in message and '-p latent_sizes "[...]"' in message
    assert "-p 02.latent_sizes=" in message  # and the build's own syntax


def test_the_chapters_use_their_lists_as_checked():
    """A chapter that read its list parameter itself would get papermill's text."""
    for parameters in (AutoencoderParameters, VAEParameters, ComparisonParameters):
        source = (ROOT / "book" / f"{parameters.CHAPTER}.py").read_text()
        start = source.index("parameters=" + parameters.__name__)
        start_cell, rest = source[start:].split("\n# %%", 1)
        code = "\n".join(cell.split("\n", 1)[1] for cell in rest.split("\n# %%")
                         if not cell.startswith(" [markdown]"))
        for name in (f.name for f in parameters.__dataclass_fields__.values()
                     if f.type == "list"):
            used = re.search(rf"(?<![\w.]){name}\b", code)
            assert not used or f"chapter.parameters.{name}" in start_cell, (parameters, name)
