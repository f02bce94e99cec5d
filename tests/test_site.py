"""The built book as a reader sees it: every page in headless Chromium, and what it loads."""
import functools
import http.server
import json
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


# -- the explorers: the chapters' models live in the page ------------------------------------
EXPLORERS = {"02_autoencoder": "ae-sliders", "03_vae": "vae-plane", "04_vqvae2": "vq-grid",
             "05_comparison": "compare"}
TOLERANCE = 2 / 255  # largest difference per pixel between the page and PyTorch
DECODE_BUDGET_MS = 30  # one image after a slider move (median of 50 moves)
SAMPLE_BUDGET_S = 2  # one class-conditional sample with both priors
PAGE_MODELS_BUDGET = 5 * 2**20  # exported models a page loads
# models a page loads only when the reader first uses them (not counted at the page's start)
ON_DEMAND = {"04_vqvae2": "prior-*.onnx", "05_comparison": "*-encoder.onnx"}
# Waits until the page's explorer has started (or given up); returns its state.
EXPLORER_STATE = """
const done = arguments[arguments.length - 1], start = Date.now();
(function wait() {
  const e = document.querySelector('.ln-explorer');
  const state = e && e.dataset.state;
  if (e && state && state !== 'loading') done(state);
  else if (Date.now() - start > 90000) done(state || 'absent');
  else setTimeout(wait, 100);
})();
"""
CALL = """
const done = arguments[arguments.length - 1];
const explorer = document.querySelector('.ln-explorer').explorer;
Promise.resolve((async () => { %s })()).then(done, e => done('error: ' + e));
"""
MEASURED = ROOT / "_build" / "reports" / "explorers-measured.json"


def _call(browser, body: str):
    return browser.execute_async_script(CALL % body)


def _fixture(chapter: str) -> dict:
    return json.loads((HTML / "book" / "explorers" / chapter / "fixture.json").read_text())


def _ink_difference(rgba: list[int], image: list[float]) -> float:
    """Largest difference between a canvas's red channel (ink dark on paper, 1 - v) and the
    model's output ``image`` (one channel, values in [0, 1])."""
    import numpy as np

    shown = np.asarray(rgba, dtype=float).reshape(-1, 4)[:, 0] / 255
    want = 1 - np.clip(np.asarray(image, dtype=float), 0, 1)
    assert shown.shape == want.shape, f"canvas has {shown.size} pixels, the model {want.size}"
    return float(np.abs(shown - want).max())


def _onnx(chapter: str, file: str, **inputs):
    """What onnxruntime (Python) computes with the page's model file on ``inputs``; its
    parity with PyTorch (1e-5) is checked when the build exports it."""
    import numpy as np

    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(HTML / "book" / "explorers" / chapter / file),
                                   providers=["CPUExecutionProvider"])
    feed = {k: np.asarray(v, dtype=np.int64 if k in ("top", "bottom", "codes", "label", "cond")
                          else np.float32) for k, v in inputs.items()}
    return session.run(None, feed)[0].ravel().tolist()


def _measure(chapter: str, **numbers) -> None:
    """Keep what a test measured in the build's reports (the README and notes quote it)."""
    measured = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    measured.setdefault(chapter, {}).update(numbers)
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    MEASURED.write_text(json.dumps(measured, indent=1))


def _live(browser, site, chapter: str) -> None:
    browser.get_log("browser")
    _open(browser, f"{site}book/{chapter}.html")
    state = browser.execute_async_script(EXPLORER_STATE)
    if state == "missing":
        pytest.skip("this book was built without the in-page runtime (no access to the npm "
                    "registry at build time): its explorers are still figures")
    assert state == "ready", f"the explorer did not start: state {state}, note " + \
        browser.execute_script("return document.querySelector('.ln-explorer .ln-note')"
                               ".textContent")
    loaded = _loaded_models(browser)
    _measure(chapter, model_bytes_loaded_at_start=loaded)
    assert 0 < loaded <= PAGE_MODELS_BUDGET, f"{loaded / 2**20:.2f} MB of models at start"


def _no_severe(browser) -> None:
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "/favicon.ico " not in e["message"]]
    assert not severe, f"errors in the browser console: {severe}"


