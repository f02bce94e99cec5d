"""What a model family knows about itself, and the recipe every family is trained with.

Each model module ends with its :class:`Family`: the model's config class, its builder, its
loss, the defaults its chapter trains it with, and hooks for what only it needs (the
autoencoder fits a Gaussian to its codes after training, VQ-VAE-2 reports codebook usage each
epoch and has priors, a PixelCNN reads code grids rather than images). Nothing here trains:
``latent_notes.families.train`` does, the same way for every family.

The loss weights of every family are fields of its model config (the VAE's β, VQ-VAE-2's
commitment weight β_c): a loss is ``loss(model, x, y)`` and reads them from ``model.config``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

from ..checks import ParameterError, check_config, check_positive, choice, number, positive

SCHEDULES = ("constant", "onecycle", "step")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: Adam with a learning-rate schedule (the same for every family)."""

    epochs: int = positive(10)  # passes over the training images
    batch_size: int = positive(64)  # images per gradient step
    lr: float = number(1e-3, 0.0, 1.0, low_open=True)  # (peak) learning rate of Adam
    schedule: str = choice("constant", SCHEDULES)  # constant | onecycle (per step) | step (÷10)
    warmup: float = number(0.3, 0.0, 1.0, low_open=True, high_open=True)  # onecycle: rising part
    lr_drop_at: int | None = None  # step: the epoch after which the learning rate drops tenfold

    def __post_init__(self):
        check_config(self)
        if (self.schedule == "step") != (self.lr_drop_at is not None):
            raise ParameterError(f"lr_drop_at goes with schedule='step' (the epoch after which the "
                                 f"learning rate drops tenfold); got schedule={self.schedule!r}, "
                                 f"lr_drop_at={self.lr_drop_at!r}.")
        if self.lr_drop_at is not None:
            check_positive(lr_drop_at=self.lr_drop_at)


def _names(config_class) -> set[str]:
    return {f.name for f in fields(config_class)}


def sized(config_class, data, **options):
    """A model config for ``data`` (its channels, image size and, for a classifier, its number
    of classes) with the given options."""
    known = _names(config_class) - {"channels", "image_size"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ParameterError(f"Unknown {config_class.__name__} option(s) {', '.join(unknown)}; "
                             f"the options are {', '.join(sorted(known))}.")
    if "num_classes" in known and "num_classes" not in options and hasattr(data, "classes"):
        options["num_classes"] = len(data.classes)
    return config_class(channels=data.channels, image_size=data.image_size, **options)


@dataclass(frozen=True)
class Family:
    """One model family: how it is configured, trained, named and found again."""

    name: str  # short name in tables and checkpoint files: ae, vae, vqvae2, classifier, prior
    title: str  # in prose
    config: type  # its model config class
    build: Callable  # config dict → model; listed in latent_notes.store.checkpoint.BUILDERS
    loss: Callable  # (model, x, y) → {"loss": ..., other terms to log}
    model_options: dict = field(default_factory=dict)  # its chapter's default model settings
    train_options: dict = field(default_factory=dict)  # ... and training settings, less epochs
    chapter: str | None = None  # the chapter that trains it
    test_batch_size: int = 500
    file_name: Callable | None = None  # model config → checkpoint name (default: ``name``)
    alias: Callable | None = None  # model config → the stable name its chapter stores it
    #   under for later chapters (the data set's name is appended), or None for a variant
    inputs: Callable | None = None  # (split, model config) → (x, y) tensors; default: images
    after_fit: Callable | None = None  # (model, data, device): a last step after training
    monitor: Callable | None = None  # (model, data, device) → {name: value}, every epoch
    has_priors: bool = False  # generates through PixelCNN priors (the prior family's defaults)

    def configure(self, data, **options):
        """A model config for ``data``: its chapter's defaults, overridden by ``options``."""
        return sized(self.config, data, **{**self.model_options, **options})

    def split(self, options: dict) -> tuple[dict, dict]:
        """``options`` → (model options, training options), each a field of the model config
        or of :class:`TrainConfig`; anything else is refused, naming both lists."""
        model_fields, train_fields = _names(self.config), _names(TrainConfig)
        unknown = sorted(set(options) - model_fields - train_fields)
        if unknown:
            raise ParameterError(
                f"Unknown option(s) {', '.join(unknown)} for the {self.title}: its model options "
                f"are {', '.join(sorted(model_fields - {'channels', 'image_size'}))} and its "
                f"training options {', '.join(sorted(train_fields))}.")
        return ({k: v for k, v in options.items() if k in model_fields},
                {k: v for k, v in options.items() if k in train_fields})

    def train_config(self, *, epochs: int, **options) -> TrainConfig:
        """Its chapter's training settings with ``epochs``, overridden by ``options``."""
        return TrainConfig(**{**self.train_options, **options, "epochs": epochs})

    def recipe(self, data, *, epochs: int, **options):
        """(model config, train config) for ``data``: the chapter's defaults, overridden by
        ``options`` (each one a field of the model config or of :class:`TrainConfig`)."""
        model, train = self.split(options)
        return self.configure(data, **model), self.train_config(epochs=epochs, **train)

    def checkpoint_name(self, config) -> str:
        return self.file_name(config) if self.file_name else self.name

    def alias_stem(self, config) -> str | None:
        return self.alias(config) if self.alias else None
