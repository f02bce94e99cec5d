"""Each chapter's own parameters, checked before the chapter loads or trains anything.

A chapter passes ``XParameters.of(globals())`` to ``start_chapter``: the dataclass takes its
fields from the variables of the chapter's ``parameters`` cell (the same names) and checks
itself when it is made. A bad value raises one ``ParameterError`` that names the field, says
what was wrong and how to change it. The parameters every chapter shares (``dataset``,
``epochs``, ``seed``, ``device``, ...) are checked by ``start_chapter`` itself.

What the chapter is given from outside is checked first. A name that papermill injected and
the chapter's parameters cell does not set (a typo such as ``epochz``, which would be ignored)
is refused with the closest name (:func:`check_injected`; the book's build refuses it before
any chapter runs, with :func:`chapter_parameter_names`). A list parameter given as text, as
papermill's ``-p latent_sizes "[2, 4]"`` gives it, is read as a Python literal. Once the data is
loaded, :func:`check_classes` checks what the chapter needs of it (two classes for its probes,
a test image of each class a parameter names), before anything trains.
"""
from __future__ import annotations

import ast
import difflib
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from ..checks import (
    ParameterError,
    check_choice,
    check_latent_sizes,
    check_number,
    check_numbers,
    check_positive,
)

INJECTED = "# Parameters"  # the first line of the cell papermill injects


def assigned_names(source: str) -> list[str]:
    """The names set by a cell's top-level assignments (``x = ...``, ``x: int = ...``)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # an IPython magic: a cell of no parameters
        return []
    names = []
    for node in body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        names += [target.id for target in targets if isinstance(target, ast.Name)]
    return list(dict.fromkeys(names))


def chapter_parameter_names(path: Path) -> list[str]:
    """The names the cell tagged ``parameters`` of a chapter's source (book/NN_name.py) sets."""
    import jupytext

    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return assigned_names(cell.source)
    raise ParameterError(f"{path} has no cell tagged 'parameters'.")


def check_names(given, known: list[str], where: str) -> None:
    """Refuse a name in ``given`` that is not one of ``known``, the parameters of ``where``
    (``book/NN_name.py``), naming the closest of them and all of them."""
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ParameterError(f"{name!r} is not a parameter of {where}: it would be ignored."
                                 f"{hint} The parameters: {', '.join(known)}.")


def check_injected(namespace: dict, chapter: str) -> None:
    """Refuse a name that papermill injected and the chapter never sets: ``namespace`` is the
    chapter's ``globals()``, whose ``In`` (IPython's executed cells) holds papermill's
    injected cell right after the chapter's parameters cell. Outside IPython, or without an
    injected cell, there is nothing to check."""
    cells = namespace.get("In")
    if not isinstance(cells, list):
        return
    marks = [i for i, source in enumerate(cells) if source.startswith(INJECTED)]
    if not marks:
        return
    injected = [name for i in marks for name in assigned_names(cells[i])]
    elsewhere = {name for i, source in enumerate(cells) if i not in marks
                 for name in assigned_names(source)}  # cells run again by hand, too
    check_names([name for name in injected if name not in elsewhere],
                assigned_names(cells[marks[0] - 1]), f"book/{chapter}.py")


def check_classes(chapter: str, data, at_least: int = 1, test_images: int = 1,
                  **named) -> None:
    """Once the data is loaded, before anything trains: ``data`` has ``at_least`` classes (a
    chapter whose probes read the class from a code needs two) and ``test_images`` test
    images, and every class a parameter ``named`` (by name or index) has a test image."""
    from ..data import DataError, first_of_class

    where = (f"Change dataset in the parameters cell of book/{chapter}.py, or pass -p "
             f"{chapter[:2]}.dataset=... to python -m latent_notes.book.build")
    if len(data.classes) < at_least:
        raise ParameterError(f"dataset {data.name!r} has {len(data.classes)} "
                             f"class{'es' * (len(data.classes) != 1)}, and book/"
                             f"{chapter}.py needs {at_least} or more: its probes read which "
                             f"class a code belongs to. {where} (a folder: one sub-folder per "
                             "class).")
    if len(data.test.labels) < test_images:
        raise ParameterError(f"dataset {data.name!r} has {len(data.test.labels)} test images, "
                             f"and book/{chapter}.py needs {test_images} or more. {where} (a "
                             "folder with more images, or a larger subset).")
    for name, value in named.items():
        try:
            first_of_class(data.test.labels, data.classes, value)
        except DataError as error:
            raise ParameterError(f"{name}={value!r}: {error} Change {name} in the parameters "
                                 f"cell of book/{chapter}.py, or pass -p {chapter[:2]}.{name}="
                                 "... to python -m latent_notes.book.build.") from None


