"""Every model family trained the same way, found again, and the registry of families.

One function trains any family (each model module ends with its ``FAMILY``):

    train(family, data, model_config, train_config, *, run)

(``run``: a :class:`~latent_notes.store.cache.Run`, the seed, the device and the store). It
returns a :class:`~latent_notes.store.cache.Trained`: the model is loaded from the checkpoint
cache (or the weights source) when this exact configuration was trained before, else built,
trained with :func:`latent_notes.training.train_model` on the family's loss and saved. A model
that is its chapter's own (the family's ``alias`` names it) is also stored under a stable name
that later chapters find it by, and found there only when it is what the name stands for: the
family's builder and config, the stem its family would name it by, the data's shape and the
sizes the caller asks for (:func:`stands_for`). :data:`FAMILIES` lists the three
latent-variable families the comparison chapter loops over; adding a fourth is one model module
ending with its ``FAMILY`` and one entry here.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Callable, NamedTuple

from .checks import ParameterError
from .data import Batches, ImageData
from .models import autoencoder, classifier, pixelcnn, vae, vqvae2
from .models.family import Family, TrainConfig
from .models.pixelcnn import LEVELS, prior_config
from .models.vqvae2 import Codes, code_grids
from .store.cache import Run, Trained, alias_name, same_data
from .store.checkpoint import builder_name
from .training import evaluate, resolve_precision, train_model

FAMILIES = {family.name: family for family in (autoencoder.FAMILY, vae.FAMILY, vqvae2.FAMILY)}
CLASSIFIER = classifier.FAMILY  # chapter 1's CNNs; its deep CNN is every later chapter's judge
PRIOR = pixelcnn.FAMILY  # VQ-VAE-2's PixelCNN priors, trained on its code grids


def _key(model_config, train_config: TrainConfig, data_spec: dict, seed: int,
         precision: str = "float32") -> dict:
    """Everything that determines the weights: what the cache key hashes. A switch at its
    default (``latent_notes.checks.switch``) is left out: it changes nothing; so is the
    precision of the steps when it is float32 (every model trained before it could be other)."""
    unset = {f.name for f in fields(model_config)
             if f.metadata.get("switch") and getattr(model_config, f.name) == f.default}
    model = {k: v for k, v in asdict(model_config).items() if k not in unset}
    train = {**asdict(train_config), "optimizer": "adam"}
    if precision != "float32":
        train["precision"] = precision
    return {"model": model, "train": train, "data": data_spec, "seed": seed}


def train(family: Family, data, model_config, train_config: TrainConfig, *, run: Run) -> Trained:
    """``family``'s model for ``model_config``, trained on ``data`` with ``train_config`` (or
    loaded: see the module docstring). ``data`` is an :class:`ImageData`, or a
    :class:`CodeData` for a prior."""
    if not isinstance(model_config, family.config):
        raise ParameterError(f"The {family.title} needs a {family.config.__name__}, got "
                             f"{type(model_config).__name__}; make one with "
                             f"FAMILIES[...].recipe(data, epochs=...) or .configure(data).")

    def batches(split, batch_size: int, shuffle: bool) -> Batches:
        x, y = (family.inputs(split, model_config) if family.inputs
                else (split.images, split.labels))
        return Batches(x, y, batch_size, shuffle=shuffle, seed=run.seed)

    name = family.checkpoint_name(model_config)
    precision = resolve_precision(run.precision, run.device)  # in the key and the checkpoint
    callbacks = ([lambda epoch, model: family.monitor(model, data, run.device)]
                 if family.monitor and data.val is not None else [])

    def fit_it(model, state):  # watched on the validation images; the test set is not read
        watch = (batches(data.val, family.test_batch_size, shuffle=False)
                 if data.val is not None else None)
        history = train_model(model, family.loss,
                              batches(data.train, train_config.batch_size, shuffle=True),
                              watch, train_config, device=run.device, callbacks=callbacks,
                              name=name, state=state, precision=precision)
        if family.after_fit:
            family.after_fit(model, data, run.device)
        return history

    stem = family.alias_stem(model_config)
    return run.store.load_or_train(name, _key(model_config, train_config, data.spec, run.seed,
                                              precision),
                                   family.build, fit_it, device=run.device,
                                   alias=alias_name(stem, data.name) if stem else None)


def score_on_test(family: Family, trained: Trained, data, *, run: Run) -> dict[str, float]:
    """A finished model scored once on the test set: every term of the family's loss as
    ``test_<term>`` (the classifier's ``test_accuracy``, a prior's ``test_bits_per_code``)."""
    model = trained.model
    x, y = (family.inputs(data.test, model.config) if family.inputs
            else (data.test.images, data.test.labels))
    terms = evaluate(model, family.loss, Batches(x, y, family.test_batch_size), run.device)
    return {f"test_{key}": value for key, value in terms.items()}


def stands_for(family: Family, expected, *names: str) -> Callable[[str, dict], str | None]:
    """A check for ``Store.load_alias``: the stored model is ``family``'s (its builder, a valid
    config of its class), its family would store it under ``expected``'s stem (e.g. the same
    latent size), and its fields ``names`` (the data's shape, the sizes the caller chose, a
    prior's codebooks) equal ``expected``'s. Returns a complaint, or None."""
    stem = family.alias_stem(expected)

    def check(builder: str, config: dict) -> str | None:
        if builder != builder_name(family.build):
            return (f"it holds a {builder} model, not the {family.title} the name {stem!r} "
                    "stands for")
        try:
            stored = family.config(**config["model"])
        except (TypeError, ParameterError) as err:
            return f"its config is not a valid {family.config.__name__} ({err})"
        if family.alias_stem(stored) != stem:
            return (f"it is a {family.checkpoint_name(stored)!r} model, not the {stem!r} its name "
                    "stands for")
        differ = [f"{name}={getattr(stored, name)!r} (not {getattr(expected, name)!r})"
                  for name in names if getattr(stored, name) != getattr(expected, name)]
        return f"it has {', '.join(differ)}" if differ else None
    return check


def alias(family: Family, data: ImageData, **model_options) -> str:
    """The stable name ``family``'s chapter stores its model for ``data`` under."""
    stem = family.alias_stem(family.configure(data, **model_options))
    if stem is None:
        raise ParameterError(f"A {family.title} with {model_options} is a variant, not its "
                             "chapter's model: it has no stable name.")
    return alias_name(stem, data.name)


# -- the judge: chapter 1's best classifier, which later chapters score images with -----------

def judge(data: ImageData, *, run: Run, epochs: int, **options) -> Trained:
    """Chapter 1's deep CNN for ``data``, trained with chapter 1's recipe (``epochs`` and
    ``options``: batch_size, lr). The same recipe gives the same cache key, so a later chapter
    loads exactly the network chapter 1 trained (or trains that one when chapter 1 has not
    run)."""
    return train(CLASSIFIER, data, *CLASSIFIER.recipe(data, arch="cnn_deep", epochs=epochs,
                                                      **options), run=run)


# -- VQ-VAE-2's priors: code grids in -------------------------------------------------------------

class CodeData(NamedTuple):
    """What a prior is trained on: one VQ-VAE-2's code grids of the training, test and
    validation images (the prior is watched on the validation codes, scored on the test codes)."""

    train: Codes
    test: Codes
    source: str  # the VQ-VAE-2's checkpoint name: a prior belongs to exactly one model
    name: str  # the image data set's name
    val: Codes | None = None

    @property
    def spec(self) -> dict:
        return {"codes_of": self.source, "n_train": len(self.train.top)}

    @classmethod
    def of(cls, vqvae: Trained, data: ImageData, device) -> "CodeData":
        def grids(split):
            return code_grids(vqvae.model, split.images, split.labels, device)

        return cls(grids(data.train), grids(data.test), vqvae.path.stem, data.name,
                   grids(data.val) if data.val is not None else None)


def train_priors(vqvae: Trained, data: ImageData, *, epochs: int, run: Run,
                 codes: CodeData | None = None, **options) -> dict[str, Trained]:
    """Both class-conditional priors of a VQ-VAE-2, {"top": ..., "bottom": ...}: the prior
    family's defaults, overridden by ``options`` (PixelCNN or training fields)."""
    codes = codes or CodeData.of(vqvae, data, run.device)
    model_options, train_options = PRIOR.split(options)
    recipe = PRIOR.train_config(epochs=epochs, **train_options)
    return {level: train(PRIOR, codes, prior_config(vqvae.model.config, level,
                                                    num_classes=len(data.classes),
                                                    **model_options), recipe, run=run)
            for level in LEVELS}


# -- a family's model as its chapter left it ------------------------------------------------------

def load_family(name: str, data: ImageData, *, latent_size: int, epochs: int, run: Run,
                temperature: float = 1.0) -> tuple:
    """A family's model as its chapter stored it, else trained here with the chapter's default
    settings and ``epochs``; a family with priors comes with them attached.

    Returns (model, [rows saying where each checkpoint came from]).
    """
    if name not in FAMILIES:
        raise ParameterError(f"Unknown model family {name!r}; the families are "
                             f"{', '.join(FAMILIES)}.")
    family, rows = FAMILIES[name], []
    sizes = {f.name for f in fields(family.config)} & {"latent_size"}
    options = {"latent_size": latent_size} if sizes else {}  # VQ-VAE-2's grids are its size

    def stored_or_train(label, stable_name, checks, train_here):
        found = run.store.load_alias(stable_name, run.device, *checks)
        result = found or train_here()
        rows.append({"model": label, "source": "its chapter (cache)" if found else "trained here",
                     "checkpoint": result.path.name})
        return result

    expected = family.configure(data, **options)
    trained = stored_or_train(
        name, alias(family, data, **options),
        (stands_for(family, expected, "channels", "image_size", *options), same_data(data.spec)),
        lambda: train(family, data, *family.recipe(data, epochs=epochs, **options), run=run))
    if family.has_priors:
        priors = _stored_priors(trained, data, epochs, run, stored_or_train)
        trained.model.attach_priors(priors["top"].model, priors["bottom"].model, temperature)
    return trained.model, rows


def _stored_priors(vqvae: Trained, data, epochs, run: Run, stored_or_train):
    """The priors its chapter trained for this VQ-VAE-2, else both trained here."""
    def made_from(builder, config):
        codes_of = config["data"].get("codes_of")
        return (None if codes_of == vqvae.path.stem else f"it was trained on the codes of "
                f"{str(codes_of)[:80]!r}, not of {vqvae.path.stem!r}")

    trained_here = {}

    def train_both():
        if not trained_here:
            trained_here.update(train_priors(vqvae, data, epochs=epochs, run=run))
        return trained_here

    found = {}
    for level in LEVELS:
        expected = prior_config(vqvae.model.config, level, num_classes=len(data.classes))
        check = stands_for(PRIOR, expected, "codebook_size", "grid_size", "cond_codebook_size",
                           "num_classes")
        found[level] = stored_or_train(f"prior ({level})",
                                       alias_name(PRIOR.alias_stem(expected), data.name),
                                       (check, made_from), lambda level=level: train_both()[level])
    return found
