"""Parameter checks shared by configs, training and chapters: one clear error per bad value."""
from __future__ import annotations

import math


class ParameterError(ValueError):
    """A chapter parameter has a value the code cannot use; the message says which and why."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive(**values) -> None:
    """Raise a clear ParameterError unless each value is a positive integer."""
    for name, value in values.items():
        if not _is_int(value) or value < 1:
            raise ParameterError(f"{name} must be a positive integer, got {value!r}.")


def check_number(name: str, value, *, low: float = 0.0, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Raise unless ``value`` is a real number in the interval [low, high] (or open ends)."""
    # finite only: an infinite weight or threshold trains a model into NaN, never a useful one
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low)
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
    if not ok:
        interval = _interval(low, high, low_open, high_open)
        raise ParameterError(f"{name} must be a finite number in {interval}, got {value!r}.")


def _interval(low, high, low_open, high_open) -> str:
    return (("(" if low_open else "[") + f"{low:g}, "
            + ("∞)" if high is None else f"{high:g}" + (")" if high_open else "]")))


def check_choice(name: str, value, choices) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                             f"got {value!r}.")


# The largest value of every size field of a model config, by its name. No model of the book
# comes near them (its largest: latent_size 128, image_size 128, width 128, fc_width 256,
# codebooks of 256, 12 prior layers); they stop a config read from a file (a checkpoint, a
# manifest) from asking for gigabytes before anything is built. Kept here rather than in the
# model modules, whose source is part of every cache key.
SIZE_LIMITS = {
    "latent_size": 4096, "image_size": 1024, "width": 1024, "fc_width": 16384,
    "channels": 1024, "res_blocks": 64, "res_channels": 1024, "embed_dim": 1024,
    "codebook_size": 65536, "codebook_size_top": 65536, "codebook_size_bottom": 65536,
    "cond_codebook_size": 65536, "grid_size": 1024, "layers": 64, "kernel_size": 31,
    "num_classes": 100000,
}


def check_config(config) -> None:
    """Check a config dataclass from its fields' metadata: ``positive``, ``range``, ``choices``.

    A field declared ``field(default=..., metadata={"positive": True})`` must be a positive
    integer; ``{"range": (low, high, low_open, high_open)}`` a number in that interval;
    ``{"choices": (...)}`` one of the values; ``{"switch": True}`` True or False. A field named
    in :data:`SIZE_LIMITS` must also be at most its limit.
    """
    from dataclasses import fields

    for f in fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if meta.get("positive"):
            check_positive(**{f.name: value})
        if "range" in meta:
            low, high, low_open, high_open = meta["range"]
            check_number(f.name, value, low=low, high=high, low_open=low_open,
                         high_open=high_open)
        if "choices" in meta:
            check_choice(f.name, value, meta["choices"])
        if meta.get("switch") and not isinstance(value, bool):
            raise ParameterError(f"{f.name} must be True or False, got {value!r}.")
        check_size(f.name, value)


def check_size(name: str, value) -> None:
    """Raise unless a size field named in :data:`SIZE_LIMITS` is at most its limit."""
    limit = SIZE_LIMITS.get(name)
    if (limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool)
            and value > limit):
        raise ParameterError(f"{name} must be at most {limit} (no model of the book comes near "
                             f"that; a larger one would not fit in a reader's memory), got "
                             f"{value!r}.")


# -- config fields that know their valid values (read by check_config) ------------------------

def positive(default: int):
    """A dataclass field holding a positive integer."""
    from dataclasses import field

    return field(default=default, metadata={"positive": True})


def number(default: float, low: float = 0.0, high: float | None = None, *, low_open=False,
           high_open=False):
    """A dataclass field holding a number in [low, high] (open ends on request)."""
    from dataclasses import field

    return field(default=default, metadata={"range": (low, high, low_open, high_open)})


def choice(default, choices):
    """A dataclass field holding one of ``choices``."""
    from dataclasses import field

    return field(default=default, metadata={"choices": tuple(choices)})


def switch(default: bool = False):
    """A dataclass field holding True or False. At its default it is left out of a model's
    cache key (``latent_notes.families``), so adding a switch to a config keeps the keys of
    every model trained before it had one."""
    from dataclasses import field

    return field(default=default, metadata={"switch": True})


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



def check_numbers(name: str, values, *, example: str, low: float = 0.0, high: float | None = None,
                  low_open: bool = False, high_open: bool = False) -> None:
    """Raise unless ``values`` is a non-empty list of real numbers in the interval."""
    ok = isinstance(values, (list, tuple)) and len(values) > 0
    try:
        for value in values if ok else ():
            check_number(name, value, low=low, high=high, low_open=low_open, high_open=high_open)
    except ParameterError:
        ok = False
    if not ok:
        raise ParameterError(f"{name} must be a non-empty list of finite numbers in "
                             f"{_interval(low, high, low_open, high_open)} such as {example}, "
                             f"got {values!r}.")
