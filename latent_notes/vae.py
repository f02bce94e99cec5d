"""Chapter 3's convolutional variational autoencoder (Kingma & Welling 2014) and its β variant.

The encoder maps an image to the mean μ and the log-variance log σ² of a diagonal Gaussian
q(z | x); a code is drawn as z = μ + σ·ε (the reparameterisation trick) and the decoder turns
it into the per-pixel parameters of p(x | z): Bernoulli probabilities or Gaussian means, both
through a sigmoid. The loss is the negative evidence lower bound (ELBO)

    -ELBO(x) = E_q[-log p(x | z)] + β · KL(q(z | x) || N(0, I)),

with both terms **summed** over pixels and latent dimensions and **averaged** over the batch:
the numbers are nats per image, and β = 1 is the true bound whatever the image size, so β
means the same for 28x28 digits and 64x64 photos (Higgins et al. 2017 call β > 1 the β-VAE).
Evaluation helpers: the importance-sampled negative log-likelihood (Burda et al. 2016), the
KL per latent dimension and the number of active units, and the PSNR of denoised images.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .autoencoder import halvings
from .cache import Trained, alias_name, load_or_train
from .data import ImageData
from .metrics import psnr
from .train import ParameterError, check_positive, fit

LIKELIHOODS = ("bernoulli", "gaussian")


# -- helpers -----------------------------------------------------------------------------------

@contextmanager
def seeded(seed: int):
    """Run a block with its own seeded random stream, leaving the global one untouched."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


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


def add_noise(x: torch.Tensor, noise_std: float) -> torch.Tensor:
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
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
        if i < steps - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)  # logits; the last layer has no activation


# -- the model ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class VAEConfig:
    latent_size: int = 16  # dimensions of z
    channels: int = 1  # 1 for grayscale, 3 for RGB
    image_size: int = 28
    width: int = 32  # channels of the first convolution (then 2x, 4x)
    hidden: int = 256  # the fully connected layer between the feature maps and (μ, log σ²)
    likelihood: str = "bernoulli"  # p(x | z): bernoulli (binary cross-entropy) | gaussian (MSE)
    decoder_std: float = 0.1  # the fixed std of the Gaussian likelihood (unused for Bernoulli)


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
        if config.likelihood not in LIKELIHOODS:
            raise ParameterError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                                 f"got {config.likelihood!r}.")
        check_positive(latent_size=config.latent_size, width=config.width, hidden=config.hidden)
        steps = halvings(config.image_size)  # the autoencoder's rule: 28→14→7, 64→…→8
        if steps == 0:
            raise ParameterError(f"image_size {config.image_size} cannot be halved: use an even "
                                 "size such as 28, 32 or 64.")
        self.config = config
        self.feature_size = config.image_size // 2 ** steps  # 7 for 28 px, 8 for 64 px
        self.features, c = _encoder(config.channels, config.width, steps)
        self.feature_shape = (c, self.feature_size, self.feature_size)
        flat = c * self.feature_size ** 2
        self.to_hidden = nn.Sequential(nn.Linear(flat, config.hidden), nn.ReLU())
        self.to_mu = nn.Linear(config.hidden, config.latent_size)
        self.to_logvar = nn.Linear(config.hidden, config.latent_size)
        self.from_latent = nn.Sequential(nn.Linear(config.latent_size, config.hidden), nn.ReLU(),
                                         nn.Linear(config.hidden, flat), nn.ReLU())
        self.upsample = _decoder(config.channels, config.width, steps)

    def encode(self, x: torch.Tensor) -> Posterior:
        """(B, C, H, W) → μ, log σ² of q(z | x), each (B, D)."""
        h = self.to_hidden(self.features(x))  # (B, hidden)
        return Posterior(self.to_mu(h), self.to_logvar(h))

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I): the randomness sits outside the path of the gradient."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, C, H, W) logits of the pixel means."""
        h = self.from_latent(z).view(len(z), *self.feature_shape)
        return self.upsample(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, C, H, W) mean images in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterise(mu, logvar)
        logits = self.decode_logits(z)
        return VAEOutput(torch.sigmoid(logits), mu, logvar, z, logits)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n images decoded from codes drawn from the prior N(0, I)."""
        device = next(self.parameters()).device
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.config.latent_size, generator=generator).to(device)
        return self.decode(z)


def build_vae(config: dict) -> VAE:
    return VAE(VAEConfig(**config["model"]))


# -- the loss ----------------------------------------------------------------------------------

def elbo_terms(model: VAE, out: VAEOutput, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image reconstruction NLL and KL (each (B,), nats), summed over pixels and dims."""
    cfg = model.config
    recon = reconstruction_nll(out.logits, target, cfg.likelihood, cfg.decoder_std)
    kl = kl_to_standard_normal(out.mu, out.logvar).sum(1)
    return recon, kl


