"""The sentence functions of latent_notes.book.sentences: edge cases (ties, zero, NaN, one
item) and the sentence each side of every threshold."""
import math

from latent_notes.book import sentences


def test_not_measured_names_what():
    assert "could not measure the rate" in sentences.not_measured("the rate")
    assert sentences._finite(1.0, 0) and not sentences._finite(math.nan)


# -- chapters 1 and 2 --------------------------------------------------------------------------

def test_accuracy_sentence_gives_standard_errors_and_says_which_overlap():
    assert math.isclose(sentences.standard_error(0.98, 500), math.sqrt(0.98 * 0.02 / 500))
    close = sentences.accuracy_sentence({"cnn5x5": 0.972, "cnn3x3": 0.98, "cnn_deep": 0.978},
                                        500)
    assert close.startswith("cnn5x5 97.20% ± 0.74%, cnn3x3 98.00% ± 0.63% and cnn_deep "
                            "97.80% ± 0.66% (± one standard error, √(p(1 − p)/n) on n = 500")
    assert ("cnn3x3 scores highest, but the error bars of cnn5x5 and cnn_deep overlap its: "
            "these 500 test images do not tell them apart") in close
    one_close = sentences.accuracy_sentence({"a": 0.90, "b": 0.98, "c": 0.978}, 500)
    assert "but the error bar of c overlaps its" in one_close
    apart = sentences.accuracy_sentence({"a": 0.90, "b": 0.98}, 500)
    assert apart.endswith("b scores highest, and no other network's error bar reaches its")
    tie = sentences.accuracy_sentence({"a": 0.98, "b": 0.98, "c": 0.5}, 500)
    assert "a and b tie for the highest score, and no other network's error bar reaches theirs" \
        in tie
    assert sentences.accuracy_sentence({"a": 0.9, "b": 0.9}, 10).endswith(
        "all of them score the same")
    perfect = sentences.accuracy_sentence({"a": 1.0}, 500)  # zero standard error, one network
    assert "a 100.00% ± 0.00%" in perfect and perfect.endswith("no other network to set it beside")
    assert sentences.accuracy_sentence({"a": 0.9, "b": NAN_}, 500).endswith("to set it beside")
    assert "could not measure" in sentences.accuracy_sentence({"a": NAN_}, 500)
    assert "could not measure" in sentences.accuracy_sentence({"a": 0.9}, 0)


def test_confidence_sentence_on_mistakes_against_right_answers():
    unsure = sentences.confidence_sentence(0.7, 0.98, 12)
    assert unsure == ("on its 12 mistakes its mean confidence is 70%, against 98% on the "
                      "images it got right: on average it is less sure when it is wrong.")
    one = sentences.confidence_sentence(0.97, 0.98, 1)  # one mistake, within 5 points
    assert one.startswith("on its 1 mistake its") and one.endswith("or surer, when it is wrong.")
    assert "or surer" in sentences.confidence_sentence(0.98, 0.98, 3)  # a tie
    assert sentences.confidence_sentence(NAN_, 0.98, 0).startswith("it got every test image")
    assert "could not measure" in sentences.confidence_sentence(NAN_, 0.98, 3)


def test_code_distances_sentence_reads_random_codes_and_midpoints():
    off = sentences.code_distances_sentence(1.0, 3.2, 1.5, 1.6)
    assert off.startswith("Draws from N(0, I) lie 3.20 from the nearest training code on "
                          "average, 3.2 times as far as the codes of real test images (1.00)")
    assert "lie 1.50, 1.5 times as far as them. So even the fitted Gaussian's" in off
    assert off.endswith("1.6 times as far as the test codes themselves: halfway, a straight "
                        "line leaves the region the codes of real images fill.")
    near = sentences.code_distances_sentence(1.0, 3.2, 1.05, 0.8)  # within 10%: "about"
    assert "lie 1.05, about as far as them." in near and "even the fitted" not in near
    assert "0.80, closer than the test codes themselves" in near
    assert near.endswith("stays where the codes of real images are.")
    same = sentences.code_distances_sentence(1.0, 1.0, 1.0, 1.0)  # ties everywhere
    assert same.count("about as far as") == 3
    assert "could not measure" in sentences.code_distances_sentence(0.0, 1.0, 1.0, 1.0)
    assert "could not measure" in sentences.code_distances_sentence(1.0, NAN_, 1.0, 1.0)


NAN_ = math.nan


