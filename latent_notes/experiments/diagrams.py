"""Architecture figures drawn from the models themselves, so that they cannot drift from the code.

``architecture(model)`` runs one dummy image through a model built from its config, records the
output shape of each block with forward hooks, and lays the blocks out as a graph (nodes with
a label, a shape and a role; edges between them). ``draw(diagram, title)`` renders it with
matplotlib: boxes from left to right, their height growing with the side of the feature map,
coloured by role (encoder, code, decoder), the code in the middle.

Change a config (a latent size, a width, a codebook) and the figure changes with it; a unit test
checks that every shape printed is a shape the model computed.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..models.autoencoder import Autoencoder
from ..models.classifier import CNN
from ..models.pixelcnn import GatedLayer, PixelCNN
from ..models.quantise import VectorQuantiserEMA
from ..models.vae import VAE
from ..models.vqvae2 import VQVAE2
from .plots import plain

ROLES = {  # role → (face colour, legend text)
    "input": ("#e8e8e8", "image"),
    "encoder": ("#9ecae1", "encoder"),
    "code": ("#fdae6b", "the code (latent)"),
    "decoder": ("#a1d99b", "decoder"),
    "head": ("#dadaeb", "classifier head"),
    "condition": ("#fcbba1", "condition"),
}


@dataclass
class Node:
    key: str  # the module's qualified name (or a name of our own for a step without a module)
    label: str  # what the block does, e.g. "conv 4×4, stride 2"
    shape: tuple[int, ...]  # its output for one image: (C, H, W) or (D,)
    role: str  # a key of ROLES
    col: float = 0.0
    row: float = 0.0


@dataclass
class Diagram:
    nodes: list[Node]
    edges: list[tuple[str, str]] = field(default_factory=list)

    def node(self, key: str) -> Node:
        return next(n for n in self.nodes if n.key == key)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n.key: n.shape for n in self.nodes}


def shape_text(shape: tuple[int, ...]) -> str:
    """(16, 14, 14) → '16×14×14'."""
    return "×".join(str(s) for s in shape)


def _label(module: nn.Module) -> str:
    """A short name for one layer, read from its attributes."""
    if isinstance(module, nn.ConvTranspose2d):
        k, s = module.kernel_size[0], module.stride[0]
        return f"transposed conv {k}×{k}" + (f", ×{s}" if s > 1 else "")
    if isinstance(module, nn.Conv2d):
        (kh, kw), s = module.kernel_size, module.stride[0]
        return f"conv {kh}×{kw}" + (f", stride {s}" if s > 1 else "")
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.MaxPool2d):
        return f"max-pool {module.kernel_size}"
    if isinstance(module, VectorQuantiserEMA):
        return f"quantise: {module.codebook_size} codes of {module.dim}"
    if isinstance(module, nn.Embedding):
        return f"embed {module.num_embeddings} codes"
    if isinstance(module, GatedLayer):
        return "gated layer"
    return type(module).__name__


def _first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple):  # a NamedTuple (Quantised) or (v, h) of a gated layer
        return next(o for o in output if isinstance(o, torch.Tensor))
    raise TypeError(f"no tensor in {type(output).__name__}")


def trace(model: nn.Module, run, blocks: dict[str, nn.Module]) -> dict[str, tuple[int, ...]]:
    """Output shape (without the batch) of each module of ``blocks`` {name: module} when
    ``run(model)`` is called once, in the order they ran (the first call of each)."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in blocks.items():
        def hook(_, __, output, name=name):
            shapes.setdefault(name, tuple(_first_tensor(output).shape[1:]))
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            run(model)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return shapes


def _layers(module: nn.Module, prefix: str) -> dict[str, nn.Module]:
    """The leaf layers of ``module`` that change a shape or hold weights (no activations,
    batch norms, dropouts or flattens)."""
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.MaxPool2d)
    return {f"{prefix}.{name}" if name else prefix: m for name, m in module.named_modules()
            if isinstance(m, kinds)}