def vae_loss(model: VAE, x: torch.Tensor, y=None, *, beta: float = 1.0,
             recon_weight: float = 1.0, noise_std: float = 0.0) -> dict:
    """recon_weight · E_q[-log p(x|z)] + β · KL, batch mean; also reports the true -ELBO.

    ``noise_std`` > 0 trains a denoiser: the encoder sees a noisy copy, the target stays clean.
    """
    inputs = add_noise(x, noise_std) if noise_std > 0 else x
    out = model(inputs)
    recon, kl = elbo_terms(model, out, x)
    recon, kl = recon.mean(), kl.mean()  # nats per image
    return {"loss": recon_weight * recon + beta * kl, "neg_elbo": recon + kl,
            "recon": recon, "kl": kl}


# -- training ----------------------------------------------------------------------------------

def vae_config(data: ImageData, latent_size: int = 16, width: int = 32, hidden: int = 256,
               likelihood: str = "bernoulli", decoder_std: float = 0.1) -> VAEConfig:
    """A VAEConfig sized for ``data`` (channels and image size read from the images)."""
    return VAEConfig(latent_size=latent_size, channels=data.channels, image_size=data.image_size,
                     width=width, hidden=hidden, likelihood=likelihood, decoder_std=decoder_std)


def train_vae(data: ImageData, model_config: VAEConfig, *, beta: float = 1.0, epochs: int,
              seed: int, device, batch_size: int = 64, lr: float = 1e-3,
              lr_drop_at: int | None = None, recon_weight: float = 1.0, noise_std: float = 0.0,
              name: str = "vae", cache_dir=None, alias: str | None = None) -> Trained:
    """Train (or load from the cache) one VAE with Adam; ``lr_drop_at``: epoch after which lr/10."""
    check_positive(epochs=epochs, batch_size=batch_size)
    if beta < 0 or recon_weight < 0 or noise_std < 0:
        raise ParameterError(f"beta, recon_weight and noise_std must be >= 0, got beta={beta!r}, "
                             f"recon_weight={recon_weight!r}, noise_std={noise_std!r}.")
    if lr_drop_at is not None and not (isinstance(lr_drop_at, int) and 0 < lr_drop_at):
        raise ParameterError(f"lr_drop_at must be None or a positive epoch number (the learning "
                             f"rate is divided by 10 after that epoch), got {lr_drop_at!r}.")
    config = {"model": asdict(model_config),
              "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                        "lr_drop_at": lr_drop_at, "beta": beta, "recon_weight": recon_weight,
                        "noise_std": noise_std, "optimizer": "adam"},
              "data": data.spec, "seed": seed}

    def loss_fn(model, x, y):
        return vae_loss(model, x, beta=beta, recon_weight=recon_weight, noise_std=noise_std)

    def train(model):
        batches = data.train.loader(batch_size, shuffle=True, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        # Step-down schedule: lr until epoch lr_drop_at, then lr / 10 (stepped once per epoch).
        schedule = (torch.optim.lr_scheduler.MultiStepLR(optimizer, [lr_drop_at], gamma=0.1)
                    if lr_drop_at else None)
        return fit(model, loss_fn, batches, data.test.loader(500), epochs=epochs,
                   optimizer=optimizer, scheduler=schedule, device=device, name=name)

    return load_or_train(name, config, build_vae, train, device=device, cache_dir=cache_dir,
                         alias=alias)


def vae_alias(dataset: str, latent_size: int) -> str:
    """The stable cache name of chapter 3's β = 1 VAE, which the comparison chapter reuses."""
    return alias_name("vae", dataset, f"latent{latent_size}")


# -- evaluation --------------------------------------------------------------------------------

def _batches(images: torch.Tensor, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


@torch.no_grad()
def evaluate_elbo(model: VAE, images: torch.Tensor, device, seed: int = 0,
                  batch_size: int = 500) -> dict[str, float]:
    """Test-set means of the reconstruction term, the KL term and -ELBO (β = 1), nats per image."""
    model.eval()
    recon_sum = kl_sum = 0.0
    with seeded(seed):
        for x in _batches(images, batch_size):
            x = x.to(device)
            recon, kl = elbo_terms(model, model(x), x)
            recon_sum, kl_sum = recon_sum + float(recon.sum()), kl_sum + float(kl.sum())
    n = len(images)
    return {"recon": recon_sum / n, "kl": kl_sum / n, "neg_elbo": (recon_sum + kl_sum) / n}


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, σ²) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def importance_sampled_nll(model: VAE, images: torch.Tensor, device, samples: int = 100,
                           seed: int = 0, batch_size: int = 100) -> float:
    """-log p(x) estimated with ``samples`` draws from q(z|x) per image (Burda et al. 2016).

    log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x). For K = 1 this is the
    ELBO; for K > 1 its expectation is a tighter bound, so the estimate is <= -ELBO on average.
    """
    check_positive(samples=samples)
    model.eval()
    total = 0.0
    cfg = model.config
    with seeded(seed):
        for x in _batches(images, batch_size):
            x = x.to(device)
            mu, logvar = model.encode(x)  # (B, D)
            log_weights = []
            for _ in range(samples):
                z = model.reparameterise(mu, logvar)
                log_px_z = -reconstruction_nll(model.decode_logits(z), x, cfg.likelihood,
                                               cfg.decoder_std)
                log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
                log_weights.append(log_px_z + log_pz - _log_normal(z, mu, logvar))
            log_px = torch.logsumexp(torch.stack(log_weights), 0) - math.log(samples)  # (B,)
            total -= float(log_px.sum())
    return total / len(images)


@torch.no_grad()
def kl_per_dimension(model: VAE, images: torch.Tensor, device, batch_size: int = 500) -> torch.Tensor:
    """Mean KL(q(z_j|x) || N(0,1)) over the images, per latent dimension j: (D,)."""
    model.eval()
    total = 0.0
    for x in _batches(images, batch_size):
        mu, logvar = model.encode(x.to(device))
        total = total + kl_to_standard_normal(mu, logvar).sum(0).cpu()
    return total / len(images)


def active_units(kl_per_dim: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose mean KL exceeds ``threshold`` nats: those the decoder can use.

    A dimension with KL ≈ 0 has q(z_j|x) = N(0, 1) for every x: it carries no information
    (posterior collapse). Burda et al. 2016 count Var_x(μ_j) > 0.01 instead; both agree closely.
    """
    return int((kl_per_dim > threshold).sum())


@torch.no_grad()
def reconstruct(model: VAE, images: torch.Tensor, device, batch_size: int = 500) -> torch.Tensor:
    """Decode the posterior means: the deterministic reconstruction (N, C, H, W) on the CPU."""
    model.eval()
    return torch.cat([model.decode(model.encode(x.to(device)).mu).cpu()
                      for x in _batches(images, batch_size)])


class Denoised(NamedTuple):
    psnr_in: float  # mean PSNR (dB) of the noisy inputs against the clean images
    psnr_out: float  # mean PSNR (dB) of the model's outputs against the clean images
    noisy: torch.Tensor  # (N, C, H, W)
    output: torch.Tensor  # (N, C, H, W)


@torch.no_grad()
def denoise(model: VAE, images: torch.Tensor, noise_std: float, device, seed: int = 0) -> Denoised:
    """Add seeded noise to clean images, reconstruct them, and measure both against the clean."""
    with seeded(seed):
        noisy = add_noise(images, noise_std)
    output = reconstruct(model, noisy, device)
    return Denoised(psnr(noisy, images), psnr(output, images),
                    noisy, output)
