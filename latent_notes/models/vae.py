"""Chapter 3's convolutional variational autoencoder (Kingma & Welling 2014) and its β variant.

The encoder maps an image to the mean μ and the log-variance log σ² of a diagonal Gaussian
q(z | x); a code is drawn as z = μ + σ·ε (the reparameterisation trick) and the decoder turns
it into the per-pixel parameters of p(x | z): Bernoulli probabilities or Gaussian means, both
through a sigmoid. The loss is the negative evidence lower bound (ELBO)

    -ELBO(x) = E_q[-log p(x | z)] + β · KL(q(z | x) || N(0, I)),

with both terms **summed** over pixels and latent dimensions and **averaged** over the batch:
the numbers are nats per image, and β = 1 is the true bound whatever the image size, so β
means the same for 28x28 digits and 64x64 photos (Higgins et al. 2017 call β > 1 the β-VAE).
With ``binarise`` each batch is re-drawn as black-and-white pixels x_b ~ Bernoulli(x) (dynamic
binarisation, as in Burda et al. 2016), where the Bernoulli decoder is a normalised likelihood.
Evaluation helpers: the importance-sampled negative log-likelihood (Burda et al. 2016), the
KL per latent dimension and the number of active units, and the PSNR of denoised images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import ParameterError, check_config, choice, number, positive, switch
from .common import halvings
from .family import Family

LIKELIHOODS = ("bernoulli", "gaussian")


# -- helpers -----------------------------------------------------------------------------------

def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, 1)) per latent dimension, same shape as μ."""
    # Kingma & Welling 2014, appendix B: -KL = ½ Σ_j (1 + log σ_j² - μ_j² - σ_j²).
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str,
                       decoder_std: float) -> torch.Tensor:
    """-log p(x | z) summed over pixels, one value per image (B,)."""
    if likelihood == "bernoulli":
        # -Σ [x log p + (1-x) log(1-p)] with p = sigmoid(logits), computed stably from logits.
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        # Gaussian with fixed std s: (x - mean)² / (2 s²), dropping the constant ½ log(2π s²)
        # per pixel (the same for every model of one data set, so comparisons are unaffected).
        nll = (torch.sigmoid(logits) - x).pow(2) / (2 * decoder_std ** 2)
    return nll.flatten(1).sum(1)


def add_pixel_noise(x: torch.Tensor, noise_std: float) -> torch.Tensor:
    """Gaussian pixel noise of standard deviation ``noise_std``, clipped back to [0, 1]."""
    return (x + noise_std * torch.randn_like(x)).clamp(0, 1)


# -- blocks ------------------------------------------------------------------------------------

def _encoder(channels: int, width: int, steps: int) -> tuple[nn.Sequential, int]:
    """Stride-2 4x4 convolutions, each halving the image; widths w, 2w, 4w, 4w, ..."""
    layers, c_in = [], channels
    for i in range(steps):
        c_out = width * 2 ** min(i, 2)
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, nn.Flatten()), c_in


def _decoder(channels: int, width: int, steps: int) -> nn.Sequential:
    """The mirror image: transposed 4x4 convolutions, each doubling the image."""
    widths = [width * 2 ** min(i, 2) for i in range(steps)][::-1] + [channels]
    layers = []
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
        if i < steps - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)  # logits; the last layer has no activation


# -- the model ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class VAEConfig:
    latent_size: int = positive(16)  # dimensions of z
    channels: int = choice(1, (1, 3))  # 1 for grayscale, 3 for RGB
    image_size: int = positive(28)
    width: int = positive(32)  # conv channels of the first convolution (then 2x, 4x)
    fc_width: int = positive(256)  # the fully connected layer between feature maps and (μ, log σ²)
    likelihood: str = choice("bernoulli", LIKELIHOODS)  # p(x | z): bernoulli (BCE) | gaussian (MSE)
    decoder_std: float = number(0.1, 0.0, low_open=True)  # std of the Gaussian likelihood
    # the loss (vae_loss): recon_weight · reconstruction + beta · KL
    beta: float = number(1.0, 0.0)  # weight of the KL term (β-VAE: β ≠ 1)
    recon_weight: float = number(1.0, 0.0)  # weight of the reconstruction term
    noise_std: float = number(0.0, 0.0)  # > 0: a denoiser (noisy inputs, clean targets)
    binarise: bool = switch(False)  # True: each batch drawn as 0/1 pixels, x_b ~ Bernoulli(x)

    def __post_init__(self):
        check_config(self)
        if self.binarise and self.likelihood != "bernoulli":
            raise ParameterError("binarise=True draws black-and-white pixels, whose likelihood is "
                                 f"the Bernoulli decoder's: use likelihood='bernoulli' (got "
                                 f"{self.likelihood!r}) or binarise=False.")
        if halvings(self.image_size) == 0:
            raise ParameterError(f"image_size {self.image_size} cannot be halved: use an even "
                                 "size such as 28, 32 or 64.")


class Posterior(NamedTuple):
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D), log σ²


class VAEOutput(NamedTuple):
    recon: torch.Tensor  # (B, C, H, W) in [0, 1]: the decoder's mean image for the sampled z
    mu: torch.Tensor  # (B, D)
    logvar: torch.Tensor  # (B, D)
    z: torch.Tensor  # (B, D), the sampled code
    logits: torch.Tensor  # (B, C, H, W), recon before the sigmoid (for a stable loss)


