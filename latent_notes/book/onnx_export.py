"""The book's trained models as ONNX files, for the explorers that run them in the page
(onnxruntime-web): each *view* is one small network with named inputs and outputs, exported
with ``torch.onnx.export`` and checked against onnxruntime before it is kept.

Views (what the explorers call):

- ``ae-decoder`` / ``vae-decoder``: code ``z`` (1, D) → ``image`` (1, C, H, W) in [0, 1];
- ``ae-encoder`` / ``vae-encoder``: ``image`` → ``z`` (the VAE's μ);
- ``vqvae2-decoder``: ``top`` (1, Gt, Gt) and ``bottom`` (1, Gb, Gb) code grids (int64) →
  ``image``;
- ``vqvae2-flat-decoder`` / ``vqvae2-encoder``: the interface the three families share
  (chapter 5): ``z`` (1, code length), both levels' quantised maps flattened (or a blend of
  two such codes), → ``image``, and ``image`` → ``z``;
- ``prior-top`` / ``prior-bottom``: the code grid so far, the ``label`` (int64; the "no label"
  index where the prior has one) and, for the bottom level, the ``cond`` top codes repeated
  over the bottom grid → ``logits`` (1, K, G, G), the distribution of every position given
  the ones before it (sampling in the page reads one position per call).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..checks import ParameterError

PARITY_LIMIT = 1e-5  # largest absolute difference allowed between PyTorch and onnxruntime


class _Decode(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decode(z)


class _Encode(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.encode(image)


class _DecodeCode(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, top, bottom):
        return self.model.decode_code(top, bottom)


class _PriorLogits(nn.Module):
    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, codes, label, cond=None):
        return self.prior(codes, label, cond)


@dataclass
class View:
    name: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]  # example inputs, by name, in the order forward takes them
    outputs: tuple[str, ...]

    def __post_init__(self):
        # a wrapper is built in training mode; in eval mode, so that nothing (an exporter
        # restoring the mode it found) puts the model's batch norms back in training mode
        self.module.eval()


def _image(config) -> torch.Tensor:
    return torch.rand(1, config.channels, config.image_size, config.image_size)


def views_of(family: str, model) -> list[View]:
    """The views of one trained model: ``family`` is "ae", "vae" or "vqvae2" (with its priors
    attached)."""
    if family not in ("ae", "vae", "vqvae2"):
        raise ParameterError(f"No explorer views for the family {family!r}: use ae, vae or "
                             "vqvae2.")
    model = model.eval().cpu()
    cfg = model.config
    if family in ("ae", "vae"):
        z = torch.randn(1, cfg.latent_size)
        return [View(f"{family}-decoder", _Decode(model), {"z": z}, ("image",)),
                View(f"{family}-encoder", _Encode(model), {"image": _image(cfg)}, ("z",))]
    if family == "vqvae2":
        top = torch.randint(0, cfg.codebook_size_top, (1, cfg.top_grid, cfg.top_grid))
        bottom = torch.randint(0, cfg.codebook_size_bottom, (1, cfg.bottom_grid, cfg.bottom_grid))
        views = [View("vqvae2-decoder", _DecodeCode(model), {"top": top, "bottom": bottom},
                      ("image",))]
        with torch.no_grad():  # a code the encoder can give: a real image's quantised maps
            z = model.encode(_image(cfg))
        views += [View("vqvae2-flat-decoder", _Decode(model), {"z": z}, ("image",)),
                  View("vqvae2-encoder", _Encode(model), {"image": _image(cfg)}, ("z",))]
        if model.priors is not None:
            for level, prior in (("top", model.priors.top), ("bottom", model.priors.bottom)):
                p = prior.eval().cpu().config
                codes = torch.randint(0, p.codebook_size, (1, p.grid_size, p.grid_size))
                inputs = {"codes": codes, "label": torch.zeros(1, dtype=torch.long)}
                if p.cond_codebook_size:
                    inputs["cond"] = torch.randint(0, p.cond_codebook_size,
                                                   (1, p.grid_size, p.grid_size))
                views.append(View(f"prior-{level}", _PriorLogits(prior), inputs, ("logits",)))
        return views


def view_named(family: str, model, name: str) -> View:
    """The view ``name`` (e.g. "vae-decoder") of ``model``."""
    found = {v.name: v for v in views_of(family, model)}
    if name not in found:
        raise ParameterError(f"{family} has no view {name!r}: it has {', '.join(found)}.")
    return found[name]


def export(view: View, path: Path) -> Path:
    """Write ``view`` as an ONNX file at ``path`` (atomically: a failed export leaves nothing),
    without the exporter's notes on the machine it ran on (``strip_notes``).

    The TorchScript-based exporter (``dynamo=False``) writes the same graphs for these small
    fixed-shape networks as the ``torch.export``-based one, about 20 times faster (0.1-0.3 s a
    view against 4-12 s); where a torch has it no more, or it fails, the ``torch.export``-based
    exporter writes the file. Either way the parity check decides whether it is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    arguments = dict(input_names=list(view.inputs), output_names=list(view.outputs),
                     external_data=False, verbose=False)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporters' notes on their own internals
        try:
            torch.onnx.export(view.module, tuple(view.inputs.values()), str(partial),
                              dynamo=False, **arguments)
        except Exception:  # noqa: BLE001  (any failure: the other exporter tries)
            partial.unlink(missing_ok=True)
            torch.onnx.export(view.module, tuple(view.inputs.values()), str(partial),
                              dynamo=True, **arguments)
    strip_notes(partial)
    partial.replace(path)
    return path