def _image(model) -> torch.Tensor:
    c = model.config
    return torch.zeros(1, c.channels, c.image_size, c.image_size)


def _chain(model: nn.Module, run, roles: list[tuple[str, nn.Module, str]],
           input_shape: tuple[int, ...]) -> Diagram:
    """Every layer of each (prefix, module, role) in the order it runs, one column each."""
    named = {}
    role_of = {}
    for prefix, module, role in roles:
        for name, layer in _layers(module, prefix).items():
            named[name] = layer
            role_of[name] = role
    shapes = trace(model, run, named)
    nodes = [Node("input", "input image", input_shape, "input")]
    nodes += [Node(name, _label(named[name]), shape, role_of[name]) for name, shape in
              shapes.items()]
    for i, n in enumerate(nodes):
        n.col = i
    return Diagram(nodes, [(a.key, b.key) for a, b in zip(nodes, nodes[1:], strict=False)])


def autoencoder_diagram(model: Autoencoder) -> Diagram:
    """Strided convolutions down to one vector, the code; transposed convolutions back up."""
    d = _chain(model, lambda m: m(_image(m)),
               [("encoder", model.encoder, "encoder"), ("decoder", model.decoder, "decoder")],
               tuple(_image(model).shape[1:]))
    code = d.node(list(_layers(model.encoder, "encoder"))[-1])  # the encoder's last linear
    code.role, code.label = "code", "linear: the code z"
    return d


def classifier_diagram(model: CNN) -> Diagram:
    """The convolutions and pooling, then the linear layers that give one score per class."""
    return _chain(model, lambda m: m(_image(m)),
                  [("body", model.body, "encoder"), ("head", model.head, "head"),
                   ("classify", model.classify, "head")], tuple(_image(model).shape[1:]))


def vae_diagram(model: VAE) -> Diagram:
    """The encoder ends in two heads, μ and log σ²; z = μ + σ·ε is drawn, then decoded."""
    run = lambda m: m(_image(m))  # noqa: E731
    blocks = {**_layers(model.features, "features"), **_layers(model.to_hidden, "to_hidden"),
              "to_mu": model.to_mu, "to_logvar": model.to_logvar,
              **_layers(model.from_latent, "from_latent"), **_layers(model.upsample, "upsample")}
    shapes = trace(model, run, blocks)
    nodes = [Node("input", "input image", tuple(_image(model).shape[1:]), "input")]
    col = 1
    for name, shape in shapes.items():
        if name == "to_mu":
            nodes.append(Node(name, "linear: μ", shape, "code", col, 0.6))
        elif name == "to_logvar":
            nodes.append(Node(name, "linear: log σ²", shape, "code", col, -0.6))
            col += 1
            nodes.append(Node("sample", "z = μ + σ·ε,  ε ~ N(0, I)", shapes["to_mu"], "code",
                              col))
            col += 1
        else:
            role = "encoder" if name.startswith(("features", "to_hidden")) else "decoder"
            nodes.append(Node(name, _label(blocks[name]), shape, role, col))
            col += 1
    keys = [n.key for n in nodes]
    edges = []
    for a, b in zip(keys, keys[1:], strict=False):
        if (a, b) == ("to_mu", "to_logvar"):
            continue
        edges.append((a, b))
    before = keys[keys.index("to_mu") - 1]
    edges += [(before, "to_logvar"), ("to_mu", "sample")]
    return Diagram(nodes, edges)