def test_noise_sentence_reads_the_smallest_nudge():
    smooth = sentences.noise_sentence({0.0: 0.02, 0.1: 0.0205, 1.0: 0.06})
    assert "from 0.0200 to 0.0205" in smooth and "smooth" in smooth
    costly = sentences.noise_sentence({0.0: 0.02, 0.25: 0.03})
    assert "50% more" in costly and "costs accuracy" in costly
    assert "could not measure" in sentences.noise_sentence({0.0: 0.02})
    assert "could not measure" in sentences.noise_sentence({0.0: math.nan, 0.1: 0.03})
    assert "could not measure" in sentences.noise_sentence({0.0: 0.0, 0.1: 0.03})


def test_curves_sentence_orders_the_final_errors_by_code_size():
    ordered = sentences.curves_sentence({2: 0.05, 8: 0.03, 16: 0.02})
    assert "every larger code ends lower" in ordered and "0.0500 at a code of 2" in ordered
    tie = sentences.curves_sentence({2: 0.05, 8: 0.05})
    assert "does not always end lower" in tie
    assert "after the last epoch" in sentences.curves_sentence({4: 0.04})
    assert "could not measure" in sentences.curves_sentence({4: math.nan})
    assert "could not measure" in sentences.curves_sentence({})


# -- chapter 3 ---------------------------------------------------------------------------------

NAN = math.nan


def test_beta_tradeoff_every_step_ends_only_or_not_at_all():
    kl, recon = {0.5: 30.0, 1.0: 20.0, 4.0: 8.0}, {0.5: 70.0, 1.0: 80.0, 4.0: 110.0}
    assert sentences.beta_tradeoff_sentence(kl, recon).startswith("at every step")
    assert sentences.beta_tradeoff_sentence(kl, {**recon, 1.0: 60.0}).startswith(
        "from the smallest β to the largest")
    tie = sentences.beta_tradeoff_sentence({0.5: 20.0, 4.0: 20.0}, {0.5: 70.0, 4.0: 90.0})
    assert tie.startswith("on this run a larger β does not") and "from 20.0 to 20.0" in tie
    assert sentences.beta_tradeoff_sentence({1.0: 20.0}, {1.0: 80.0}).startswith("only β = 1")
    # a NaN β is left out; nothing measured: no claim
    assert sentences.beta_tradeoff_sentence({**kl, 2.0: NAN}, {**recon, 2.0: 90.0}).startswith(
        "at every step")
    assert "could not measure" in sentences.beta_tradeoff_sentence({1.0: NAN}, {1.0: 80.0})


def test_beta_units_switched_off_or_rate_lowered():
    assert sentences.beta_units_sentence(3, 10, 16, 5.0, 20.0).startswith(
        "only 3 of the 16 dimensions are active, against 10 at β = 1")
    same = sentences.beta_units_sentence(16, 16, 16, 5.0, 20.0)
    assert "falls from 20.0 to 5.0 nats" in same and "without switching any" in same
    assert "has changed neither" in sentences.beta_units_sentence(16, 16, 16, 20.0, 20.0)  # tie
    assert "switches none off" in sentences.beta_units_sentence(12, 10, 16, 5.0, 20.0)
    assert "switched none of them off" in sentences.beta_units_sentence(0, 0, 16, NAN, 20.0)
    assert "could not measure" in sentences.beta_units_sentence(NAN, 10, 16, 5.0, 20.0)


def test_beta_reconstruction_reads_the_test_mse_per_beta():
    rising = sentences.beta_reconstruction_sentence({4: 0.03, 0.5: 0.01, 1: 0.02})
    assert rising.startswith("the smaller β reconstructs more closely")
    assert "0.0100 at β = 0.5, 0.0200 at β = 1 and 0.0300 at β = 4" in rising  # sorted by β
    assert sentences.beta_reconstruction_sentence({0.5: 0.03, 4: 0.01}).startswith(
        "on this run the larger β")
    alike = sentences.beta_reconstruction_sentence({0.5: 0.0200, 1: 0.0210, 4: 0.0190})
    assert alike.startswith("the reconstructions are alike") and "within 10%" in alike
    assert sentences.beta_reconstruction_sentence({0.5: 0.02, 4: 0.02}).startswith(
        "the reconstructions are alike")  # a tie
    assert sentences.beta_reconstruction_sentence({0.5: 0.0, 4: 0.0}).startswith(
        "the reconstructions are alike")  # zero error at both ends
    middle = sentences.beta_reconstruction_sentence({0.5: 0.02, 1: 0.05, 4: 0.021})
    assert middle.startswith("the smallest and the largest β reconstruct alike")
    assert sentences.beta_reconstruction_sentence({1: 0.02, 4: NAN}).startswith("only β = 1")
    assert "could not measure" in sentences.beta_reconstruction_sentence({1: NAN})