def strip_notes(path: Path) -> None:
    """Remove from the ONNX file at ``path`` what the exporter notes for debugging: each node's
    source location (``pkg.torch.onnx.stack_trace``, naming the building machine's files by their
    absolute paths) and every other ``metadata_props`` and ``doc_string`` of the model, its
    graphs, nodes, values and functions. What the model computes is untouched."""
    import onnx

    model = onnx.load(str(path))
    _strip(model)
    onnx.save(model, str(path))


def _strip(message) -> None:
    for field, value in message.ListFields():
        if field.name in ("doc_string", "metadata_props"):
            message.ClearField(field.name)
        elif field.message_type is not None:  # a message, or a list of them: look inside
            for item in [value] if hasattr(value, "ListFields") else value:
                _strip(item)


def parity(view: View, path: Path, inputs: dict[str, torch.Tensor] | None = None) -> float:
    """Largest absolute difference between the PyTorch view and its ONNX file under
    onnxruntime (CPU) on ``inputs`` (by default the view's example inputs)."""
    import onnxruntime as ort

    inputs = inputs or view.inputs
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: tensor.numpy() for name, tensor in inputs.items()}
    got = session.run(None, feed)[0]
    with torch.no_grad():
        want = view.module(*inputs.values()).numpy()
    if got.shape != want.shape:
        raise ValueError(f"{path.name}: onnxruntime gives {got.shape}, PyTorch {want.shape}")
    return float(abs(got - want).max())


def export_checked(view: View, path: Path, limit: float = PARITY_LIMIT) -> Path:
    """Export ``view`` to ``path`` and keep it only when onnxruntime agrees with PyTorch on its
    example inputs within ``limit`` (else the file is removed and ValueError raised)."""
    export(view, path)
    difference = parity(view, path)
    if not difference <= limit:
        path.unlink()
        raise ValueError(_mismatch(view, difference, limit))
    return path


def _mismatch(view: View, difference: float, limit: float) -> str:
    return (f"The exported {view.name} differs from the PyTorch model by {difference:.2e} "
            f"(allowed {limit:.0e}); it was not kept.")


def export_all(models: dict, folder: Path, limit: float = PARITY_LIMIT) -> dict:
    """Export every view of ``models`` {family: trained model} into ``folder``; returns
    {file name: {"inputs", "outputs", "bytes", "sha256", "parity"}}. A view whose ONNX file
    differs from PyTorch by more than ``limit`` is removed and raises."""
    manifest = {}
    for family, model in models.items():
        for view in views_of(family, model):
            path = export(view, folder / f"{view.name}.onnx")
            difference = parity(view, path)
            if not difference <= limit:
                path.unlink()
                raise ValueError(_mismatch(view, difference, limit))
            manifest[path.name] = {
                "inputs": {k: list(v.shape) for k, v in view.inputs.items()},
                "outputs": list(view.outputs), "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "parity": difference}
    return manifest
