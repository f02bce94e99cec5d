"""Chapter 1's convolutional classifiers, and the cached "judge" later chapters score samples with.

Three networks, from the classic LeNet-style pair of 5x5 convolutions to the deeper 3x3 stack
of the Keras MNIST example (LeCun et al. 1998; Simonyan & Zisserman 2015 for the 3x3 argument:
two 3x3 layers see as far as one 5x5 with fewer weights).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import ParameterError, check_config, choice, number, positive
from .family import Family

ARCHS = ("cnn5x5", "cnn3x3", "cnn_deep")


@dataclass(frozen=True)
class CNNConfig:
    arch: str = choice("cnn_deep", ARCHS)  # one of ARCHS
    channels: int = choice(1, (1, 3))  # 1 for grayscale, 3 for RGB
    image_size: int = positive(28)
    num_classes: int = positive(10)
    width: int = positive(32)  # conv channels of the first convolution; the second has twice
    fc_width: int = positive(128)  # the hidden linear layer of cnn_deep
    dropout: float = number(0.5, 0.0, 1.0, high_open=True)
    batch_norm: bool = False  # normalise after each convolution (Ioffe & Szegedy 2015)

    def __post_init__(self):
        check_config(self)
        smallest = 5 if self.arch == "cnn_deep" else 4  # two 3x3 convs + a pool, or two pools
        if self.image_size < smallest:
            raise ParameterError(f"{self.arch} needs images of at least {smallest} pixels a side, "
                                 f"got image_size={self.image_size}.")


def _conv(c_in: int, c_out: int, kernel: int, padding: int, batch_norm: bool) -> list:
    """Convolution (+ batch norm) + ReLU."""
    if not batch_norm:
        return [nn.Conv2d(c_in, c_out, kernel, padding=padding), nn.ReLU()]
    return [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU()]


class CNN(nn.Module):
    """A small convolutional classifier; ``features`` gives the penultimate activations."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        c, w = config.channels, config.width
        # Standardise the pixels per channel (a batch norm on the input): one learning rate then
        # suits ink-on-paper digits and colour photos alike.
        self.normalise = nn.BatchNorm2d(c)
        conv = lambda c_in, c_out, k, pad=0: _conv(c_in, c_out, k, pad, config.batch_norm)  # noqa
        if config.arch == "cnn_deep":
            # conv 32 → conv 64 → pool → dropout → linear 128 → dropout → classes
            self.body = nn.Sequential(
                *conv(c, w, 3), *conv(w, 2 * w, 3),
                nn.MaxPool2d(2), nn.Dropout(config.dropout / 2), nn.Flatten(),
            )
            flat = 2 * w * ((config.image_size - 4) // 2) ** 2  # two unpadded 3x3 convs, one pool
            self.head = nn.Sequential(nn.Linear(flat, config.fc_width), nn.ReLU(),
                                      nn.Dropout(config.dropout))
        else:
            k = 5 if config.arch == "cnn5x5" else 3
            self.body = nn.Sequential(
                *conv(c, w, k, k // 2), nn.MaxPool2d(2),
                *conv(w, 2 * w, k, k // 2), nn.MaxPool2d(2), nn.Flatten(),
            )
            self.head = nn.Identity()
        with torch.no_grad():  # size the last layer from a dummy image
            features = self.features(torch.zeros(1, c, config.image_size, config.image_size))
        self.classify = nn.Linear(features.shape[1], config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, F): the activations just before the last linear layer."""
        return self.head(self.body(self.normalise(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))  # (B, num_classes) logits


def build_classifier(config: dict) -> CNN:
    return CNN(CNNConfig(**config["model"]))


def classification_loss(model, x, y) -> dict:
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y),
            "accuracy": (logits.argmax(1) == y).float().mean()}


# -- the family ----------------------------------------------------------------------------------

# Chapter 1's recipe: Adam, one-cycle with a short warm-up (15 % of the schedule). Its deep CNN
# is the judge later chapters score images with, stored under "judge-<data set>".
FAMILY = Family(
    "classifier", "CNN classifier", CNNConfig, build_classifier, classification_loss,
    train_options={"schedule": "onecycle", "warmup": 0.15}, chapter="01_cnn_warmup",
    test_batch_size=1000, file_name=lambda cfg: cfg.arch,
    alias=lambda cfg: "judge" if cfg.arch == "cnn_deep" else None)
