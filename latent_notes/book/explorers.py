"""Explorers: the chapters' trained models running in the page (onnxruntime-web).

A chapter calls one function per explorer. It exports the models the explorer needs to ONNX
(``onnx_export``, parity-checked) into ``explorers/<chapter>/`` (next to the executed notebook
under the build, in the checkpoint cache elsewhere: ``output_folder``), writes a fixture
(inputs and the PyTorch outputs for them, which the browser test compares with the page's
pixels), and returns the HTML of the explorer: a still figure that stays when the runtime is
missing, the live part the scripts fill in, and one line that says why when it cannot run
(opened from ``file://``, or built offline). The build copies the folder and the scripts
(``latent_notes/book/explorers/*.js``) into the built book after Jupyter Book has rendered
it, so that only these pages load them.
"""
from __future__ import annotations

import base64
import copy
import functools
import html
import importlib.util
import io
import json
import os
from pathlib import Path

import torch

from ..experiments.plots import plain
from . import onnx_export

SCRIPTS = Path(__file__).with_name("explorers")  # the explorers' JavaScript, one file a kind
FOLDER = "explorers"  # a page's explorer files: explorers/<chapter>/, a URL relative to the page
PAGE_FOLDER = "LATENT_NOTES_PAGE_FOLDER"  # set by the build: the executed notebooks' folder
_cache: Path | None = None  # the checkpoint cache of the chapter being run (start_chapter)


def use_cache(cache) -> None:
    """Outside the build, the explorers of this run write into ``cache`` (the chapter's
    checkpoint cache, given by start_chapter), never into the working directory."""
    global _cache
    _cache = Path(cache)


def output_folder(chapter: str) -> Path:
    """Where ``chapter``'s explorers write their models and fixture: ``explorers/<chapter>``
    in the executed notebooks' folder under the build (``$LATENT_NOTES_PAGE_FOLDER``, where
    the build collects them for the page), else in the chapter's checkpoint cache (papermill
    by hand, Jupyter, Colab; the default cache without start_chapter). Never the working
    directory: a run from anywhere writes only its results and its cache."""
    root = os.environ.get(PAGE_FOLDER)
    if not root:
        from ..store.cache import default_cache_dir

        root = _cache or default_cache_dir()
    return Path(root) / FOLDER / chapter


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _element(kind: str, config: dict, still_png: str, live: str, alt: str) -> str:
    """The explorer's HTML: the still figure, the live part (hidden until it runs), the note,
    a classic script for file:// (where module scripts do not load) and the module script."""
    data = html.escape(json.dumps({"kind": kind, **config}), quote=True)
    script = kind.replace("-", "_")
    return f"""
<div class="ln-explorer" data-config="{data}">
  <img class="ln-still" src="{still_png}" alt="{html.escape(alt)}" style="max-width:100%">
  <div class="ln-live" hidden>{live}</div>
  <p class="ln-note"><em>This explorer runs in the built book served over http (make serve,
  see the README); until it starts, the figure above is its still picture.</em></p>
</div>
<script>
if (location.protocol === "file:") {{
  document.querySelectorAll(".ln-explorer .ln-note").forEach(note => {{
    note.textContent = "This explorer runs the book's models with WebAssembly, which browsers "
      + "refuse to load from a file: serve the book instead (make serve, then open "
      + "http://127.0.0.1:8000).";
  }});
}}
</script>
<script type="module">
import {{ startAll }} from "../_static/explorers/explorers.js";
import "../_static/explorers/{script}.js";
startAll();
</script>
"""


EXPORTERS = ("onnx", "onnxscript", "onnxruntime")  # what exporting and checking need


def _cpu(model):
    """A copy of ``model`` on the CPU in eval mode: the chapter's own model stays where it is."""
    return copy.deepcopy(model).eval().cpu()


def _needs_exporters(explorer):
    """Where onnx, onnxscript or onnxruntime is missing (a bare Colab), the explorer is not
    exported: one line says what to install; the built book always has them."""
    @functools.wraps(explorer)
    def wrapper(*args, **kwargs):
        missing = [name for name in EXPORTERS if importlib.util.find_spec(name) is None]
        if missing:
            return ExplorerHTML(
                f"<p><em>The live explorer of this cell runs in the built book. Here it needs "
                f"{', '.join(missing)} (pip install {' '.join(EXPORTERS)}), then run the "
                "cell again.</em></p>")
        return explorer(*args, **kwargs)
    return wrapper


