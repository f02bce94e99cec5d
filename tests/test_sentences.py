"""The sentence functions of latent_notes.book.sentences: edge cases (ties, zero, NaN, one
item) and the sentence each side of every threshold."""
import math

from latent_notes.book import sentences


def test_not_measured_names_what():
    assert "could not measure the rate" in sentences.not_measured("the rate")
    assert sentences._finite(1.0, 0) and not sentences._finite(math.nan)


# -- chapters 1 and 2 --------------------------------------------------------------------------


# -- chapter 3 ---------------------------------------------------------------------------------


# -- chapter 4 ---------------------------------------------------------------------------------


# -- chapter 5 ---------------------------------------------------------------------------------
