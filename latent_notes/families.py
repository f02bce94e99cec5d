"""How every model family is trained, cached and found again, and the registry of families.

Every ``train_*`` function has one signature,

    train_x(data, model_config, train_config, *, run, alias=None)

(``run``: a :class:`~latent_notes.store.cache.Run`, the seed, the device and the store) and
returns a :class:`~latent_notes.store.cache.Trained`: the model is loaded from the checkpoint
cache (or the weights source) when this exact configuration was trained before, else built,
trained with :func:`latent_notes.training.train` and saved. ``alias`` also stores it under a
stable name that later chapters find it by. :data:`FAMILIES` lists the three latent-variable
families the comparison chapter loops over; adding a fourth is one model module plus one entry
here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Callable, NamedTuple

import torch

from .checks import ParameterError
from .data import Batches, ImageData
from .models.autoencoder import AEConfig, build_autoencoder, reconstruction_loss
from .models.classifier import CNNConfig, build_classifier, classification_loss
from .models.common import batched
from .models.pixelcnn import PixelCNNConfig, build_pixelcnn, prior_inputs, prior_loss
from .models.quantise import codebook_usage, perplexity
from .models.vae import VAEConfig, VAETrainConfig, build_vae
from .models.vqvae2 import VQVAE2Config, build_vqvae2, vqvae2_loss
from .store.cache import Run, Trained, alias_name, same_data
from .training import TrainConfig, train

CLASSIFIER_WARMUP = 0.15  # fraction of a classifier's one-cycle schedule spent warming up


def sized(config_class, data: ImageData, **options):
    """A model config for ``data`` (its channels and image size) with the given options."""
    known = {f.name for f in fields(config_class)} - {"channels", "image_size"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ParameterError(f"Unknown {config_class.__name__} option(s) {', '.join(unknown)}; "
                             f"the options are {', '.join(sorted(known))}.")
    return config_class(channels=data.channels, image_size=data.image_size, **options)


def _config(model_config, train_config, data_spec: dict, seed: int) -> dict:
    """Everything that determines the weights: what the cache key hashes."""
    return {"model": asdict(model_config), "train": {**asdict(train_config), "optimizer": "adam"},
            "data": data_spec, "seed": seed}


def _batches(data: ImageData, config: TrainConfig, seed: int):
    return data.train.loader(config.batch_size, shuffle=True, seed=seed)


# -- the autoencoder, the VAE and the classifier: images in -----------------------------------

def train_autoencoder(data: ImageData, model_config: AEConfig, train_config: TrainConfig, *,
                      run: Run, alias: str | None = None) -> Trained:
    """An autoencoder trained on the MSE; its sampling Gaussian is fitted to its training codes."""
    def fit_it(model, state):
        history = train(model, reconstruction_loss, _batches(data, train_config, run.seed),
                        data.test.loader(1000), train_config, device=run.device,
                        name=f"ae latent={model_config.latent_size}", state=state)
        model.fit_prior(batched(model.encode, data.train.images, run.device, 512))
        return history

    return run.store.load_or_train(f"ae-latent{model_config.latent_size}",
                                   _config(model_config, train_config, data.spec, run.seed),
                                   build_autoencoder, fit_it, device=run.device, alias=alias)


def train_vae(data: ImageData, model_config: VAEConfig, train_config: VAETrainConfig, *,
              run: Run, alias: str | None = None, name: str = "vae") -> Trained:
    """A VAE trained on its (weighted) negative ELBO; ``name`` labels the checkpoint file."""
    if not isinstance(train_config, VAETrainConfig):
        raise ParameterError("train_vae needs a VAETrainConfig (a TrainConfig with the loss "
                             f"weights beta, recon_weight, noise_std), got {train_config!r}.")

    def fit_it(model, state):
        return train(model, train_config.loss, _batches(data, train_config, run.seed),
                     data.test.loader(500), train_config, device=run.device, name=name,
                     state=state)

    return run.store.load_or_train(name, _config(model_config, train_config, data.spec, run.seed),
                                   build_vae, fit_it, device=run.device, alias=alias)


def train_classifier(data: ImageData, model_config: CNNConfig, train_config: TrainConfig, *,
                     run: Run, alias: str | None = None) -> Trained:
    """A CNN classifier trained on the cross-entropy."""
    def fit_it(model, state):
        return train(model, classification_loss, _batches(data, train_config, run.seed),
                     data.test.loader(1000), train_config, device=run.device,
                     name=model_config.arch,
                     state=state)

    return run.store.load_or_train(model_config.arch,
                                   _config(model_config, train_config, data.spec, run.seed),
                                   build_classifier, fit_it, device=run.device, alias=alias)


def classifier_recipe(epochs: int, batch_size: int, lr: float) -> TrainConfig:
    """Chapter 1's way of training a classifier: Adam, one-cycle with a short warm-up."""
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, schedule="onecycle",
                       warmup=CLASSIFIER_WARMUP)