def test_what_the_judge_reads_per_beta():
    identity = sentences.beta_identity_sentence({0.5: 0.95, 4: 0.60})
    assert identity.endswith("a larger β keeps less of the digit") and "95% at β = 0.5" in identity
    assert sentences.beta_identity_sentence({0.5: 0.6, 4: 0.9}).endswith("keeps more of the digit")
    assert "within 5 points" in sentences.beta_identity_sentence({0.5: 0.90, 4: 0.88})
    assert "within 5 points" in sentences.beta_identity_sentence({0.5: 0.0, 4: 0.0})
    assert sentences.beta_identity_sentence({1: 0.9}).endswith("no other β beside it")
    assert "MNIST-like" in sentences.beta_identity_sentence({0.5: NAN, 4: NAN})  # no judge
    samples = sentences.beta_samples_sentence({0.5: 0.3, 4: 0.7}, 0.9)
    assert "at least 0.9 in 30% at β = 0.5 and 70% at β = 4" in samples
    assert samples.endswith("read as a clear digit more often")
    assert sentences.beta_samples_sentence({0.5: 0.7, 4: 0.3}, 0.9).endswith("less often")
    assert "within 5 points" in sentences.beta_samples_sentence({0.5: 0.5, 4: 0.5}, 0.9)
    assert sentences.beta_samples_sentence({1: 0.5}, 0.9).endswith("no other β beside it")
    assert "could not measure" in sentences.beta_samples_sentence({}, 0.9)


def test_traversal_sentence_reads_each_beta_and_counts_the_top_dimensions():
    quiet, loud = (0.2, 0.01), (0.2, 0.05)  # (change along the top ones, along the smallest)
    assert sentences.traversal_sentence({0.5: quiet, 4: quiet}, 3) == (
        "at every β the dimension of smallest KL changes the image by less than a tenth of "
        "what the three of largest KL change: it is inactive, and the decoder ignores it")
    assert sentences.traversal_sentence({0.5: loud, 1: quiet, 4: quiet}, 3) == (
        "the dimension of smallest KL changes the image by less than a tenth of what the top "
        "three change at β = 1, 4 only")
    assert sentences.traversal_sentence({0.5: loud, 4: loud}, 3) == (
        "even the dimension of smallest KL still changes the image by a tenth or more of what "
        "the top three change, at every β")
    one = sentences.traversal_sentence({1: quiet}, 1)  # a 2-D latent, one β
    assert one.endswith("what the one of largest KL changes: it is inactive, and the decoder "
                        "ignores it")
    assert "what the top two change at β = 1 only" in sentences.traversal_sentence(
        {0.5: loud, 1: quiet}, 2)
    assert "could not measure" in sentences.traversal_sentence({1: (NAN_, 0.1)}, 3)
    assert sentences.top_dimensions(3) == "three dimensions"
    assert sentences.top_dimensions(3, along=True) == "one of the top three dimensions"
    assert sentences.top_dimensions(1) == "dimension"
    assert sentences.top_dimensions(1, along=True) == "the top dimension"


def test_sigma_of_the_beta_0_model():
    shrunk = sentences.sigma_collapse_sentence(0.004, 0.31)
    assert "is 0.004 (the β = 1 model of the same size: 0.31" in shrunk
    assert "shrunk towards 0" in shrunk
    assert "shrunk towards 0" in sentences.sigma_collapse_sentence(0.0, 0.3)  # zero
    kept = sentences.sigma_collapse_sentence(0.1, 0.3)  # at the threshold: not below it
    assert "has not shrunk below 0.1" in kept
    assert "(the prior: 1)" in sentences.sigma_collapse_sentence(0.5, NAN)
    assert "could not measure" in sentences.sigma_collapse_sentence(NAN, 0.3)


def test_two_numbers_against_both_reference_models():
    text = sentences.two_numbers_sentence(0.040, 0.050, 0.010, 16)
    assert "MSE of 0.0400 per pixel: below the β = 1 model of the same size (0.0500)" in text
    assert "4.0 times the error of the β = 1 model with 16 dimensions (0.0100)" in text
    assert "within 10% of the β = 1" in sentences.two_numbers_sentence(0.05, 0.05, 0.01, 16)
    assert "above the β = 1" in sentences.two_numbers_sentence(0.07, 0.05, 0.01, 16)
    alone = sentences.two_numbers_sentence(0.05, NAN, 0.0, 16)  # nothing to set it beside
    assert alone.endswith("0.0500 per pixel")
    assert "could not measure" in sentences.two_numbers_sentence(NAN, 0.05, 0.01, 16)