# The scatter's class colours: matplotlib's tab10, the colours of the still figures too.
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def _legend(classes: list[str]) -> str:
    """The scatter's legend: a colour swatch and the name of every class."""
    items = "".join(f'<span style="white-space:nowrap;margin-right:0.6em">'
                    f'<span style="display:inline-block;width:0.7em;height:0.7em;'
                    f'background:{COLOURS[k % len(COLOURS)]}"></span> {html.escape(str(name))}'
                    '</span>' for k, name in enumerate(classes))
    return f'<p class="ln-legend" style="font-size:0.8em;max-width:320px">{items}</p>'


class ExplorerHTML:
    """What a chapter cell returns: rendered as HTML by Jupyter Book."""

    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return self.text


@_needs_exporters
@torch.no_grad()
def vae_plane(models: dict[str, torch.nn.Module], images: torch.Tensor, labels: torch.Tensor,
              classes: list[str], chapter: str, points: int = 1000,
              seed: int = 0) -> ExplorerHTML:
    """Chapter 3's 2-D latent plane: ``models`` {name, e.g. "β = 1": a VAE with latent_size 2};
    the first ``points`` test images' μ as a scatter coloured by ``labels``."""
    import matplotlib.pyplot as plt

    folder = output_folder(chapter)
    decoders, scatter, fixture = {}, {}, {"inputs": [], "outputs": {}}
    generator = torch.Generator().manual_seed(seed)
    probes = (torch.randn(3, 2, generator=generator) * 1.5).tolist()
    lows, highs = [], []
    for i, (name, model) in enumerate(models.items()):
        model = _cpu(model)
        decoders[name] = _export_checked("vae", model, "vae-decoder", folder, suffix=f"-{i}")
        mu = model.encode(images[:points])
        scatter[name] = {"x": mu[:, 0].round(decimals=3).tolist(),
                         "y": mu[:, 1].round(decimals=3).tolist(),
                         "label": labels[:points].tolist()}
        lows.append(mu.quantile(0.005, 0))
        highs.append(mu.quantile(0.995, 0))
        fixture["outputs"][name] = [model.decode(torch.tensor([z])).flatten().tolist()
                                    for z in probes]
    fixture["inputs"] = probes
    (folder / "fixture.json").write_text(json.dumps(fixture))
    low, high = torch.stack(lows).min(0).values, torch.stack(highs).max(0).values
    pad = (high - low) * 0.05
    rng = [[float(low[0] - pad[0]), float(high[0] + pad[0])],
           [float(low[1] - pad[1]), float(high[1] + pad[1])]]
    first = next(iter(models.values()))
    start = [0.0, 0.0]
    shape = [first.config.channels, first.config.image_size, first.config.image_size]

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    s = scatter[next(iter(models))]
    left.scatter(s["x"], s["y"], c=[COLOURS[k % 10] for k in s["label"]], s=4)
    left.plot(*start, "ko", mfc="none", ms=10)
    left.set(xlim=rng[0], ylim=rng[1], xlabel="$z_1$", ylabel="$z_2$",
             title="test codes (μ), coloured by class")
    right.imshow((1 - first.decode(torch.tensor([start]))[0, 0]).numpy(), cmap="gray", vmin=0,
                 vmax=1)
    right.set_axis_off()
    right.set_title("decoded at the circle")
    still = _png(fig)
    live = ('<div style="display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap">'
            '<div><canvas class="ln-plane" width="320" height="320" '
            'style="border:1px solid #ccc;cursor:crosshair;touch-action:none"></canvas>'
            f'{_legend(classes)}</div>'
            '<div><canvas class="ln-output" width="28" height="28" '
            'style="width:168px;height:168px;image-rendering:pixelated;border:1px solid #ccc">'
            '</canvas><p><select class="ln-beta"></select></p>'
            '<p class="ln-readout" style="font-family:monospace;font-size:0.85em"></p></div>'
            '</div>')
    config = {"folder": f"{FOLDER}/{chapter}/", "decoders": decoders, "scatter": scatter,
              "range": rng, "start": start, "shape": shape}
    return ExplorerHTML(_element("vae-plane", config, still, live,
                                 "The VAE's latent plane and the digit decoded at its centre"))


