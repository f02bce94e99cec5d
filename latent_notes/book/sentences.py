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

def standard_error(p: float, n: int) -> float:
    """The standard error of an accuracy ``p`` measured on ``n`` test images: √(p(1 − p)/n)."""
    return math.sqrt(p * (1 - p) / n)


def _listed(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def accuracy_sentence(accuracy: dict[str, float], n: int) -> str:
    """Each network's test accuracy ± one standard error on ``n`` test images, the highest
    named, and the networks within their standard errors (added) of it: those the test set
    does not tell apart from it."""
    measured = {k: v for k, v in accuracy.items() if _finite(v) and 0 <= v <= 1}
    if not measured or not _finite(n) or n < 1:
        return not_measured("the networks' test accuracies")
    se = {k: standard_error(p, n) for k, p in measured.items()}
    shown = _listed([f"{k} {p:.2%} ± {se[k]:.2%}" for k, p in measured.items()])
    head = (f"{shown} (± one standard error, √(p(1 − p)/n) on n = {n:,} test images)")
    if len(measured) == 1:
        return f"{head}; there is no other network to set it beside"
    top = max(measured.values())
    best = [k for k, p in measured.items() if p == top]
    first = best[0]
    close = [k for k, p in measured.items()
             if k not in best and top - p <= se[first] + se[k]]
    if len(best) == len(measured):
        return f"{head}: all of them score the same"
    lead = (f"{_listed(best)} tie for the highest score" if len(best) > 1
            else f"{first} scores highest")
    its = "theirs" if len(best) > 1 else "its"
    if close:
        bars, verb = ("bar", "overlaps") if len(close) == 1 else ("bars", "overlap")
        return (f"{head}. {lead}, but the error {bars} of {_listed(close)} {verb} {its}: "
                f"these {n:,} test images do not tell them apart")
    return f"{head}. {lead}, and no other network's error bar reaches {its}"


def confidence_sentence(wrong: float, right: float, n_wrong: int) -> str:
    """Whether a classifier knows when it is wrong: its mean confidence (the probability of
    the class it predicted) on the test images it got wrong against those it got right."""
    if not _finite(n_wrong) or n_wrong < 1:
        return "it got every test image right, so there is no mistake to be unsure about."
    if not _finite(wrong, right):
        return f"{not_measured('its confidence')}."
    head = (f"on its {n_wrong:,} mistake{'s' if n_wrong != 1 else ''} its mean confidence is "
            f"{wrong:.0%}, against {right:.0%} on the images it got right")
    if wrong < right - 0.05:
        return f"{head}: on average it is less sure when it is wrong."
    return f"{head}: on average it is about as sure, or surer, when it is wrong."


def _as_far(distance: float, reference: float, tol: float) -> str:
    """'about as far as', 'N times as far as' or 'closer than' ``reference``."""
    if abs(distance - reference) <= tol * reference:
        return "about as far as"
    if distance > reference:
        return f"{distance / reference:.1f} times as far as"
    return "closer than"


def code_distances_sentence(test: float, standard: float, fitted: float, midpoint: float,
                            tol: float = 0.1) -> str:
    """Where random codes and the midpoints of straight lines land, by their mean distance to
    the nearest training code, against that of real test images' codes (``tol``: the relative
    gap called "about as far"). Sentences, ending in a full stop."""
    if not _finite(test, standard, fitted, midpoint) or test <= 0:
        return f"{not_measured('how far random codes lie from the training codes')}."
    text = (f"Draws from N(0, I) lie {standard:.2f} from the nearest training code on average, "
            f"{_as_far(standard, test, tol)} the codes of real test images ({test:.2f}); draws "
            f"from the Gaussian fitted to the training codes lie {fitted:.2f}, "
            f"{_as_far(fitted, test, tol)} them.")
    if fitted > (1 + tol) * test:
        text += (" So even the fitted Gaussian's draws land farther from the training codes "
                 "than real codes do: a Gaussian around the training codes also covers space "
                 "they leave empty.")
    text += (f" The midpoints of straight lines between two test codes lie {midpoint:.2f}, "
             f"{_as_far(midpoint, test, tol)} the test codes themselves: halfway, a straight "
             "line " + ("leaves the region the codes of real images fill."
                        if midpoint > (1 + tol) * test else
                        "stays where the codes of real images are."))
    return text


def noise_sentence(errors: dict[float, float]) -> str:
    """What the smallest nudge of the codes costs: ``errors`` is {noise scale in standard
    deviations: test MSE}, the scale 0 the clean codes."""
    clean = errors.get(0.0, errors.get(0))
    nudges = sorted(s for s in errors if s > 0 and _finite(errors[s]))
    if clean is None or not _finite(clean) or not nudges or clean <= 0:
        return f"{not_measured('what noise on the codes costs')}."
    scale = nudges[0]
    rise = errors[scale] / clean - 1
    head = (f"noise of {scale:g} standard deviations per coordinate moves the test error from "
            f"{clean:.4f} to {errors[scale]:.4f}")
    if rise < 0.1:
        return f"{head}, less than 10% more: the decoder is smooth around the codes of real images."
    return f"{head}, {rise:.0%} more: even a small nudge of the codes costs accuracy."


def curves_sentence(final: dict[int, float]) -> str:
    """Whether the last epoch's validation error falls with the code size: ``final`` is
    {code size: validation MSE per pixel after the last epoch}."""
    sizes = sorted(d for d in final if _finite(final[d]))
    if not sizes:
        return f"{not_measured('the final validation errors')}."
    shown = _listed([f"{final[d]:.4f} at a code of {d}" for d in sizes])
    if len(sizes) == 1:
        return f"after the last epoch the validation error is {shown}."
    ordered = all(final[a] > final[b] for a, b in zip(sizes, sizes[1:], strict=False))
    verdict = ("every larger code ends lower, as more numbers let more of the image through."
               if ordered else "a larger code does not always end lower on this run.")
    return f"after the last epoch the validation error is {shown}; {verdict}"


# -- chapter 3 ---------------------------------------------------------------------------------

def _relation(a: float, b: float, rel_tol: float = 0.0, abs_tol: float = 0.0) -> str:
    """How ``a`` compares with ``b``: 'alike' when they differ by at most ``abs_tol`` or
    ``rel_tol`` of the larger magnitude, else 'lower' or 'higher'."""
    if abs(a - b) <= max(abs_tol, rel_tol * max(abs(a), abs(b))):
        return "alike"
    return "lower" if a < b else "higher"


def _by_beta(values: dict) -> list[tuple[float, float]]:
    """The measured (finite) (β, value) pairs of ``values``, smallest β first."""
    return sorted((float(beta), v) for beta, v in values.items() if _finite(v))


def _at(pairs, fmt: str, symbol: str = "β") -> str:
    """'0.0123 at β = 0.5, 0.0150 at β = 1 and 0.0250 at β = 4'."""
    return _listed([f"{v:{fmt}} at {symbol} = {k:g}" for k, v in pairs])


def beta_units_sentence(units: int, units_at_1: int, size: int, kl: float,
                        kl_at_1: float) -> str:
    """The active units at the largest β against β = 1, and, when as many are active, whether
    the test KL (``kl`` against ``kl_at_1``, nats) fell all the same."""
    if not _finite(units, units_at_1, size):
        return not_measured("the active units")
    head = f"{units} of the {size} dimensions are active, against {units_at_1} at β = 1"
    if units < units_at_1:
        return f"only {head}: the heavier KL price switches dimensions off entirely"
    if units > units_at_1:
        return f"{head}: on this run the heavier KL price switches none off"
    if not _finite(kl, kl_at_1):
        return f"{head}: the heavier KL price has switched none of them off"
    if kl < kl_at_1:
        return (f"{head}, while the test KL falls from {kl_at_1:.1f} to {kl:.1f} nats: the "
                "heavier price lowers the rate without switching any dimension off")
    return (f"{head}, and the test KL is not lower ({kl_at_1:.1f} against {kl:.1f} nats): "
            "here the heavier price has changed neither")


def beta_tradeoff_sentence(kl_by_beta: dict, recon_by_beta: dict) -> str:
    """Whether a larger β bought a smaller rate (test KL) with a larger distortion (the
    reconstruction term): at every step of the sweep, between its ends only, or not at all."""
    pairs = [(b, kl_by_beta[b], recon_by_beta[b]) for b in sorted(kl_by_beta)
             if b in recon_by_beta and _finite(kl_by_beta[b], recon_by_beta[b])]
    if not pairs:
        return not_measured("the rate and the distortion per β")
    if len(pairs) == 1:
        return f"only β = {pairs[0][0]:g} was measured, so there is no trade-off to read"
    steps = list(zip(pairs, pairs[1:], strict=False))
    if all(b[1] < a[1] and b[2] > a[2] for a, b in steps):
        return ("at every step to a larger β the test KL falls and the reconstruction term "
                "rises: a larger β buys a smaller rate with a larger distortion")
    (low, kl_low, recon_low), (high, kl_high, recon_high) = pairs[0], pairs[-1]
    if kl_high < kl_low and recon_high > recon_low:
        return ("from the smallest β to the largest the test KL falls and the reconstruction "
                "term rises, but not at every step between them (the table below)")
    return (f"on this run a larger β does not buy a smaller rate with a larger distortion: from "
            f"β = {low:g} to β = {high:g} the test KL goes from {kl_low:.1f} to {kl_high:.1f} "
            f"nats and the reconstruction term from {recon_low:.1f} to {recon_high:.1f}")


def beta_reconstruction_sentence(mse_by_beta: dict, rel_tol: float = 0.1) -> str:
    """Which end of the β sweep reconstructs more closely, by the test MSE per pixel of
    decoding μ; all within ``rel_tol`` of the largest: alike."""
    pairs = _by_beta(mse_by_beta)
    if not pairs:
        return not_measured("the test MSE per β")
    listing = f"the test MSE per pixel is {_at(pairs, '.4f')}"
    if len(pairs) == 1:
        return f"only β = {pairs[0][0]:g} was trained, so {listing}, with no other β beside it"
    values = [v for _, v in pairs]
    if _relation(min(values), max(values), rel_tol) == "alike":
        return (f"the reconstructions are alike in error across the sweep: {listing}, all "
                f"within {rel_tol:.0%} of the largest")
    ends = _relation(values[0], values[-1], rel_tol)
    if ends == "lower":
        return f"the smaller β reconstructs more closely: {listing}"
    if ends == "higher":
        return f"on this run the larger β reconstructs more closely: {listing}"
    return (f"the smallest and the largest β reconstruct alike (within {rel_tol:.0%}), but the "
            f"β between them do not: {listing}")


def beta_identity_sentence(agreement_by_beta: dict, tol: float = 0.05) -> str:
    """How often the judge reads a reconstruction as its test image's label, per β; the ends
    of the sweep within ``tol`` (a difference of shares): alike."""
    pairs = _by_beta(agreement_by_beta)
    if not pairs:
        return not_measured("what the judge reads in the reconstructions (it reads "
                            "MNIST-like images only)")
    head = f"the judge reads the test image's own digit in {_at(pairs, '.0%')}"
    return _sweep_ends(head, pairs, tol, {
        "lower": ": a larger β keeps more of the digit",
        "alike": (f": the two ends of the sweep lie within {tol * 100:.0f} points, so β "
                  "changes little of what digit they show"),
        "higher": ": a larger β keeps less of the digit"})


def beta_samples_sentence(share_by_beta: dict, confidence: float, tol: float = 0.05) -> str:
    """How often the judge reads a prior sample as one digit beyond ``confidence``, per β;
    the ends of the sweep within ``tol``: alike."""
    pairs = _by_beta(share_by_beta)
    if not pairs:
        return not_measured("what the judge reads in the samples (it reads MNIST-like "
                            "images only)")
    head = (f"the judge gives one digit a probability of at least {confidence:g} in "
            f"{_at(pairs, '.0%')}")
    return _sweep_ends(head, pairs, tol, {
        "lower": ": the samples of a larger β read as a clear digit more often",
        "alike": f": the two ends of the sweep lie within {tol * 100:.0f} points of each other",
        "higher": ": on this run the samples of a larger β read as a clear digit less often"})


NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}  # how many top dimensions a traversal shows


