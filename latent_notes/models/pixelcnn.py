"""A gated PixelCNN (van den Oord et al. 2016, "Conditional image generation with PixelCNN
decoders") over grids of codebook indices: the prior that makes a VQ-VAE-2 generate.

The grid is read in raster order (row by row, left to right) and the model factorises
p(c) = Π_i p(c_i | c_<i), each factor a softmax over the codebook. Causality comes from masked
convolutions in two stacks: a vertical stack that sees the rows above and a horizontal stack that
sees the pixels to the left in the current row; together they have no blind spot. Each layer uses
the gated activation tanh(W_f * x + V_f h) ⊙ σ(W_g * x + V_g h) of their eq. 4-5, where h is the
optional condition: a class label and/or a map (for the bottom prior, the top codes).

With ``label_dropout`` > 0 a class-conditional prior also learns to do without the label: in
training each label is hidden, with that probability, behind one more learnt embedding, "no
label" (index ``num_classes``), so that the same network models p(c | y) and p(c). This is the
training trick of classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion
Guidance"), which replaces the label by a null token with probability p_uncond; here it serves
only to sample and score without a label (``labels=None``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import ParameterError, check_config, number, positive
from .family import Family

LEVELS = ("top", "bottom")


# -- helpers --------------------------------------------------------------------------------

class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed 0/1 mask (zeros: positions not seen)."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], mask: torch.Tensor):
        super().__init__(c_in, c_out, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
        self.register_buffer("mask", mask.view(1, 1, *kernel))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def vertical_mask(k: int) -> torch.Tensor:
    """k x k kernel keeping the rows above and the centre row (the stack's own row)."""
    mask = torch.zeros(k, k)
    mask[:k // 2 + 1] = 1
    return mask


def horizontal_mask(k: int, include_centre: bool) -> torch.Tensor:
    """1 x k kernel keeping the pixels to the left (and the centre, after the first layer)."""
    mask = torch.zeros(1, k)
    mask[0, :k // 2 + int(include_centre)] = 1
    return mask


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move a map one row down: row i now holds what the vertical stack computed for row i-1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def gate(x: torch.Tensor) -> torch.Tensor:
    """tanh(first half) ⊙ sigmoid(second half) along the channels (van den Oord et al.
    2016, eq. 2)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def upsample_codes(codes: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, h, w) → (N, h*factor, w*factor) by repetition: each top code covers factor²
    bottom ones."""
    return codes.repeat_interleave(factor, -2).repeat_interleave(factor, -1)


def prior_inputs(codes_top: torch.Tensor, codes_bottom: torch.Tensor, level: str) -> torch.Tensor:
    """What a prior reads: (N, 1, G, G) top codes, or (N, 2, G, G) bottom codes + top codes
    below them."""
    if level == "top":
        return codes_top[:, None]
    factor = codes_bottom.shape[-1] // codes_top.shape[-1]
    return torch.stack([codes_bottom, upsample_codes(codes_top, factor)], 1)


# -- blocks ---------------------------------------------------------------------------------

class Context(NamedTuple):
    labels: torch.Tensor | None  # (B,) long
    features: torch.Tensor | None  # (B, channels, G, G) from the conditioning map


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016, fig. 2).

    ``label_rows``: the rows of the label embedding (the classes, plus "no label" with label
    dropout; 0: no label).
    """

    def __init__(self, channels: int, kernel: int, first: bool, label_rows: int,
                 conditioned: bool):
        super().__init__()
        c2 = 2 * channels
        self.vertical = MaskedConv2d(channels, c2, (kernel, kernel), vertical_mask(kernel))
        self.horizontal = MaskedConv2d(channels, c2, (1, kernel),
                                       horizontal_mask(kernel, include_centre=not first))
        self.vertical_to_horizontal = nn.Conv2d(c2, c2, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        self.residual = not first  # the first layer's input is the pixel itself: no shortcut
        self.label_bias = nn.Embedding(label_rows, c2) if label_rows else None
        self.map_bias = nn.Conv2d(channels, c2, 1) if conditioned else None

    def bias(self, context: Context, rows: slice = slice(None)):
        """The condition's term of eq. 4 for ``rows`` of the grid: (B, 2c, 1 or rows, G)."""
        bias = 0
        if self.label_bias is not None:
            bias = bias + self.label_bias(context.labels)[:, :, None, None]  # V h, one per class
        if self.map_bias is not None:
            bias = bias + self.map_bias(context.features[:, :, rows])  # V * s, a 1x1 conv
        return bias

    def forward(self, v, h, context: Context):
        bias = self.bias(context)
        v_pre = self.vertical(v)  # (B, 2c, G, G), row i sees rows <= i
        # The horizontal stack may see the vertical one only from strictly earlier rows.
        return gate(v_pre + bias), self.horizontal_step(h, shift_down(v_pre), bias)

    def horizontal_step(self, h, v_above, bias):
        """The horizontal stack, given the vertical stack's pre-activations one row up."""
        h_pre = self.horizontal(h) + self.vertical_to_horizontal(v_above)
        h_out = self.horizontal_out(gate(h_pre + bias))
        return h_out + h if self.residual else h_out


# -- the model ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PixelCNNConfig:
    codebook_size: int = positive(64)  # K, the values a position can take
    grid_size: int = positive(4)  # G, the side of the code grid
    channels: int = positive(64)  # width of both stacks
    layers: int = positive(5)  # gated layers (the receptive field grows by one row/column each)
    kernel_size: int = positive(3)  # odd, at least 3
    num_classes: int = number(0, 0)  # 0: no class conditioning
    label_dropout: float = number(0.0, 0, 1, high_open=True)  # share of labels hidden in training
    cond_codebook_size: int = number(0, 0)  # 0: no conditioning map; else the map's codebook size

    def __post_init__(self):
        check_config(self)
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ParameterError("kernel_size must be odd and at least 3, "
                                 f"got {self.kernel_size!r}.")
        for name in ("num_classes", "cond_codebook_size"):
            if not isinstance(getattr(self, name), int):
                raise ParameterError(f"{name} must be a whole number >= 0, got "
                                     f"{getattr(self, name)!r}.")
        if self.label_dropout and not self.num_classes:
            raise ParameterError(f"label_dropout={self.label_dropout!r} needs a class-conditional "
                                 "prior, but num_classes is 0: there is no label to drop. Set "
                                 "label_dropout=0, or num_classes to the number of classes.")

    @property
    def label_rows(self) -> int:
        """Rows of the label embedding: the classes, and "no label" (index num_classes) when
        trained with label dropout."""
        return self.num_classes + (1 if self.label_dropout else 0)


class PixelCNN(nn.Module):
    """Logits (B, K, G, G) for every position of a code grid, each from the positions before it."""

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = cfg = config
        c = cfg.channels
        self.embed = nn.Embedding(cfg.codebook_size, c)
        if cfg.cond_codebook_size:
            # The conditioning map is given whole, so its network needs no mask.
            self.cond_net = nn.Sequential(nn.Embedding(cfg.cond_codebook_size, c), _ChannelsFirst(),
                                          nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                                          nn.Conv2d(c, c, 3, padding=1))
        self.layers = nn.ModuleList(
            GatedLayer(c, cfg.kernel_size, i == 0, cfg.label_rows, cfg.cond_codebook_size > 0)
            for i in range(cfg.layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(),
                                  nn.Conv2d(c, cfg.codebook_size, 1))

    def no_label(self, n: int) -> torch.Tensor:
        """(n,) labels that all say "no label" (index num_classes), on the model's device: what
        ``labels=None`` means to a prior trained with label dropout."""
        cfg = self.config
        if not (cfg.num_classes and cfg.label_dropout):
            raise ParameterError(
                f"This prior was built with num_classes={cfg.num_classes} and label_dropout="
                f"{cfg.label_dropout}, so it has no \"no label\" embedding and cannot sample or "
                f"score without a label. "
                + ("Pass labels (B,) in [0, num_classes), or train the prior with label_dropout "
                   "> 0 (e.g. 0.1; chapter 4's prior_label_dropout)." if cfg.num_classes else
                   "It takes no labels at all: pass labels=None."))
        return torch.full((n,), cfg.num_classes, dtype=torch.long, device=self.embed.weight.device)

    def context(self, labels=None, cond=None, n: int = 0) -> Context:
        """Check the condition against the config and embed the conditioning map once;
        ``labels=None`` on a class-conditional prior means "no label" for all ``n`` grids."""
        cfg = self.config
        if cfg.num_classes and labels is None:
            labels = self.no_label(n)
        elif not cfg.num_classes and labels is not None:
            raise ParameterError("This prior was built with num_classes=0; pass labels=None.")
        if bool(cfg.cond_codebook_size) != (cond is not None):
            raise ParameterError(f"This prior was built with cond_codebook_size="
                                 f"{cfg.cond_codebook_size}; pass cond="
                                 f"{'(B, G, G) codes' if cfg.cond_codebook_size else 'None'}.")
        return Context(labels, self.cond_net(cond) if cond is not None else None)

    def logits_from_embedded(self, x: torch.Tensor, context: Context) -> torch.Tensor:
        """(B, channels, G, G) embedded codes → (B, K, G, G) logits."""
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, context)
        return self.head(h)

    def forward(self, codes: torch.Tensor, labels=None, cond=None) -> torch.Tensor:
        if self.training and labels is not None and self.config.label_dropout:
            labels = drop_labels(labels, self.config.label_dropout, self.config.num_classes)
        x = self.embed(codes).permute(0, 3, 1, 2)  # (B, G, G) → (B, channels, G, G)
        return self.logits_from_embedded(x, self.context(labels, cond, len(codes)))

    @torch.no_grad()
    def sample(self, n: int, labels=None, cond=None, temperature: float = 1.0,
               device=None) -> torch.Tensor:
        """Draw n code grids (n, G, G), one position at a time in raster order, on ``device``
        (by default the one the model's weights are on; labels and cond are moved there).

        temperature < 1 sharpens every softmax (likelier, less varied codes), > 1 flattens it.
        ``labels=None`` on a class-conditional prior samples without a label (label dropout).

        The logits are those of ``forward``, computed with less work: the vertical stack of
        the finished rows once per row, then only the current row's horizontal stack per
        position (its 1 x k kernels see no other row).
        """
        if not temperature > 0:
            raise ParameterError(f"temperature must be a positive number, got {temperature!r}.")
        self.eval()
        device = self.embed.weight.device if device is None else torch.device(device)
        labels = labels.to(device) if labels is not None else None
        cond = cond.to(device) if cond is not None else None
        g = self.config.grid_size
        context = self.context(labels, cond, n)
        codes = torch.zeros(n, g, g, dtype=torch.long, device=device)
        for i in range(g):
            above = self._vertical_above(codes[:, :i], context)  # per layer, (n, 2c, 1, G)
            biases = [layer.bias(context, slice(i, i + 1)) for layer in self.layers]
            for j in range(g):
                h = self.embed(codes[:, i:i + 1]).permute(0, 3, 1, 2)  # row i: (n, c, 1, G)
                for layer, v_above, bias in zip(self.layers, above, biases, strict=True):
                    h = layer.horizontal_step(h, v_above, bias)
                logits = self.head(h)[:, :, 0, j] / temperature
                codes[:, i, j] = torch.multinomial(F.softmax(logits, 1), 1)[:, 0]
        return codes

    def _vertical_above(self, done: torch.Tensor, context: Context) -> list:
        """Each layer's vertical pre-activations of the last finished row, (n, 2c, 1, G),
        from the finished rows ``done`` (n, i, G) alone (causal: no later row changes them);
        zeros above the first row, as ``shift_down`` pads."""
        n, i, g = done.shape
        if i == 0:
            zeros = self.embed.weight.new_zeros(n, 2 * self.config.channels, 1, g)
            return [zeros] * len(self.layers)
        v, above = self.embed(done).permute(0, 3, 1, 2), []  # (n, c, i, G)
        for layer in self.layers:
            v_pre = layer.vertical(v)
            above.append(v_pre[:, :, -1:])
            v = gate(v_pre + layer.bias(context, slice(0, i)))
        return above


def drop_labels(labels: torch.Tensor, p: float, no_label: int) -> torch.Tensor:
    """Each label replaced by ``no_label`` with probability ``p``, drawn from torch's global
    random stream (seeded with the rest of training)."""
    hidden = torch.rand(labels.shape, device=labels.device) < p
    return labels.masked_fill(hidden, no_label)


class _ChannelsFirst(nn.Module):
    def forward(self, x):  # (B, G, G, C) → (B, C, G, G)
        return x.permute(0, 3, 1, 2)


def build_pixelcnn(config: dict) -> PixelCNN:
    return PixelCNN(PixelCNNConfig(**config["model"]))


def prior_loss(model: PixelCNN, x, y) -> dict:
    """Negative log-likelihood in bits per code: cross-entropy / ln 2 (in training, a prior
    with label dropout hides some labels itself)."""
    codes = x[:, 0]
    cond = x[:, 1] if x.shape[1] > 1 else None
    logits = model(codes, y if model.config.num_classes else None, cond)
    bits = F.cross_entropy(logits, codes) / math.log(2)
    return {"loss": bits, "bits_per_code": bits}


@torch.no_grad()
def bits_per_code(model: PixelCNN, codes, device, labelled: bool = True,
                  batch_size: int = 500) -> float:
    """Mean negative log-likelihood, in bits per code, of one level's code grids in ``codes``
    (a :class:`~latent_notes.models.vqvae2.Codes`) under ``model``: given each grid's label,
    or with ``labelled=False`` without one (a class-conditional prior needs label dropout)."""
    model.eval()
    x = prior_inputs(codes.top, codes.bottom, level_of(model.config))
    total = 0.0
    for i in range(0, len(x), batch_size):
        batch = x[i:i + batch_size].to(device)
        labels = (codes.labels[i:i + batch_size].to(device)
                  if labelled and model.config.num_classes else None)
        logits = model(batch[:, 0], labels, batch[:, 1] if batch.shape[1] > 1 else None)
        total += float(F.cross_entropy(logits, batch[:, 0], reduction="sum"))
    return total / (x[:, 0].numel() * math.log(2))


# -- the family ----------------------------------------------------------------------------------

LEVELS = ("top", "bottom")


def level_of(config: PixelCNNConfig) -> str:
    """A prior conditioned on a code map is the bottom level's; else the top level's."""
    return "bottom" if config.cond_codebook_size else "top"


def prior_config(vq_config, level: str, **options) -> PixelCNNConfig:
    """The PixelCNN config of one level's prior of a VQ-VAE-2 (its config ``vq_config``): the
    grid and codebooks read from it, the chapter's defaults overridden by ``options``."""
    if level not in LEVELS:
        raise ParameterError(f"level must be 'top' or 'bottom', got {level!r}.")
    top = level == "top"
    defaults = dict(FAMILY.model_options)
    if not options.get("num_classes"):
        defaults.pop("label_dropout", None)  # no labels, none to drop
    return PixelCNNConfig(**{**defaults, **options,
                             "codebook_size": (vq_config.codebook_size_top if top
                                               else vq_config.codebook_size_bottom),
                             "grid_size": vq_config.top_grid if top else vq_config.bottom_grid,
                             "cond_codebook_size": 0 if top else vq_config.codebook_size_top})


def _name(config: PixelCNNConfig) -> str:
    return f"prior-{level_of(config)}" + ("-class" if config.num_classes else "")


# A prior reads code grids, not images: its data is a VQ-VAE-2's codes (families.CodeData),
# each split a (top, bottom, labels) triple.
FAMILY = Family(
    "prior", "PixelCNN prior", PixelCNNConfig, build_pixelcnn, prior_loss,
    model_options={"channels": 32, "layers": 5, "label_dropout": 0.1},
    train_options={"batch_size": 64, "lr": 1e-3, "schedule": "onecycle"},
    chapter="04_vqvae2", file_name=_name,
    alias=lambda cfg: f"prior-{level_of(cfg)}" if cfg.num_classes else None,
    inputs=lambda split, cfg: (prior_inputs(split.top, split.bottom, level_of(cfg)),
                               split.labels))