def _export_checked(family: str, model, name: str, folder: Path, suffix: str = "") -> str:
    """Export the view ``name`` of ``model`` into ``folder`` (parity-checked); the file name."""
    view = onnx_export.view_named(family, model, name)
    return onnx_export.export_checked(view, folder / f"{view.name}{suffix}.onnx").name


@_needs_exporters
@torch.no_grad()
def ae_sliders(model, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
               chapter: str, seed: int = 0) -> ExplorerHTML:
    """Chapter 2: sliders over the autoencoder's code, starting from the code of one test digit
    per class (the slider scale: each coordinate's standard deviation over ``images``)."""
    import matplotlib.pyplot as plt

    model = _cpu(model)
    folder = output_folder(chapter)
    decoder = _export_checked("ae", model, "ae-decoder", folder)
    codes = model.encode(images)
    # one test image has no spread: its sliders then move in raw code units (sd 1)
    sd = codes.std(0) if len(codes) > 1 else torch.ones_like(codes[0])
    mean, sd = codes.mean(0), sd.clamp_min(1e-6)
    firsts = [int((labels == k).nonzero()[0]) for k in range(len(classes))
              if (labels == k).any()]
    examples = [{"name": f"a test {classes[int(labels[i])]}",
                 "code": codes[i].round(decimals=4).tolist()} for i in firsts]
    generator = torch.Generator().manual_seed(seed)
    probes = (codes[firsts[:3]] + sd * torch.randn(len(firsts[:3]), codes.shape[1],
                                                   generator=generator)).tolist()
    fixture = {"inputs": probes,
               "outputs": [model.decode(torch.tensor([z])).flatten().tolist() for z in probes]}
    (folder / "fixture.json").write_text(json.dumps(fixture))
    shape = [model.config.channels, model.config.image_size, model.config.image_size]
    shown = model.decode(codes[firsts]).cpu()
    fig, axes = plt.subplots(1, len(firsts), figsize=(1.2 * len(firsts), 1.5), squeeze=False)
    for ax, image, i in zip(axes[0], shown, firsts, strict=True):
        ax.imshow((1 - image[0]).numpy() if shape[0] == 1 else image.permute(1, 2, 0).numpy(),
                  cmap="gray", vmin=0, vmax=1)
        ax.set_title(plain(classes[int(labels[i])]), fontsize=8)  # a '$' is not maths
        ax.set_axis_off()
    still = _png(fig)
    live = ('<div style="display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap">'
            '<div><p>start from <select class="ln-start"></select></p>'
            '<canvas class="ln-output" width="28" height="28" '
            'style="width:168px;height:168px;image-rendering:pixelated;border:1px solid #ccc">'
            '</canvas><p class="ln-readout" style="font-family:monospace;font-size:0.85em">'
            '</p></div><div class="ln-sliders" style="columns:2;font-size:0.85em"></div></div>')
    config = {"folder": f"{FOLDER}/{chapter}/", "decoder": decoder, "examples": examples,
              "mean": mean.tolist(), "sd": sd.tolist(), "shape": shape}
    return ExplorerHTML(_element("ae-sliders", config, still, live,
                                 "The autoencoder's reconstruction of one test digit per class"))