def top_dimensions(top: int, along: bool = False) -> str:
    """The ``top`` dimensions of largest KL a traversal shows: 'three dimensions' ('one of the
    top three dimensions' ``along`` one), 'dimension' ('the top dimension') when one."""
    if top == 1:
        return "the top dimension" if along else "dimension"
    count = NUMBER_WORDS.get(top, str(top))
    return f"one of the top {count} dimensions" if along else f"{count} dimensions"


def traversal_sentence(changes: dict, top: int) -> str:
    """Whether the dimension of smallest KL changes the image by less than a tenth of what
    the ``top`` dimensions of largest KL change, per β: ``changes`` {β: (mean pixel change
    along the top ones, along the smallest)}."""
    pairs = [(float(beta), big, small) for beta, (big, small) in sorted(changes.items())
             if _finite(big, small)]
    if not pairs:
        return not_measured("what a shift along each dimension changes")
    count = NUMBER_WORDS.get(top, str(top))
    those = f"the {count} of largest KL change" if top > 1 else "the one of largest KL changes"
    the_top = f"the top {count} change" if top > 1 else "the top one changes"
    still = [beta for beta, big, small in pairs if small < 0.1 * big]
    if len(still) == len(pairs):
        return ("at every β the dimension of smallest KL changes the image by less than a tenth "
                f"of what {those}: it is inactive, and the decoder ignores it")
    if still:
        return ("the dimension of smallest KL changes the image by less than a tenth of what "
                f"{the_top} at β = {', '.join(f'{b:g}' for b in still)} only")
    return ("even the dimension of smallest KL still changes the image by a tenth or more of "
            f"what {the_top}, at every β")


