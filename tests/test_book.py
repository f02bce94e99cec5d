"""Checks of the built quick-profile book (`make book` builds it; `make test` runs both)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from latent_notes.book import build
from latent_notes.book.results import read_results

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
pytestmark = pytest.mark.book


@pytest.fixture(scope="module", autouse=True)
def built_book():
    if not (HTML / "index.html").exists():
        pytest.fail("The book is not built: run `make book` (or `make test`, which builds it).")


@pytest.mark.parametrize("chapter", build.toc_chapters())
def test_chapter_page_exists_with_a_colab_link_to_a_real_notebook(chapter):
    page = (HTML / "book" / f"{chapter}.html").read_text()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    links = set(re.findall(r"https://colab\.research\.google\.com/github/([^\"'\s]+)", page))
    assert links, "no Open in Colab link on the page"
    for link in links:
        owner_repo, _, rest = link.partition("/blob/")
        branch, _, path = rest.partition("/")
        assert owner_repo == repo and branch == config["repository"]["branch"]
        assert (ROOT / path).is_file(), f"Colab link points to {path}, which is not in the repo"


@pytest.mark.parametrize("chapter", build.toc_chapters())
def test_rendered_text_has_its_numbers_and_figures(chapter):
    page = (HTML / "book" / f"{chapter}.html").read_text()
    assert "{glue" not in page and "glue:text" not in page, "an unrendered glue role"
    assert page.count("<img") >= 3, "the chapter's figures are missing"


@pytest.mark.parametrize("chapter", build.toc_chapters())
def test_executed_notebook_has_no_errors_and_its_results_table(chapter):
    notebook = nbformat.read(ROOT / "_build" / "src" / "book" / f"{chapter}.ipynb", as_version=4)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    table = read_results(ROOT / "results" / f"{chapter}.csv")
    assert len(table) > 0 and table["value"].notna().all()


@pytest.mark.integration
def test_rebuild_with_nothing_changed_executes_and_trains_nothing():
    subprocess.run([sys.executable, "-m", "latent_notes.book.build", "--profile", "quick",
                    "--no-render"],  # rendering is Sphinx's incremental build, not ours
                   cwd=ROOT, check=True, capture_output=True)
    report = json.loads((ROOT / "_build" / "reports" / "build-report.json").read_text())
    assert {c["status"] for c in report["chapters"].values()} == {"unchanged"}
    assert set(report["chapters"]) == set(build.toc_chapters())


def test_intro_page_states_the_edition_it_was_built_with():
    from latent_notes.data import DESCRIPTIONS

    page = (HTML / "book" / "intro.html").read_text()
    assert "This edition" in page, "the intro page does not say what it was built with"
    for chapter in build.toc_chapters():
        edition = json.loads((ROOT / "_build" / "reports" / f"{chapter}.edition.json").read_text())
        assert edition["profile"] == "quick" and edition["dataset"] == "mnist5k"
        text = re.sub(r"<[^>]+>", " ", page)  # the table's cells, without their markup
        described = re.escape(DESCRIPTIONS["mnist5k"]).replace("'", "(?:'|&#8217;|’)")
        assert re.search(rf"{chapter}\s+quick\s+{described}", text), chapter


def test_intro_and_chapters_quote_the_recorded_run_times():
    from latent_notes.book import runtimes

    times = runtimes.load()
    if not times:
        pytest.skip("no build has recorded run times (profiles/run_times.json)")
    intro = " ".join(re.sub(r"<[^>]+>", " ", (HTML / "book" / "intro.html").read_text())
                     .split())  # the table's cells as words, one row after another
    assert "What each chapter costs to run" in intro
    intro = intro.split("Wall time of each chapter in a build", 1)[1]  # the section itself
    for chapters in times.values():
        for chapter, entry in chapters.items():
            row = re.search(rf"\b{chapter} (.*?)(?= \d\d_[a-z]| Measured on)", intro)
            assert row and runtimes.duration(entry["seconds"]) in row[1], (chapter, row)
    for chapter in build.toc_chapters():
        page = re.sub(r"<[^>]+>", "", (HTML / "book" / f"{chapter}.html").read_text())
        assert runtimes.cost_sentence(chapter, times).split(";")[0] in page, chapter


@pytest.mark.parametrize("chapter", build.toc_chapters())
def test_the_first_screen_says_what_the_page_ran_on_and_leads_with_a_figure(chapter):
    """The page's first line names the data, profile and seed it was executed with; its lead
    figure and the folded "Running this chapter" note come before any code cell; a glued
    number is not set in bold; no checkpoint hash is printed."""
    from latent_notes.data import DESCRIPTIONS

    page = (HTML / "book" / f"{chapter}.html").read_text()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("’", "'")  # smart quotes
    edition = json.loads((ROOT / "_build" / "reports" / f"{chapter}.edition.json").read_text())
    line = re.search(r"This page was executed on (.*?)\.", text)
    assert line, f"{chapter}: no line saying what the page was executed on"
    assert DESCRIPTIONS[edition["dataset"]] in line[1], line[1]
    assert "the quick profile, seed 0" in line[1], line[1]
    body = page[page.index('<main'):]
    first_code = body.index('class="cell')
    assert body.index('id="fig-lead-') < first_code, f"{chapter}: the lead figure is not first"
    assert body.index("<img", body.index('id="fig-lead-')) < first_code
    assert body.index("Running this chapter, and its parameters") < first_code
    assert "latent-notes.css" in page and (HTML / "_static" / "latent-notes.css").exists()
    digest = re.search(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{16,}\b", text)
    assert not digest, f"a checkpoint hash on the page: {digest[0]}"


def test_intro_shows_the_recorded_claims_matrix():
    from latent_notes.book import claims

    record = claims.load()
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (HTML / "book" / "intro.html")
                                      .read_text()))
    if not record:
        assert "Where the claims hold" not in page
        pytest.skip("no claims matrix recorded (profiles/claims_matrix.json)")
    assert "Where the claims hold" in page and record["commit"] in page
    for cell in record["cells"]:
        assert cell in page, cell
    held = sum(all(found.get(c) == "passed" for found in record["cells"].values())
               for c in {c for found in record["cells"].values() for c in found})
    assert f"{held} of " in page