# -- the judge: chapter 1's best classifier, which later chapters score images with -----------

def judge_alias(dataset: str) -> str:
    """The stable cache name of chapter 1's deep CNN for a data set."""
    return "judge-" + "".join(ch if ch.isalnum() else "_" for ch in dataset)


def judge(data: ImageData, train_config: TrainConfig, *, run: Run) -> Trained:
    """Chapter 1's deep CNN for ``data``, trained with ``train_config`` (its recipe).

    Chapter 1 trains it; any later chapter gets exactly that model: the same configuration
    gives the same cache key, so it is loaded when chapter 1 ran, else trained the same way.
    """
    return train_classifier(data, sized(CNNConfig, data, arch="cnn_deep",
                                        num_classes=len(data.classes)),
                            train_config, run=run,
                            alias=judge_alias(data.name))


# -- VQ-VAE-2 and its priors: code grids in ------------------------------------------------------

class Codes(NamedTuple):
    top: torch.Tensor  # (N, S/8, S/8) long
    bottom: torch.Tensor  # (N, S/4, S/4) long
    labels: torch.Tensor  # (N,)


def code_grids(model, images: torch.Tensor, labels: torch.Tensor, device) -> Codes:
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


def codebook_stats(model, images: torch.Tensor, device) -> dict:
    """Usage (fraction of codes used) and perplexity of both codebooks over ``images``."""
    codes = code_grids(model, images, torch.zeros(len(images)), device)
    k_top, k_bottom = model.config.codebook_size_top, model.config.codebook_size_bottom
    return {"usage_top": codebook_usage(codes.top, k_top),
            "usage_bottom": codebook_usage(codes.bottom, k_bottom),
            "perplexity_top": perplexity(codes.top, k_top),
            "perplexity_bottom": perplexity(codes.bottom, k_bottom)}


def train_vqvae2(data: ImageData, model_config: VQVAE2Config, train_config: TrainConfig, *,
                 run: Run, alias: str | None = None) -> Trained:
    """A VQ-VAE-2; its history has the test images' codebook usage and perplexity per epoch."""
    def monitor(epoch, model):  # a per-epoch callback of fit
        stats = codebook_stats(model, data.test.images, run.device)
        return {f"test_{key}": value for key, value in stats.items()}

    def fit_it(model, state):
        return train(model, vqvae2_loss, _batches(data, train_config, run.seed),
                     data.test.loader(500), train_config, device=run.device, callbacks=[monitor],
                     name="vqvae2", state=state)

    name = "vqvae2" if model_config.restart else "vqvae2-norestart"
    return run.store.load_or_train(name, _config(model_config, train_config, data.spec, run.seed),
                                   build_vqvae2, fit_it, device=run.device, alias=alias)


class CodeData(NamedTuple):
    """What a prior is trained on: one VQ-VAE-2's code grids of the training and test images."""

    train: Codes
    test: Codes
    source: str  # the VQ-VAE-2's checkpoint name: a prior belongs to exactly one model

    @classmethod
    def of(cls, vqvae: Trained, data: ImageData, device) -> "CodeData":
        return cls(code_grids(vqvae.model, data.train.images, data.train.labels, device),
                   code_grids(vqvae.model, data.test.images, data.test.labels, device),
                   vqvae.path.stem)


def prior_config(vq: VQVAE2Config, level: str, **options) -> PixelCNNConfig:
    """The PixelCNN config of one level's prior, its grid and codebooks read from ``vq``."""
    if level not in ("top", "bottom"):
        raise ParameterError(f"level must be 'top' or 'bottom', got {level!r}.")
    top = level == "top"
    return PixelCNNConfig(codebook_size=vq.codebook_size_top if top else vq.codebook_size_bottom,
                          grid_size=vq.top_grid if top else vq.bottom_grid,
                          cond_codebook_size=0 if top else vq.codebook_size_top, **options)


def train_prior(codes: CodeData, model_config: PixelCNNConfig, train_config: TrainConfig, *,
                run: Run, alias: str | None = None) -> Trained:
    """The PixelCNN prior of one level (top, or bottom given the top) over ``codes``."""
    level = "bottom" if model_config.cond_codebook_size else "top"
    x_train = prior_inputs(codes.train.top, codes.train.bottom, level)
    x_test = prior_inputs(codes.test.top, codes.test.bottom, level)
    spec = {"codes_of": codes.source, "level": level, "n_train": len(codes.train.top)}

    def fit_it(model, state):
        batches = Batches(x_train, codes.train.labels, train_config.batch_size, shuffle=True,
                          seed=run.seed)
        return train(model, prior_loss, batches, Batches(x_test, codes.test.labels, 500),
                     train_config, device=run.device, name=f"prior-{level}", state=state)

    name = f"prior-{level}" + ("-class" if model_config.num_classes else "")
    return run.store.load_or_train(name, _config(model_config, train_config, spec, run.seed),
                                   build_pixelcnn, fit_it, device=run.device, alias=alias)


