"""Chapter 2's convolutional autoencoder: image X → code Z of ``latent_size`` numbers → image.

The encoder halves the image with strided convolutions (with batch norm, Ioffe & Szegedy 2015)
and flattens the last feature maps into the code through one linear layer; the decoder mirrors
it with transposed convolutions and ends in a sigmoid, so pixels land in [0, 1]. Training
minimises the mean squared error between the image and its reconstruction (Hinton &
Salakhutdinov 2006 for the deep-autoencoder idea).

Every halving is a 4x4 convolution with stride 2 and padding 1, which maps an even side n to
exactly n / 2, and its transposed twin maps n back to exactly 2n (see ``common.halvings``).
An autoencoder has no prior over its codes; to ``sample`` it draws codes from the Gaussian
fitted to its training codes (``fit_prior``, done at the end of training and saved with it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import ParameterError, check_config, choice, positive
from .common import batched, fit_gaussian, halvings, sample_gaussian
from .family import Family

# -- blocks ------------------------------------------------------------------------------------

def _down(c_in: int, c_out: int) -> list:
    """(B, c_in, n, n) → (B, c_out, n/2, n/2): strided conv + batch norm + ReLU."""
    return [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU()]


def _up(c_in: int, c_out: int) -> list:
    """(B, c_in, n, n) → (B, c_out, 2n, 2n): transposed conv + batch norm + ReLU."""
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


# -- config --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AEConfig:
    latent_size: int = positive(16)  # numbers in the code Z
    channels: int = choice(1, (1, 3))  # 1 for grayscale, 3 for RGB
    image_size: int = positive(28)  # side of the square input; 28, 32 and 64 are tested
    width: int = positive(32)  # conv channels after the first halving; doubled at each further one

    def __post_init__(self):
        check_config(self)
        if halvings(self.image_size) == 0:
            raise ParameterError(
                f"The autoencoder takes square images whose side can be halved at least once "
                f"(e.g. 28, 32, 64); got image_size={self.image_size}. Load the data with "
                f"image_size=28/32/64.")


# -- the model -----------------------------------------------------------------------------------

class AEOutput(NamedTuple):
    recon: torch.Tensor  # (B, C, H, W) in [0, 1]
    codes: torch.Tensor  # (B, latent_size)


class Autoencoder(nn.Module):
    """A convolutional autoencoder: ``encode``, ``decode``, ``reconstruct``, ``sample``."""

    def __init__(self, config: AEConfig):
        super().__init__()
        self.config = config
        steps = halvings(config.image_size)
        widths = [config.width * 2 ** i for i in range(steps)]  # e.g. [32, 64] for 28 px
        self.side = config.image_size // 2 ** steps  # 7 for 28 px, 8 for 32 and 64 px
        flat = widths[-1] * self.side ** 2
        layers, c_in = [], config.channels
        for c_out in widths:
            layers += _down(c_in, c_out)
            c_in = c_out
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, config.latent_size))
        layers = [nn.Linear(config.latent_size, flat), nn.ReLU(),
                  nn.Unflatten(1, (widths[-1], self.side, self.side))]
        for c_in, c_out in zip(widths[::-1], widths[::-1][1:], strict=False):
            layers += _up(c_in, c_out)
        layers += [nn.ConvTranspose2d(widths[0], config.channels, 4, stride=2, padding=1),
                   nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)
        # The Gaussian that `sample` draws codes from; N(0, I) until fit_prior is called.
        self.register_buffer("prior_mean", torch.zeros(config.latent_size))
        self.register_buffer("prior_cov", torch.eye(config.latent_size))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, latent_size)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_size) → (B, C, H, W) with pixels in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> AEOutput:
        codes = self.encode(x)
        return AEOutput(self.decode(codes), codes)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images through the code and back, (B, C, H, W)."""
        return self.decode(self.encode(x))

    def fit_prior(self, codes: torch.Tensor) -> None:
        """Let ``sample`` draw from the maximum-likelihood Gaussian of ``codes`` (N, D)."""
        mean, cov = fit_gaussian(codes)
        self.prior_mean.copy_(mean)
        self.prior_cov.copy_(cov)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, labels=None) -> torch.Tensor:
        """n images decoded from codes drawn from the fitted Gaussian (labels are ignored)."""
        z = sample_gaussian(self.prior_mean, self.prior_cov, n, seed)  # (n, D), where the model is
        return self.decode(z)


def build_autoencoder(config: dict) -> Autoencoder:
    return Autoencoder(AEConfig(**config["model"]))


# -- the loss ------------------------------------------------------------------------------------

def reconstruction_loss(model, x, y) -> dict:
    """Mean squared error per pixel, ||x - x̂||² / (C H W), averaged over the batch."""
    mse = F.mse_loss(model(x).recon, x)
    return {"loss": mse}


# -- the family ----------------------------------------------------------------------------------

def fit_sampling_gaussian(model: Autoencoder, data, device) -> None:
    """After training: the Gaussian ``sample`` draws from, fitted to the training codes."""
    model.fit_prior(batched(model.encode, data.train.images, device, 512))


FAMILY = Family(
    "ae", "autoencoder", AEConfig, build_autoencoder, reconstruction_loss,
    model_options={"width": 32}, train_options={"batch_size": 64, "lr": 2e-3,
                                                "schedule": "onecycle"},
    chapter="02_autoencoder", test_batch_size=1000,
    file_name=lambda cfg: f"ae-latent{cfg.latent_size}",
    alias=lambda cfg: f"ae-latent{cfg.latent_size}", after_fit=fit_sampling_gaussian)