def vqvae2_diagram(model: VQVAE2) -> Diagram:
    """Two levels: the bottom row runs at the finer grid, the top row at the coarser one; each
    level's map is quantised against its own codebook, and the decoder reads both."""
    names = {"encoder_bottom": ("bottom encoder", "encoder", 1, 0),
             "encoder_top": ("top encoder", "encoder", 2, 1),
             "to_code_top": ("conv 1×1", "encoder", 3, 1),
             "quantise_top": (None, "code", 4, 1),
             "decoder_top": ("top decoder", "decoder", 5, 1),
             "to_code_bottom": ("conv 1×1 of [bottom features, top decoded]", "encoder", 5, 0),
             "quantise_bottom": (None, "code", 6, 0),
             "upsample_top": ("transposed conv: top map to the bottom grid", "decoder", 6, 2),
             "decoder": ("decoder of [bottom, top] maps", "decoder", 7, 0)}
    present = {name: getattr(model, name) for name in names if hasattr(model, name)}
    shapes = trace(model, lambda m: m(_image(m)), present)
    nodes = [Node("input", "input image (padded inside)", tuple(_image(model).shape[1:]),
                  "input", 0, 0)]
    for name, shape in shapes.items():
        label, role, col, row = names[name]
        if label is None:  # a quantiser: its codebook, and the grid of codes it outputs
            label = f"{_label(present[name])} → {shape_text(shape[1:])} grid of codes"
        nodes.append(Node(name, label, shape, role, col, row))
    nodes.append(Node("output", "reconstruction", tuple(_image(model).shape[1:]), "input", 8, 0))
    edges = [("input", "encoder_bottom"), ("encoder_bottom", "encoder_top"),
             ("encoder_top", "to_code_top"), ("to_code_top", "quantise_top"),
             ("quantise_top", "decoder_top"), ("decoder_top", "to_code_bottom"),
             ("encoder_bottom", "to_code_bottom"), ("to_code_bottom", "quantise_bottom"),
             ("quantise_top", "upsample_top"), ("quantise_bottom", "decoder"),
             ("upsample_top", "decoder"), ("decoder", "output")]
    have = {n.key for n in nodes}
    return Diagram(nodes, [(a, b) for a, b in edges if a in have and b in have])