def train_priors(vqvae: Trained, data: ImageData, train_config: TrainConfig, *, run: Run,
                 aliases: bool = False, codes: CodeData | None = None,
                 **options) -> dict[str, Trained]:
    """Both class-conditional priors of a VQ-VAE-2: {"top": ..., "bottom": ...}."""
    codes = codes or CodeData.of(vqvae, data, run.device)
    return {level: train_prior(codes, prior_config(vqvae.model.config, level,
                                                   num_classes=len(data.classes), **options),
                               train_config, run=run,
                               alias=alias_name(f"prior-{level}", data.name) if aliases else None)
            for level in ("top", "bottom")}


# -- the registry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """One latent-variable model family: how to configure, train and find it again."""

    name: str  # short name in tables: ae, vae, vqvae2
    title: str  # in prose
    chapter: str  # the chapter that trains it
    model_config: type
    train_config: type
    train: Callable[..., Trained]
    model_options: dict  # the chapter's default model settings (its parameters cell)
    train_options: dict  # the chapter's default training settings, less epochs

    def alias(self, data: ImageData, latent_size: int | None = None) -> str:
        """The stable cache name its chapter stores the model under."""
        if self.name == "vqvae2":
            return alias_name("vqvae2", data.name)
        return alias_name(self.name, data.name, f"latent{latent_size}")

    def recipe(self, data: ImageData, *, epochs: int, **model_options):
        """(model config, train config): the chapter's defaults, for ``data``."""
        model = sized(self.model_config, data, **{**self.model_options, **model_options})
        return model, self.train_config(epochs=epochs, **self.train_options)


FAMILIES = {
    "ae": Family("ae", "autoencoder", "02_autoencoder", AEConfig, TrainConfig, train_autoencoder,
                 {"width": 32}, {"batch_size": 64, "lr": 2e-3, "schedule": "onecycle"}),
    "vae": Family("vae", "variational autoencoder (β = 1)", "03_vae", VAEConfig, VAETrainConfig,
                  train_vae, {"width": 16, "fc_width": 256, "likelihood": "bernoulli"},
                  {"batch_size": 64, "lr": 1e-3}),
    "vqvae2": Family("vqvae2", "VQ-VAE-2", "04_vqvae2", VQVAE2Config, TrainConfig, train_vqvae2,
                     {"width": 64, "embed_dim": 32, "codebook_size_top": 64,
                      "codebook_size_bottom": 128, "commitment_weight": 0.25},
                     {"batch_size": 64, "lr": 1e-3}),
}
PRIOR_OPTIONS = {"channels": 32, "layers": 5}  # chapter 4's default priors
PRIOR_TRAIN = {"batch_size": 64, "lr": 1e-3, "schedule": "onecycle"}


def load_family(name: str, data: ImageData, *, latent_size: int, epochs: int, run: Run,
                temperature: float = 1.0) -> tuple:
    """A family's model as its chapter stored it, else trained here with the chapter's default
    settings and ``epochs``; VQ-VAE-2 comes with its priors attached.

    Returns (model, [rows saying where each checkpoint came from]).
    """
    if name not in FAMILIES:
        raise ParameterError(f"Unknown model family {name!r}; the families are "
                             f"{', '.join(FAMILIES)}.")
    family, rows = FAMILIES[name], []
    options = {} if name == "vqvae2" else {"latent_size": latent_size}

    def stored_or_train(label, alias, check, train_here):
        found = run.store.load_alias(alias, run.device, check)
        result = found or train_here()
        rows.append({"model": label, "source": "its chapter (cache)" if found else "trained here",
                     "checkpoint": result.path.name})
        return result

    def train_here():
        model_config, train_config = family.recipe(data, epochs=epochs, **options)
        return family.train(data, model_config, train_config, run=run,
                            alias=family.alias(data, latent_size))

    trained = stored_or_train(name, family.alias(data, latent_size), same_data(data.spec),
                              train_here)
    if name == "vqvae2":
        priors = _stored_priors(trained, data, epochs, run, stored_or_train)
        trained.model.attach_priors(priors["top"].model, priors["bottom"].model, temperature)
    return trained.model, rows


def _stored_priors(vqvae: Trained, data, epochs, run: Run, stored_or_train):
    """Chapter 4's priors of this VQ-VAE-2, else both trained here with its defaults."""
    made_from = lambda config: config["data"].get("codes_of") == vqvae.path.stem  # noqa: E731
    found = {}
    for level in ("top", "bottom"):
        found[level] = stored_or_train(
            f"prior ({level})", alias_name(f"prior-{level}", data.name), made_from,
            lambda level=level: train_priors(
                vqvae, data, TrainConfig(epochs=epochs, **PRIOR_TRAIN), run=run, aliases=True,
                **PRIOR_OPTIONS)[level])
    return found