@_needs_exporters
@torch.no_grad()
def vq_grid(model, image: torch.Tensor, classes: list[str], chapter: str,
            seed: int = 0) -> ExplorerHTML:
    """Chapter 4: the code grids of one test ``image`` as cells to edit, and sampling with the
    two priors attached to ``model`` (a trained VQ-VAE-2)."""
    import matplotlib.pyplot as plt

    model = _cpu(model)
    cfg = model.config
    folder = output_folder(chapter)
    names = ["vqvae2-decoder"] + (["prior-top", "prior-bottom"] if model.priors else [])
    files = {name: _export_checked("vqvae2", model, name, folder) for name in names}
    q = model.quantise(image[None].cpu())
    top, bottom = q.codes_top[0], q.codes_bottom[0]
    generator = torch.Generator().manual_seed(seed)
    edits = []  # (level, row, column, code): one edit per level, and the grids decoded
    for level, grid, k in (("top", top, cfg.codebook_size_top),
                           ("bottom", bottom, cfg.codebook_size_bottom)):
        r, c = (int(torch.randint(0, len(grid), (1,), generator=generator)) for _ in range(2))
        edits.append([level, r, c, int(torch.randint(0, k, (1,), generator=generator))])
    outputs = []
    for level, r, c, code in edits:
        t, b = top.clone(), bottom.clone()
        (t if level == "top" else b)[r, c] = code
        outputs.append(model.decode_code(t[None], b[None]).flatten().tolist())
    fixture = {"top": top.tolist(), "bottom": bottom.tolist(), "edits": edits,
               "outputs": outputs}
    (folder / "fixture.json").write_text(json.dumps(fixture))
    priors = None
    no_label = None
    if model.priors is not None:
        priors = {"top": files["prior-top"], "bottom": files["prior-bottom"]}
        p = model.priors.top.config
        no_label = p.num_classes if p.num_classes and p.label_dropout else None
    fig, ax = plt.subplots(figsize=(2.2, 2.2))
    decoded = model.decode_code(top[None], bottom[None])[0]
    ax.imshow((1 - decoded[0]).numpy() if cfg.channels == 1 else decoded.permute(1, 2, 0).numpy(),
              cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("decoded from its code grids", fontsize=8)
    still = _png(fig)
    live = ('<div style="display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap">'
            '<div><p style="font-size:0.85em">top grid</p>'
            '<table class="ln-top" style="margin:0"></table>'
            '<p style="font-size:0.85em">bottom grid</p>'
            '<table class="ln-bottom" style="margin:0"></table></div>'
            '<div><p>code of the chosen cell: <input class="ln-code" type="number" min="0" '
            'step="1" style="width:5em"></p>'
            '<canvas class="ln-output" width="28" height="28" '
            'style="width:168px;height:168px;image-rendering:pixelated;border:1px solid #ccc">'
            '</canvas><p class="ln-readout" style="font-family:monospace;font-size:0.85em"></p>'
            '<div class="ln-sampling"><p>sample a <select class="ln-label"></select> at '
            'temperature <input class="ln-temperature" type="range" min="0.3" max="1.5" '
            'step="0.05" value="1"> <span class="ln-temperature-value">1</span> '
            '<button class="ln-sample" type="button">sample</button></p>'
            '<p class="ln-sample-time" style="font-size:0.85em"></p></div></div></div>')
    config = {"folder": f"{FOLDER}/{chapter}/", "decoder": files["vqvae2-decoder"],
              "top": top.tolist(), "bottom": bottom.tolist(),
              "codes_top": cfg.codebook_size_top, "codes_bottom": cfg.codebook_size_bottom,
              "priors": priors, "classes": list(classes), "no_label": no_label,
              "shape": [cfg.channels, cfg.image_size, cfg.image_size]}
    return ExplorerHTML(_element("vq-grid", config, still, live,
                                 "A test digit decoded from its two code grids"))


def _pixels(image: torch.Tensor) -> list[float]:
    return image.flatten().tolist()


@_needs_exporters
@torch.no_grad()
def compare_families(models: dict[str, torch.nn.Module], images: torch.Tensor,
                     labels: torch.Tensor, classes: list[str], ends: torch.Tensor,
                     end_names: list[str], chapter: str, points: int = 1000) -> ExplorerHTML:
    """Chapter 5: ``models`` {"ae", "vae", "vqvae2"} side by side. One slider blends the codes
    of the two images ``ends`` (each family in its own code space, as the chapter's
    interpolation figure; ``end_names`` say what they show); a canvas takes a drawn digit,
    which each model reconstructs, and the VAE's μ of it is shown on the plane of the two
    principal axes of the test μ (first ``points`` test images, coloured by class)."""
    import matplotlib.pyplot as plt

    folder = output_folder(chapter)
    families, fixture = {}, {"blend": [0.25, 0.5, 0.8], "interpolation": {}, "drawn": {}}
    drawn = ends[0:1].cpu()  # the drawing test's input: the first end, as if drawn
    fixture["drawn"]["image"] = _pixels(drawn)
    models = {name: _cpu(model) for name, model in models.items()}
    for name, model in models.items():
        encoder = _export_checked(name, model, f"{name}-encoder", folder)
        decoder = _export_checked(
            name, model, f"{name}-flat-decoder" if name == "vqvae2" else f"{name}-decoder",
            folder)
        z = model.encode(ends.cpu())
        families[name] = {"encoder": encoder, "decoder": decoder,
                          "ends": [z[0].tolist(), z[1].tolist()]}
        fixture["interpolation"][name] = [
            _pixels(model.decode(((1 - t) * z[0] + t * z[1])[None]))
            for t in fixture["blend"]]
        fixture["drawn"][name] = _pixels(model.decode(model.encode(drawn)))
    mu = models["vae"].encode(images[:points].cpu())
    mean = mu.mean(0)
    axes = torch.linalg.svd(mu - mean, full_matrices=False).Vh[:2]  # (2, D) principal axes
    plane = (mu - mean) @ axes.T
    fixture["drawn"]["plane"] = ((models["vae"].encode(drawn)[0] - mean) @ axes.T).tolist()
    (folder / "fixture.json").write_text(json.dumps(fixture))
    low, high = plane.quantile(0.005, 0), plane.quantile(0.995, 0)
    pad = (high - low) * 0.08
    rng = [[float(low[0] - pad[0]), float(high[0] + pad[0])],
           [float(low[1] - pad[1]), float(high[1] + pad[1])]]
    cfg = models["ae"].config
    shape = [cfg.channels, cfg.image_size, cfg.image_size]

    fig, axs = plt.subplots(1, len(models) + 1, figsize=(2.0 * (len(models) + 1), 2.2))
    halfway = [ends[0:1].cpu()] + [m.decode(torch.tensor(families[n]["ends"]).mean(0)[None])
                                   for n, m in models.items()]
    for ax, image, title in zip(axs, halfway, ["a test image", *models], strict=True):
        image = image[0]
        ax.imshow((1 - image[0]).numpy() if shape[0] == 1 else image.permute(1, 2, 0).numpy(),
                  cmap="gray", vmin=0, vmax=1)
        ax.set_title(title if title == "a test image" else f"{title}: halfway", fontsize=8)
        ax.set_axis_off()
    still = _png(fig)
    canvas = ('<canvas class="ln-{cls}" width="28" height="28" style="width:112px;height:112px;'
              'image-rendering:pixelated;border:1px solid #ccc"></canvas>')
    outputs = "".join(f'<figure style="margin:0;text-align:center">{canvas.format(cls="out-" + n)}'
                      f'<figcaption style="font-size:0.8em">{n}</figcaption></figure>'
                      for n in models)
    live = ('<p>from a test <b class="ln-from"></b> to a test <b class="ln-to"></b>: '
            '<input class="ln-blend" type="range" min="0" max="1" step="0.01" value="0.5" '
            'style="width:14em"> <span class="ln-blend-value">0.50</span></p>'
            f'<div class="ln-interpolation" style="display:flex;gap:1em">{outputs}</div>'
            '<p class="ln-readout" style="font-family:monospace;font-size:0.85em"></p>')
    if shape[0] == 1:
        drawn_outputs = outputs.replace('class="ln-out-', 'class="ln-rec-')
        live += ('<div class="ln-drawing" style="display:flex;gap:1.5em;flex-wrap:wrap;'
                 'align-items:flex-start"><div><canvas class="ln-pad" width="280" height="280" '
                 'style="width:196px;height:196px;border:1px solid #999;cursor:crosshair;'
                 'touch-action:none"></canvas><br><button class="ln-clear" type="button">'
                 'clear</button> <span style="font-size:0.8em">draw a digit; what the '
                 'models get: </span><canvas class="ln-input" width="28" height="28" '
                 'style="width:56px;height:56px;image-rendering:pixelated;border:1px solid '
                 '#ccc;vertical-align:middle"></canvas></div>'
                 f'<div><p style="font-size:0.85em">reconstructions</p><div '
                 f'style="display:flex;gap:0.6em">{drawn_outputs}</div></div>'
                 '<div><p style="font-size:0.85em">the VAE\'s μ on the plane of the test '
                 'codes\' two principal axes</p><canvas class="ln-plane" width="240" '
                 'height="240" style="border:1px solid #ccc"></canvas>'
                 f'{_legend(classes)}</div></div>')
    scatter = {"x": plane[:, 0].round(decimals=3).tolist(),
               "y": plane[:, 1].round(decimals=3).tolist(),
               "label": labels[:points].tolist()}
    config = {"folder": f"{FOLDER}/{chapter}/", "families": families, "shape": shape,
              "ends": list(end_names),
              "plane": {"mean": mean.tolist(), "axes": axes.tolist(), "range": rng,
                        "scatter": scatter}}
    return ExplorerHTML(_element("compare", config, still, live,
                                 "Halfway between two test digits, in each family's code"))
