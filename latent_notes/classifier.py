"""Chapter 1's convolutional classifiers, and the cached "judge" later chapters score samples with.

Three networks, from the classic LeNet-style pair of 5x5 convolutions to the deeper 3x3 stack
of the Keras MNIST example (LeCun et al. 1998; Simonyan & Zisserman 2015 for the 3x3 argument:
two 3x3 layers see as far as one 5x5 with fewer weights).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import Trained, default_cache_dir, load_checkpoint, load_or_train, store_alias
from .data import ImageData
from .train import ParameterError, check_positive, fit

ARCHS = ("cnn5x5", "cnn3x3", "cnn_deep")
WARMUP = 0.15  # fraction of the one-cycle schedule spent raising the learning rate


@dataclass(frozen=True)
class CNNConfig:
    arch: str = "cnn_deep"  # one of ARCHS
    channels: int = 1  # 1 for grayscale, 3 for RGB
    image_size: int = 28
    num_classes: int = 10
    width: int = 32  # channels of the first convolution; the second has twice as many
    hidden: int = 128  # the hidden linear layer of cnn_deep
    dropout: float = 0.5
    batch_norm: bool = False  # normalise after each convolution (Ioffe & Szegedy 2015)


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
        if config.arch not in ARCHS:
            raise ParameterError(f"Unknown classifier {config.arch!r}; use one of {', '.join(ARCHS)}.")
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
            self.head = nn.Sequential(nn.Linear(flat, config.hidden), nn.ReLU(),
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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_classifier(data: ImageData, arch: str, *, epochs: int, seed: int, device,
                     batch_size: int = 16, lr: float = 5e-3, cache_dir=None,
                     alias: str | None = None) -> Trained:
    """Train (or load from the cache) one classifier with Adam and a one-cycle schedule."""
    check_positive(epochs=epochs, batch_size=batch_size)
    model_config = CNNConfig(arch=arch, channels=data.channels, image_size=data.image_size,
                             num_classes=len(data.classes))
    config = {"model": asdict(model_config),
              "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                        "optimizer": "adam", "schedule": "onecycle", "warmup": WARMUP},
              "data": data.spec, "seed": seed}

    def train(model):
        batches = data.train.loader(batch_size, shuffle=True, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        # One-cycle (Smith & Topin 2019): warm up, then anneal to ~0; stepped every batch.
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, pct_start=WARMUP,
                                                       total_steps=epochs * len(batches))
        return fit(model, classification_loss, batches, data.test.loader(1000), epochs=epochs,
                   optimizer=optimizer, batch_scheduler=schedule, device=device, name=arch)

    return load_or_train(arch, config, build_classifier, train, device=device,
                         cache_dir=cache_dir, alias=alias)


@torch.no_grad()
def predict(model: CNN, images: torch.Tensor, device, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, classes) for a tensor of images."""
    model.eval()
    out = [F.softmax(model(images[i:i + batch_size].to(device)), 1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def judge_alias(dataset: str) -> str:
    """The stable cache name of chapter 1's best classifier for a data set."""
    return "judge-" + "".join(ch if ch.isalnum() else "_" for ch in dataset)


def store_judge(result: Trained, data: ImageData, cache_dir=None) -> Path:
    """Keep a trained classifier as the judge of ``data``'s generated images."""
    return store_alias(result.path, judge_alias(data.name), cache_dir)


def load_judge(data: ImageData, device, cache_dir=None, epochs: int = 3, seed: int = 0) -> Trained:
    """Chapter 1's cached best classifier for ``data``; trains the deep CNN if it is missing."""
    path = Path(cache_dir or default_cache_dir()) / f"{judge_alias(data.name)}.pt"
    if path.exists():
        judge = load_checkpoint(path, device)
        if judge.config["data"].get("image_size") == data.image_size:
            return judge
    return train_classifier(data, "cnn_deep", epochs=epochs, seed=seed, device=device,
                            cache_dir=cache_dir, alias=judge_alias(data.name))
