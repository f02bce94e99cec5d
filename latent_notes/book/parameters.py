"""Each chapter's own parameters, checked before the chapter loads or trains anything.

A chapter passes ``XParameters.of(globals())`` to ``start_chapter``: the dataclass takes its
fields from the variables of the chapter's ``parameters`` cell (the same names) and checks
itself when it is made. A bad value raises one ``ParameterError`` that names the field, says
what was wrong and how to change it. The parameters every chapter shares (``dataset``,
``epochs``, ``seed``, ``device``, ...) are checked by ``start_chapter`` itself.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import ClassVar

from ..checks import (
    ParameterError,
    check_choice,
    check_latent_sizes,
    check_number,
    check_numbers,
    check_positive,
)


class ChapterParameters:
    """What the chapters' parameter dataclasses share: ``of`` and errors that say the fix."""

    CHAPTER: ClassVar[str] = ""  # the chapter's file stem, named in the fix

    @classmethod
    def of(cls, namespace: dict):
        """The chapter's parameters from a namespace holding its parameters cell's variables
        (a chapter passes ``globals()``)."""
        missing = [f.name for f in fields(cls) if f.name not in namespace]
        if missing:
            raise ParameterError(f"{cls.__name__} needs the parameter(s) {', '.join(missing)}, "
                                 f"which the parameters cell of book/{cls.CHAPTER}.py should set.")
        return cls(**{f.name: namespace[f.name] for f in fields(cls)})

    @contextmanager
    def checking(self, name: str):
        """Add to a ParameterError raised inside where the parameter ``name`` is set."""
        try:
            yield
        except ParameterError as error:
            raise ParameterError(
                f"{error} Change {name} in the parameters cell of book/{self.CHAPTER}.py (or "
                f"pass -p {self.CHAPTER[:2]}.{name}=... to python -m latent_notes.book.build)."
            ) from None


@dataclass
class AutoencoderParameters(ChapterParameters):
    """Chapter 2: the sweep of code sizes, and the experiments that pick models from it.

    ``latent_sizes`` becomes sorted and distinct, and ``noise_latent=None`` the largest size.
    """

    CHAPTER: ClassVar[str] = "02_autoencoder"
    latent_sizes: list
    traversal_latent: int
    noise_latent: int | None
    traversal_units: str
    traversal_range: float
    traversal_step: float
    noise_scales: list

    def __post_init__(self):
        with self.checking("latent_sizes"):
            self.latent_sizes = check_latent_sizes(self.latent_sizes)
        with self.checking("traversal_latent"):
            check_latent_sizes(self.latent_sizes, traversal_latent=self.traversal_latent)
        if self.noise_latent is None:
            self.noise_latent = self.latent_sizes[-1]
        with self.checking("noise_latent"):
            check_latent_sizes(self.latent_sizes, noise_latent=self.noise_latent)
        with self.checking("traversal_units"):
            check_choice("traversal_units", self.traversal_units, ("std", "code"))
        for name in ("traversal_range", "traversal_step"):
            with self.checking(name):
                check_number(name, getattr(self, name), low=0, low_open=True)
        with self.checking("noise_scales"):
            check_numbers("noise_scales", self.noise_scales, example="[0, 0.5, 1]", low=0)


@dataclass
class VAEParameters(ChapterParameters):
    """Chapter 3: the β sweep, the sweep of latent sizes (sorted and distinct) and its epochs,
    the noise levels of the denoising VAEs, and the importance samples and test images of the
    likelihood estimate."""

    CHAPTER: ClassVar[str] = "03_vae"
    betas: list
    noise_levels: list
    is_samples: int
    eval_images: int | None
    latent_sizes: list
    size_epochs: int | None

    def __post_init__(self):
        with self.checking("latent_sizes"):  # sorted and distinct, as chapter 2's
            self.latent_sizes = check_latent_sizes(self.latent_sizes)
        if self.size_epochs is not None:
            with self.checking("size_epochs"):  # None: the chapter's epochs
                check_positive(size_epochs=self.size_epochs)
        with self.checking("is_samples"):
            check_positive(is_samples=self.is_samples)
        if self.eval_images is not None:
            with self.checking("eval_images"):  # None: every test image
                check_positive(eval_images=self.eval_images)
        with self.checking("betas"):
            check_numbers("betas", self.betas, example="[0.5, 1, 4]", low=0)
        with self.checking("noise_levels"):  # a standard deviation of pixels in [0, 1]
            check_numbers("noise_levels", self.noise_levels, example="[0.1, 0.3, 0.5]", low=0,
                          low_open=True, high=1)


@dataclass
class VQVAE2Parameters(ChapterParameters):
    """Chapter 4: how many class-conditional samples are shown and judged."""

    CHAPTER: ClassVar[str] = "04_vqvae2"
    samples_per_class: int
    judged_per_class: int

    def __post_init__(self):
        for name in ("samples_per_class", "judged_per_class"):
            with self.checking(name):
                check_positive(**{name: getattr(self, name)})