def _sweep_ends(head: str, pairs: list, tol: float, verdicts: dict) -> str:
    """``head`` and the verdict on the two ends of a β sweep's shares (``pairs``: (β, share)
    sorted by β): ``verdicts`` {"lower" | "alike" | "higher": phrase}."""
    if len(pairs) == 1:
        return f"{head}, with no other β beside it"
    return head + verdicts[_relation(pairs[0][1], pairs[-1][1], abs_tol=tol)]


def sigma_collapse_sentence(sigma_beta0: float, sigma_beta1: float, small: float = 0.1) -> str:
    """Whether the σ of the β = 0 model (nothing in its loss holds σ up) has shrunk below
    ``small``, beside the β = 1 model of the same size and the prior's 1."""
    if not _finite(sigma_beta0):
        return not_measured("the σ of the β = 0 model")
    beside = (f"the β = 1 model of the same size: {sigma_beta1:.3g}; the prior: 1"
              if _finite(sigma_beta1) else "the prior: 1")
    head = f"its median σ over the test images and both dimensions is {sigma_beta0:.3g} ({beside})"
    if sigma_beta0 < small:
        return (f"{head}: with nothing in the loss to hold σ up it has shrunk towards 0, and "
                "the model is all but a plain autoencoder")
    return (f"{head}: nothing in the loss holds σ up, but in this run's training it has not "
            f"shrunk below {small:g}, so its code is still noisy")


