"""Chapter 2's convolutional autoencoder: image X → code Z of ``latent_size`` numbers → image.

The encoder halves the image with strided convolutions (with batch norm, Ioffe & Szegedy 2015)
and flattens the last feature maps into the code through one linear layer; the decoder mirrors
it with transposed convolutions and ends in a sigmoid, so pixels land in [0, 1]. Training
minimises the mean squared error between the image and its reconstruction (Hinton &
Salakhutdinov 2006 for the deep-autoencoder idea).

Every halving is a 4x4 convolution with stride 2 and padding 1, which maps an even side n to
exactly n / 2, and its transposed twin maps n back to exactly 2n. We halve while the side is even
and above 8: 28 → 14 → 7 (two halvings; 7 is odd, so no output padding is ever needed on the
way back), 32 → 16 → 8, 64 → 32 → 16 → 8.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import Trained, load_or_train
from .data import ImageData
from .train import ParameterError, check_positive, fit


def halvings(image_size: int) -> int:
    """How many stride-2 stages the encoder uses: halve while the side is even and above 8."""
    steps = 0
    while image_size % 2 == 0 and image_size > 8:
        image_size //= 2
        steps += 1
    return steps


def _down(c_in: int, c_out: int) -> list:
    """(B, c_in, n, n) → (B, c_out, n/2, n/2): strided conv + batch norm + ReLU."""
    return [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU()]


def _up(c_in: int, c_out: int) -> list:
    """(B, c_in, n, n) → (B, c_out, 2n, 2n): transposed conv + batch norm + ReLU."""
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


@dataclass(frozen=True)
class AEConfig:
    latent_size: int = 16  # numbers in the code Z
    channels: int = 1  # 1 for grayscale, 3 for RGB
    image_size: int = 28  # side of the square input; 28, 32 and 64 are tested
    width: int = 32  # channels after the first halving; each further halving doubles them


class AEOutput(NamedTuple):
    recon: torch.Tensor  # (B, C, H, W) in [0, 1]
    codes: torch.Tensor  # (B, latent_size)


class Autoencoder(nn.Module):
    """A convolutional autoencoder with the verbs ``encode`` and ``decode``."""

    def __init__(self, config: AEConfig):
        super().__init__()
        check_positive(latent_size=config.latent_size, width=config.width)
        steps = halvings(config.image_size)
        if config.channels not in (1, 3) or steps == 0:
            raise ParameterError(
                f"The autoencoder takes 1- or 3-channel square images whose side can be halved at "
                f"least once (e.g. 28, 32, 64); got channels={config.channels}, "
                f"image_size={config.image_size}. Load the data with image_size=28/32/64.")
        self.config = config
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
        for c_in, c_out in zip(widths[::-1], widths[::-1][1:]):
            layers += _up(c_in, c_out)
        layers += [nn.ConvTranspose2d(widths[0], config.channels, 4, stride=2, padding=1),
                   nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, latent_size)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_size) → (B, C, H, W) with pixels in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> AEOutput:
        codes = self.encode(x)
        return AEOutput(self.decode(codes), codes)


def build_autoencoder(config: dict) -> Autoencoder:
    return Autoencoder(AEConfig(**config["model"]))


def reconstruction_loss(model, x, y) -> dict:
    """Mean squared error per pixel, ||x - x̂||² / (C H W), averaged over the batch."""
    mse = F.mse_loss(model(x).recon, x)
    return {"loss": mse}


def ae_alias(dataset: str, latent_size: int) -> str:
    """The stable cache name of a trained autoencoder, for later chapters."""
    return "ae-" + "".join(ch if ch.isalnum() else "_" for ch in dataset) + f"-latent{latent_size}"


def check_latent_sizes(latent_sizes, **needed) -> list[int]:
    """The sweep as sorted distinct positive integers; every ``needed`` size must be in it."""
    sizes = list(latent_sizes) if isinstance(latent_sizes, (list, tuple)) else [latent_sizes]
    if not sizes or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in sizes):
        raise ParameterError(f"latent_sizes must be a list of positive integers such as "
                             f"[2, 8, 16, 32], got {latent_sizes!r}.")
    sizes = sorted(set(sizes))
    for name, size in needed.items():
        if size not in sizes:
            raise ParameterError(f"{name}={size!r} must be one of latent_sizes {sizes}: the "
                                 f"experiments reuse the models of the sweep. Add it to "
                                 f"latent_sizes or choose one of them.")
    return sizes


def train_autoencoder(data: ImageData, latent_size: int, *, epochs: int, seed: int, device,
                      batch_size: int = 64, lr: float = 2e-3, width: int = 32,
                      cache_dir=None) -> Trained:
    """Train (or load from the cache) one autoencoder with Adam and a one-cycle schedule."""
    check_positive(epochs=epochs, batch_size=batch_size, latent_size=latent_size, width=width)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ParameterError(f"lr must be a positive learning rate such as 2e-3, got {lr!r}.")
    model_config = AEConfig(latent_size=latent_size, channels=data.channels,
                            image_size=data.image_size, width=width)
    config = {"model": asdict(model_config),
              "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                        "optimizer": "adam", "schedule": "onecycle", "loss": "mse"},
              "data": data.spec, "seed": seed}

    def train(model):
        batches = data.train.loader(batch_size, shuffle=True, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        # One-cycle (Smith & Topin 2019): warm up to lr, then anneal to ~0; stepped every batch.
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                       total_steps=epochs * len(batches))
        return fit(model, reconstruction_loss, batches, data.test.loader(1000), epochs=epochs,
                   optimizer=optimizer, batch_scheduler=schedule, device=device,
                   name=f"ae latent={latent_size}")

    return load_or_train(f"ae-latent{latent_size}", config, build_autoencoder, train,
                         device=device, cache_dir=cache_dir,
                         alias=ae_alias(data.name, latent_size))


@torch.no_grad()
def reconstruction_mse(model: Autoencoder, images: torch.Tensor, device,
                       batch_size: int = 1000) -> float:
    """Mean per-pixel squared error of the reconstructions of ``images`` (all of them)."""
    model.eval()
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        total += float(F.mse_loss(model(x).recon, x, reduction="sum"))
    return total / images.numel()


def add_noise(codes: torch.Tensor, scale: float, spread: torch.Tensor, seed: int = 0):
    """codes + scale · spread · ε, ε ~ N(0, I): noise in units of ``spread`` (D,), seeded."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(codes.shape, generator=generator)
    return codes + scale * spread * eps


def sweep_plot(table, x: str, columns: dict, *, title: str, ylabel: str, log_y: bool = False):
    """Lines of ``table[column]`` against ``table[x]`` (log-2 x axis), one per {column: label}."""
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    for column, label in columns.items():
        ax.plot(table[x], table[column], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(table[x]), [str(v) for v in table[x]])
    ax.minorticks_off()
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
