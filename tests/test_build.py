"""The build pipeline's parts, and the promises the chapter sources make to their users."""
import argparse
import re
from pathlib import Path

import jupytext
import pytest
import yaml
from papermill.translators import PythonTranslator

from latent_notes.book import build

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = build.all_chapters()
SHARED_PARAMETERS = ["dataset", "data_root", "epochs", "subset", "seed", "device",
                     "deterministic", "precision", "results_dir", "cache_dir"]


def test_toc_lists_only_chapters_that_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for entry in toc["chapters"]]
    chapters = [f for f in files if (ROOT / f"{f}.py").exists()]  # the rest: pages (.md)
    assert chapters and all((ROOT / f"{f}.md").exists() for f in files if f not in chapters)
    assert build.toc_chapters() == [Path(f).name for f in chapters]


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
        for chapter, editions in profile["editions"].items():
            assert chapter in CHAPTERS, f"profile {name} has editions of unknown {chapter}"
            source = (ROOT / "book" / f"{chapter}.py").read_text()
            for params in editions.values():
                for key in params:
                    assert re.search(rf"^{key} = ", source, re.M), f"{name}: {chapter} has no {key}"
    assert build.editions_of(build.load_profile("full"), "05_comparison") == {
        "05_comparison-cifar10": {"dataset": "cifar10", "interpolation_from": "cat",
                                  "interpolation_to": "dog"}}
    with pytest.raises(build.BuildError, match="Known profiles: full, quick, standard"):
        build.load_profile("huge")


@pytest.mark.parametrize("suffix,params", [("CIFAR", {"dataset": "cifar10"}),
                                           ("../x", {"dataset": "cifar10"}),
                                           ("cifar10", {}), ("a--b", {"dataset": "mnist"})])
def test_an_edition_needs_a_file_safe_name_and_parameters(tmp_path, monkeypatch, suffix, params):
    (tmp_path / "odd.yml").write_text(yaml.safe_dump({"editions": {"05_comparison": {
        suffix: params}}}))
    monkeypatch.setattr(build, "PROFILES", tmp_path)
    with pytest.raises(build.BuildError, match="lower-case letters, digits and single hyphens"):
        build.load_profile("odd")


def test_an_edition_overrides_the_command_line_and_sits_under_its_chapter(tmp_path):
    profile = {"all": {"dataset": "mnist"}, "chapters": {"05_comparison": {"n_samples": 10}},
               "editions": {"05_comparison": {"cifar10": {"dataset": "cifar10"}}}}
    args = argparse.Namespace(results_dir=tmp_path, cache_dir=tmp_path, data_root=None)
    (name, edition), = build.editions_of(profile, "05_comparison").items()
    params = build.chapter_parameters("05_comparison", profile, {"dataset": "digits",
                                      "epochs": 1}, {}, args, edition)
    assert name == "05_comparison-cifar10"
    assert params["dataset"] == "cifar10" and params["epochs"] == 1 and params["n_samples"] == 10
    toc = {"root": "book/intro", "chapters": [{"file": "book/04_vqvae2"},
                                              {"file": "book/05_comparison"}]}
    staged = build.staged_toc(toc, {"05_comparison": [name]})
    assert staged["chapters"][1]["sections"] == [{"file": "book/05_comparison-cifar10"}]
    assert "sections" not in staged["chapters"][0]
    # a first build of one chapter renders that chapter, not links to pages never executed
    alone = build.staged_toc({"root": "book/intro", "chapters": [
        {"file": "book/04_vqvae2"}, {"file": "book/05_comparison"}, {"file": "book/references"}]},
        {}, left_out=("04_vqvae2",))
    assert alone["chapters"] == [{"file": "book/05_comparison"}, {"file": "book/references"}]


def test_an_editions_title_names_its_data_and_its_launch_buttons_open_the_chapter():
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("# 5. Comparing the three families\n\nText.")])
    build.mark_edition(notebook, "05_comparison", {"dataset": "cifar10"})
    title, _, rest = notebook.cells[1].source.partition("\n")
    assert title == "# 5. Comparing the three families (CIFAR-10)"
    assert "chapter 5 executed again with `dataset = 'cifar10'`" in rest and "Text." in rest
    url = "https://colab.research.google.com/github/o/r/blob/main/book/05_comparison-cifar10.ipynb"
    context = {"header_buttons": [{"label": "launch-buttons", "buttons": [{"url": url}]}]}
    build._editions_launch_their_chapter(None, "book/05_comparison-cifar10", "page", context, None)
    assert context["header_buttons"][0]["buttons"][0]["url"].endswith(
        "/blob/main/book/05_comparison.ipynb")
    chapter_page = {"header_buttons": [{"label": "launch-buttons", "buttons": [{"url": url}]}]}
    build._editions_launch_their_chapter(None, "book/05_comparison", "page", chapter_page, None)
    assert chapter_page["header_buttons"][0]["buttons"][0]["url"] == url  # not an edition


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



@pytest.mark.parametrize("text, value", [
    ("off", "off"), ("1e-3", 0.001), ("010", 10), ("1:30", "1:30"), ("True", True),
    ("False", False), ("None", None), ("-2", -2), ("inf", float("inf")), ("yes", "yes"),
    ("[8, 16]", [8, 16]), ("{'a': 1}", {"a": 1}), ("folder", "folder")])