def two_numbers_sentence(mse: float, mse_both: float, mse_full: float, full_size: int,
                         rel_tol: float = 0.1) -> str:
    """The reconstruction-only 2-D model's test MSE, beside the β = 1 model of the same size
    (within ``rel_tol``: alike) and the β = 1 model of ``full_size`` dimensions."""
    if not _finite(mse):
        return not_measured("the reconstruction-only model's test error")
    head = f"from just two numbers it rebuilds the test images with an MSE of {mse:.4f} per pixel"
    beside = []
    if _finite(mse_both):
        word = {"lower": "below", "alike": f"within {rel_tol:.0%} of",
                "higher": "above"}[_relation(mse, mse_both, rel_tol)]
        beside.append(f"{word} the β = 1 model of the same size ({mse_both:.4f})")
    if _finite(mse_full) and mse_full > 0:
        beside.append(f"{mse / mse_full:.1f} times the error of the β = 1 model with "
                      f"{full_size} dimensions ({mse_full:.4f})")
    return f"{head}: {_listed(beside)}" if beside else head


def kl_only_sentence(sample_difference: float, test_difference: float, same: float = 0.1) -> str:
    """How much the KL-only model's samples differ from one another (mean absolute pixel
    difference of a pair), against two test images; below ``same`` of it: the same image."""
    if not _finite(sample_difference, test_difference) or test_difference <= 0:
        return not_measured("how much the KL-only model's samples differ")
    head = (f"two of its samples differ by {sample_difference:.2g} per pixel on average, two "
            f"test images by {test_difference:.2g}")
    if sample_difference == 0:
        return f"{head}: it paints exactly the same image for every code"
    if sample_difference < same * test_difference:
        return f"{head}: it paints nearly the same image for every code"
    return f"{head}: even untrained, its decoder paints different images for different codes"


def two_d_samples_sentence(share: float, share_without_kl: float, confidence: float,
                           tol: float = 0.05) -> str:
    """How often the judge reads the β = 1 2-D model's prior samples as one digit beyond
    ``confidence``, beside the reconstruction-only model's (within ``tol``: alike)."""
    if not _finite(share):
        return not_measured("what the judge reads in its samples (it reads MNIST-like "
                            "images only)")
    head = (f"the judge gives one digit a probability of at least {confidence:g} in "
            f"{share:.0%} of its prior samples")
    if not _finite(share_without_kl):
        return head
    return (f"{head}, against {share_without_kl:.0%} of the reconstruction-only model's"
            + {"higher": ": more often", "alike": f": the two lie within {tol * 100:.0f} points",
               "lower": ": less often"}[_relation(share, share_without_kl, abs_tol=tol)])


def neighbour_sentence(neighbour: float, pair: float, smooth: float = 0.5) -> str:
    """How much neighbouring cells of the decoded grid differ, against two random test images;
    below ``smooth`` of it: the grid changes gradually."""
    if not _finite(neighbour, pair) or pair <= 0:
        return not_measured("how much neighbouring cells differ")
    head = (f"neighbouring cells differ by {neighbour:.3f} per pixel on average, "
            f"{neighbour / pair:.0%} of the {pair:.3f} between two random test images")
    if neighbour < smooth * pair:
        return f"{head}: the grid changes gradually"
    return (f"{head}: from one cell to the next the grid changes by at least {smooth:.0%} of "
            "what separates two unrelated images")


def manifold_sentence(share: float, share_without_kl: float, cells: int, confidence: float,
                      tol: float = 0.05) -> str:
    """How many cells of the decoded 2-D grid the judge reads as one digit beyond
    ``confidence``, beside the same grid decoded by the model without the KL term."""
    if not _finite(share) or not _finite(cells) or cells < 1:
        return not_measured("what the judge reads in the decoded grid (it reads MNIST-like "
                            "images only)")
    head = (f"chapter 1's classifier gives one digit a probability of at least {confidence:g} "
            f"in {round(share * cells)} of the {cells} cells ({share:.0%})")
    if not _finite(share_without_kl):
        return head
    head += (f", and in {share_without_kl:.0%} of the same grid decoded by the model trained "
             "without the KL term (β = 0)")
    return head + {"higher": ": on this run the KL term makes more of the prior's grid decode "
                             "to a clear digit",
                   "alike": f": on this run the two lie within {tol * 100:.0f} points",
                   "lower": ": on this run the grid of the model without the KL term reads as "
                            "a clear digit more often"}[_relation(share, share_without_kl,
                                                                  abs_tol=tol)]


def perturbation_sentence(changes: dict, readings: dict, symbol: str, keep: float = 0.9) -> str:
    """What pushing the code by each amount ({amount: ...}) did: the mean absolute pixel
    change of the decoded image, and up to which amount the judge still reads the digit of
    the undisturbed decode(μ) in at least ``keep`` of the images."""
    moved = sorted((float(a), c) for a, c in changes.items() if _finite(c))
    if not moved:
        return not_measured(f"what the push {symbol} does")
    head = f"the decoded image changes by {_at(moved, '.3f', symbol)} per pixel on average"
    read = sorted((float(a), r) for a, r in readings.items() if _finite(r))
    if not read:
        return f"{head} (the judge reads MNIST-like images only, so no digit is read)"
    upto = None
    for amount, share in read:
        if share < keep:
            break
        upto = amount
    shares = _at(read, ".0%", symbol)
    if upto == read[-1][0]:
        return (f"{head}, and at every {symbol} tried the judge reads the digit of decode(μ) in "
                f"at least {keep:.0%} of the images ({shares})")
    if upto is None:
        return (f"{head}, and already at {symbol} = {read[0][0]:g} the judge reads the digit of "
                f"decode(μ) in fewer than {keep:.0%} of the images ({shares})")
    return (f"{head}; the digit survives up to {symbol} = {upto:g}, where the judge still "
            f"reads the digit of decode(μ) in at least {keep:.0%} of the images ({shares})")