def _median_move_ms(browser, move: str, moves: int = 50) -> float:
    """Median of ``moves`` slider moves, each decoded before the next (performance.now)."""
    times = _call(browser, f"""
      const times = [];
      for (let i = 0; i < {moves}; i++) {{ {move} times.push(await explorer.done()); }}
      return times;""")
    assert isinstance(times, list), times
    return sorted(times)[len(times) // 2]


def test_explorer_models_fit_the_page_budget():
    """Every page's models within the budget, those loaded on demand (chapter 4's priors on the
    first sample, chapter 5's encoders on the first drawing) counted apart: the live tests
    measure what each page loads at its start."""
    folders = sorted((HTML / "book" / "explorers").glob("*"))
    assert [f.name for f in folders] == sorted(EXPLORERS), "explorer folders in the book"
    for folder in folders:
        size = sum(f.stat().st_size for f in folder.glob("*.onnx"))
        deferred = sum(f.stat().st_size for f in folder.glob(ON_DEMAND[folder.name])) \
            if folder.name in ON_DEMAND else 0
        _measure(folder.name, model_bytes=size, model_bytes_on_demand=deferred)
        assert 0 < size - deferred <= PAGE_MODELS_BUDGET, \
            f"{folder.name}: {(size - deferred) / 2**20:.2f} MB of models"


def _loaded_models(browser) -> int:
    """Bytes of ONNX files the page has fetched so far (resource timing)."""
    return browser.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('.onnx'))"
        ".reduce((n, e) => n + e.encodedBodySize, 0)")


def test_ae_sliders_decode_what_pytorch_decodes(site, browser):
    chapter = "02_autoencoder"
    _live(browser, site, chapter)
    fixture = _fixture(chapter)
    for code, image in zip(fixture["inputs"], fixture["outputs"], strict=True):
        pixels = _call(browser, f"await explorer.set({{code: {json.dumps(code)}}}); "
                                "return explorer.pixels();")
        assert _ink_difference(pixels, image) <= TOLERANCE
    # a real slider move: the third coordinate to +1.5 standard deviations
    moved = _call(browser, """
      const slider = document.querySelectorAll('.ln-sliders input')[2];
      slider.value = 1.5; slider.dispatchEvent(new Event('input'));
      await explorer.done(); return [explorer.code(), explorer.pixels()];""")
    code, pixels = moved
    config = _config(browser)
    assert abs(code[2] - (config["mean"][2] + 1.5 * config["sd"][2])) < 1e-5
    assert _ink_difference(pixels, _onnx(chapter, config["decoder"], z=[code])) <= TOLERANCE
    ms = _median_move_ms(browser, "const s = document.querySelectorAll('.ln-sliders input')[0];"
                                  "s.value = -2 + 4 * i / 49; s.dispatchEvent(new Event('input'));")
    _measure(chapter, decode_ms_median=round(ms, 2))
    assert ms <= DECODE_BUDGET_MS
    _no_severe(browser)


def _config(browser) -> dict:
    return json.loads(browser.execute_script(
        "return document.querySelector('.ln-explorer').dataset.config"))


def test_vae_plane_decodes_where_the_reader_drags(site, browser):
    from selenium.webdriver import ActionChains

    chapter = "03_vae"
    _live(browser, site, chapter)
    fixture, config = _fixture(chapter), _config(browser)
    for name, images in fixture["outputs"].items():
        for z, image in zip(fixture["inputs"], images, strict=True):
            pixels = _call(browser, f"await explorer.set({{z: {json.dumps(z)}, "
                                    f"beta: {json.dumps(name)}}}); return explorer.pixels();")
            assert _ink_difference(pixels, image) <= TOLERANCE, name
    # a real drag on the plane, with the first model chosen again
    _call(browser, f"await explorer.set({{beta: {json.dumps(next(iter(config['decoders'])))}}});")
    plane = browser.find_element("css selector", ".ln-explorer canvas.ln-plane")
    ActionChains(browser).move_to_element_with_offset(plane, -60, 40).click_and_hold() \
        .move_by_offset(30, -20).release().perform()
    z, pixels, model = _call(browser, "await explorer.done(); "
                                      "return [explorer.z(), explorer.pixels(), explorer.model()];")
    assert z != config["start"], "the drag did not move the code"
    file = config["decoders"][model]
    assert _ink_difference(pixels, _onnx(chapter, file, z=[z])) <= TOLERANCE
    ms = _median_move_ms(browser, "explorer.set({z: [Math.cos(i / 8), Math.sin(i / 8)]});")
    _measure(chapter, decode_ms_median=round(ms, 2))
    assert ms <= DECODE_BUDGET_MS
    _no_severe(browser)


