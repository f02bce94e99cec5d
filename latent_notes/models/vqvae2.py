"""VQ-VAE-2: a two-level hierarchy of discrete latent grids (Razavi et al. 2019).

The data flow, for a 28x28 digit (padded to 32x32) or a 32x32 colour image, with the default
downsampling (bottom grid = image / 4, top grid = bottom / 2):

    X (B, C, 32, 32) → bottom encoder → Z_bottom (B, width, 8, 8)
    Z_bottom → top encoder → Z_top (B, width, 4, 4) → top codebook → E_top (B, D, 4, 4)
    E_top → top decoder → dec_top (B, D, 8, 8)
    [Z_bottom, dec_top] → bottom codebook → E_bottom (B, D, 8, 8)
    [E_bottom, upsampled E_top] → decoder → X_rec (B, C, 32, 32), cropped back to 28x28

Grid sizes: the two encoders halve the image three times, so the image side must be a multiple
of 8. Sides that are not (MNIST's 28) are zero-padded symmetrically up to the next multiple of 8
(28 → 32: two black pixels on each side, which is MNIST's background anyway) and the
reconstruction is cropped back; the loss only sees the original pixels.

The bottleneck, chosen by ``bottleneck``, with the same encoders, decoders, grids and D
channels per position (the projects this book grew from built their AE and VAE on the VQ-VAE
backbone this way):

- ``"vq"``: VQ-VAE-2, two EMA codebooks. Loss: per-pixel MSE + β_c · commitment.
- ``"continuous"``: no quantiser, real-valued maps: an autoencoder with a spatial latent.
  Loss: the per-pixel MSE.
- ``"gaussian"``: each position's D channels are a diagonal Gaussian q(z | x) (the 1x1 conv
  to the code gives 2D channels, μ and log σ²), drawn as μ + σ·ε in training and taken as μ at
  evaluation (as chapter 3's VAE reconstructs). The bottom posterior is conditioned on the top
  code, so KL(q(z_top, z_bottom | x) || N(0, I)) = KL_top + E_q(z_top) KL_bottom: one drawn
  z_top estimates the expectation; both KLs are closed forms summed over positions and
  channels. With a Gaussian decoder of fixed std σ (``decoder_std``) and N = C·H·W pixels,
  -ELBO(x) = Σ_pixels (x - x̂)² / (2σ²) + KL(x) nats, up to the constant N/2 · log(2πσ²).
  The loss is that bound times 2σ²/N, β weighting the KL:

      loss = MSE per pixel + β · (2σ²/N) · KL,

  on the scale of the other bottlenecks' per-pixel MSE (one learning rate serves all three),
  with the negative ELBO's minimiser: at β = 1 it is the negative ELBO, rescaled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import ParameterError, check_config, choice, number, positive
from .common import batched
from .family import Family
from .quantise import VectorQuantiserEMA, codebook_usage, perplexity

BOTTLENECKS = ("vq", "continuous", "gaussian")

# -- blocks ---------------------------------------------------------------------------------

class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the residual block of van den Oord et al. 2017."""

    def __init__(self, channels: int, res_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, res_channels, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(res_channels, channels, 1))

    def forward(self, x):
        return x + self.body(x)


def encoder(c_in: int, width: int, res_blocks: int, res_channels: int, halvings: int):
    """Strided 4x4 convolutions, each halving the side, then a 3x3 conv and residual blocks."""
    layers, c = [], c_in
    for i in range(halvings):
        c_out = width // 2 if i < halvings - 1 else width
        layers += [nn.Conv2d(c, c_out, 4, stride=2, padding=1), nn.ReLU()]
        c = c_out
    layers += [nn.Conv2d(c, width, 3, padding=1)]
    layers += [ResBlock(width, res_channels) for _ in range(res_blocks)]
    return nn.Sequential(*layers, nn.ReLU())