def read_list(value):
    """A list given as text (papermill's ``-p sizes "[2, 4]"``) read as a Python literal (never
    evaluated as code); any other value as it is, for the check to judge."""
    if isinstance(value, str):
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return value
        if isinstance(literal, (list, tuple)):
            return list(literal)
    return value


class ChapterParameters:
    """What the chapters' parameter dataclasses share: ``of`` and errors that say the fix."""

    CHAPTER: ClassVar[str] = ""  # the chapter's file stem, named in the fix

    @classmethod
    def of(cls, namespace: dict):
        """The chapter's parameters from a namespace holding its parameters cell's variables
        (a chapter passes ``globals()``), once no injected name is unknown to the chapter; a
        list parameter given as text is read as a Python literal."""
        check_injected(namespace, cls.CHAPTER)
        missing = [f.name for f in fields(cls) if f.name not in namespace]
        if missing:
            raise ParameterError(f"{cls.__name__} needs the parameter(s) {', '.join(missing)}, "
                                 f"which the parameters cell of book/{cls.CHAPTER}.py should set.")
        return cls(**{f.name: read_list(namespace[f.name]) if cls._is_list(f.name)
                      else namespace[f.name] for f in fields(cls)})

    @classmethod
    def _is_list(cls, name: str) -> bool:
        return any(f.name == name and f.type in ("list", list) for f in fields(cls))

    @contextmanager
    def checking(self, name: str):
        """Add to a ParameterError raised inside where the parameter ``name`` is set."""
        try:
            yield
        except ParameterError as error:
            as_text = (f" (a list as a Python literal in quotes, -p {name} \"[...]\", or as "
                       f"YAML, -y \"{name}: [...]\")" if self._is_list(name) else "")
            raise ParameterError(
                f"{error} Change {name} in the parameters cell of book/{self.CHAPTER}.py, or "
                f"pass it: -p {self.CHAPTER[:2]}.{name}=... to python -m "
                f"latent_notes.book.build, -p {name} ... to papermill{as_text}."
            ) from None


@dataclass
class WarmupParameters(ChapterParameters):
    """Chapter 1: no parameters of its own beyond those every chapter shares (checked by
    ``start_chapter``); ``of`` still refuses a name papermill injected that it lacks."""

    CHAPTER: ClassVar[str] = "01_cnn_warmup"


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
    """Chapter 3: the latent size of its main models, the β sweep, the sweep of latent sizes
    (sorted and distinct) and its epochs, the noise levels of the denoising VAEs, and the
    importance samples and test images of the likelihood estimate."""

    CHAPTER: ClassVar[str] = "03_vae"
    latent_size: int
    betas: list
    noise_levels: list
    is_samples: int
    eval_images: int | None
    latent_sizes: list
    size_epochs: int | None

    def __post_init__(self):
        with self.checking("latent_size"):
            check_positive(latent_size=self.latent_size)
            if self.latent_size < 2:  # the traversal's dimensions of largest and smallest KL
                raise ParameterError("latent_size must be 2 or more: the chapter compares a "
                                     "latent's dimensions of largest and smallest KL, and one "
                                     "dimension is both; got 1.")
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


@dataclass
class ComparisonParameters(ChapterParameters):
    """Chapter 5: the seeded draws of each Fréchet distance, the labelled images per class of
    the label-efficiency curve, and those at which label spreading runs too (each one of
    them)."""

    CHAPTER: ClassVar[str] = "05_comparison"
    fid_draws: int
    labels_per_class: list
    spread_at: list

    def __post_init__(self):
        with self.checking("fid_draws"):  # a mean and a standard deviation over the draws
            if not (_positive_int(self.fid_draws) and self.fid_draws >= 2):
                raise ParameterError("fid_draws must be a whole number of at least 2 (a "
                                     "standard deviation needs two draws), got "
                                     f"{self.fid_draws!r}.")
        with self.checking("labels_per_class"):  # None: every training image
            if not (isinstance(self.labels_per_class, list) and self.labels_per_class
                    and all(k is None or _positive_int(k) for k in self.labels_per_class)):
                raise ParameterError("labels_per_class must be a non-empty list of positive "
                                     "integers or None such as [1, 10, 100, None], got "
                                     f"{self.labels_per_class!r}.")
        with self.checking("spread_at"):
            if not (isinstance(self.spread_at, list)
                    and all(_positive_int(k) for k in self.spread_at)):
                raise ParameterError("spread_at must be a list of positive integers such as "
                                     f"[10] (or [] for none), got {self.spread_at!r}.")
            outside = [k for k in self.spread_at if k not in self.labels_per_class]
            if outside:
                raise ParameterError(f"spread_at={self.spread_at!r} names {outside}, which "
                                     f"labels_per_class {self.labels_per_class} lacks: label "
                                     "spreading runs only where the curve has a point.")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
