"""VQ-VAE-2: a two-level hierarchy of discrete latent grids (Razavi et al. 2019).

The data flow, for a 28x28 digit (padded to 32x32) or a 32x32 colour image, with the default
downsampling (bottom grid = image / 4, top grid = bottom / 2):

    X (B, C, 32, 32) → bottom encoder → Z_bottom (B, hidden, 8, 8)
    Z_bottom → top encoder → Z_top (B, hidden, 4, 4) → top codebook → E_top (B, D, 4, 4)
    E_top → top decoder → dec_top (B, D, 8, 8)
    [Z_bottom, dec_top] → bottom codebook → E_bottom (B, D, 8, 8)
    [E_bottom, upsampled E_top] → decoder → X_rec (B, C, 32, 32), cropped back to 28x28

Grid sizes: the two encoders halve the image three times, so the image side must be a multiple
of 8. Sides that are not (MNIST's 28) are zero-padded symmetrically up to the next multiple of 8
(28 → 32: two black pixels on each side, which is MNIST's background anyway) and the
reconstruction is cropped back; the loss only sees the original pixels.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import Trained, load_or_train
from .data import ImageData
from .quantize import VectorQuantizerEMA, codebook_usage, perplexity
from .train import ParameterError, check_positive, fit


# -- blocks ---------------------------------------------------------------------------------

class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the residual block of van den Oord et al. 2017."""

    def __init__(self, channels: int, res_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, res_channels, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(res_channels, channels, 1))

    def forward(self, x):
        return x + self.body(x)


def encoder(c_in: int, hidden: int, res_blocks: int, res_channels: int, halvings: int):
    """Strided 4x4 convolutions, each halving the side, then a 3x3 conv and residual blocks."""
    layers, c = [], c_in
    for i in range(halvings):
        c_out = hidden // 2 if i < halvings - 1 else hidden
        layers += [nn.Conv2d(c, c_out, 4, stride=2, padding=1), nn.ReLU()]
        c = c_out
    layers += [nn.Conv2d(c, hidden, 3, padding=1)]
    layers += [ResBlock(hidden, res_channels) for _ in range(res_blocks)]
    return nn.Sequential(*layers, nn.ReLU())