def prior_diagram(model: PixelCNN) -> Diagram:
    """A PixelCNN prior: the code grid embedded, the gated layers (each a vertical and a
    horizontal stack), the logits of the next code; conditioned on a label and, for the bottom
    level, on the top codes."""
    cfg = model.config
    g = cfg.grid_size
    codes = torch.zeros(1, g, g, dtype=torch.long)
    labels = torch.zeros(1, dtype=torch.long) if cfg.num_classes else None
    cond_grid = None
    if cfg.cond_codebook_size:
        cond_grid = torch.zeros(1, g // 2, g // 2, dtype=torch.long)  # the top grid is half

    def run(m):
        m(codes, labels, cond_grid if cond_grid is None
          else cond_grid.repeat_interleave(2, 1).repeat_interleave(2, 2))

    blocks = {"embed": model.embed, **{f"layers.{i}": layer for i, layer in
                                       enumerate(model.layers)},
              "head": model.head}
    if cfg.cond_codebook_size:
        blocks["cond_net"] = model.cond_net
    shapes = trace(model, run, blocks)
    nodes = [Node("codes", f"code grid ({cfg.codebook_size} codes)", (g, g), "code", 0, 0),
             Node("embed", _label(model.embed), shapes["embed"][::-1][:1] + (g, g), "encoder",
                  1, 0)]
    layer_keys = [k for k in shapes if k.startswith("layers.")]
    nodes.append(Node("layers", f"{len(layer_keys)} gated layers (vertical + horizontal "
                      "stacks)", shapes[layer_keys[-1]], "encoder", 2, 0))
    nodes.append(Node("head", "logits of each code", shapes["head"], "decoder", 3, 0))
    edges = [("codes", "embed"), ("embed", "layers"), ("layers", "head")]
    if cfg.num_classes:
        nodes.append(Node("label", f"class label ({cfg.num_classes} + 'no label')", (1,),
                          "condition", 2, 1))
        edges.append(("label", "layers"))
    if cfg.cond_codebook_size:
        nodes.append(Node("cond_net", "top codes, embedded and convolved",
                          shapes["cond_net"], "condition", 2, -1))
        edges.append(("cond_net", "layers"))
    return Diagram(nodes, edges)


def architecture(model: nn.Module) -> Diagram:
    """The diagram of any of the book's models."""
    for kind, draw_it in ((VQVAE2, vqvae2_diagram), (VAE, vae_diagram),
                          (Autoencoder, autoencoder_diagram), (CNN, classifier_diagram),
                          (PixelCNN, prior_diagram)):
        if isinstance(model, kind):
            return draw_it(model)
    raise TypeError(f"no architecture figure for a {type(model).__name__}")


def _box_height(shape: tuple[int, ...], largest: int) -> float:
    side = shape[-1] if len(shape) == 3 else 1
    return 0.35 + 0.9 * side / largest if len(shape) == 3 else 0.3


def height(diagram: Diagram) -> float:
    """The figure height (inches) that ``draw`` gives the diagram."""
    rows = [n.row for n in diagram.nodes]
    return 1.6 + 1.7 * (max(rows) - min(rows) + 1)


def draw(diagram: Diagram, title: str, width: float = 14.0, ax=None):
    """The diagram as a matplotlib figure (or on ``ax``): one box per node (label above, shape
    inside), arrows along the edges, a legend of roles. The title is plain text: it names a
    model and its data set, and a '$' in a folder's name is shown as typed, not read as maths."""
    cols = max(n.col for n in diagram.nodes) + 1
    rows = sorted({n.row for n in diagram.nodes})
    largest = max((n.shape[-1] for n in diagram.nodes if len(n.shape) == 3), default=1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(width, height(diagram)))
    else:
        fig = ax.figure
    box_w = 0.78
    where = {}
    for n in diagram.nodes:
        h = _box_height(n.shape, largest)
        x, y = n.col * 1.0, n.row * 1.9
        where[n.key] = (x, y, h)
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - h / 2), box_w, h,
                                    boxstyle="round,pad=0.02", linewidth=1,
                                    facecolor=ROLES[n.role][0], edgecolor="#444"))
        ax.text(x, y, shape_text(n.shape), ha="center", va="center", fontsize=8,
                family="monospace")
        ax.text(x, y + h / 2 + 0.06, textwrap.fill(n.label, 20), ha="center", va="bottom",
                fontsize=7.5, linespacing=1.1)
    for a, b in diagram.edges:
        (xa, ya, ha), (xb, yb, hb) = where[a], where[b]
        if xb > xa:  # out of the right side, into the left side; curved between rows
            start, end = (xa + box_w / 2, ya), (xb - box_w / 2, yb)
            bend = 0.0 if ya == yb else (-0.2 if yb > ya else 0.2)
        else:  # straight up or down the same column
            down = yb < ya
            start = (xa, ya - ha / 2 if down else ya + ha / 2)
            end, bend = (xb, yb + hb / 2 + 0.45 if down else yb - hb / 2), 0.0  # above a label
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10,
                                     color="#555", connectionstyle=f"arc3,rad={bend}"))
    seen = []
    for n in diagram.nodes:
        if n.role not in seen:
            seen.append(n.role)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, facecolor=ROLES[r][0], edgecolor="#444",
                                     label=ROLES[r][1]) for r in seen],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(seen), fontsize=8,
              frameon=False)
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(min(rows) * 1.9 - 1.0, max(rows) * 1.9 + 1.1)
    ax.set_axis_off()
    ax.set_title(plain(title) + "\n(numbers in the boxes: the tensor each block outputs for one "
                 "image, channels × height × width)", fontsize=10)
    fig.tight_layout()
    return fig


def draw_all(diagrams: dict[str, Diagram], width: float = 14.0):
    """Several diagrams {title: diagram} in one figure, one above the other."""
    heights = [height(d) for d in diagrams.values()]
    fig, axes = plt.subplots(len(diagrams), 1, figsize=(width, sum(heights)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (title, diagram) in zip(axes[:, 0], diagrams.items(), strict=True):
        draw(diagram, title, width, ax=ax)
    return fig