def test_kl_only_samples_against_two_test_images():
    assert sentences.kl_only_sentence(0.001, 0.2).endswith("nearly the same image for every code")
    assert sentences.kl_only_sentence(0.0, 0.2).endswith("exactly the same image for every code")
    assert sentences.kl_only_sentence(0.2, 0.2).endswith("different images for different codes")
    assert "could not measure" in sentences.kl_only_sentence(0.01, 0.0)
    assert "could not measure" in sentences.kl_only_sentence(NAN, 0.2)


def test_two_d_samples_manifold_and_paths_beside_their_references():
    assert sentences.two_d_samples_sentence(0.8, 0.4, 0.9).endswith(
        "in 80% of its prior samples, against 40% of the reconstruction-only model's: more often")
    assert "within 5 points" in sentences.two_d_samples_sentence(0.4, 0.4, 0.9)
    assert sentences.two_d_samples_sentence(0.2, 0.4, 0.9).endswith("less often")
    assert sentences.two_d_samples_sentence(0.5, NAN, 0.9).endswith("of its prior samples")
    assert "MNIST-like" in sentences.two_d_samples_sentence(NAN, 0.4, 0.9)
    grid = sentences.manifold_sentence(0.72, 0.40, 225, 0.9)
    assert "in 162 of the 225 cells (72%)" in grid and "40% of the same grid" in grid
    assert grid.endswith("decode to a clear digit")
    assert "within 5 points" in sentences.manifold_sentence(0.5, 0.5, 225, 0.9)
    assert "more often" in sentences.manifold_sentence(0.2, 0.6, 225, 0.9)
    assert "in 0 of the 1 cells (0%)" in sentences.manifold_sentence(0.0, NAN, 1, 0.9)
    assert "MNIST-like" in sentences.manifold_sentence(NAN, 0.5, 225, 0.9)
    paths = sentences.interpolation_sentence(0.8, 0.3, 100, 0.9)
    assert "in 80% of the latent paths' inner frames and in 30% of the pixel blends'" in paths
    assert paths.endswith("looking like one digit")
    assert "within 5 points" in sentences.interpolation_sentence(0.3, 0.3, 100, 0.9)
    assert "pixel blend reads" in sentences.interpolation_sentence(0.1, 0.3, 100, 0.9)
    assert "could not measure" in sentences.interpolation_sentence(0.5, 0.5, 0, 0.9)


def test_neighbouring_cells_against_random_test_images():
    assert sentences.neighbour_sentence(0.03, 0.15).endswith("the grid changes gradually")
    assert "20% of the 0.150" in sentences.neighbour_sentence(0.03, 0.15)
    assert "at least 50%" in sentences.neighbour_sentence(0.075, 0.15)  # the threshold itself
    assert sentences.neighbour_sentence(0.0, 0.15).endswith("gradually")
    assert "could not measure" in sentences.neighbour_sentence(0.03, 0.0)


def test_perturbation_says_up_to_where_the_digit_survives():
    changes = {0.0: 0.0, 1.0: 0.02, 4.0: 0.10}
    kept = sentences.perturbation_sentence(changes, {0.0: 1.0, 1.0: 0.95, 4.0: 0.4}, "s")
    assert "0.000 at s = 0, 0.020 at s = 1 and 0.100 at s = 4 per pixel" in kept
    assert "survives up to s = 1" in kept and "40% at s = 4" in kept
    every = sentences.perturbation_sentence(changes, {0.0: 1.0, 1.0: 0.9, 4.0: 0.9}, "k")
    assert "at every k tried" in every  # 0.9 itself counts as kept
    assert "already at s = 0" in sentences.perturbation_sentence(changes, {0.0: 0.5}, "s")
    assert "no digit is read" in sentences.perturbation_sentence(changes, {1.0: NAN}, "s")
    assert "could not measure" in sentences.perturbation_sentence({1.0: NAN}, {}, "s")