def interpolation_sentence(latent: float, pixels: float, pairs: int, confidence: float,
                           tol: float = 0.05) -> str:
    """How often the judge reads the inner frames of latent paths and of pixel blends as one
    digit beyond ``confidence`` (within ``tol``: alike)."""
    if not _finite(latent, pixels) or not _finite(pairs) or pairs < 1:
        return not_measured("what the judge reads along the paths (it reads MNIST-like "
                            "images only)")
    head = (f"over {pairs} pairs of test images of different digits, the judge gives one "
            f"digit a probability of at least {confidence:g} in {latent:.0%} of the latent "
            f"paths' inner frames and in {pixels:.0%} of the pixel blends'")
    return head + {"higher": ": decoding every point keeps more of the path looking like one "
                             "digit",
                   "alike": f": the two lie within {tol * 100:.0f} points",
                   "lower": ": on this run the pixel blend reads as one digit more "
                            "often"}[_relation(latent, pixels, abs_tol=tol)]


def denoising_sentence(gain_by_noise: dict, tol: float = 0.05) -> str:
    """At which noise levels the denoising VAE's output is closer to the clean images than
    its noisy input (a PSNR gain above ``tol`` dB) and at which it is farther."""
    measured = sorted((float(s), g) for s, g in gain_by_noise.items() if _finite(g))
    if not measured:
        return not_measured("what denoising gains")
    head = ("the output changes the PSNR by "
            + _listed([f"{g:+.1f} dB at σ = {s:g}" for s, g in measured]))
    better = [s for s, g in measured if g > tol]
    worse = [s for s, g in measured if g < -tol]
    if len(better) == len(measured):
        return f"{head}: at every noise level the output is closer to the clean images"
    if len(worse) == len(measured):
        return (f"{head}: at no noise level is the output closer to the clean images; its "
                "blur costs more than the noise it removes")
    if not better and not worse:
        return f"{head}: within {tol:g} dB, the same as the noisy input at every level"
    text = head
    if better:
        text += f": it helps at σ = {_listed([f'{s:g}' for s in better])}"
    if worse:
        text += (f"{'; it' if better else ': it'} costs at σ = "
                 f"{_listed([f'{s:g}' for s in worse])}, where its blur costs more than the "
                 "noise it removes")
    return text


def colour_sentence(name: str | None, mse: float, psnr: float, mean_image_mse: float,
                    n_test: int, epochs: int) -> str:
    """The colour VAE's test reconstruction error, beside the error of setting the mean
    training image in place of every test image."""
    if name is None:
        return "colour_dataset is None, so this run trained no colour VAE and measured nothing"
    if not _finite(mse, psnr):
        return not_measured("the colour VAE's reconstruction error")
    head = (f"on {n_test:,} {name} test images, the colour VAE trained for {epochs} epochs "
            f"reconstructs with an MSE of {mse:.4f} per pixel (PSNR {psnr:.1f} dB)")
    if not _finite(mean_image_mse):
        return head
    return (f"{head}, {'below' if mse < mean_image_mse else 'not below'} the {mean_image_mse:.4f} "
            "of the mean training image set in place of every test image")


# -- chapter 4 ---------------------------------------------------------------------------------

def _full(phrase: str) -> str:
    """A phrase made a sentence: capital first letter, full stop."""
    return f"{phrase[0].upper()}{phrase[1:]}."


def _n(count: int, thing: str) -> str:
    """'1 position', '3 positions'."""
    return f"{count} {thing}{'' if count == 1 else 's'}"