def test_vq_grid_edits_codes_and_samples_with_both_priors(site, browser):
    chapter = "04_vqvae2"
    _live(browser, site, chapter)
    fixture, config = _fixture(chapter), _config(browser)
    for (level, r, c, code), image in zip(fixture["edits"], fixture["outputs"], strict=True):
        # click the cell, type the code: what a reader does
        _call(browser, f"await explorer.set({{top: {fixture['top']}, bottom: "
                       f"{fixture['bottom']}}});")
        browser.find_element(
            "css selector", f".ln-explorer table.ln-{level} td[data-row='{r}']"
                            f"[data-column='{c}']").click()
        field = browser.find_element("css selector", ".ln-explorer input.ln-code")
        browser.execute_script("arguments[0].value = arguments[1];"
                               "arguments[0].dispatchEvent(new Event('input'));", field, code)
        grids, pixels = _call(browser, "await explorer.done(); "
                                       "return [explorer.grids(), explorer.pixels()];")
        assert grids[level][r][c] == code
        assert _ink_difference(pixels, image) <= TOLERANCE, (level, r, c, code)
    ms = _median_move_ms(browser, "explorer.set({code: i % 7});")
    _measure(chapter, decode_ms_median=round(ms, 2))
    assert ms <= DECODE_BUDGET_MS
    if config["priors"]:
        first = _call(browser, "const t = performance.now(); await explorer.sample(0, 1.0, 99);"
                               "return performance.now() - t;")  # with loading the priors
        _measure(chapter, first_sample_with_loading_s=round(first / 1000, 3))
        seconds = []
        for label in range(3):
            taken = _call(browser, f"return await explorer.sample({label}, 1.0, {label});")
            seconds.append(taken / 1000)
        grids, pixels = _call(browser, "return [explorer.grids(), explorer.pixels()];")
        assert _ink_difference(pixels, _onnx(chapter, config["decoder"], top=[grids["top"]],
                                             bottom=[grids["bottom"]])) <= TOLERANCE
        _measure(chapter, sample_s=[round(s, 3) for s in seconds])
        assert max(seconds) <= SAMPLE_BUDGET_S, f"one sample took {max(seconds):.2f} s"
    _no_severe(browser)


def test_compare_blends_three_codes_and_reconstructs_a_drawing(site, browser):
    from selenium.webdriver import ActionChains

    chapter = "05_comparison"
    _live(browser, site, chapter)
    fixture, config = _fixture(chapter), _config(browser)
    for i, t in enumerate(fixture["blend"]):
        slider = browser.find_element("css selector", ".ln-explorer input.ln-blend")
        browser.execute_script("arguments[0].value = arguments[1];"
                               "arguments[0].dispatchEvent(new Event('input'));", slider, t)
        _call(browser, "await explorer.done();")
        for name, images in fixture["interpolation"].items():
            pixels = _call(browser, f"return explorer.pixels({json.dumps(name)});")
            assert _ink_difference(pixels, images[i]) <= TOLERANCE, (name, t)
    if config["shape"][0] != 1:
        return  # colour data: no drawing pad
    drawn = fixture["drawn"]
    _call(browser, f"await explorer.set({{image: {json.dumps(drawn['image'])}}});")
    for name in config["families"]:
        pixels = _call(browser, f"return explorer.reconstruction({json.dumps(name)});")
        assert _ink_difference(pixels, drawn[name]) <= TOLERANCE, name
    landed = _call(browser, "return explorer.landed();")
    assert max(abs(a - b) for a, b in zip(landed, drawn["plane"], strict=True)) < 1e-3
    # a stroke on the pad: a seven, and each model's reconstruction of what the page prepared
    pad = browser.find_element("css selector", ".ln-explorer canvas.ln-pad")
    ActionChains(browser).move_to_element_with_offset(pad, -50, -60).click_and_hold() \
        .move_by_offset(100, 0).move_by_offset(-60, 120).release().perform()
    image = _call(browser, "await explorer.done(); return explorer.input();")
    _measure(chapter, model_bytes_loaded_after_drawing=_loaded_models(browser))
    assert image and max(image) > 0.5, "the stroke left no ink in the 28-pixel input"
    for name, family in config["families"].items():
        z = _onnx(chapter, family["encoder"], image=[[list_rows(image, config["shape"])]])
        want = _onnx(chapter, family["decoder"], z=[z])
        pixels = _call(browser, f"return explorer.reconstruction({json.dumps(name)});")
        assert _ink_difference(pixels, want) <= TOLERANCE, name
    ms = _median_move_ms(browser, "const s = document.querySelector('.ln-blend');"
                                  "s.value = i / 49; s.dispatchEvent(new Event('input'));")
    _measure(chapter, three_decoders_ms_median=round(ms, 2))
    assert ms <= 3 * DECODE_BUDGET_MS
    _no_severe(browser)