def test_denoising_helps_costs_or_neither():
    assert sentences.denoising_sentence({0.1: 1.0, 0.5: 6.0}).endswith("closer to the clean images")
    mixed = sentences.denoising_sentence({0.5: 6.0, 0.1: -1.5, 0.3: 0.0})
    assert "-1.5 dB at σ = 0.1, +0.0 dB at σ = 0.3 and +6.0 dB at σ = 0.5" in mixed
    assert "it helps at σ = 0.5; it costs at σ = 0.1" in mixed
    assert "at no noise level" in sentences.denoising_sentence({0.1: -2.0})
    assert "the same as the noisy input" in sentences.denoising_sentence({0.1: 0.0, 0.3: 0.01})
    assert ": it costs at σ = 0.1" in sentences.denoising_sentence({0.1: -1.0, 0.3: 0.0})
    assert "could not measure" in sentences.denoising_sentence({0.1: NAN})


def test_colour_error_beside_the_mean_image():
    text = sentences.colour_sentence("photos", 0.01, 20.0, 0.05, 12, 10)
    assert "on 12 photos test images" in text and "below the 0.0500" in text
    assert "not below" in sentences.colour_sentence("photos", 0.05, 13.0, 0.05, 12, 10)
    assert sentences.colour_sentence("photos", 0.01, 20.0, NAN, 12, 10).endswith("20.0 dB)")
    assert "trained no colour VAE" in sentences.colour_sentence(None, NAN, NAN, NAN, 0, 10)
    assert "could not measure" in sentences.colour_sentence("photos", NAN, 20.0, 0.05, 12, 10)


# -- chapter 4 ---------------------------------------------------------------------------------

NAN = math.nan


def test_padding_sentence_pads_only_when_needed():
    assert sentences.padding_sentence(28, 32).startswith(
        "A 28-pixel image is padded with 2 black pixels on every side to 32")
    assert "1 black pixel on" in sentences.padding_sentence(30, 32)
    assert sentences.padding_sentence(32, 32) == "A 32-pixel image needs no padding."
    assert "could not measure" in sentences.padding_sentence(NAN, 32)
    assert "could not measure" in sentences.padding_sentence(40, 32)


def test_usage_course_sentence_says_whether_codes_came_back():
    text = sentences.usage_course_sentence({"top": 0.1, "bottom": 0.2}, {"top": 0.1, "bottom": 0.2})
    assert "10% of the top codes and 20% of the bottom codes after the first epoch" in text
    assert text.endswith("did not come back.")
    text = sentences.usage_course_sentence({"top": 0.1, "bottom": 0.2}, {"top": 0.1, "bottom": 0.5})
    assert "the bottom level gained codes" in text
    rose = sentences.usage_course_sentence({"top": 0.1, "bottom": 0.2}, {"top": 0.3, "bottom": 0.5})
    assert "the top and bottom levels gained codes" in rose
    within = sentences.usage_course_sentence({"top": 0.1}, {"top": 0.105})  # one level, a tie
    assert within.endswith("did not come back.") and "bottom" not in within
    assert "could not measure" in sentences.usage_course_sentence({"top": NAN}, {"top": 0.1})
    assert "could not measure" in sentences.usage_course_sentence({"top": 0.1}, {})


def counts(seen, blind, beyond, **extra):
    return {"earlier": seen + blind + beyond, "seen": seen, "blind": blind, "beyond": beyond,
            **extra}


def test_field_phrase_separates_holes_from_what_lies_beyond():
    assert sentences.field_phrase(counts(0, 0, 0)) == "has no position before it"
    assert sentences.field_phrase(counts(1, 0, 0)) == "sees the one position before it"
    assert sentences.field_phrase(counts(15, 0, 0)) == "sees all 15 positions before it"
    assert sentences.field_phrase(counts(97, 0, 30)) == (
        "sees 97 of the 127 positions before it, with no blind spot: the other 30 lie beyond "
        "its field")
    assert "the other 1 lies beyond" in sentences.field_phrase(counts(3, 0, 1))
    assert sentences.field_phrase(counts(43, 6, 0)).endswith(
        "the other 6 are a blind spot inside its field")
    assert "the other 1 is a blind spot" in sentences.field_phrase(counts(3, 1, 0))
    both = sentences.field_phrase(counts(69, 15, 43))
    assert "15 inside its field are a blind spot and 43 lie beyond the field" in both
    assert "could not measure" in sentences.field_phrase({"earlier": 3})
    assert "could not measure" in sentences.field_phrase(counts(1, NAN, 0))