class VAE(nn.Module):
    """Convolutional VAE: ``encode`` → (μ, log σ²), ``reparameterise``, ``decode``, ``sample``."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        steps = halvings(config.image_size)  # the autoencoder's rule: 28→14→7, 64→…→8
        self.config = config
        self.feature_size = config.image_size // 2 ** steps  # 7 for 28 px, 8 for 64 px
        self.features, c = _encoder(config.channels, config.width, steps)
        self.feature_shape = (c, self.feature_size, self.feature_size)
        flat = c * self.feature_size ** 2
        self.to_hidden = nn.Sequential(nn.Linear(flat, config.fc_width), nn.ReLU())
        self.to_mu = nn.Linear(config.fc_width, config.latent_size)
        self.to_logvar = nn.Linear(config.fc_width, config.latent_size)
        self.from_latent = nn.Sequential(nn.Linear(config.latent_size, config.fc_width), nn.ReLU(),
                                         nn.Linear(config.fc_width, flat), nn.ReLU())
        self.upsample = _decoder(config.channels, config.width, steps)

    def posterior(self, x: torch.Tensor) -> Posterior:
        """(B, C, H, W) → μ, log σ² of q(z | x), each (B, D), in float32 (under autocast too:
        the sampling and the KL need it)."""
        h = self.to_hidden(self.features(x))  # (B, fc_width)
        return Posterior(self.to_mu(h).float(), self.to_logvar(h).float())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → μ (B, D): the code a probe reads, the centre of q(z | x)."""
        return self.posterior(x).mu

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I): the randomness sits outside the path of the gradient."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, C, H, W) logits of the pixel means (float32, for the likelihood)."""
        h = self.from_latent(z).view(len(z), *self.feature_shape)
        return self.upsample(h).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, C, H, W) mean images in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.posterior(x)
        z = self.reparameterise(mu, logvar)
        logits = self.decode_logits(z)
        return VAEOutput(torch.sigmoid(logits), mu, logvar, z, logits)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean μ: the deterministic reconstruction (B, C, H, W)."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, labels=None) -> torch.Tensor:
        """n images decoded from codes drawn from the prior N(0, I) (labels are ignored)."""
        device = next(self.parameters()).device
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.latent_size, generator=generator).to(device)
        return self.decode(z)


def build_vae(config: dict) -> VAE:
    return VAE(VAEConfig(**config["model"]))


# -- the loss ----------------------------------------------------------------------------------

def elbo_terms(model: VAE, out: VAEOutput,
               target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image reconstruction NLL and KL (each (B,), nats), summed over pixels and dims."""
    cfg = model.config
    recon = reconstruction_nll(out.logits, target, cfg.likelihood, cfg.decoder_std)
    kl = kl_to_standard_normal(out.mu, out.logvar).sum(1)
    return recon, kl


def vae_loss(model: VAE, x: torch.Tensor, y=None) -> dict:
    """recon_weight · E_q[-log p(x|z)] + β · KL, batch mean; also reports the true -ELBO.

    The weights are the model config's ``recon_weight`` and ``beta``; ``noise_std`` > 0 trains
    a denoiser: the encoder sees a noisy copy, the target stays clean. With ``binarise`` the
    batch is first drawn afresh as 0/1 pixels (an image already black and white stays as it is).
    """
    cfg = model.config
    if cfg.binarise:  # dynamic binarisation: a new draw each time an image is seen
        x = torch.bernoulli(x)
    inputs = add_pixel_noise(x, cfg.noise_std) if cfg.noise_std > 0 else x
    out = model(inputs)
    recon, kl = elbo_terms(model, out, x)
    recon, kl = recon.mean(), kl.mean()  # nats per image
    return {"loss": cfg.recon_weight * recon + cfg.beta * kl, "neg_elbo": recon + kl,
            "recon": recon, "kl": kl}


# -- the family ----------------------------------------------------------------------------------

def _file_name(cfg: VAEConfig) -> str:
    """e.g. vae-latent16, vae-latent16-beta4, vae-latent2-recon0, vae-latent16-noise0.3,
    vae-latent16-binary."""
    parts = [f"vae-latent{cfg.latent_size}"]
    parts += [f"beta{cfg.beta:g}"] if cfg.beta != 1 else []
    parts += [f"recon{cfg.recon_weight:g}"] if cfg.recon_weight != 1 else []
    parts += [f"noise{cfg.noise_std:g}"] if cfg.noise_std else []
    parts += ["binary"] if cfg.binarise else []
    parts += ["colour"] if cfg.channels == 3 else []
    return "-".join(parts)


def _is_plain(cfg: VAEConfig) -> bool:
    """The VAE proper (β = 1, both terms, clean grey-level inputs): the one later chapters
    compare."""
    return cfg.beta == 1 and cfg.recon_weight == 1 and cfg.noise_std == 0 and not cfg.binarise


FAMILY = Family(
    "vae", "variational autoencoder (β = 1)", VAEConfig, build_vae, vae_loss,
    model_options={"width": 16, "fc_width": 256, "likelihood": "bernoulli"},
    train_options={"batch_size": 64, "lr": 1e-3}, chapter="03_vae", file_name=_file_name,
    alias=lambda cfg: f"vae-latent{cfg.latent_size}" if _is_plain(cfg) else None)