def test_command_line_values_follow_papermill(text, value):
    common, _ = build.parse_overrides([f"x={text}"], CHAPTERS)
    assert common["x"] == value and type(common["x"]) is type(value)
    # and they reach the chapter unchanged through papermill's parameters file
    assert yaml.safe_load(yaml.safe_dump(common)) == common


@pytest.mark.parametrize("text", ["[8, 16", "{1, 2}", "[os.system('x')]", ""])
def test_command_line_values_that_do_not_parse_are_refused(text):
    with pytest.raises(build.BuildError, match="list or dict|has no value"):
        build.parse_overrides([f"sizes={text}"], CHAPTERS)


def test_command_line_paths_are_relative_to_where_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export").mkdir()
    common, per_chapter = build.parse_overrides(
        ["dataset=folder:imgs", "weights=export", "data_root=data", "01.dataset=folder:../x",
         "03.colour_dataset=folder:cars"], CHAPTERS)
    assert common == {"dataset": f"folder:{tmp_path / 'imgs'}", "weights": str(tmp_path / "export"),
                      "data_root": str(tmp_path / "data")}
    assert per_chapter == {"01_cnn_warmup": {"dataset": f"folder:{tmp_path.parent / 'x'}"},
                           "03_vae": {"colour_dataset": f"folder:{tmp_path / 'cars'}"}}
    for kept in ("weights=off", "weights=auto", "weights=https://example.org/w", "dataset=mnist"):
        assert build.parse_overrides([kept], CHAPTERS)[0] == dict([kept.split("=", 1)])


def test_the_published_parameters_show_no_path_of_the_building_machine(tmp_path, monkeypatch):
    import argparse

    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    monkeypatch.chdir(tmp_path)
    (tmp_path / "export").mkdir()
    common, per_chapter = build.parse_overrides(
        ["dataset=folder:imgs", "weights=export", "judges=['/srv/a', 'mnist']", "epochs=2"],
        CHAPTERS)
    args = argparse.Namespace(results_dir=str(tmp_path / "results"),
                              cache_dir=str(tmp_path / "cache"), data_root="C:\\Users\\me\\data")
    params = build.chapter_parameters(CHAPTERS[0], {"all": {}, "chapters": {}}, common,
                                      per_chapter, args)
    params["data_root"] = "C:\\Users\\me\\data"  # a Windows build
    source = load_notebook_node(str(ROOT / "book" / f"{CHAPTERS[0]}.ipynb"))
    notebook = parameterize_notebook(source, params, kernel_name="python3", language="python")
    path = tmp_path / "executed.ipynb"
    nbformat.write(notebook, path)
    build.tidy_notebook(path)
    cell, = [c.source for c in nbformat.read(path, 4).cells
             if "injected-parameters" in c.metadata.get("tags", [])]
    assert str(tmp_path) not in cell and "/srv" not in cell and "Users" not in cell, cell
    assert 'dataset = "folder:<your image folder>"' in cell
    assert "weights = None  # this build's weights source" in cell
    assert "data_root = None  # this build's data folder" in cell
    assert 'results_dir = "results"' in cell and "cache_dir = None" in cell
    assert 'judges = ["<a path of the building machine>", "mnist"]' in cell
    assert "epochs = 2" in cell


def test_the_report_says_what_resumed_and_where_a_model_was_trained(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "REPORTS", tmp_path)
    trained = {"name": "vqvae2", "status": "trained", "seconds": 61.0, "images_per_s": 983.4,
               "resumed_from": 2, "trained_on": {"device": "cpu", "threads": 2,
                                                 "torch": "2.13.0"}}
    loaded = {"name": "ae-latent16", "status": "loaded", "seconds": 0.0, "images_per_s": None,
              "trained_on": {"device": "cuda", "name": "NVIDIA H200", "torch": "2.13.0"}}
    text = build.write_report({"profile": "standard", "total_seconds": 70.0, "chapters": {
        "04_vqvae2": {"status": "executed", "seconds": 70.0, "models": [trained, loaded]}}})
    assert ("vqvae2 trained (resumed from epoch 2) 61.0 s, 983 img/s on a CPU (2 threads, "
            "torch 2.13.0); ae-latent16 loaded |") in text


def test_a_profiles_folder_is_a_folder_of_the_data_root(tmp_path, monkeypatch):
    profile = {"all": {}, "chapters": {"03_vae": {"colour_dataset": "folder:photos",
                                                  "dataset": "folder:/abs/cars"}}}
    args = argparse.Namespace(results_dir=tmp_path, cache_dir=tmp_path,
                              data_root=str(tmp_path / "data"))
    params = build.chapter_parameters("03_vae", profile, {}, {}, args)
    assert params["colour_dataset"] == f"folder:{(tmp_path / 'data' / 'photos').resolve()}"
    assert params["dataset"] == "folder:/abs/cars"  # an absolute folder is left alone
    monkeypatch.setenv("LATENT_NOTES_DATA", str(tmp_path / "env"))
    args.data_root = None
    params = build.chapter_parameters("03_vae", profile, {}, {}, args)
    assert params["colour_dataset"] == f"folder:{(tmp_path / 'env' / 'photos').resolve()}"
    profile["chapters"]["03_vae"]["colour_dataset"] = "folder:../../etc"  # hostile
    with pytest.raises(build.BuildError, match="leads outside the data root"):
        build.chapter_parameters("03_vae", profile, {}, {}, args)