def test_receptive_field_sentence_names_the_designs_with_a_blind_spot():
    text = sentences.receptive_field_sentence(counts(69, 15, 43), counts(97, 0, 30), 6, 15)
    assert text.startswith("Through 6 layers on a 15×15 grid, the plain stack's output sees 69")
    assert text.endswith("Only the plain stack has a blind spot.")
    assert "1 layer on" in sentences.receptive_field_sentence(counts(3, 0, 0), counts(4, 0, 0),
                                                             1, 3)
    assert sentences.receptive_field_sentence(counts(3, 0, 0), counts(4, 0, 0), 1, 3).endswith(
        "Neither design has a blind spot here.")
    assert sentences.receptive_field_sentence(counts(3, 2, 0), counts(4, 1, 0), 2, 5).endswith(
        "Both designs have a blind spot.")
    assert sentences.receptive_field_sentence(counts(3, 0, 0), counts(4, 1, 0), 2, 5).endswith(
        "The gated stack has a blind spot.")
    assert "could not measure" in sentences.receptive_field_sentence(counts(1, 0, 0),
                                                                    counts(1, 0, 0), NAN, 5)


def test_prior_field_sentence_says_whether_each_field_covers_its_grid():
    top, bottom = counts(15, 0, 0, grid=4, layers=5), counts(41, 0, 22, grid=8, layers=5)
    text = sentences.prior_field_sentence({"top": top, "bottom": bottom})
    assert "the top prior (4×4 grid, 5 layers) sees all 15 positions before it" in text
    assert "the bottom prior (8×8 grid, 5 layers) sees 41 of the 63 positions" in text
    assert text.endswith("So the bottom prior draws the last codes of its grid without seeing "
                         "all the codes before them.")
    both_short = sentences.prior_field_sentence({"top": counts(10, 0, 5, grid=4, layers=1),
                                                 "bottom": bottom})
    assert "So the top and bottom priors draw the last codes of their grids" in both_short
    covered = sentences.prior_field_sentence({"top": top, "bottom": counts(63, 0, 0, grid=8,
                                                                          layers=7)})
    assert covered.endswith(": every field covers its whole grid.")
    assert sentences.prior_field_sentence({"top": top}).endswith(
        ": its field covers the whole grid.")
    skipped = sentences.prior_field_sentence({"top": top, "bottom": {"grid": 8}})
    assert "bottom" not in skipped
    assert "could not measure" in sentences.prior_field_sentence({})
    colour = sentences.prior_field_sentence({"top": top, "bottom": bottom}, whose="colour")
    assert "the colour top prior (4×4" in colour and "the colour bottom prior (8×8" in colour
    assert colour.endswith("So the colour bottom prior draws the last codes of its grid "
                           "without seeing all the codes before them.")


def test_bits_against_compares_level_by_level():
    more = sentences.bits_against({"top": 3.1, "bottom": 4.5}, {"top": 2.2, "bottom": 1.8},
                                  "The colour priors", "the digits")
    assert more == ("The colour priors need 3.10 bits per top code and 4.50 bits per bottom "
                    "code, against 2.20 and 1.80 for the digits: more bits per code at both "
                    "levels, by 0.90 and 2.70.")
    mixed = sentences.bits_against({"top": 1.0, "bottom": 4.5}, {"top": 2.0, "bottom": 1.8},
                                   "the priors", "x")
    assert mixed.startswith("The priors need") and mixed.endswith(
        "fewer at the top level and more at the bottom level.")
    same = sentences.bits_against({"top": 2.001}, {"top": 2.0}, "a", "b")
    assert same.endswith("the same number at the top level.")
    tie_and_less = sentences.bits_against({"top": 2.0, "bottom": 1.0}, {"top": 2.0, "bottom": 3.0},
                                          "a", "b")
    assert tie_and_less.endswith("the same at the top level and fewer at the bottom level.")
    one = sentences.bits_against({"top": 1.0, "bottom": NAN}, {"top": 2.0, "bottom": 3.0}, "a", "b")
    assert "bottom" not in one and one.endswith("fewer bits per code at the top level, by 1.00.")
    assert "could not measure" in sentences.bits_against({"top": NAN}, {"top": 1.0}, "a", "b")