def decoder(c_in: int, c_out: int, width: int, res_blocks: int, res_channels: int, doublings: int):
    """A 3x3 conv and residual blocks, then transposed 4x4 convolutions, each doubling the side."""
    layers = [nn.Conv2d(c_in, width, 3, padding=1)]
    layers += [ResBlock(width, res_channels) for _ in range(res_blocks)]
    layers += [nn.ReLU()]
    c = width
    for i in range(doublings):
        last = i == doublings - 1
        layers += [nn.ConvTranspose2d(c, c_out if last else width // 2, 4, stride=2, padding=1)]
        layers += [] if last else [nn.ReLU()]
        c = width // 2
    return nn.Sequential(*layers)


# -- config ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class VQVAE2Config:
    channels: int = choice(1, (1, 3))  # 1 for grayscale, 3 for RGB
    image_size: int = positive(28)  # padded up to a multiple of 2 ** (both levels' halvings)
    width: int = positive(64)  # conv channels of the encoders and decoders (even)
    res_blocks: int = number(1, 0)  # residual blocks per encoder/decoder
    res_channels: int = positive(32)  # channels inside a residual block
    embed_dim: int = positive(32)  # D, the length of a codebook vector
    codebook_size_top: int = positive(64)  # K_top, codes in the top codebook
    codebook_size_bottom: int = positive(128)  # K_bottom, codes in the bottom codebook
    commitment_weight: float = number(0.25, 0.0)  # β of the commitment loss
    decay: float = number(0.99, 0.0, 1.0, low_open=True, high_open=True)  # EMA decay, in (0, 1)
    restart: bool = True  # restart codes that fall out of use
    restart_threshold: float = number(1.0, 0.0)  # ... when their mean count per batch drops below
    bottleneck: str = choice("vq", BOTTLENECKS)  # vq | continuous (an AE) | gaussian (a VAE)
    beta: float = number(1.0, 0.0)  # gaussian: weight of the KL term (1: the negative ELBO)
    decoder_std: float = number(0.1, 0.0, low_open=True)  # gaussian: σ of p(x | z)

    # The downsampling of each level, written once: the bottom encoder halves the image twice
    # (S → S/4), the top encoder once more (S/4 → S/8).
    BOTTOM_HALVINGS = 2
    TOP_HALVINGS = 1

    def __post_init__(self):
        check_config(self)
        if self.width < 2 or self.width % 2:
            raise ParameterError(f"width must be an even number of channels >= 2 (the encoders use "
                                 f"width / 2 in between), got {self.width}.")
        if not isinstance(self.res_blocks, int) or isinstance(self.res_blocks, bool):
            raise ParameterError("res_blocks must be a whole number >= 0, "
                                 f"got {self.res_blocks!r}.")

    @property
    def padded_size(self) -> int:
        multiple = 2 ** (self.BOTTOM_HALVINGS + self.TOP_HALVINGS)
        return -(-self.image_size // multiple) * multiple

    @property
    def bottom_grid(self) -> int:
        return self.padded_size // 2 ** self.BOTTOM_HALVINGS

    @property
    def top_grid(self) -> int:
        return self.bottom_grid // 2 ** self.TOP_HALVINGS

    @property
    def code_length(self) -> int:
        """Numbers in ``encode``'s flat code: both maps, D · (G_top² + G_bottom²)."""
        return self.embed_dim * (self.top_grid ** 2 + self.bottom_grid ** 2)

    @property
    def code_channels(self) -> int:
        """Channels of the 1x1 conv to the code: D, or μ and log σ² (2D) for a Gaussian."""
        return 2 * self.embed_dim if self.bottleneck == "gaussian" else self.embed_dim


# -- the model ------------------------------------------------------------------------------

class Flow(NamedTuple):
    """Every intermediate of one pass, in the order the data flows (for printing shapes)."""

    x_padded: torch.Tensor  # (B, C, S, S), S = padded_size
    z_bottom: torch.Tensor  # (B, width, S/4, S/4)
    z_top: torch.Tensor  # (B, width, S/8, S/8)
    quant_top: torch.Tensor  # (B, D, S/8, S/8) quantised top, E_top in the text
    dec_top: torch.Tensor  # (B, D, S/4, S/4) top decoded to the bottom grid
    quant_bottom: torch.Tensor  # (B, D, S/4, S/4) quantised bottom, E_bottom in the text
    quant_top_up: torch.Tensor  # (B, D, S/4, S/4) E_top upsampled for the decoder
    x_rec: torch.Tensor  # (B, C, image_size, image_size) the reconstruction


class Quantised(NamedTuple):
    """What the bottleneck hands the decoders (the maps of a continuous or Gaussian one are
    real numbers, their code grids None)."""

    quant_top: torch.Tensor  # (B, D, S/8, S/8)
    quant_bottom: torch.Tensor  # (B, D, S/4, S/4)
    codes_top: torch.Tensor | None  # (B, S/8, S/8) long
    codes_bottom: torch.Tensor | None  # (B, S/4, S/4) long
    commitment: torch.Tensor  # scalar, both levels (0 without codebooks)
    kl: torch.Tensor | None = None  # (B,) nats, both levels: a Gaussian bottleneck's KL
    kl_top: torch.Tensor | None = None  # (B,) nats, the top level's part of it


class VQVAE2Output(NamedTuple):
    recon: torch.Tensor  # (B, C, H, W) in [0, 1]
    codes_top: torch.Tensor | None
    codes_bottom: torch.Tensor | None
    commitment: torch.Tensor
    kl: torch.Tensor | None = None  # (B,) nats per image, gaussian only


class Priors(nn.Module):
    """The two PixelCNN priors a VQ-VAE-2 samples through, and their softmax temperature."""

    def __init__(self, top: nn.Module, bottom: nn.Module, temperature: float):
        super().__init__()
        self.top, self.bottom, self.temperature = top, bottom, temperature


def _drop_priors(module, state_dict, prefix, local_metadata) -> None:
    """state_dict hook: a VQ-VAE-2's checkpoint holds its own weights, not its priors'."""
    inside = prefix + "priors."
    for key in [k for k in state_dict if k.startswith(inside)]:
        del state_dict[key]
    metadata = getattr(state_dict, "_metadata", {})
    for key in [k for k in metadata if k == inside[:-1] or k.startswith(inside)]:
        del metadata[key]


def _priors_not_missing(module, incompatible) -> None:
    """load_state_dict hook: a VQ-VAE-2's checkpoint has no priors, so they are not missing."""
    if module.priors is None:
        return
    names = ["priors." + k for k in module.priors.state_dict()]
    missing = incompatible.missing_keys
    missing[:] = [k for k in missing if not any(k == n or k.endswith("." + n) for n in names)]


class VQVAE2(nn.Module):
    """Two encoders, two EMA codebooks, a top decoder and an image decoder.

    The verbs of every family: ``encode`` (both quantised maps, flattened: the vector a probe
    reads), ``decode``, ``reconstruct`` and ``sample`` (through the PixelCNN priors given to
    ``attach_priors``). Beyond them: ``quantise`` (maps and code grids), ``decode_code`` (code
    grids → images) and ``edit_code``. With a continuous or Gaussian bottleneck there are no
    codebooks: ``encode`` gives the real-valued maps (μ for a Gaussian), and the verbs that
    need code grids refuse.
    """

    def __init__(self, config: VQVAE2Config):
        super().__init__()
        self.config = cfg = config
        width, dim = cfg.width, cfg.embed_dim
        blocks = dict(res_blocks=cfg.res_blocks, res_channels=cfg.res_channels)
        up = 2 ** cfg.TOP_HALVINGS  # the top grid's cells per bottom-grid side

        def quantiser(k):
            return VectorQuantiserEMA(dim, k, cfg.commitment_weight, cfg.decay, restart=cfg.restart,
                                      restart_threshold=cfg.restart_threshold)

        # Codebooks only for "vq", built in the order they always were: the same seed gives
        # a "vq" model the same weights and state_dict keys as before bottlenecks existed.
        vq = cfg.bottleneck == "vq"
        self.encoder_bottom = encoder(cfg.channels, width, **blocks, halvings=cfg.BOTTOM_HALVINGS)
        self.encoder_top = encoder(width, width, **blocks, halvings=cfg.TOP_HALVINGS)
        self.to_code_top = nn.Conv2d(width, cfg.code_channels, 1)
        if vq:
            self.quantise_top = quantiser(cfg.codebook_size_top)
        self.decoder_top = decoder(dim, dim, width, **blocks, doublings=cfg.TOP_HALVINGS)
        self.to_code_bottom = nn.Conv2d(width + dim, cfg.code_channels, 1)
        if vq:
            self.quantise_bottom = quantiser(cfg.codebook_size_bottom)
        self.upsample_top = nn.ConvTranspose2d(dim, dim, 2 * up, stride=up, padding=up // 2)
        self.decoder = decoder(2 * dim, cfg.channels, width, **blocks,
                               doublings=cfg.BOTTOM_HALVINGS)
        # Set by attach_priors. A submodule, so that .to(...) moves the priors with the model;
        # kept out of its state_dict, so that its checkpoint stays the VQ-VAE's own weights
        # (each prior is saved on its own, families.train_priors).
        self.register_module("priors", None)
        self.register_state_dict_post_hook(_drop_priors)
        self.register_load_state_dict_post_hook(_priors_not_missing)

    @property
    def pad(self) -> int:
        return (self.config.padded_size - self.config.image_size) // 2

    def _bottleneck(self, level: str, h: torch.Tensor, sample: bool):
        """The 1x1 conv's output h → (maps (B, D, G, G), codes or None, commitment, KL (B,)
        or None), by the config's bottleneck."""
        kind = self.config.bottleneck
        if kind == "vq":
            q = (self.quantise_top if level == "top" else self.quantise_bottom)(h)
            return q.quantised, q.codes, q.commitment, None
        if kind == "continuous":
            return h, None, h.new_zeros(()), None
        mu, logvar = h.float().chunk(2, dim=1)  # (B, D, G, G) each, float32 under autocast
        # KL(N(μ, σ²) || N(0, 1)) = ½ (μ² + σ² − 1 − log σ²) per channel (Kingma & Welling
        # 2014, appendix B; written here rather than imported from .vae, so that editing the
        # VAE never retrains this model), summed over positions and channels: (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        return z, None, h.new_zeros(()), kl

    def flow(self, x: torch.Tensor, sample: bool | None = None) -> tuple[Flow, Quantised]:
        """The whole pass, keeping every intermediate. ``sample`` (a Gaussian bottleneck):
        draw the codes from q(z | x) rather than take μ; by default in training mode only."""
        sample = self.training if sample is None else sample
        x_padded = F.pad(x, [self.pad] * 4)
        z_bottom = self.encoder_bottom(x_padded)
        z_top = self.encoder_top(z_bottom)
        top, codes_top, commit_top, kl_top = self._bottleneck(
            "top", self.to_code_top(z_top), sample)
        dec_top = self.decoder_top(top)
        # The bottom code sees the bottom features and what the top level already explains.
        bottom, codes_bottom, commit_bottom, kl_bottom = self._bottleneck(
            "bottom", self.to_code_bottom(torch.cat([z_bottom, dec_top], 1)), sample)
        quant_top_up = self.upsample_top(top)
        x_rec = self._decode(bottom, quant_top_up)
        kl = None if kl_top is None else kl_top + kl_bottom
        quantised = Quantised(top, bottom, codes_top, codes_bottom, commit_top + commit_bottom,
                              kl, kl_top)
        return Flow(x_padded, z_bottom, z_top, top, dec_top, bottom, quant_top_up,
                    x_rec), quantised

    def _decode(self, quant_bottom, quant_top_up):
        out = self.decoder(torch.cat([quant_bottom, quant_top_up], 1))
        # Clamp to [0, 1] on the way forward, pass the gradient unchanged on the way back (a
        # sigmoid here can saturate on MNIST's black background and stop all learning).
        out = out + (out.clamp(0, 1) - out).detach()
        p = self.pad
        return out[..., p:out.shape[-2] - p, p:out.shape[-1] - p]  # crop the padding away

    def forward(self, x: torch.Tensor) -> VQVAE2Output:
        flow, q = self.flow(x)
        return VQVAE2Output(flow.x_rec, q.codes_top, q.codes_bottom, q.commitment, q.kl)

    def quantise(self, x: torch.Tensor) -> Quantised:
        """Images (B, C, H, W) → quantised maps and code grids of both levels."""
        self._needs_codes("quantise")
        return self.flow(x)[1]

    def _needs_codes(self, verb: str) -> None:
        """Refuse a verb that needs code grids on a model without codebooks."""
        kind = self.config.bottleneck
        if kind != "vq":
            maps = "μ of a Gaussian per position" if kind == "gaussian" else "real numbers"
            raise ParameterError(
                f"{verb} needs discrete codes, and this model was built with "
                f"bottleneck={kind!r}: its maps are {maps}, with no codebooks, code grids or "
                "priors. Use encode/decode/reconstruct on it, or a model with "
                "bottleneck='vq' (VQ-VAE-2 itself) for code grids, priors and sampling.")

    # -- the verbs every family has ----------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images → (B, code_length): the top then the bottom map (quantised, real-valued or
        μ), flattened."""
        _, q = self.flow(x, sample=False)
        return torch.cat([q.quant_top.flatten(1), q.quant_bottom.flatten(1)], 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Flat codes (B, code_length), quantised or blended, → images (B, C, H, W)."""
        cfg = self.config
        split = cfg.embed_dim * cfg.top_grid ** 2
        top = codes[:, :split].unflatten(1, (cfg.embed_dim, cfg.top_grid, cfg.top_grid))
        bottom = codes[:, split:].unflatten(1, (cfg.embed_dim, cfg.bottom_grid, cfg.bottom_grid))
        return self.decode_maps(top, bottom)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).recon

    def attach_priors(self, top_prior, bottom_prior, temperature: float = 1.0) -> "VQVAE2":
        """Give the model its two PixelCNN priors, so that ``sample`` works like the others'.

        The priors are moved to the model's device, and from then on move with it.
        """
        self._needs_codes("attach_priors")
        if not temperature > 0:
            raise ParameterError(f"temperature must be a positive number, got {temperature!r}.")
        priors = Priors(top_prior, bottom_prior, temperature)
        self.priors = priors.to(self.quantise_top.embed.device)
        return self

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, labels=None, temperature=None) -> torch.Tensor:
        """Ancestral sampling: top ~ p(top | label), bottom ~ p(bottom | top, label), decode.

        Class-conditional priors take ``labels`` (n,); when none are given, uniform ones are
        drawn with ``seed``. Priors built without classes ignore the labels. ``temperature``
        overrides the one given to ``attach_priors``.
        """
        from .common import draw_labels, seeded
        from .pixelcnn import upsample_codes

        self._needs_codes("sample")
        if self.priors is None:
            raise ParameterError("This VQ-VAE-2 has no priors to sample from: call "
                                 "model.attach_priors(top_prior, bottom_prior) first "
                                 "(latent_notes.families.train_priors trains them, and "
                                 "families.load_family('vqvae2', ...) returns the model with "
                                 "them attached).")
        top_prior, bottom_prior = self.priors.top, self.priors.bottom
        temperature = self.priors.temperature if temperature is None else temperature
        num_classes = top_prior.config.num_classes or bottom_prior.config.num_classes
        if labels is None and num_classes:
            labels = draw_labels(n, num_classes, seed)
        label_for = lambda prior: labels if prior.config.num_classes else None  # noqa: E731
        with seeded(seed):  # the priors sit on the model's device and draw there
            top = top_prior.sample(n, label_for(top_prior), temperature=temperature)
            factor = bottom_prior.config.grid_size // top_prior.config.grid_size
            bottom = bottom_prior.sample(n, label_for(bottom_prior),
                                         cond=upsample_codes(top, factor),
                                         temperature=temperature)
        self.eval()
        return self.decode_code(top, bottom)

    # -- what only a discrete, spatial code can do ---------------------------------------------

    def decode_maps(self, quant_top: torch.Tensor, quant_bottom: torch.Tensor) -> torch.Tensor:
        """Quantised (or interpolated) maps of both levels → images (B, C, H, W)."""
        return self._decode(quant_bottom, self.upsample_top(quant_top))

    def decode_code(self, codes_top: torch.Tensor, codes_bottom: torch.Tensor) -> torch.Tensor:
        """Code grids (B, S/8, S/8) and (B, S/4, S/4) → images (B, C, H, W)."""
        self._needs_codes("decode_code")
        return self.decode_maps(self.quantise_top.embed_code(codes_top),
                                self.quantise_bottom.embed_code(codes_bottom))

    @torch.no_grad()
    def edit_code(self, codes_top, codes_bottom, level: str, position, new_codes) -> torch.Tensor:
        """Decode one image's code grids once per value in ``new_codes`` put at ``position``
        (row, column) of the ``level`` grid: (len(new_codes), C, H, W) on the CPU."""
        self._needs_codes("edit_code")
        if level not in ("top", "bottom"):
            raise ParameterError(f"level must be 'top' or 'bottom', got {level!r}.")
        n = len(new_codes)
        top, bottom = codes_top.expand(n, -1, -1).clone(), codes_bottom.expand(n, -1, -1).clone()
        edited = top if level == "top" else bottom
        edited[:, position[0], position[1]] = torch.as_tensor(new_codes, device=edited.device)
        self.eval()
        return self.decode_code(top, bottom).cpu()


def build_vqvae2(config: dict) -> VQVAE2:
    return VQVAE2(VQVAE2Config(**config["model"]))


# -- the loss -------------------------------------------------------------------------------

def vqvae2_loss(model: VQVAE2, x, y) -> dict:
    """Reconstruction MSE per pixel + commitment (the codebooks learn by EMA, outside the
    gradient); without codebooks the MSE alone, or for a Gaussian bottleneck the negative ELBO
    times 2σ²/N with β on the KL (the module docstring), reporting the KL and the negative
    ELBO in nats per image (in eval mode from z = μ, a plug-in for E_q)."""
    cfg = model.config
    out = model(x)
    mse = F.mse_loss(out.recon, x)
    if cfg.bottleneck == "continuous":
        return {"loss": mse, "mse": mse}
    if cfg.bottleneck == "gaussian":
        pixels, var = x[0].numel(), cfg.decoder_std ** 2  # N = C·H·W, σ²
        kl = out.kl.mean()  # nats per image
        return {"loss": mse + cfg.beta * 2 * var / pixels * kl, "mse": mse, "kl": kl,
                "neg_elbo": mse * pixels / (2 * var) + kl}
    return {"loss": mse + out.commitment, "mse": mse, "commitment": out.commitment}


# -- code grids and codebook statistics ----------------------------------------------------------

class Codes(NamedTuple):
    top: torch.Tensor  # (N, S/8, S/8) long
    bottom: torch.Tensor  # (N, S/4, S/4) long
    labels: torch.Tensor  # (N,)


def code_grids(model: VQVAE2, images: torch.Tensor, labels: torch.Tensor, device) -> Codes:
    """The code grids of both levels for every image, on the CPU."""
    model.eval()
    cfg = model.config
    split = cfg.top_grid ** 2

    def both(x):
        q = model.quantise(x)
        return torch.cat([q.codes_top.flatten(1), q.codes_bottom.flatten(1)], 1)

    flat = batched(both, images, device)
    return Codes(flat[:, :split].unflatten(1, (cfg.top_grid, cfg.top_grid)),
                 flat[:, split:].unflatten(1, (cfg.bottom_grid, cfg.bottom_grid)), labels.clone())


def codebook_stats(model: VQVAE2, images: torch.Tensor, device) -> dict:
    """Usage (fraction of codes used) and perplexity of both codebooks over ``images``."""
    codes = code_grids(model, images, torch.zeros(len(images)), device)
    k_top, k_bottom = model.config.codebook_size_top, model.config.codebook_size_bottom
    return {"usage_top": codebook_usage(codes.top, k_top),
            "usage_bottom": codebook_usage(codes.bottom, k_bottom),
            "perplexity_top": perplexity(codes.top, k_top),
            "perplexity_bottom": perplexity(codes.bottom, k_bottom)}


# -- the family ----------------------------------------------------------------------------------

def _file_name(cfg: VQVAE2Config) -> str:
    """e.g. vqvae2, vqvae2-norestart, vqvae2-colour, vqvae2-continuous, vqvae2-gaussian-beta4."""
    if cfg.bottleneck == "vq":
        parts = ["vqvae2"] + ([] if cfg.restart else ["norestart"])
    else:  # same encoders and decoders, another bottleneck: a variant, named by it
        parts = ["vqvae2", cfg.bottleneck]
        if cfg.bottleneck == "gaussian":
            parts += [f"beta{cfg.beta:g}"] if cfg.beta != 1 else []
            parts += [f"std{cfg.decoder_std:g}"] if cfg.decoder_std != 0.1 else []
    return "-".join(parts + (["colour"] if cfg.channels == 3 else []))


def _is_plain(cfg: VQVAE2Config) -> bool:
    """Chapter 4's VQ-VAE-2 (codebooks, with restarts): the one later chapters compare."""
    return cfg.bottleneck == "vq" and cfg.restart


def monitor_codebooks(model: VQVAE2, data, device) -> dict:
    """Every epoch: codebook usage and perplexity of the validation images' codes."""
    if model.config.bottleneck != "vq":
        return {}  # no codebooks to watch
    stats = codebook_stats(model, data.val.images, device)
    return {f"val_{key}": value for key, value in stats.items()}


FAMILY = Family(
    "vqvae2", "VQ-VAE-2", VQVAE2Config, build_vqvae2, vqvae2_loss,
    model_options={"width": 64, "embed_dim": 32, "codebook_size_top": 64,
                   "codebook_size_bottom": 128, "commitment_weight": 0.25},
    train_options={"batch_size": 64, "lr": 1e-3}, chapter="04_vqvae2",
    file_name=_file_name, alias=lambda cfg: "vqvae2" if _is_plain(cfg) else None,
    monitor=monitor_codebooks, has_priors=True)
