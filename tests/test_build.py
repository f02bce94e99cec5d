"""The build pipeline's parts, and the promises the chapter sources make to their users."""
import re
from pathlib import Path

import jupytext
import pytest
import yaml
from papermill.translators import PythonTranslator

from latent_notes import build

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = build.all_chapters()
SHARED_PARAMETERS = ["dataset", "data_root", "epochs", "subset", "seed", "device", "results_dir",
                     "cache_dir"]


def test_toc_lists_only_chapters_that_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for entry in toc["chapters"]]
    assert files and all((ROOT / f"{f}.py").exists() for f in files)
    assert build.toc_chapters() == [Path(f).name for f in files]


def test_overrides_for_all_chapters_and_for_one():
    common, per_chapter = build.parse_overrides(["epochs=3", "01.subset=5000", "dataset=mnist"],
                                                CHAPTERS)
    assert common == {"epochs": 3, "dataset": "mnist"}
    assert per_chapter == {"01_cnn_warmup": {"subset": 5000}}
    with pytest.raises(build.BuildError, match="KEY=VALUE"):
        build.parse_overrides(["epochs"], CHAPTERS)
    with pytest.raises(build.BuildError, match="names 0 chapters"):
        build.parse_overrides(["99.epochs=1"], CHAPTERS)


def test_profiles_exist_and_name_real_chapters_and_parameters():
    for name in ("quick", "standard", "full"):
        profile = build.load_profile(name)
        for chapter, params in profile["chapters"].items():
            assert chapter in CHAPTERS, f"profile {name} names unknown chapter {chapter}"
            source = (ROOT / "book" / f"{chapter}.py").read_text()
            for key in params:
                assert re.search(rf"^{key} = ", source, re.M), f"{name}: {chapter} has no {key}"
    with pytest.raises(build.BuildError, match="Known profiles: full, quick, standard"):
        build.load_profile("huge")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_paired_notebook_is_in_sync_with_its_source(chapter):
    """book/NN.ipynb (for Colab and papermill) holds exactly the cells of book/NN.py."""
    source = jupytext.read(ROOT / "book" / f"{chapter}.py")
    paired = jupytext.read(ROOT / "book" / f"{chapter}.ipynb")
    assert [c.source for c in paired.cells] == [c.source for c in source.cells], \
        f"run `make sync` to regenerate book/{chapter}.ipynb"
    assert all(not c.get("outputs") for c in paired.cells if c.cell_type == "code")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_parameters_cell_and_colab_install(chapter):
    notebook = jupytext.read(ROOT / "book" / f"{chapter}.py")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    names = re.findall(r"^(\w+) = ", code[tagged[0]].source, re.M)
    assert names[:len(SHARED_PARAMETERS)] == SHARED_PARAMETERS
    assert "import" in code[tagged[0] - 1].source, "the parameters cell follows the imports"
    # papermill must read every parameter (its --help-notebook lists them with their comments)
    inspected = PythonTranslator.inspect(code[tagged[0]])
    assert [p.name for p in inspected] == names, "papermill cannot parse some parameter lines"
    assert all(p.help for p in inspected), "every parameter has a comment saying what it means"
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f"git+{url}" in code[0].source, "the first cell installs the package from the repo"