def test_levels_verdict_reads_usage_bits_and_the_pixel_change():
    split = sentences.levels_verdict(0.8, 0.9, 3.1, 0.04, 0.02)
    assert split.startswith("The two levels split the work: the top level uses 80% of its codes "
                            "at 3.10 bits per code")
    assert "2.0 times a bottom code's 0.0200 (90% of the bottom codes in use)" in split
    smaller = sentences.levels_verdict(0.8, 0.9, 3.1, 0.01, 0.02)  # half a bottom code's
    assert smaller.startswith("The two levels split the work") and "50% of a bottom" in smaller
    edge = sentences.levels_verdict(0.8, 0.9, 3.1, 0.002, 0.02)  # exactly a tenth: still split
    assert edge.startswith("The two levels split the work")
    faint = sentences.levels_verdict(0.5, 0.9, 1.03, 0.001, 0.02)
    assert faint.startswith("The top level is in use but the decoder barely reads it")
    assert "only 5% of a bottom code's 0.0200" in faint
    for usage, bits in ((0.02, 0.03), (0.0, 2.0), (0.5, 0.0)):  # one code, no code, no bits
        collapsed = sentences.levels_verdict(usage, 0.9, bits, 0.03, 0.02)
        assert collapsed.startswith("The top level has collapsed") and "alone" in collapsed
    bottom = sentences.levels_verdict(0.8, 0.9, 3.1, 0.04, 0.0)
    assert bottom.startswith("The bottom level has collapsed")
    assert sentences.levels_verdict(0.8, 0.9, 3.1, 0.0, 0.0).startswith("Neither level's codes")
    for args in ((NAN, 0.9, 3.1, 0.04, 0.02), (0.8, 0.9, NAN, 0.04, 0.02),
                 (0.8, 0.9, 3.1, 0.04, NAN), (0.8, 0.9, 3.1, math.inf, 0.02)):
        text = sentences.levels_verdict(*args)
        assert text.startswith("This run could not measure whether the two levels split the "
                               "work") and text.endswith(".")


# -- chapter 5 ---------------------------------------------------------------------------------