def decoder(c_in: int, c_out: int, hidden: int, res_blocks: int, res_channels: int, doublings: int):
    """A 3x3 conv and residual blocks, then transposed 4x4 convolutions, each doubling the side."""
    layers = [nn.Conv2d(c_in, hidden, 3, padding=1)]
    layers += [ResBlock(hidden, res_channels) for _ in range(res_blocks)]
    layers += [nn.ReLU()]
    c = hidden
    for i in range(doublings):
        last = i == doublings - 1
        layers += [nn.ConvTranspose2d(c, c_out if last else hidden // 2, 4, stride=2, padding=1)]
        layers += [] if last else [nn.ReLU()]
        c = hidden // 2
    return nn.Sequential(*layers)


# -- the model ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VQVAE2Config:
    channels: int = 1  # 1 for grayscale, 3 for RGB
    image_size: int = 28  # padded up to a multiple of 8 inside the model
    hidden: int = 64  # channels of the encoders and decoders
    res_blocks: int = 1  # residual blocks per encoder/decoder
    res_channels: int = 32  # channels inside a residual block
    embed_dim: int = 32  # D, the length of a codebook vector
    codebook_size_top: int = 64  # K_top, codes in the top codebook
    codebook_size_bottom: int = 128  # K_bottom, codes in the bottom codebook
    beta: float = 0.25  # weight of the commitment loss
    decay: float = 0.99  # EMA decay of the codebooks
    restart: bool = True  # restart codes that fall out of use
    restart_threshold: float = 1.0  # ... when their average count per batch drops below this

    @property
    def padded_size(self) -> int:
        return -(-self.image_size // 8) * 8

    @property
    def bottom_grid(self) -> int:
        return self.padded_size // 4

    @property
    def top_grid(self) -> int:
        return self.padded_size // 8


class Flow(NamedTuple):
    """Every intermediate of one pass, in the order the data flows (for printing shapes)."""

    x_padded: torch.Tensor  # (B, C, S, S), S = padded_size
    z_bottom: torch.Tensor  # (B, hidden, S/4, S/4)
    z_top: torch.Tensor  # (B, hidden, S/8, S/8)
    e_top: torch.Tensor  # (B, D, S/8, S/8) quantised top
    dec_top: torch.Tensor  # (B, D, S/4, S/4) top decoded to the bottom grid
    e_bottom: torch.Tensor  # (B, D, S/4, S/4) quantised bottom
    e_top_up: torch.Tensor  # (B, D, S/4, S/4) E_top upsampled for the decoder
    x_rec: torch.Tensor  # (B, C, image_size, image_size) the reconstruction


class Encoded(NamedTuple):
    quant_top: torch.Tensor  # (B, D, S/8, S/8)
    quant_bottom: torch.Tensor  # (B, D, S/4, S/4)
    codes_top: torch.Tensor  # (B, S/8, S/8) long
    codes_bottom: torch.Tensor  # (B, S/4, S/4) long
    commitment: torch.Tensor  # scalar, both levels


class VQVAE2Output(NamedTuple):
    recon: torch.Tensor  # (B, C, H, W) in [0, 1]
    codes_top: torch.Tensor
    codes_bottom: torch.Tensor
    commitment: torch.Tensor


class VQVAE2(nn.Module):
    """Two encoders, two EMA codebooks, a top decoder and an image decoder."""

    def __init__(self, config: VQVAE2Config):
        super().__init__()
        self.config = cfg = config
        h, d, r, rc = cfg.hidden, cfg.embed_dim, cfg.res_blocks, cfg.res_channels
        quantizer = lambda k: VectorQuantizerEMA(d, k, cfg.beta, cfg.decay, restart=cfg.restart,  # noqa
                                                 restart_threshold=cfg.restart_threshold)
        self.encoder_bottom = encoder(cfg.channels, h, r, rc, halvings=2)  # S → S/4
        self.encoder_top = encoder(h, h, r, rc, halvings=1)  # S/4 → S/8
        self.to_code_top = nn.Conv2d(h, d, 1)
        self.quantize_top = quantizer(cfg.codebook_size_top)
        self.decoder_top = decoder(d, d, h, r, rc, doublings=1)  # S/8 → S/4
        self.to_code_bottom = nn.Conv2d(h + d, d, 1)
        self.quantize_bottom = quantizer(cfg.codebook_size_bottom)
        self.upsample_top = nn.ConvTranspose2d(d, d, 4, stride=2, padding=1)  # S/8 → S/4
        self.decoder = decoder(2 * d, cfg.channels, h, r, rc, doublings=2)  # S/4 → S

    @property
    def pad(self) -> int:
        return (self.config.padded_size - self.config.image_size) // 2

    def flow(self, x: torch.Tensor) -> tuple[Flow, Encoded]:
        """The whole pass, keeping every intermediate."""
        x_padded = F.pad(x, [self.pad] * 4)
        z_bottom = self.encoder_bottom(x_padded)
        z_top = self.encoder_top(z_bottom)
        top = self.quantize_top(self.to_code_top(z_top))
        dec_top = self.decoder_top(top.quantized)
        # The bottom code sees the bottom features and what the top level already explains.
        bottom = self.quantize_bottom(self.to_code_bottom(torch.cat([z_bottom, dec_top], 1)))
        e_top_up = self.upsample_top(top.quantized)
        x_rec = self._decode(bottom.quantized, e_top_up)
        encoded = Encoded(top.quantized, bottom.quantized, top.codes, bottom.codes,
                          top.commitment + bottom.commitment)
        return Flow(x_padded, z_bottom, z_top, top.quantized, dec_top, bottom.quantized,
                    e_top_up, x_rec), encoded

    def _decode(self, quant_bottom, e_top_up):
        out = self.decoder(torch.cat([quant_bottom, e_top_up], 1))
        # Clamp to [0, 1] on the way forward, pass the gradient unchanged on the way back (a
        # sigmoid here can saturate on MNIST's black background and stop all learning).
        out = out + (out.clamp(0, 1) - out).detach()
        p = self.pad
        return out[..., p:out.shape[-2] - p, p:out.shape[-1] - p]  # crop the padding away

    def forward(self, x: torch.Tensor) -> VQVAE2Output:
        flow, enc = self.flow(x)
        return VQVAE2Output(flow.x_rec, enc.codes_top, enc.codes_bottom, enc.commitment)

    def encode(self, x: torch.Tensor) -> Encoded:
        """Images (B, C, H, W) → quantised maps and code grids of both levels."""
        return self.flow(x)[1]

    def decode(self, quant_top: torch.Tensor, quant_bottom: torch.Tensor) -> torch.Tensor:
        """Quantised (or interpolated) maps of both levels → images (B, C, H, W)."""
        return self._decode(quant_bottom, self.upsample_top(quant_top))

    def decode_code(self, codes_top: torch.Tensor, codes_bottom: torch.Tensor) -> torch.Tensor:
        """Code grids (B, S/8, S/8) and (B, S/4, S/4) → images (B, C, H, W)."""
        return self.decode(self.quantize_top.embed_code(codes_top),
                           self.quantize_bottom.embed_code(codes_bottom))


def build_vqvae2(config: dict) -> VQVAE2:
    return VQVAE2(VQVAE2Config(**config["model"]))


def vqvae2_loss(model: VQVAE2, x, y) -> dict:
    """Reconstruction MSE + commitment (the codebooks learn by EMA, outside the gradient)."""
    out = model(x)
    mse = F.mse_loss(out.recon, x)
    return {"loss": mse + out.commitment, "mse": mse, "commitment": out.commitment}


# -- codes of a whole data set --------------------------------------------------------------

class Codes(NamedTuple):
    top: torch.Tensor  # (N, S/8, S/8) long
    bottom: torch.Tensor  # (N, S/4, S/4) long
    labels: torch.Tensor  # (N,)


@torch.no_grad()
def encode_codes(model: VQVAE2, images: torch.Tensor, labels: torch.Tensor, device,
                 batch_size: int = 500) -> Codes:
    """The code grids of every image, on the CPU."""
    model.eval()
    tops, bottoms = [], []
    for i in range(0, len(images), batch_size):
        enc = model.encode(images[i:i + batch_size].to(device))
        tops.append(enc.codes_top.cpu())
        bottoms.append(enc.codes_bottom.cpu())
    return Codes(torch.cat(tops), torch.cat(bottoms), labels.clone())


@torch.no_grad()
def reconstruct(model: VQVAE2, images: torch.Tensor, device, batch_size: int = 500):
    """Reconstructions of ``images`` on the CPU."""
    model.eval()
    return torch.cat([model(images[i:i + batch_size].to(device)).recon.cpu()
                      for i in range(0, len(images), batch_size)])


def codebook_stats(model: VQVAE2, images: torch.Tensor, device) -> dict:
    """Usage (fraction of codes used) and perplexity of both codebooks over ``images``."""
    codes = encode_codes(model, images, torch.zeros(len(images)), device)
    k_top, k_bottom = model.config.codebook_size_top, model.config.codebook_size_bottom
    return {"usage_top": codebook_usage(codes.top, k_top),
            "usage_bottom": codebook_usage(codes.bottom, k_bottom),
            "perplexity_top": perplexity(codes.top, k_top),
            "perplexity_bottom": perplexity(codes.bottom, k_bottom)}


class CodebookMonitor:
    """Measures codebook usage on the test images after every epoch (fit calls ``step``)."""

    def __init__(self, model: VQVAE2, images: torch.Tensor, device):
        self.model, self.images, self.device, self.rows = model, images, device, []

    def step(self) -> None:  # the per-epoch hook of latent_notes.train.fit
        self.rows.append(codebook_stats(self.model, self.images, self.device))


# -- training -------------------------------------------------------------------------------

def train_vqvae2(data: ImageData, *, epochs: int, seed: int, device, cache_dir=None,
                 batch_size: int = 64, lr: float = 1e-3, alias: str | None = None,
                 **model_options) -> Trained:
    """Train (or load) a VQ-VAE-2 with Adam; the history has test usage/perplexity per epoch."""
    check_positive(epochs=epochs, batch_size=batch_size)
    try:
        model_config = VQVAE2Config(channels=data.channels, image_size=data.image_size,
                                    **model_options)
    except TypeError as err:
        raise ParameterError(f"Unknown VQ-VAE-2 option ({err}). The options are the fields of "
                             f"VQVAE2Config: {', '.join(VQVAE2Config.__dataclass_fields__)}.") from None
    check_positive(hidden=model_config.hidden, embed_dim=model_config.embed_dim,
                   codebook_size_top=model_config.codebook_size_top,
                   codebook_size_bottom=model_config.codebook_size_bottom)
    if model_config.hidden < 2 or model_config.hidden % 2:
        raise ParameterError(f"hidden must be an even number of channels >= 2 (the encoders use "
                             f"hidden / 2 in between), got {model_config.hidden}.")
    config = {"model": asdict(model_config),
              "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": "adam"},
              "data": data.spec, "seed": seed}

    def train(model):
        monitor = CodebookMonitor(model, data.test.images, device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        history = fit(model, vqvae2_loss, data.train.loader(batch_size, shuffle=True, seed=seed),
                      data.test.loader(500), epochs=epochs, optimizer=optimizer, device=device,
                      scheduler=monitor, name="vqvae2")
        for column in monitor.rows[0]:
            history[f"test_{column}"] = [row[column] for row in monitor.rows]
        return history

    name = "vqvae2" if model_config.restart else "vqvae2-norestart"
    return load_or_train(name, config, build_vqvae2, train, device=device, cache_dir=cache_dir,
                         alias=alias)


# -- probes and plots for the chapter -------------------------------------------------------

@torch.no_grad()
def edit_code(model: VQVAE2, codes_top, codes_bottom, level: str, position, new_codes) -> torch.Tensor:
    """Decode one image's codes (H, W) once per value in ``new_codes`` put at ``position``."""
    if level not in ("top", "bottom"):
        raise ParameterError(f"level must be 'top' or 'bottom', got {level!r}.")
    n = len(new_codes)
    top, bottom = codes_top.expand(n, -1, -1).clone(), codes_bottom.expand(n, -1, -1).clone()
    edited = top if level == "top" else bottom
    edited[:, position[0], position[1]] = torch.as_tensor(new_codes, device=edited.device)
    model.eval()
    return model.decode_code(top, bottom).cpu()


@torch.no_grad()
def interpolate_quantized(model: VQVAE2, x_a, x_b, steps: int = 9) -> torch.Tensor:
    """Decode (1 − t)·E(a) + t·E(b) on both levels for t from 0 to 1: (steps, C, H, W)."""
    model.eval()
    a, b = model.encode(x_a[None]), model.encode(x_b[None])
    t = torch.linspace(0, 1, steps, device=x_a.device)[:, None, None, None]
    top = (1 - t) * a.quant_top + t * b.quant_top
    bottom = (1 - t) * a.quant_bottom + t * b.quant_bottom
    return model.decode(top, bottom).cpu()


def code_maps(images, codes_top, codes_bottom, codebook_size_top: int, codebook_size_bottom: int,
              title: str = "", captions=None):
    """Each image beside its top and bottom code grids, drawn as coloured index maps."""
    import matplotlib.pyplot as plt

    from .plots import _to_hwc

    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n + 0.9, 4.3), squeeze=False)
    rows = [("image", None, None), (f"top codes\n(K={codebook_size_top})", codes_top,
                                    codebook_size_top),
            (f"bottom codes\n(K={codebook_size_bottom})", codes_bottom, codebook_size_bottom)]
    for r, (label, codes, k) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if codes is None:
                ax.imshow(_to_hwc(images[i]), cmap="gray_r", vmin=0, vmax=1)
                if captions is not None:
                    ax.set_title(str(captions[i]), fontsize=8)
            else:
                ax.imshow(codes[i].cpu().numpy(), cmap="tab20", vmin=0, vmax=k - 1,
                          interpolation="nearest")
        axes[r, 0].set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