def _is(count: int, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


def padding_sentence(image_size: int, padded_size: int) -> str:
    """How an image is brought to the side the two levels' halvings need, ``padded_size``."""
    if not _finite(image_size, padded_size) or padded_size < image_size:
        return _full(not_measured("the padded image size"))
    pad = (padded_size - image_size) // 2
    if pad == 0:
        return f"A {image_size}-pixel image needs no padding."
    return (f"A {image_size}-pixel image is padded with {_n(pad, 'black pixel')} on every side "
            f"to {padded_size}, and the reconstruction is cropped back to {image_size}; the loss "
            "sees only the real pixels.")


def usage_course_sentence(first: dict[str, float], last: dict[str, float],
                          tol: float = 0.01) -> str:
    """How the codebook usage of the model trained without restarts went, per level, from the
    first epoch to the last; a rise of more than ``tol`` (a share of the codebook) counts."""
    levels = [k for k in first if _finite(first[k], last.get(k, math.nan))]
    if not levels:
        return _full(not_measured("the codebook usage per epoch"))
    used = _listed([f"{first[k]:.0%} of the {k} codes" for k in levels])
    head = (f"Without restarts the model used {used} after the first epoch and "
            f"{_listed([f'{last[k]:.0%}' for k in levels])} after the last")
    rose = [k for k in levels if last[k] > first[k] + tol]
    if not rose:
        return f"{head}: once out of use, codes did not come back."
    return (f"{head}: the {_listed(rose)} level{'s' * (len(rose) > 1)} gained codes after the "
            "first epoch, as the encoder's outputs drifted towards some of the unused ones.")


def field_phrase(counts: dict) -> str:
    """What one output sees of the positions before it, from mechanisms.unseen's counts
    (earlier, seen, blind, beyond): a phrase to follow its subject ("the output ...")."""
    earlier, seen, blind, beyond = (counts.get(k, math.nan)
                                    for k in ("earlier", "seen", "blind", "beyond"))
    if not _finite(earlier, seen, blind, beyond):
        return not_measured("what it sees")
    earlier, seen, blind, beyond = int(earlier), int(seen), int(blind), int(beyond)
    if earlier == 0:
        return "has no position before it"
    if blind == 0 and beyond == 0:
        return ("sees the one position before it" if earlier == 1
                else f"sees all {earlier} positions before it")
    lead = f"sees {seen} of the {_n(earlier, 'position')} before it"
    if blind and beyond:
        return (f"{lead}: {blind} inside its field {_is(blind, 'is', 'are')} a blind spot and "
                f"{beyond} {_is(beyond, 'lies', 'lie')} beyond the field")
    if blind:
        return (f"{lead}: the other {blind} {_is(blind, 'is', 'are')} a blind spot inside its "
                "field")
    return (f"{lead}, with no blind spot: the other {beyond} {_is(beyond, 'lies', 'lie')} "
            "beyond its field")


def receptive_field_sentence(plain: dict, gated: dict, layers: int, grid: int) -> str:
    """The two designs' receptive fields as measured, and which of them has a blind spot."""
    if not _finite(layers, grid):
        return _full(not_measured("the receptive fields"))
    head = (f"Through {_n(layers, 'layer')} on a {grid}×{grid} grid, the plain stack's output "
            f"{field_phrase(plain)}; the gated stack's {field_phrase(gated)}")
    holes = [name for name, c in (("plain", plain), ("gated", gated))
             if _finite(c.get("blind", math.nan)) and c["blind"] > 0]
    if not holes:
        return f"{head}. Neither design has a blind spot here."
    if holes == ["plain"]:
        return f"{head}. Only the plain stack has a blind spot."
    which = "Both designs have" if len(holes) == 2 else "The gated stack has"
    return f"{head}. {which} a blind spot."


def prior_field_sentence(levels: dict[str, dict], whose: str = "") -> str:
    """What the last position of each prior's grid sees, ``levels`` {level: mechanisms.unseen's
    counts with the prior's ``grid`` and ``layers``}, and whether its field covers the grid;
    ``whose`` names the priors ("colour": "the colour top prior")."""
    measured = {k: c for k, c in levels.items()
                if _finite(*(c.get(n, math.nan) for n in ("grid", "layers", "earlier", "seen",
                                                            "blind", "beyond")))}
    if not measured:
        return _full(not_measured("the priors' receptive fields"))
    whose = f"{whose} " if whose else ""
    parts = [f"the {whose}{k} prior ({c['grid']}×{c['grid']} grid, {_n(c['layers'], 'layer')}) "
             f"{field_phrase(c)}" for k, c in measured.items()]
    head = ("At the last position of its grid, which has every other position before it, "
            + _listed(parts))
    short = [k for k, c in measured.items() if c["blind"] + c["beyond"] > 0]
    if not short:
        return (f"{head}: {'every' if len(measured) > 1 else 'its'} field covers "
                f"{'its' if len(measured) > 1 else 'the'} whole grid.")
    priors = f"the {whose}{_listed(short)} prior{'s' * (len(short) > 1)}"
    return (f"{head}. So {priors} draw{'' if len(short) > 1 else 's'} the last codes of "
            f"{'their grids' if len(short) > 1 else 'its grid'} without seeing all the codes "
            "before them.")


def bits_against(measured: dict[str, float], reference: dict[str, float], who: str,
                 against: str, tol: float = 0.005) -> str:
    """Bits per code of ``who`` against ``against``, level by level (dict order); differences
    within ``tol`` bits: the same."""
    levels = [k for k in measured if _finite(measured[k], reference.get(k, math.nan))]
    if not levels:
        return _full(not_measured(f"the bits per code of {who}"))
    mine = _listed([f"{measured[k]:.2f} bits per {k} code" for k in levels])
    theirs = _listed([f"{reference[k]:.2f}" for k in levels])
    head = f"{who} need {mine}, against {theirs} for {against}"
    way = {k: ("the same" if abs(measured[k] - reference[k]) <= tol else
               "fewer" if measured[k] < reference[k] else "more") for k in levels}
    if len(set(way.values())) == 1:
        word = next(iter(way.values()))
        where = "at both levels" if len(levels) == 2 else (
            f"at the {levels[0]} level" if len(levels) == 1 else "at every level")
        verdict = (f"the same number {where}" if word == "the same"
                   else f"{word} bits per code {where}, by "
                   + _listed([f"{abs(measured[k] - reference[k]):.2f}" for k in levels]))
    else:
        verdict = _listed([f"{way[k]} at the {k} level" for k in levels])
    return _full(f"{head}: {verdict}")


MIN_TOP_BITS = 0.1  # bits per top code below which the top level carries (almost) nothing
MIN_CHANGE_RATIO = 0.1  # a top code's pixel change below this share of a bottom code's: none


def levels_verdict(top_usage: float, bottom_usage: float, top_bits: float, top_change: float,
                   bottom_change: float) -> str:
    """Whether the two levels of a VQ-VAE-2 split the work: only when the top level is in use
    (its codes carry at least MIN_TOP_BITS bits each, as a prior measures them) and changing one
    top code moves the pixels by at least MIN_CHANGE_RATIO of what changing a bottom code does
    (the traversal's mean absolute change). Otherwise the verdict says which level collapsed."""
    if not _finite(top_usage, bottom_usage, top_bits, top_change, bottom_change):
        return _full(not_measured("whether the two levels split the work"))
    top = (f"uses {top_usage:.0%} of its codes at {top_bits:.2f} bits per code, and changing "
           f"one top code moves the pixels by {top_change:.4f} on average")
    bottom = f"a bottom code's {bottom_change:.4f} ({bottom_usage:.0%} of the bottom codes in use)"
    if top_change <= 0 and bottom_change <= 0:
        return ("Neither level's codes move the pixels: changing one code, top or bottom, leaves "
                f"the decoded image as it was (the top level {top}).")
    if top_usage <= 0 or top_bits < MIN_TOP_BITS:
        return (f"The top level has collapsed: it {top}, against {bottom}; the bottom level "
                "does the work alone.")
    if bottom_change <= 0:
        return (f"The bottom level has collapsed: the top level {top}, while a bottom code "
                "moves none; the top level does the work alone.")
    ratio = top_change / bottom_change
    against = (f"{ratio:.0%} of {bottom}" if ratio < 1 else f"{ratio:.1f} times {bottom}")
    if ratio < MIN_CHANGE_RATIO:
        return (f"The top level is in use but the decoder barely reads it: it {top}, only "
                f"{against}; the bottom level does almost all the work.")
    return f"The two levels split the work: the top level {top}, {against}."


# -- chapter 5 ---------------------------------------------------------------------------------


def measured_order(what: str, values: dict[str, float],
                   spreads: dict[str, float] | None = None) -> str:
    """The order ``values`` put their items in (lower is better; ties as 'a = b'), and, with
    ``spreads`` (standard deviations over draws), the neighbours whose gap is no wider than
    their two spreads added: pairs the draws do not separate. Without spreads, how many times
    the lowest the highest is. One sentence, ending in a full stop."""
    measured = {k: v for k, v in values.items() if _finite(v)}
    missing = [k for k in values if k not in measured]
    if not measured:
        sentence = not_measured(what)
        return f"{sentence[0].upper()}{sentence[1:]}."
    tail = f"; {_listed(missing)} not measured" if missing else ""
    if len(measured) == 1:
        (name, value), = measured.items()
        return f"On this run only {name} was measured ({what} {value:.3g}{tail})."
    order = sorted(measured, key=measured.get)
    text = order[0]
    for a, b in zip(order, order[1:], strict=False):
        text += f" {'=' if measured[a] == measured[b] else '<'} {b}"
    head = f"On this run {what} orders them {text} (lower is better{tail})"
    if spreads is None:
        low, high = measured[order[0]], measured[order[-1]]
        if 0 < low < high:
            return f"{head}; the highest is {high / low:.1f} times the lowest."
        return f"{head}."
    spread = {k: spreads.get(k, math.nan) for k in order}
    unknown = [k for k in order if not _finite(spread[k])]
    if unknown:
        return f"{head}; the spread of {_listed(unknown)} was not measured."
    close = [f"{a} and {b}" for a, b in zip(order, order[1:], strict=False)
             if measured[b] - measured[a] <= spread[a] + spread[b]]
    if close:
        return (f"{head}; the draws do not separate {' nor '.join(close)}: "
                f"{'their gap is' if len(close) == 1 else 'each gap is'} no wider than the "
                "two standard deviations added.")
    return f"{head}, and every gap is wider than the two standard deviations added."


def label_saving_sentence(no_label: float, given_class: float, classes: int,
                          label_dropout: float) -> str:
    """What knowing the class saves VQ-VAE-2's priors (bits per image), against log2 C: the
    most a label can save a coherent model, whose "no label" prediction is the mixture of its
    class predictions (the saving is then E log p(c | y)/p(c) = E log p(y | c)/p(y) ≤ log2 C).
    A larger saving says the "no label" prior is undertrained; ``label_dropout`` is the share
    of training images it saw without their class."""
    if not _finite(no_label, given_class) or not _finite(classes) or classes < 1:
        return not_measured("what the label saves")
    gain, bound = no_label - given_class, math.log2(classes)
    if gain <= 0:
        return f"on this run knowing the label saves nothing ({gain:+.1f} bits)"
    told = (f"knowing the label saves {gain:.1f} bits; a label can save a coherent model "
            "(one whose \"no label\" prediction is the average of its class predictions) at "
            f"most log2 of the {classes} classes, {bound:.1f} bits")
    if gain <= bound:
        return (f"{told}, and within that bound the saving is what the codes tell about the "
                "class")
    seen = (f", having seen \"no label\" in place of the class on only {label_dropout:.0%} "
            "of the training images (its label dropout)" if _finite(label_dropout) else "")
    return (f"{told}. A larger saving tells nothing about the class: it says the \"no label\" "
            f"prior is undertrained{seen}")


def vq_rate_sentence(no_label: float, with_class: float, classes: int) -> str:
    """VQ-VAE-2's rate as the shorter of the two codes a receiver can decode without being
    told the class: the grids under the "no label" priors, or the class sent first (log2 C
    bits) and the grids given it."""
    if not _finite(with_class):
        return not_measured("VQ-VAE-2's code length")
    sent = (f"the class sent first ({math.log2(classes):.1f} bits) and the grids given it "
            f"({with_class:.0f} bits in all)")
    if not _finite(no_label):
        return (f"These priors learnt no \"no label\", so the one code that needs no class "
                f"at the receiver is {sent}; that is VQ-VAE-2's rate")
    both = (f"Two codes need no class at the receiver: the grids under the priors' \"no "
            f"label\" ({no_label:.0f} bits), and {sent}. Either can be decoded, so VQ-VAE-2's "
            "rate is the shorter")
    if f"{no_label:.0f}" == f"{with_class:.0f}":
        return f"{both}; here both take {min(no_label, with_class):.0f} bits"
    shorter = "the \"no label\" code" if no_label < with_class else "the class sent first"
    return f"{both}: {shorter}, {min(no_label, with_class):.0f} bits"


def middle_frame_sentence(middle: dict[str, float], floor: float) -> str:
    """The verdict on the middle frames (t = 0.5) of straight paths: which latent paths land
    closer to real images (a smaller Fréchet distance) than the pixel blend's, ``middle``
    holding "pixels" and each model's distance; ``floor``: real images against real ones."""
    paths = {k: v for k, v in middle.items() if k != "pixels" and _finite(v)}
    if not _finite(middle.get("pixels", math.nan), floor) or not paths:
        return f"{not_measured('the middle frames')}."
    pixels = middle["pixels"]
    closer = [k for k, v in paths.items() if v < pixels]
    if len(closer) == len(paths):
        head = (f"{'Every latent path' if len(paths) > 1 else f'The {closer[0]} path'} "
                "lands closer to real images at t = 0.5 than the pixel blend")
    elif closer:
        head = (f"Only {_listed(closer)} land{'s' if len(closer) == 1 else ''} closer to real "
                "images at t = 0.5 than the pixel blend")
    else:
        head = "No latent path lands closer to real images at t = 0.5 than the pixel blend"
    best = min(paths, key=paths.get)
    gap = paths[best] / floor if floor > 0 else math.inf
    if paths[best] <= floor:
        return f"{head}, and {best}'s middle frames are as close as real images are."
    return (f"{head}; the closest, {best}'s, is still {gap:.1f} times the distance between "
            "two sets of real images.")


def network_sizes_sentence(parameters: dict[str, int]) -> str:
    """How far apart the networks' sizes are: the largest against the smallest."""
    counts = {k: v for k, v in parameters.items() if _finite(v)}
    if not counts:
        return not_measured("the networks' sizes")
    if len(counts) == 1:
        (name, count), = counts.items()
        return f"{name} has {count:,} parameters, and there is no other network to set it beside"
    large, small = max(counts, key=counts.get), min(counts, key=counts.get)
    if counts[large] == counts[small]:
        return f"all of them have {counts[large]:,} parameters"
    if counts[small] == 0:
        return f"{large} has {counts[large]:,} parameters and {small} none"
    return (f"{large} has {counts[large] / counts[small]:.1f} times the parameters of {small} "
            f"({counts[large]:,} against {counts[small]:,})")


def losses_sentence(losses: dict[str, str]) -> str:
    """Which models were trained on the per-pixel MSE that chapter 5 scores them all in
    (``losses``: {model: its training loss in words, as the fairness table writes it})."""
    if not losses:
        return not_measured("the training losses")
    on_mse = [k for k, v in losses.items() if str(v).startswith("per-pixel MSE")]
    other = [k for k in losses if k not in on_mse]
    if not other:
        return "every one of them was trained on the per-pixel MSE that scores it here"
    if not on_mse:
        return "none of them was trained on the per-pixel MSE that scores them here"
    was = lambda names: "was" if len(names) == 1 else "were"  # noqa: E731
    return (f"all are scored here in per-pixel MSE, which {_listed(on_mse)} {was(on_mse)} "
            f"trained on and {_listed(other)} {was(other)} not")


def scarce_labels_sentence(lead_few: float, lead_all: float) -> str:
    """Whether a code earns its keep where labels are scarce: the best code's lead over the
    best pixel input (accuracy, as a fraction) with few labels and with all of them."""
    if not _finite(lead_few, lead_all):
        return f"{not_measured('the codes against the pixels')}."
    few, every = f"{100 * lead_few:+.1f}", f"{100 * lead_all:+.1f}"
    if lead_few <= 0:
        return (f"So on this run no code beats the pixels even where labels are scarce ({few} "
                f"points with few labels, {every} with all of them).")
    if lead_few > lead_all:
        return (f"So on this run a code earns its keep where labels are scarce: the best code "
                f"leads the pixels by {few} points with few labels and {every} with all of "
                "them. The compression has already grouped images that look alike, and a "
                "handful of examples per class only has to name the groups; with many labels a "
                "classifier can learn much of that grouping from the pixels itself.")
    return (f"On this run the best code's lead over the pixels is no smaller with every label "
            f"({every} points) than with few ({few}), so its advantage is not one of scarce "
            "labels.")