def test_measured_order_states_the_order_and_what_the_draws_separate():
    close = sentences.measured_order("the Fréchet distance", {"ae": 30, "vae": 20, "vqvae2": 21},
                                     {"ae": 1, "vae": 1, "vqvae2": 1})
    assert close.startswith("On this run the Fréchet distance orders them vae < vqvae2 < ae "
                            "(lower is better); the draws do not separate vae and vqvae2: their")
    assert "expect" not in close
    apart = sentences.measured_order("the KID", {"ae": 30, "vae": 20, "vqvae2": 10},
                                     {"ae": 1, "vae": 1, "vqvae2": 1})
    assert apart.endswith("vqvae2 < vae < ae (lower is better), and every gap is wider than "
                          "the two standard deviations added.")
    both = sentences.measured_order("x", {"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 1, "c": 1})
    assert "do not separate a and b nor b and c: each gap is" in both
    tie = sentences.measured_order("the test MSE", {"ae": 0.01, "vae": 0.01})
    assert "orders them ae = vae (lower is better)." in tie  # a tie: no ratio
    ratio = sentences.measured_order("the test MSE", {"ae": 0.01, "vae": 0.04, "vq": 0.02})
    assert ratio.endswith("ae < vq < vae (lower is better); the highest is 4.0 times the lowest.")
    assert sentences.measured_order("m", {"a": 0.0, "b": 1.0}).endswith("(lower is better).")
    missing = sentences.measured_order("m", {"a": 1.0, "b": 2.0, "c": NAN}, {"a": 1, "b": NAN})
    assert "(lower is better; c not measured); the spread of b was not measured." in missing
    assert sentences.measured_order("m", {"a": 1.0, "b": NAN}) == (
        "On this run only a was measured (m 1; b not measured).")
    assert sentences.measured_order("the KID", {"a": NAN}).startswith(
        "This run could not measure the KID")


def test_label_saving_is_set_against_log2_of_the_classes():
    within = sentences.label_saving_sentence(900.0, 898.0, 10, 0.1)
    assert within.startswith("knowing the label saves 2.0 bits") and "3.3 bits" in within
    assert "undertrained" not in within
    beyond = sentences.label_saving_sentence(900.0, 890.2, 10, 0.1)
    assert "saves 9.8 bits" in beyond and "undertrained" in beyond
    assert "on only 10% of the training images" in beyond
    assert "undertrained" in sentences.label_saving_sentence(900.0, 890.0, 10, NAN)
    at_bound = sentences.label_saving_sentence(math.log2(10), 0.0, 10, 0.1)  # exactly log2 C
    assert "undertrained" not in at_bound
    assert sentences.label_saving_sentence(900.0, 900.0, 10, 0.1).startswith(
        "on this run knowing the label saves nothing (+0.0 bits)")  # zero
    assert "saves nothing (-1.0 bits)" in sentences.label_saving_sentence(899.0, 900.0, 10, 0.1)
    assert "could not measure" in sentences.label_saving_sentence(NAN, 900.0, 10, 0.1)
    assert "could not measure" in sentences.label_saving_sentence(900.0, 890.0, 0, 0.1)


def test_vq_rate_is_the_shorter_of_the_two_codes():
    class_first = sentences.vq_rate_sentence(900.0, 893.5, 10)
    assert "(900 bits), and the class sent first (3.3 bits)" in class_first
    assert class_first.endswith("the shorter: the class sent first, 894 bits")
    no_label = sentences.vq_rate_sentence(880.0, 893.5, 10)
    assert no_label.endswith('the shorter: the "no label" code, 880 bits')
    assert sentences.vq_rate_sentence(893.6, 893.5, 10).endswith("here both take 894 bits")
    alone = sentences.vq_rate_sentence(NAN, 893.5, 10)  # priors without "no label"
    assert alone.startswith('These priors learnt no "no label"') and "894 bits in all" in alone
    assert "could not measure" in sentences.vq_rate_sentence(900.0, NAN, 10)


def test_middle_frame_sentence_reads_the_middle_frames():
    every = sentences.middle_frame_sentence({"pixels": 50, "ae": 30, "vae": 40}, 5)
    assert every.startswith("Every latent path lands closer to real images at t = 0.5 than")
    assert every.endswith("the closest, ae's, is still 6.0 times the distance between two "
                          "sets of real images.")
    some = sentences.middle_frame_sentence({"pixels": 50, "ae": 30, "vae": 60, "vq": 20}, 5)
    assert some.startswith("Only ae and vq land closer")
    one = sentences.middle_frame_sentence({"pixels": 50, "ae": 30, "vae": 50}, 5)  # a tie
    assert one.startswith("Only ae lands closer")
    assert sentences.middle_frame_sentence({"pixels": 50, "ae": 30}, 5).startswith(
        "The ae path lands closer")
    assert sentences.middle_frame_sentence({"pixels": 5, "ae": 30}, 5).startswith(
        "No latent path")
    real = sentences.middle_frame_sentence({"pixels": 50, "ae": 4}, 5)
    assert real.endswith("ae's middle frames are as close as real images are.")
    assert "as close as real" in sentences.middle_frame_sentence({"pixels": 1, "ae": 0}, 0)
    assert "could not measure" in sentences.middle_frame_sentence({"pixels": NAN, "ae": 3}, 5)
    assert "could not measure" in sentences.middle_frame_sentence({"pixels": 5, "ae": NAN}, 5)


def test_network_sizes_and_losses():
    sizes = sentences.network_sizes_sentence({"ae": 100_000, "vae": 300_000, "vq": 500_000})
    assert sizes == "vq has 5.0 times the parameters of ae (500,000 against 100,000)"
    assert sentences.network_sizes_sentence({"a": 7, "b": 7}) == "all of them have 7 parameters"
    assert sentences.network_sizes_sentence({"a": 7, "b": 0}) == "a has 7 parameters and b none"
    assert sentences.network_sizes_sentence({"a": 7}).endswith("no other network to set it beside")
    assert "could not measure" in sentences.network_sizes_sentence({"a": NAN})
    losses = {"ae": "per-pixel MSE", "vae": "negative ELBO", "vq": "per-pixel MSE + commitment"}
    assert sentences.losses_sentence(losses) == (
        "all are scored here in per-pixel MSE, which ae and vq were trained on and vae was not")
    assert sentences.losses_sentence({"ae": "per-pixel MSE"}).startswith("every one of them")
    assert sentences.losses_sentence({"vae": "negative ELBO"}).startswith("none of them")
    assert "could not measure" in sentences.losses_sentence({})


def test_scarce_labels_sentence_follows_the_two_leads():
    scarce = sentences.scarce_labels_sentence(0.1, 0.01)
    assert scarce.startswith("So on this run a code earns its keep where labels are scarce")
    assert "+10.0 points with few labels and +1.0 with all" in scarce
    assert "not one of scarce labels" in sentences.scarce_labels_sentence(0.01, 0.02)
    assert "not one of scarce labels" in sentences.scarce_labels_sentence(0.02, 0.02)  # a tie
    assert "no code beats the pixels" in sentences.scarce_labels_sentence(0.0, 0.05)  # zero
    assert "(-2.0 points" in sentences.scarce_labels_sentence(-0.02, -0.05)
    assert "could not measure" in sentences.scarce_labels_sentence(NAN, 0.1)
