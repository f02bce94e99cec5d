"""Sentences that read a run's numbers: every sentence of the book that says what a figure
shows, how two things compare or what happened in training is chosen here, by the numbers the
run measured. A chapter's hidden cell only glues what these functions return.

Each function takes plain numbers (floats, dicts of floats) and returns one sentence or a
phrase; ties, zeros, NaN and a single item are handled explicitly (tests/test_sentences.py).
"""
from __future__ import annotations

import math


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def not_measured(what: str) -> str:
    """The sentence for a number the run could not measure (NaN or missing)."""
    return f"this run could not measure {what}, so the book makes no claim about it"


# -- chapters 1 and 2 --------------------------------------------------------------------------


# -- chapter 3 ---------------------------------------------------------------------------------


# -- chapter 4 ---------------------------------------------------------------------------------


# -- chapter 5 ---------------------------------------------------------------------------------