def list_rows(flat: list[float], shape: list[int]) -> list[list[float]]:
    """A flat (H·W) image as H rows of W."""
    _, height, width = shape
    return [flat[r * width:(r + 1) * width] for r in range(height)]


def test_an_explorer_opened_from_a_file_says_how_to_serve_the_book(browser):
    _open(browser, (HTML / "book" / "03_vae.html").as_uri())
    note = browser.find_element("css selector", ".ln-explorer .ln-note").text
    assert "serve the book" in note and "make serve" in note
    assert browser.find_element("css selector", ".ln-explorer img.ln-still").is_displayed()


def test_without_the_runtime_the_explorers_are_still_figures(browser):
    class NoRuntime(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # the book as an offline build leaves it: runtime.js says null
            if self.path.endswith("/_static/explorers/runtime.js"):
                body = b"export const runtimeFiles = null;\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(NoRuntime, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for chapter in EXPLORERS:
            browser.get_log("browser")
            _open(browser, f"http://127.0.0.1:{server.server_port}/book/{chapter}.html")
            assert browser.execute_async_script(EXPLORER_STATE) == "missing", chapter
            assert browser.find_element("css selector", ".ln-explorer img.ln-still").is_displayed()
            note = browser.find_element("css selector", ".ln-explorer .ln-note").text
            assert "built offline" in note, note
            _no_severe(browser)
    finally:
        server.shutdown()
        server.server_close()


# -- whatever the reader does: no console error, and the last input wins ---------------------
RANDOM_INPUT_SECONDS = 10
# what a reader can reach inside an explorer: its controls, canvases and the code grids' cells
REACHABLE = ".ln-explorer .ln-live :is(input, select, button, canvas, td)"
FOCUSABLE = ".ln-explorer .ln-live :is(input, select, button)"  # what takes keys
KEYS = ["ARROW_UP", "ARROW_DOWN", "ARROW_LEFT", "ARROW_RIGHT", "BACKSPACE", "DELETE", "HOME",
        "END", "SPACE", "0", "3", "9", "-", "e", "."]  # Selenium's names, or the key itself


# The explorer back in view (a key may have scrolled the page), and the centres of what a reader
# can reach in it and of what takes keys, as offsets from the explorer's centre.
CENTRES = """
const live = arguments[0];
live.scrollIntoView({block: 'center'});
const box = live.getBoundingClientRect();
const centres = selector => Array.from(live.querySelectorAll(selector))
  .filter(e => e.offsetParent !== null)
  .map(e => { const r = e.getBoundingClientRect();
              return [Math.round(r.x + r.width / 2 - box.x - box.width / 2),
                      Math.round(r.y + r.height / 2 - box.y - box.height / 2)]; });
return [centres(arguments[1]), centres(arguments[2])];
"""
# A burst of input within one task of the page, which no real device sends that fast: strokes on
# its canvases, clicks on its buttons and cells, new values in its sliders, fields and choices
# (a stroke and "clear" before the stroke's run has started). ``arguments[0]``: the random
# numbers (in [0, 1)) that choose, ``arguments[1]``: how many gestures.
BURST = """
const [numbers, gestures] = arguments;
let n = 0;
const random = () => numbers[n++ % numbers.length];
const pick = list => list[Math.floor(random() * list.length)];
const live = document.querySelector('.ln-explorer .ln-live');
const at = (element, type) => {
  const r = element.getBoundingClientRect();
  element.dispatchEvent(new PointerEvent(type, {bubbles: true, clientX: r.x + random() * r.width,
                                                clientY: r.y + random() * r.height}));
};
for (let i = 0; i < gestures; i++) {
  const choice = random();
  const canvases = live.querySelectorAll('canvas'), controls = live.querySelectorAll('button, td');
  const fields = live.querySelectorAll('input, select');
  if (choice < 0.4) {
    const canvas = pick(canvases);
    at(canvas, 'pointerdown'); at(canvas, 'pointermove'); at(canvas, 'pointermove');
    at(canvas, 'pointerup');
  } else if (choice < 0.7 && controls.length) {
    pick(controls).click();
  } else {
    const field = pick(fields);
    if (field.tagName === 'SELECT') {
      field.selectedIndex = Math.floor(random() * field.options.length);
      field.dispatchEvent(new Event('change', {bubbles: true}));
    } else {
      const low = Number(field.min || 0), high = Number(field.max || 10);
      field.value = String(low + random() * (high - low));
      field.dispatchEvent(new Event('input', {bubbles: true}));
    }
  }
}
"""


def _random_input(browser, rng, seconds: float) -> int:
    """Random clicks, drags and keys inside the page's explorer for ``seconds`` (seeded by
    ``rng``): bursts of one to four real ones sent at once (Selenium, no pause between them),
    and bursts of one to six within a single task of the page (``BURST``); returns how many
    were made. A burst Selenium cannot send is skipped: only the page's own errors count."""
    import time

    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.keys import Keys

    live = browser.find_element("css selector", ".ln-explorer .ln-live")
    width, height = live.size["width"], live.size["height"]

    def anywhere():  # a point of the explorer, as an offset from its centre
        return (int(rng.uniform(-0.48, 0.48) * width), int(rng.uniform(-0.48, 0.48) * height))

    made, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        reachable, focusable = browser.execute_script(CENTRES, live, REACHABLE, FOCUSABLE)
        if rng.random() < 0.5:
            gestures = rng.randint(1, 6)
            browser.execute_script(BURST, [rng.random() for _ in range(40)], gestures)
            made += gestures
            continue
        burst = ActionChains(browser, duration=0)
        gestures = rng.randint(1, 4)
        for _ in range(gestures):
            choice = rng.random()
            if choice < 0.3:
                burst.move_to_element_with_offset(live, *anywhere()).click()
            elif choice < 0.55:
                burst.move_to_element_with_offset(live, *anywhere()).click_and_hold()
                for _ in range(rng.randint(1, 5)):
                    burst.move_to_element_with_offset(live, *anywhere())
                burst.release()
            elif choice < 0.8 and focusable:
                keys = [getattr(Keys, k, k) for k in rng.choices(KEYS, k=rng.randint(1, 4))]
                burst.move_to_element_with_offset(live, *rng.choice(focusable)).click() \
                    .send_keys(*keys)
            elif reachable:  # a control itself: the pad's "clear", "sample", a grid's cell
                burst.move_to_element_with_offset(live, *rng.choice(reachable)).click()
        try:
            burst.perform()
        except WebDriverException:
            burst.reset_actions()  # nothing left pressed for the next burst
            continue
        made += gestures
    return made


@pytest.mark.parametrize("chapter", EXPLORERS)
def test_random_input_for_ten_seconds_makes_no_console_error(chapter, site, browser):
    """Clicks, drags and keys at random (seeded) on the explorer, in any order, as fast as
    Selenium sends them and faster (``BURST``); once every run they started has ended, the
    console holds no error and the explorer still decodes."""
    import random

    _live(browser, site, chapter)
    made = _random_input(browser, random.Random(chapter), RANDOM_INPUT_SECONDS)
    assert made >= 20, f"only {made} random inputs in {RANDOM_INPUT_SECONDS} s"
    ms = _call(browser, "await explorer.done(); return await explorer.set({});")
    assert isinstance(ms, (int, float)), f"the explorer no longer decodes: {ms}"
    _no_severe(browser)


def test_a_stroke_then_clear_at_once_leaves_a_blank_pad_and_no_error(site, browser):
    """A stroke on chapter 5's pad and "clear" in the same moment (one task of the page: the
    reconstruction the stroke asked for has not started): no error, and nothing of the cleared
    drawing comes back (its input, the reconstructions, the mark on the plane)."""
    chapter = "05_comparison"
    _live(browser, site, chapter)
    config = _config(browser)
    if config["shape"][0] != 1:
        pytest.skip("colour data: no drawing pad")
    result = _call(browser, """
      const pad = document.querySelector('.ln-explorer canvas.ln-pad');
      const box = pad.getBoundingClientRect();
      const at = (type, x, y) => pad.dispatchEvent(new PointerEvent(type, {bubbles: true,
        clientX: box.left + x * box.width, clientY: box.top + y * box.height}));
      at('pointerdown', 0.3, 0.2); at('pointermove', 0.7, 0.2); at('pointermove', 0.4, 0.8);
      at('pointerup', 0.4, 0.8);
      document.querySelector('.ln-explorer button.ln-clear').click();
      await explorer.done();
      return [explorer.input(), explorer.landed(),
              Array.from(document.querySelectorAll('.ln-explorer canvas[class^="ln-rec-"]'),
                         c => explorer.reconstruction(c.className.slice(7)))];""")
    assert isinstance(result, list), result  # else the error the page's script raised
    drawn, landed, shown = result
    assert drawn is None and landed is None, (drawn, landed)
    assert len(shown) == len(config["families"])
    assert all(min(pixels) == 255 for pixels in shown), "a cleared drawing's reconstruction"
    _no_severe(browser)
