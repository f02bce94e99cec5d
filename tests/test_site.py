"""The built book as a reader sees it: every page in headless Chromium, and what it loads."""
import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest

from latent_notes.book import build

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
PAGES = ["index.html"] + sorted(p.relative_to(HTML).as_posix() for p in HTML.glob("book/*.html"))
TEX_DELIMITERS = ["\\(", "\\)", "\\[", "\\]", "$$"]
pytestmark = pytest.mark.book

# True once MathJax has typeset the page (at once on a page without maths); false after 10 s.
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1], start = Date.now();
if (!document.querySelector('script[src*="mathjax"]')) { done(true); return; }
(function wait() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done(true), () => done(false));
  } else if (Date.now() - start > 10000) { done(false); } else { setTimeout(wait, 50); }
})();
"""
# The longest line of every code cell that scrolls sideways in the content column.
WIDE_CODE = """
return Array.from(document.querySelectorAll('.cell_input pre'))
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => p.textContent.split('\\n').reduce((a, l) => l.length > a.length ? l : a, ''));
"""
# Loads every image (scrolled into view, lazy loading off); returns those that did not load.
LOAD_IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
for (const image of images) { image.loading = "eager"; image.scrollIntoView(); }
Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
  .then(() => done(images.filter(i => !(i.naturalWidth > 0)).map(i => i.src)));
"""


@pytest.fixture(scope="module", autouse=True)
def built_book():
    if not (HTML / "index.html").exists():
        pytest.fail("The book is not built: run `make book` (or `make test`, which builds it).")


@pytest.fixture(scope="module")
def site():
    """The built book served on 127.0.0.1 for the length of these tests; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Selenium and Debian's chromedriver."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(it is in requirements.txt: `make test` installs it)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not chromium or not Path(driver_path).exists():
        pytest.skip("Chromium or chromedriver is missing: `apt-get install chromium "
                    "chromium-driver` (Debian) to run the browser checks of the book")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1440,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.parametrize("page", PAGES)
def test_page_in_a_browser(page, site, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(site + page)  # index.html redirects to the first page: wait for that one
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "return document.readyState == 'complete' && !!document.body"
        " && !document.querySelector('meta[http-equiv=refresh i]')"))
    assert browser.execute_async_script(WAIT_FOR_MATHJAX), (
        "MathJax did not load or typeset the page")
    text = browser.execute_script("return document.body.innerText")
    raw = [d for d in TEX_DELIMITERS if d in text]
    assert not raw, f"raw TeX delimiters {raw} in the rendered text: maths was not typeset"
    assert browser.execute_async_script(LOAD_IMAGES) == [], "images that did not load"
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat(Array.from(document.querySelectorAll('script[src]'), e => e.src))")
    remote = [r for r in resources if not r.startswith((site, "data:", "blob:"))]
    assert not remote, f"the page loads from the network: {remote}"
    # the browser asks for /favicon.ico by itself, page or not; the book ships none
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "/favicon.ico " not in e["message"]]
    assert not severe, f"errors in the browser console: {severe}"
    if Path(page).stem in build.toc_chapters():
        colab = browser.find_elements("css selector", "a[href*='colab.research.google.com']")
        assert colab, "no Open in Colab link on the chapter page"
        wide = browser.execute_script(WIDE_CODE)
        assert not wide, f"code lines wider than the content column (they scroll): {wide}"
        browser.execute_script("(document.querySelector('mjx-container[display]')"
                               " || document.body).scrollIntoView({block: 'center'})")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"{Path(page).stem}.png"))


def test_pages_load_mathjax_from_the_book_itself():
    pages_with_maths = [p for p in PAGES  # a page without maths says "mathjax_ignore"
                        if re.search(r'<script[^>]*src="[^"]*mathjax', (HTML / p).read_text())]
    assert pages_with_maths, "no page loads MathJax"
    for page in pages_with_maths:
        sources = [s.split("?")[0] for s in
                   re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', (HTML / page).read_text())]
        local = [s.split("/")[-3:] == ["_static", "mathjax", "tex-chtml.js"]
                 and (HTML / page).parent.joinpath(s).exists() for s in sources]
        assert sources and all(local), f"{page} loads MathJax from {sources}"


@pytest.mark.parametrize("chapter", build.toc_chapters())
def test_parameters_cell_shows_no_path_of_the_building_machine(chapter):
    notebook = nbformat.read(ROOT / "_build" / "src" / "book" / f"{chapter}.ipynb", as_version=4)
    injected = [c.source for c in notebook.cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and not re.search(r'= "/', injected[0]), injected
    page = (HTML / "book" / f"{chapter}.html").read_text()
    assert str(ROOT) not in page, f"the page shows the building machine's path {ROOT}"


def _open(browser, url):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "return document.readyState == 'complete' && !!document.body"))


# For every solution on the page: was its body hidden, and is it shown after a click on its
# title? (sphinx-exercise's solutions with :class: dropdown, folded by sphinx-togglebutton.)
SOLUTIONS = """
const found = Array.from(document.querySelectorAll('.solution.admonition'));
const shown = el => Array.from(el.children).filter(c => !c.classList.contains('admonition-title'))
  .some(c => c.offsetParent !== null && c.getBoundingClientRect().height > 0);
return found.map(el => {
  const before = shown(el);
  el.querySelector('.admonition-title').click();
  return {id: el.id, hidden_before: !before, shown_after: shown(el)};
});
"""


@pytest.mark.parametrize("chapter", build.toc_chapters())
def test_exercises_have_folded_solutions_that_open_on_a_click(chapter, site, browser):
    _open(browser, f"{site}book/{chapter}.html")
    exercises = browser.find_elements("css selector", ".exercise.admonition")
    assert len(exercises) >= 4, f"{chapter} has {len(exercises)} exercises (at least 4)"
    solutions = browser.execute_script(SOLUTIONS)
    assert len(solutions) == len(exercises), "every exercise has a solution under it"
    folded = [s["id"] for s in solutions if not s["hidden_before"]]
    assert not folded, f"solutions shown before a click: {folded}"
    closed = [s["id"] for s in solutions if not s["shown_after"]]
    assert not closed, f"solutions that a click does not open: {closed}"


def test_every_citation_links_to_an_entry_of_the_bibliography(site, browser):
    _open(browser, f"{site}book/references.html")
    entries = set(browser.execute_script(
        "return Array.from(document.querySelectorAll('[id]'), e => e.id)"))
    listed = browser.execute_script(
        "return document.querySelectorAll('.citation, dl.citation > dt, .bibliography *[id]')"
        ".length")
    assert listed >= 25, "the references page lists the bibliography"
    cited = 0
    for chapter in build.toc_chapters():
        _open(browser, f"{site}book/{chapter}.html")
        text = browser.execute_script("return document.body.innerText")
        assert "{cite" not in text, f"{chapter}: a citation role was not rendered"
        targets = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href*=\"references.html#\"]'),"
            " a => a.getAttribute('href').split('#')[1])")
        assert targets, f"{chapter} cites nothing"
        missing = [t for t in targets if t not in entries]
        assert not missing, f"{chapter}: citations to no entry of the bibliography: {missing}"
        cited += len(targets)
    assert cited >= 30
