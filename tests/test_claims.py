"""What the chapters claim, checked on the quick build's results tables and glued sentences.

Each test reads a chapter's results CSV (and, where the text adapts to the numbers, the
sentence the run glued into the page) and fails when a model is worse than the chapter says.
"""
import ast
import json
import os
from functools import cache
from pathlib import Path

import nbformat
import pytest

from latent_notes.book.results import read_results
from latent_notes.experiments import published

ROOT = Path(__file__).resolve().parent.parent
# the build these claims are read from: `make book`'s, or another one's (scripts/claims_matrix.py)
BUILD = Path(os.environ.get("LATENT_NOTES_BUILD_DIR") or ROOT / "_build")
RESULTS = Path(os.environ.get("LATENT_NOTES_CLAIMS_RESULTS") or ROOT / "results")
pytestmark = pytest.mark.book


@cache
def dataset_of(chapter: str) -> str:
    """The data set the chapter's page was executed on (its edition record)."""
    path = BUILD / "reports" / f"{chapter}.edition.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make book` (or `make test`, which builds it).")
    return json.loads(path.read_text())["dataset"]


def rows(chapter: str, **match):
    path = RESULTS / f"{chapter}.csv"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make book` (or `make test`, which builds it).")
    table = read_results(path)
    table = table[table.dataset == dataset_of(chapter)]
    if table.empty:
        pytest.fail(f"{path} holds no row of {dataset_of(chapter)}, the data set its page was "
                    "executed on: run `make book` again.")
    for column, value in match.items():
        table = table[table[column] == value]
    return table


def value(chapter: str, **match) -> float:
    found = rows(chapter, **match)
    assert len(found) == 1, f"expected one row for {match} in {chapter}, found {len(found)}"
    return float(found.value.iloc[0])


def glued(chapter: str) -> dict:
    """The values a chapter's run glued into its text: {name: plain-text value}."""
    notebook = nbformat.read(BUILD / "src" / "book" / f"{chapter}.ipynb", as_version=4)
    found = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = output["data"]  # myst-nb stores glue(..., display=False) under a prefix
                text = data.get("text/plain", data.get("application/papermill.record/text/plain"))
                found[name] = ast.literal_eval(text) if text and text[0] in "'\"" else text
    return found


def test_chapter_1_accuracy_above_its_floor():
    accuracy = rows("01_cnn_warmup", metric="test_accuracy")
    assert set(accuracy.model) == {"cnn5x5", "cnn3x3", "cnn_deep"}
    assert accuracy.value.min() >= 0.90  # the quick profile's digits: every CNN reads them
    assert value("01_cnn_warmup", model="cnn_deep", metric="test_accuracy") >= 0.93


def test_chapter_1_confidence_sentence_reads_the_confidences_it_recorded():
    text = glued("01_cnn_warmup")
    best, wrong = text["best_arch"], int(text["n_wrong"])
    said = text["confidence_text"]
    if wrong == 0:
        assert said.startswith("it got every test image right"), said
        return
    on = {w: value("01_cnn_warmup", model=best, metric=f"confidence_{w}")
          for w in ("wrong", "right")}
    assert f"mean confidence is {on['wrong']:.0%}, against {on['right']:.0%}" in said, said
    assert ("less sure when it is wrong" in said) == (on["wrong"] < on["right"] - 0.05), said


def test_chapter_1_accuracies_come_with_standard_errors_and_say_which_overlap():
    import math

    accuracy = rows("01_cnn_warmup", metric="test_accuracy").set_index("model").value
    text = glued("01_cnn_warmup")
    n = int(text["n_test"])
    se = {m: math.sqrt(p * (1 - p) / n) for m, p in accuracy.items()}
    for m in accuracy.index:
        assert value("01_cnn_warmup", model=m, metric="test_accuracy_se") == pytest.approx(se[m])
    sentence = text["accuracy_text"]
    for m, p in accuracy.items():
        assert f"{m} {p:.2%} ± {se[m]:.2%}" in sentence, sentence
    assert f"on n = {n:,} test images" in sentence, sentence
    top = accuracy.max()
    best = [m for m, p in accuracy.items() if p == top]
    assert text["best_arch"] in best
    close = [m for m, p in accuracy.items()
             if m not in best and top - p <= se[best[0]] + se[m]]
    assert ("do not tell them apart" in sentence) == bool(close), sentence
    if close:  # exactly the networks within the error bars are named
        listed = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} and {close[-1]}"
        bars = "bar of" if len(close) == 1 else "bars of"
        assert f"the error {bars} {listed} overlap" in sentence, sentence


def test_chapter_2_autoencoder_beats_pca_at_the_smallest_codes_and_says_so():
    ae = rows("02_autoencoder", model="ae", metric="test_mse").set_index("setting").value
    pca = rows("02_autoencoder", model="ae", metric="pca_test_mse").set_index("setting").value
    smallest = min(ae.index, key=lambda s: int(s.split("=")[1]))
    assert ae[smallest] < pca[smallest], "a non-linear code should beat PCA at the smallest size"
    assert (ae < pca).any()
    text = glued("02_autoencoder")
    size = text["traversal_latent_size"]
    assert text["ae_vs_pca"] == ("below" if ae[f"latent={size}"] < pca[f"latent={size}"]
                                 else "above")


def test_chapter_2_probe_sentence_matches_its_numbers():
    probes = rows("02_autoencoder", model="ae", metric="probe_accuracy").value
    pixels = value("02_autoencoder", model="pixels", metric="probe_accuracy")
    assert probes.max() > 0.5  # far above chance (10 %)
    assert glued("02_autoencoder")["probe_vs_pixels"] == ("above" if probes.max() > pixels
                                                         else "below")


def test_chapter_2_random_codes_and_midpoints_sentence_reads_its_distances():
    text = glued("02_autoencoder")
    size = text["traversal_latent_size"]
    d = {where: value("02_autoencoder", model="ae", metric="nearest_code_distance",
                      setting=f"latent={size},{where}")
         for where in ("test codes", "N(0,I)", "fitted", "midpoints")}
    assert all(v > 0 for v in d.values()), d
    said = text["distances_text"]
    test = d["test codes"]
    for where, v in d.items():
        assert f"{v:.2f}" in said, (where, said)

    def as_far(v):
        if abs(v - test) <= 0.1 * test:
            return "about as far as"
        return f"{v / test:.1f} times as far as" if v > test else "closer than"

    assert f"{d['N(0,I)']:.2f} from the nearest training code on average, " \
        f"{as_far(d['N(0,I)'])} the codes of real test images" in said, said
    assert f"lie {d['fitted']:.2f}, {as_far(d['fitted'])} them" in said, said
    assert ("even the fitted Gaussian's draws" in said) == (d["fitted"] > 1.1 * test), said
    assert f"lie {d['midpoints']:.2f}, {as_far(d['midpoints'])} the test codes" in said, said
    assert ("leaves the region" in said) == (d["midpoints"] > 1.1 * test), said


def test_chapter_3_likelihood_of_binarised_images_is_below_its_bound_and_says_so():
    nll = value("03_vae", metric="nll_is_binarised")
    elbo = value("03_vae", metric="neg_elbo_binarised")
    assert nll < elbo, "the importance-sampled NLL must be a tighter bound than -ELBO"
    text = glued("03_vae")
    sentence = text["binary_sentence"]
    assert ("is not below" not in sentence) == (nll < elbo), sentence
    assert f"{nll:.1f} nats" in sentence and f"{elbo:.1f} nats" in sentence, sentence
    assert f"{elbo - nll:.2f} nats below" in sentence, sentence
    # both numbers are on the same images, the ones the text names
    assert int(text["n_eval"]) == value("03_vae", metric="is_images")
    assert int(text["is_samples"]) == value("03_vae", metric="is_samples")


def test_chapter_3_prints_the_published_likelihoods_with_their_citations():
    text = glued("03_vae")
    for row in published.MNIST_NLL:
        assert f"{row.nll:.2f}" in text["published_text"], row
    assert published.BURDA_2016 in text["published_text"]
    assert published.PYTHAE_2022 in text["published_text"]
    assert ("not MNIST" in text["published_sentence"]) == (dataset_of("03_vae") != "mnist")
    notebook = nbformat.read(BUILD / "src" / "book" / "03_vae.ipynb", as_version=4)
    table = next(cell for cell in notebook.cells
                 if "published.published_table()" in cell.source)
    shown = "".join(output.get("data", {}).get("text/plain", "")
                    for output in table.outputs)
    assert "89.78" in shown and "84.78" in shown and "this run" in shown, shown


def test_chapter_3_latent_size_sentence_reads_its_sweep():
    sweep = rows("03_vae", model="vae")
    sweep = sweep[sweep.setting.str.startswith("size sweep,latent=")]
    wide = sweep.pivot_table(index="setting", columns="metric", values="value")
    wide.index = wide.index.str.extract(r"latent=(\d+)", expand=False).astype(int)
    wide = wide.sort_index()
    assert len(wide) >= 2 and (wide.active_units <= wide.index).all()
    assert (wide.rate_bits > 0).all() and (wide.test_mse > 0).all()
    first, last = wide.iloc[0], wide.iloc[-1]
    text = glued("03_vae")["size_sentence"]
    assert text.startswith(f"from D = {wide.index[0]} to D = {wide.index[-1]} the rate goes "
                           f"from {first.rate_bits:.1f} to {last.rate_bits:.1f} bits")
    peak = wide.rate_bits.idxmax()
    gains = wide.rate_bits.pct_change().iloc[1:].to_numpy()
    flat = [i for i in range(len(gains)) if (gains[i:] < 0.1).all()]
    if peak < wide.index[-1]:
        assert f"The rate peaks at D = {peak} ({wide.rate_bits.max():.1f} bits)" in text
        assert f"lowest at D = {wide.test_mse.idxmin()}" in text
    elif flat:
        assert f"Beyond D = {wide.index[flat[0]]} each step" in text
    else:
        assert "still growing" in text
    units = int(last.active_units)
    assert f"{units} of the {wide.index[-1]} dimensions are active" in text
    # the size the β sweep used is one model: the same numbers in both sweeps
    size = int(glued("03_vae")["latent_size"])
    if size in wide.index:
        beta_one = value("03_vae", model="vae", metric="test_mse", setting=f"beta=1,latent={size}")
        assert wide.loc[size, "test_mse"] == pytest.approx(beta_one)


def test_chapter_3_beta_trades_rate_for_distortion():
    kl = rows("03_vae", metric="kl").set_index("setting").value
    recon = rows("03_vae", metric="recon").set_index("setting").value
    beta = lambda s: float(s.split(",")[0].split("=")[1])  # noqa: E731
    low, high = min(kl.index, key=beta), max(kl.index, key=beta)
    assert kl[high] < kl[low] and recon[high] > recon[low]


def chapter_3(metric: str, setting: str, model: str = "vae") -> float:
    return value("03_vae", model=model, metric=metric, setting=setting)


def chapter_3_by_beta(metric: str) -> dict:
    """{β: value} of the β sweep's models (settings beta=B,latent=D)."""
    found = rows("03_vae", model="vae", metric=metric)
    found = found[found.setting.str.fullmatch(r"beta=[^,]+,latent=\d+")]
    assert len(found) >= 2, f"the β sweep recorded no {metric} per β"
    return {float(s.split(",")[0].split("=")[1]): v
            for s, v in zip(found.setting, found.value, strict=True)}


def test_chapter_3_beta_sentences_follow_the_sweeps_numbers():
    from latent_notes.book import sentences

    text = glued("03_vae")
    kl, recon, mse = (chapter_3_by_beta(m) for m in ("kl", "recon", "test_mse"))
    low, high = min(kl), max(kl)
    assert text["tradeoff_sentence"] == sentences.beta_tradeoff_sentence(kl, recon)
    traded = kl[high] < kl[low] and recon[high] > recon[low]
    assert text["tradeoff_sentence"].startswith("on this run") == (not traded)
    sentence = text["beta_mse_sentence"]
    assert sentence == sentences.beta_reconstruction_sentence(mse)
    assert all(f"{v:.4f} at β = {b:g}" in sentence for b, v in mse.items()), sentence
    if abs(mse[high] - mse[low]) > 0.1 * max(mse[high], mse[low]):
        assert sentence.startswith("the smaller β reconstructs more closely") == (
            mse[low] < mse[high]), sentence
    else:
        assert "alike" in sentence, sentence
    units = {b: int(v) for b, v in chapter_3_by_beta("active_units").items()}
    assert text["units_sentence"] == sentences.beta_units_sentence(
        units[high], units[1.0], int(text["latent_size"]), kl[high], kl[1.0])
    assert text["units_sentence"].startswith("only") == (units[high] < units[1.0])


def test_chapter_3_judge_sentences_follow_what_it_read():
    from latent_notes.book import sentences

    text = glued("03_vae")
    confidence = float(text["confidence"])
    same = chapter_3_by_beta("recon_same_label")
    drawn = chapter_3_by_beta("sample_confident_share")
    assert all(0 <= v <= 1 for v in [*same.values(), *drawn.values()])
    assert text["identity_sentence"] == sentences.beta_identity_sentence(same)
    assert text["samples_sentence"] == sentences.beta_samples_sentence(drawn, confidence)
    low, high = min(same), max(same)
    if abs(same[high] - same[low]) > 0.05:
        assert text["identity_sentence"].endswith("keeps less of the digit") == (
            same[high] < same[low])
    two_d = {label: chapter_3("sample_confident_share", f"2-D,{label}")
             for label in ("both", "reconstruction only")}
    assert text["two_d_samples_sentence"] == sentences.two_d_samples_sentence(
        two_d["both"], two_d["reconstruction only"], confidence)
    assert f"in {two_d['both']:.0%} of its prior samples" in text["two_d_samples_sentence"]
    paths = {kind: chapter_3("path_confident_share", f"beta=1,path={kind}")
             for kind in ("latent", "pixels")}
    pairs = int(chapter_3("path_pairs", "beta=1"))
    assert pairs > 0
    assert text["paths_sentence"] == sentences.interpolation_sentence(
        paths["latent"], paths["pixels"], pairs, confidence)


def test_chapter_3_two_d_models_and_the_manifold_sentences_follow_their_numbers():
    from latent_notes.book import sentences

    text = glued("03_vae")
    sigma = {label: chapter_3("sigma_median", f"2-D,{label}")
             for label in ("reconstruction only", "both", "KL only")}
    assert sigma["reconstruction only"] > 0
    assert text["sigma_beta0_sentence"] == sentences.sigma_collapse_sentence(
        sigma["reconstruction only"], sigma["both"])
    assert f"is {sigma['reconstruction only']:.3g}" in text["sigma_beta0_sentence"]
    assert ("shrunk towards 0" in text["sigma_beta0_sentence"]) == (
        sigma["reconstruction only"] < 0.1)
    mse = {label: chapter_3("test_mse", f"2-D,{label}") for label in ("reconstruction only",
                                                                       "both")}
    size = int(text["latent_size"])
    full = chapter_3("test_mse", f"beta=1,latent={size}")
    assert text["two_numbers_sentence"] == sentences.two_numbers_sentence(
        mse["reconstruction only"], mse["both"], full, size)
    assert f"MSE of {mse['reconstruction only']:.4f} per pixel" in text["two_numbers_sentence"]
    pairs = chapter_3("pair_difference", "test images", model="data")
    samples = chapter_3("sample_difference", "2-D,KL only")
    assert text["kl_only_sentence"] == sentences.kl_only_sentence(samples, pairs)
    assert ("the same image for every code" in text["kl_only_sentence"]) == (
        samples < 0.1 * pairs)
    cells = int(chapter_3("manifold_cells", "2-D,both"))
    share = {label: chapter_3("manifold_confident_share", f"2-D,{label}")
             for label in ("both", "reconstruction only")}
    sentence = text["manifold_sentence"]
    assert sentence == sentences.manifold_sentence(share["both"], share["reconstruction only"],
                                                   cells, float(text["confidence"]))
    assert f"in {round(share['both'] * cells)} of the {cells} cells" in sentence, sentence
    neighbours = chapter_3("manifold_neighbour_difference", "2-D,both")
    assert text["neighbour_sentence"] == sentences.neighbour_sentence(neighbours, pairs)
    assert text["neighbour_sentence"].endswith("gradually") == (neighbours < 0.5 * pairs)


def test_chapter_3_push_denoising_and_colour_sentences_follow_their_numbers():
    from latent_notes.book import sentences

    text = glued("03_vae")
    for symbol, name in (("s", "mu_push_sentence"), ("k", "sigma_push_sentence")):
        found = {}
        for metric in ("push_change", "push_same_reading"):
            pushed = rows("03_vae", model="vae", metric=metric)
            pushed = pushed[pushed.setting.str.startswith(f"beta=1,{symbol}=")]
            found[metric] = {float(s.split("=")[-1]): v
                             for s, v in zip(pushed.setting, pushed.value, strict=True)}
        assert len(found["push_change"]) >= 2, symbol
        assert text[name] == sentences.perturbation_sentence(
            found["push_change"], found["push_same_reading"], symbol)
    psnr = {metric: rows("03_vae", model="vae", metric=metric).set_index("setting").value
            for metric in ("psnr_in", "psnr_out")}
    gains = {float(s.split("=")[1]): psnr["psnr_out"][s] - psnr["psnr_in"][s]
             for s in psnr["psnr_in"].index if s.startswith("denoise,sigma=")}
    assert gains and text["denoise_sentence"] == sentences.denoising_sentence(gains)
    assert ("at every noise level" in text["denoise_sentence"]) == all(
        g > 0.05 for g in gains.values())
    colour = rows("03_vae", model="vae", metric="test_mse")
    colour = colour[colour.setting.str.startswith("colour,")]
    if colour.empty:
        assert "trained no colour VAE" in text["colour_sentence"]
    else:
        setting = colour.setting.iloc[0]
        mse, mean_image = (chapter_3(m, setting) for m in ("test_mse", "mean_image_mse"))
        assert f"MSE of {mse:.4f} per pixel" in text["colour_sentence"]
        assert f"(PSNR {chapter_3('psnr', setting):.1f} dB)" in text["colour_sentence"]
        assert ("not below" in text["colour_sentence"]) == (mse >= mean_image)


def test_chapter_4_restarts_keep_more_codes_in_use():
    for level in ("top", "bottom"):
        with_restarts = value("04_vqvae2", metric=f"codebook_usage_{level}", setting="")
        without = value("04_vqvae2", metric=f"codebook_usage_{level}", setting="no_restart")
        assert with_restarts >= without, level
    assert (value("04_vqvae2", metric="codebook_usage_bottom", setting="")
            > value("04_vqvae2", metric="codebook_usage_bottom", setting="no_restart"))
    for level in ("top", "bottom"):  # restarts revive a codebook, not one code or two
        with_restarts = value("04_vqvae2", metric=f"codebook_usage_{level}", setting="")
        without = value("04_vqvae2", metric=f"codebook_usage_{level}", setting="no_restart")
        assert with_restarts >= 3 * without and with_restarts >= 0.25, (level, with_restarts)


FAMILY_NAMES = ("ae", "vae", "vqvae2")


def fid_rows(setting: str, models, metric: str = "fid_cnn") -> dict:
    """{model: (mean, std)} of the Fréchet distances (or ``metric``: kid_cnn) chapter 5
    recorded for ``setting``."""
    return {m: (value("05_comparison", model=m, metric=metric, setting=setting),
                value("05_comparison", model=m, metric=f"{metric}_std", setting=setting))
            for m in models}


def assert_measured_order(sentence: str, scores: dict):
    """``sentence`` (sentences.measured_order) states the measured order of ``scores``
    {model: mean or (mean, std)}, lower first, and, with stds, names exactly the neighbours
    whose gap is within their two stds added."""
    means = {m: s[0] if isinstance(s, tuple) else s for m, s in scores.items()}
    order = sorted(means, key=means.get)
    said = order[0] + "".join(f" {'=' if means[a] == means[b] else '<'} {b}"
                              for a, b in zip(order, order[1:], strict=False))
    assert f"orders them {said} (lower is better" in sentence, sentence
    assert "expect" not in sentence, sentence  # the measured order, no expected one
    if all(isinstance(s, tuple) for s in scores.values()):
        close = [(a, b) for a, b in zip(order, order[1:], strict=False)
                 if means[b] - means[a] <= scores[a][1] + scores[b][1]]
        for a, b in zip(order, order[1:], strict=False):  # pairs the draws do not separate
            assert (f"{a} and {b}" in sentence) == ((a, b) in close), (a, b, sentence)
        assert ("every gap is wider" in sentence) == (not close), sentence


def test_chapter_5_generation_rows_are_means_and_stds_over_five_draws():
    for model, setting in [("train images", "floor"), *((m, "unconditional")
                                                          for m in FAMILY_NAMES),
                           ("ae", "unconditional, N(0,I)"), ("vqvae2", "conditional")]:
        draws = value("05_comparison", model=model, metric="fid_draws", setting=setting)
        assert draws == 5, (model, setting, draws)
        for metric in ("fid_cnn_std", "kid_cnn_std"):
            std = value("05_comparison", model=model, metric=metric, setting=setting)
            assert std > 0, (model, setting, metric, std)  # five different draws, a spread


def test_chapter_5_samples_are_farther_than_real_images_and_the_verdicts_match():
    unconditional = fid_rows("unconditional", FAMILY_NAMES)
    conditional = fid_rows("conditional", ["vqvae2"])["vqvae2"]
    floor = fid_rows("floor", ["train images"])["train images"]
    assert all(mean > floor[0] for mean, _ in unconditional.values()), (unconditional, floor)
    assert conditional[0] > floor[0], (conditional, floor)
    text = glued("05_comparison")
    assert_measured_order(text["fid_verdict"], unconditional)
    kid = fid_rows("unconditional", FAMILY_NAMES, "kid_cnn")
    kid_floor = fid_rows("floor", ["train images"], "kid_cnn")["train images"]
    assert_measured_order(text["kid_verdict"], kid)
    assert all(mean > kid_floor[0] for mean, _ in kid.values()), (kid, kid_floor)
    closer = conditional[0] < unconditional["vqvae2"][0]
    assert text["conditional_text"].startswith("closer") == closer
    mse = {m: value("05_comparison", model=m, metric="test_mse", setting="")
           for m in FAMILY_NAMES}
    assert text["best_recon"] == min(mse, key=mse.get)
    assert_measured_order(text["recon_verdict"], mse)
    ratio = max(mse.values()) / min(mse.values())
    assert f"the highest is {ratio:.1f} times the lowest" in text["recon_verdict"]


def test_chapter_5_judge_and_fairness_table_are_read_from_the_models():
    """The judge is chapter 1's cnn_deep (whichever network scored best there), the same
    network on the same test images; the sentences on the networks follow the parameter
    counts chapter 5 recorded from the loaded models."""
    text = glued("05_comparison")
    assert text["judge_arch"] == "cnn_deep"
    judge = value("05_comparison", model="cnn_deep", metric="test_accuracy", setting="judge")
    assert judge == pytest.approx(value("01_cnn_warmup", model="cnn_deep",
                                        metric="test_accuracy"), abs=1e-9)
    assert float(text["judge_accuracy"]) == pytest.approx(judge)
    params = {m: value("05_comparison", model=m, metric="parameters", setting="")
              for m in FAMILY_NAMES}
    for level in ("top", "bottom"):
        assert value("05_comparison", model="vqvae2", metric="parameters",
                     setting=f"prior={level}") > 0
    large, small = max(params, key=params.get), min(params, key=params.get)
    sizes = text["sizes_text"]
    assert f"{large} has {params[large] / params[small]:.1f} times the parameters of {small}" \
        in sizes, sizes
    assert f"({int(params[large]):,} against {int(params[small]):,})" in sizes, sizes


def test_chapter_4_code_traversal_sentence_follows_its_measures():
    measured = {level: {m: value("04_vqvae2", model="vqvae2", metric=f"code_{m}",
                                 setting=f"traversal,{level}")
                        for m in ("share_inside", "area", "class_changed", "mean_change")}
                for level in ("top", "bottom")}
    text = glued("04_vqvae2")["walk_text"]
    for m in measured.values():
        assert 0 <= m["share_inside"] <= 1 and 0 < m["area"] < 1 and m["mean_change"] > 0
        assert f"another class for {m['class_changed']:.0%}" in text
        assert f"{m['share_inside']:.0%} of the change it makes" in text
    assert measured["top"]["area"] == pytest.approx(4 * measured["bottom"]["area"], rel=0.5)
    top, bottom = (measured[level]["class_changed"] for level in ("top", "bottom"))
    none = max(top, bottom) < 0.01
    assert ("No single code, top or bottom" in text) == none
    assert ("A top code can change which digit" in text) == (
        not none and top >= 2 * bottom and top >= 0.1)
    assert ("have not split shape from detail" in text) == (not none and top <= bottom)
    assert f"a top code moves each pixel by {measured['top']['mean_change']:.4f}" in text
    dense = all(m["share_inside"] > 2 * m["area"] for m in measured.values())
    assert ("Both levels act mostly where they sit" in text) == dense


def test_chapter_4_unconditional_samples_and_their_sentences_follow_the_run():
    seen = value("04_vqvae2", model="vqvae2", metric="classes_seen", setting="unconditional")
    text = glued("04_vqvae2")
    assert (f"reads all {int(seen)} classes" in text["coverage_text"]) == (seen == 10)
    assert seen == 10 or f"only {int(seen)} of the 10" in text["coverage_text"]
    high = value("04_vqvae2", model="vqvae2", metric="class_share_max", setting="unconditional")
    assert f"{high:.0%}" in text["coverage_text"]
    saved = {}  # bits per code the label saves the priors on the test codes
    for level in ("top", "bottom"):
        given = value("04_vqvae2", model="vqvae2", metric=f"prior_nll_{level}", setting="")
        free = value("04_vqvae2", model="vqvae2", metric=f"prior_nll_{level}",
                     setting="no_label")
        saved[level] = free - given
        assert f"{saved[level]:.2f}" in text["label_worth"].replace("+", "")
    assert text["label_worth"].startswith("the label saves") == (min(saved.values()) > 0)


def chapter_4_parameter(name: str):
    """A parameter chapter 4's page was executed with: papermill's injected cell, else the
    tagged parameters cell of the executed notebook."""
    notebook = nbformat.read(BUILD / "src" / "book" / "04_vqvae2.ipynb", as_version=4)
    found = {}
    for tag in ("parameters", "injected-parameters"):  # the injected values come last
        for cell in notebook.cells:
            if tag in cell.get("metadata", {}).get("tags", []):
                for node in ast.parse(cell.source).body:
                    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                        found[node.targets[0].id] = ast.literal_eval(node.value)
    return found[name]


def chapter_4_field(setting: str) -> dict[str, int]:
    """The receptive-field counts chapter 4 recorded under ``setting``."""
    found = rows("04_vqvae2", model="vqvae2", setting=setting)
    found = found[found.metric.str.startswith("field_")]
    return {m.removeprefix("field_"): int(v) for m, v in zip(found.metric, found.value,
                                                             strict=True)}


def assert_field_phrase(part: str, c: dict):
    """One design's or prior's phrase says what its counts say."""
    import re

    assert c["seen"] + c["blind"] + c["beyond"] == c["earlier"], c
    if c["blind"] == c["beyond"] == 0:
        assert f"sees all {c['earlier']} positions" in part, (part, c)
    else:
        assert f"sees {c['seen']} of the {c['earlier']} positions" in part, (part, c)
    assert ("no blind spot" in part or "blind spot" not in part) == (c["blind"] == 0), part
    assert bool(re.search(rf"\b{c['beyond']} lies? beyond", part)) == (c["beyond"] > 0), part


def test_chapter_4_receptive_fields_separate_the_blind_spot_from_what_lies_beyond():
    import re

    text = glued("04_vqvae2")
    plain, gated = (chapter_4_field(f"receptive field,{d}") for d in ("plain", "gated"))
    assert plain["blind"] > 0 and gated["blind"] == 0  # the plain design's hole, none in the gated
    assert plain["grid"] == gated["grid"] and plain["layers"] == gated["layers"]
    sentence = text["rf_text"]
    assert sentence.startswith(f"Through {plain['layers']} layers on a {plain['grid']}×"
                               f"{plain['grid']} grid"), sentence
    plain_part, gated_part = sentence.split("; the gated stack's ")
    assert_field_phrase(plain_part, plain)
    assert_field_phrase(gated_part, gated)
    assert sentence.endswith("Only the plain stack has a blind spot."), sentence
    # the book's own priors, at the last position of each grid, measured on their configs
    grids = {"top": int(text["top_grid"]), "bottom": int(text["bottom_grid"])}
    layers = chapter_4_parameter("prior_layers")
    colour = rows("04_vqvae2", model="vqvae2", metric="field_grid")
    colour = sorted({s.split(",", 2)[2] for s in colour.setting
                     if s.startswith("prior field,top,colour:")})
    assert len(colour) == 1, colour
    for suffix, name in (("", "prior_field_text"), (f",{colour[0]}", "colour_field_text")):
        sentence = text[name]
        short = []
        for level in ("top", "bottom"):
            c = chapter_4_field(f"prior field,{level}{suffix}")
            g, reach = c["grid"], min(layers, c["grid"] - 1)
            assert c["layers"] == layers and c["earlier"] == g * g - 1, c
            if not suffix:
                assert g == grids[level], (c, grids)
            # the gated field: the L + 1 rows above (as many as there are) by L + 1 columns,
            # and L positions to the left in the last row
            seen = min(layers + 1, g - 1) * (reach + 1) + reach
            assert c["blind"] == 0 and c["seen"] == seen, c
            head = f"{level} prior ({g}×{g} grid, {layers} layers) "
            assert head in sentence, (head, sentence)
            assert_field_phrase(re.split(r" and the (?:colour )?bottom prior",
                                         sentence.split(head)[1])[0], c)
            if c["beyond"]:
                short.append(level)
        assert sentence.endswith("covers the whole grid.") == (not short), sentence
        verdict = sentence.split(". So the ")[-1] if short else ""
        assert all(level in verdict for level in short), sentence


def test_chapter_4_levels_verdict_reads_usage_bits_and_the_pixel_change():
    from latent_notes.book.sentences import MIN_CHANGE_RATIO, MIN_TOP_BITS

    usage = {level: value("04_vqvae2", metric=f"codebook_usage_{level}", setting="")
             for level in ("top", "bottom")}
    bits = value("04_vqvae2", model="vqvae2", metric="prior_nll_top", setting="no_label")
    change = {level: value("04_vqvae2", model="vqvae2", metric="code_mean_change",
                           setting=f"traversal,{level}") for level in ("top", "bottom")}
    verdict = glued("04_vqvae2")["levels_verdict"]
    for number in (f"uses {usage['top']:.0%} of its codes", f"{bits:.2f} bits per code",
                   f"{change['top']:.4f}", f"{change['bottom']:.4f}",
                   f"{usage['bottom']:.0%} of the bottom codes in use"):
        assert number in verdict, (number, verdict)
    collapsed = usage["top"] <= 0 or bits < MIN_TOP_BITS
    faint = not collapsed and change["top"] < MIN_CHANGE_RATIO * change["bottom"]
    assert verdict.startswith("The top level has collapsed") == collapsed, verdict
    assert verdict.startswith("The top level is in use but") == faint, verdict
    assert verdict.startswith("The two levels split the work") == (not collapsed and not faint)


def test_chapter_4_usage_course_and_bit_comparisons_follow_the_recorded_numbers():
    text = glued("04_vqvae2")
    first, last = ({level: value("04_vqvae2", model="vqvae2", metric=f"val_usage_{level}",
                                 setting=f"no_restart,{when}") for level in ("top", "bottom")}
                   for when in ("first epoch", "last epoch"))
    course = text["usage_course"]
    assert (f"{first['top']:.0%} of the top codes and {first['bottom']:.0%} of the bottom codes "
            f"after the first epoch and {last['top']:.0%} and {last['bottom']:.0%}") in course
    rose = [level for level in first if last[level] > first[level] + 0.01]
    assert course.endswith("did not come back.") == (not rose), course
    bits = {level: value("04_vqvae2", model="vqvae2", metric=f"prior_nll_{level}", setting="")
            for level in ("top", "bottom")}
    uniform = {level: float(text[f"uniform_{level}"]) for level in ("top", "bottom")}
    against = text["prior_vs_uniform"]
    assert (f"{bits['top']:.2f} bits per top code and {bits['bottom']:.2f} bits per bottom code, "
            f"against {uniform['top']:.2f} and {uniform['bottom']:.2f}") in against, against
    below = all(bits[k] < uniform[k] - 0.005 for k in bits)
    assert ("fewer bits per code at both levels" in against) == below, against
    colour = rows("04_vqvae2", model="vqvae2", metric="prior_nll_top")
    (setting,) = [s for s in colour.setting if s.startswith("colour:")]
    colour_bits = {level: value("04_vqvae2", model="vqvae2", metric=f"prior_nll_{level}",
                                setting=setting) for level in ("top", "bottom")}
    sentence = text["colour_bits"]
    assert (f"{colour_bits['top']:.2f} bits per top code and {colour_bits['bottom']:.2f} bits "
            f"per bottom code, against {bits['top']:.2f} and {bits['bottom']:.2f}") in sentence
    more = all(colour_bits[k] > bits[k] + 0.005 for k in bits)
    fewer = all(colour_bits[k] < bits[k] - 0.005 for k in bits)
    assert ("more bits per code at both levels" in sentence) == more, sentence
    assert ("fewer bits per code at both levels" in sentence) == fewer, sentence
    padded = int(text["padded_size"])
    assert int(text["side_factor"]) * int(text["top_grid"]) == padded
    assert (f"to {padded}," in text["padding_text"]
            or text["padding_text"] == f"A {padded}-pixel image needs no padding.")


def test_chapter_5_sets_chapter_4s_vqvae2_beside_chapter_2s_whole_sweep_and_says_so():
    vq = value("05_comparison", model="vqvae2", metric="test_mse", setting="")
    assert vq == pytest.approx(value("04_vqvae2", metric="test_mse", setting=""), rel=1e-6)
    ae = rows("02_autoencoder", model="ae", metric="test_mse")
    sizes = {int(setting.split("=")[1]): mse for setting, mse in zip(ae.setting, ae.value,
                                                                        strict=True)}
    as_good = sorted(size for size, mse in sizes.items() if mse <= vq)
    text = glued("05_comparison")["sweep_text"]
    assert (f"test MSE of {vq:.4f} is below the autoencoder's at "
            f"{len(sizes) - len(as_good)} of the {len(sizes)} code sizes") in text, text
    assert (f"has a code of {as_good[0]} numbers" if as_good
            else "no autoencoder of the sweep") in text, text


def test_chapter_5_label_efficiency_rows_and_its_sentences_match_the_numbers():
    inputs = ("pixels", "pca", "ae", "vae", "vqvae2")
    curve = rows("05_comparison")
    curve = curve[curve.setting.str.startswith("labels=")]
    settings = set(curve.setting)
    assert {"labels=1", "labels=10", "labels=all"} <= settings, settings
    for setting in settings:
        for metric in ("probe_accuracy", "knn_accuracy"):
            found = curve[(curve.setting == setting) & (curve.metric == metric)]
            assert sorted(found.model) == sorted(inputs), (setting, metric)
            assert found.value.between(0.1, 1.0).all(), found  # above chance on ten classes
            std = curve[(curve.setting == setting) & (curve.metric == f"{metric}_std")]
            assert sorted(std.model) == sorted(inputs) and (std.value >= 0).all()
    spread = curve[(curve.setting == "labels=10") & (curve.metric == "spread_accuracy")]
    assert sorted(spread.model) == sorted(inputs)
    # more labels never hurt the best input much: the curve rises from 1 to all labels
    best = {s: curve[(curve.setting == s) & curve.metric.isin(["probe_accuracy", "knn_accuracy"])]
            .groupby("model").value.max() for s in settings}
    assert (best["labels=all"] >= best["labels=1"] - 0.02).all(), best
    text = glued("05_comparison")
    for setting, name in (("labels=10", "few_verdict"), ("labels=all", "all_verdict")):
        codes, bases = best[setting][["ae", "vae", "vqvae2"]], best[setting][["pixels", "pca"]]
        sentence = text[name]
        assert f"{100 * codes.max():.1f}% against {100 * bases.max():.1f}%" in sentence, sentence
        lead = round(100 * (codes.max() - bases.max()), 1)
        assert ("leads" in sentence) == (lead > 0) and ("trails" in sentence) == (lead < 0)
        owner = {"ae": "the AE", "vae": "the VAE", "vqvae2": "VQ-VAE-2"}[codes.idxmax()]
        assert owner in sentence, sentence
    lead = {s: best[s][["ae", "vae", "vqvae2"]].max() - best[s][["pixels", "pca"]].max()
            for s in ("labels=10", "labels=all")}
    scarce = text["scarce_text"]
    assert f"{100 * lead['labels=10']:+.1f}" in scarce, scarce
    assert ("earns its keep" in scarce) == (0 < lead["labels=10"] and
                                            lead["labels=10"] > lead["labels=all"]), scarce
    assert ("no code beats the pixels" in scarce) == (lead["labels=10"] <= 0), scarce
    spread_code = spread[spread.model.isin(["ae", "vae", "vqvae2"])].value.max()
    spread_base = spread[spread.model.isin(["pixels", "pca"])].value.max()
    assert f"reaches {spread_code:.1%}" in text["spread_text"]
    assert ("not above" in text["spread_text"]) == (spread_code <= spread_base)


def test_one_probe_protocol_chapters_2_and_3_agree_with_chapter_5s_full_label_end():
    """Chapters 2, 3 and 5 probe with the same function and draws: with every label (the quick
    profile probes all of the digits' training codes), the numbers are the same."""
    end = {m: value("05_comparison", model=m, metric="probe_accuracy", setting="labels=all")
           for m in ("ae", "vae", "pixels")}
    assert value("02_autoencoder", model="ae", metric="probe_accuracy",
                 setting="latent=16") == pytest.approx(end["ae"], abs=1e-9)
    assert value("02_autoencoder", model="pixels", metric="probe_accuracy",
                 setting="") == pytest.approx(end["pixels"], abs=1e-9)
    assert value("03_vae", model="vae", metric="probe_accuracy",
                 setting="beta=1,latent=16") == pytest.approx(end["vae"], abs=1e-9)


def test_chapter_5_interpolation_and_unit_sentences_follow_their_numbers():
    path = {m: value("05_comparison", model=m, metric="interpolation_fid", setting="")
            for m in ("pixels", "ae", "vae", "vqvae2")}
    floor = value("05_comparison", model="train images", metric="interpolation_fid",
                  setting="floor")
    assert all(d > floor for d in path.values()), (path, floor)  # no path beats real images
    text = glued("05_comparison")
    # the verdict reads the middle frames (t = 0.5), not all inner frames
    middle = {m: value("05_comparison", model=m, metric="interpolation_fid_middle", setting="")
              for m in ("pixels", "ae", "vae", "vqvae2")}
    middle_floor = value("05_comparison", model="train images",
                         metric="interpolation_fid_middle", setting="floor")
    closer = [m for m in ("ae", "vae", "vqvae2") if middle[m] < middle["pixels"]]
    verdict = text["path_verdict"]
    if len(closer) == 3:
        assert verdict.startswith("Every latent path"), verdict
    elif closer:
        listed = closer[0] if len(closer) == 1 else f"{closer[0]} and {closer[1]}"
        assert verdict.startswith(f"Only {listed} land"), verdict
    else:
        assert verdict.startswith("No latent path"), verdict
    best = min(("ae", "vae", "vqvae2"), key=middle.get)
    if middle[best] <= middle_floor:
        assert f"{best}'s middle frames are as close as real images" in verdict, verdict
    else:
        assert (f"the closest, {best}'s, is still {middle[best] / middle_floor:.1f} times"
                in verdict), verdict
    share = value("05_comparison", model="vqvae2", metric="unit_share_inside", setting="")
    assert 0 < share <= 1
    changes = rows("05_comparison", metric="unit_change").set_index("model").value
    assert set(changes.index) == {"ae", "vae", "vqvae2"} and (changes > 0).all()
    if changes["vqvae2"] < 0.1 * min(changes["ae"], changes["vae"]):
        assert text["locality_text"].startswith("a top code barely matters")
    else:
        assert text["locality_text"].startswith("most of" if share > 0.5 else "on this run")


def test_chapter_5_rates_agree_with_chapter_3_and_its_rate_sentences_follow_the_numbers():
    import math

    import numpy as np

    vae = value("05_comparison", model="vae", metric="rate_bits", setting="")
    kl = value("03_vae", model="vae", metric="kl", setting="beta=1,latent=16")
    assert vae == pytest.approx(kl / math.log(2), rel=1e-4)  # one model, one test set
    vq = {s: value("05_comparison", model="vqvae2", metric="rate_bits", setting=s)
          for s in ("top|class", "bottom|top,class", "codes|class", "class+codes", "top",
                    "bottom|top", "codes", "storage")}
    assert vq["codes|class"] == pytest.approx(vq["top|class"] + vq["bottom|top,class"])
    assert vq["class+codes"] == pytest.approx(vq["codes|class"] + math.log2(10))
    assert vq["codes"] == pytest.approx(vq["top"] + vq["bottom|top"])
    text = glued("05_comparison")
    # the rate is the shorter of the two codes a receiver not told the class can decode
    rate = min(vq["codes"], vq["class+codes"])
    no_label = vq["codes"] <= vq["class+codes"]
    assert text["rate_vq_how"] == ("with no label" if no_label
                                   else "with the class sent first"), text["rate_vq_how"]
    assert f"{rate:.0f}" == f"{float(text['rate_vq']):.0f}"
    shorter = 'the "no label" code' if no_label else "the class sent first"
    tie = f"{vq['codes']:.0f}" == f"{vq['class+codes']:.0f}"
    assert (f"here both take {rate:.0f} bits" if tie else f"the shorter: {shorter}, "
            f"{rate:.0f} bits") in text["vq_rate_text"], text["vq_rate_text"]
    gain, bound = vq["codes"] - vq["codes|class"], math.log2(10)
    saving = text["label_saving"]
    assert (f"saves {gain:.1f} bits" in saving) == (gain > 0), saving
    # more than log2 C saved: no coherent model does that, the "no label" prior is undertrained
    assert ("undertrained" in saving) == (gain > bound), saving
    dropout = float(text["label_dropout"])  # read from the prior's config, not typed
    assert gain <= bound or f"on only {dropout:.0%} of the training images" in saving, saving
    share = rate / vq["storage"]
    assert f"{share:.0%} of their" in text["storage_text"]
    assert ("what the priors learnt" in text["storage_text"]) == (share < 1)
    mse = {m: value("05_comparison", model=m, metric="test_mse", setting="")
           for m in ("vae", "vqvae2")}
    costlier, sharper = rate > vae, mse["vqvae2"] < mse["vae"]
    assert ("bought with bits" in text["rd_verdict"]) == (costlier and sharper)
    assert ("fewer bits" in text["rd_verdict"]) == (not costlier and sharper)
    sweep = rows("03_vae", model="vae")
    sweep = sweep[sweep.setting.str.fullmatch(r"beta=[^,]+,latent=16")]
    wide = sweep.pivot_table(index="setting", columns="metric", values="value")
    wide.index = wide.index.str.extract(r"beta=([^,]+)", expand=False).astype(float)
    wide = wide.sort_index()
    trade = (np.diff(wide.kl) <= 0).all() and (np.diff(wide.test_mse) >= 0).all()
    assert ("points on one trade-off" in text["rd_trade"]) == bool(trade)


def backbone_errors() -> dict:
    """Chapter 5's test MSEs: the three families and VQ-VAE-2's backbone with the other two
    bottlenecks."""
    mse = {m: value("05_comparison", model=m, metric="test_mse", setting="")
           for m in ("ae", "vae", "vqvae2")}
    for bottleneck in ("continuous", "gaussian"):
        mse[bottleneck] = value("05_comparison", model="vqvae2", metric="test_mse",
                                setting=f"bottleneck={bottleneck}")
        psnr = value("05_comparison", model="vqvae2", metric="psnr",
                     setting=f"bottleneck={bottleneck}")
        assert 0 < mse[bottleneck] < 0.1 and psnr > 10, (bottleneck, mse, psnr)
    return mse


def test_chapter_5_same_backbone_sentences_follow_the_recorded_errors():
    mse = backbone_errors()
    ae, vq, spatial = mse["ae"], mse["vqvae2"], mse["continuous"]
    text = glued("05_comparison")
    gap = text["gap_sentence"]
    assert (f"continuous spatial AE reaches a test MSE of {spatial:.4f}, VQ-VAE-2 {vq:.4f} "
            f"and the AE with a vector code {ae:.4f}") in gap, gap
    if vq >= ae:
        assert "no gap for the spatial code to close" in gap, gap
    else:
        closed = (ae - spatial) / (ae - vq)
        if spatial <= vq:
            assert f"closes the whole gap and goes past VQ-VAE-2 ({closed:.0%}" in gap, gap
            assert f"error is {vq / spatial:.1f} times the continuous model's" in gap, gap
        elif spatial >= ae:
            assert "closes none of the gap" in gap, gap
        else:
            assert f"closes {closed:.0%} of the gap, and the other {1 - closed:.0%}" in gap
    sampled = value("05_comparison", model="vqvae2", metric="test_mse_sampled",
                    setting="bottleneck=gaussian")
    top, total = (value("05_comparison", model="vqvae2", metric="rate_bits",
                        setting=f"bottleneck=gaussian,{level}") for level in ("top", "total"))
    said = text["sampled_text"]
    assert f"its test MSE is {sampled:.4f}" in said, said
    assert ("times lower than from μ" in said) == (sampled < 0.9 * mse["gaussian"]), said
    assert ("higher than from μ" in said) == (sampled > 1.1 * mse["gaussian"]), said
    assert ("next to nothing" in said) == (sampled < 0.9 * mse["gaussian"]
                                           and top < 0.05 * total), said
    vae_text = text["spatial_vae_text"]
    assert f"reaches {mse['gaussian']:.4f}" in vae_text, vae_text
    assert ("times below the vector VAE" in vae_text) == (mse["gaussian"] < mse["vae"])
    side = "below" if mse["gaussian"] < vq else "above"
    assert f"{side} VQ-VAE-2's {vq:.4f}" in vae_text, vae_text


def test_chapter_5_spatial_vae_rate_sentence_follows_the_recorded_rates():
    mse = backbone_errors()
    bits, top, bottom = (value("05_comparison", model="vqvae2", metric="rate_bits",
                               setting=f"bottleneck=gaussian,{level}")
                         for level in ("total", "top", "bottom"))
    assert top >= 0 and bottom > 0 and top + bottom == pytest.approx(bits)
    sampled = value("05_comparison", model="vqvae2", metric="test_mse_sampled",
                    setting="bottleneck=gaussian")
    codes, with_class = (value("05_comparison", model="vqvae2", metric="rate_bits", setting=s)
                         for s in ("codes", "class+codes"))
    vq_bits = min(codes, with_class)  # VQ-VAE-2's rate: the shorter of its two codes
    text = glued("05_comparison")["spatial_rate_text"]
    assert f"carries {bits:.0f} bits per test image" in text, text
    how = "no label" if codes <= with_class else "class sent first"
    assert f"({vq_bits:.0f}, {how})" in text, text
    more = bits > vq_bits
    ratio = bits / vq_bits if more else vq_bits / bits
    assert f"{ratio:.1f} times {'more' if more else 'fewer'}" in text, text
    sharper = [m < mse["vqvae2"] for m in (mse["gaussian"], sampled)]
    assert ("reconstructs better, from μ and from a draw" in text) == all(sharper), text
    assert ("reconstructs worse, from μ and from a draw" in text) == (not any(sharper)), text
    assert ("only when decoded from" in text) == (any(sharper) and not all(sharper)), text


def test_chapter_3_traversal_per_beta_sentence_follows_its_measured_changes():
    found = rows("03_vae", model="vae", metric="traversal_change")
    assert len(found) >= 6, "a traversal per β: its largest- and smallest-KL rows"
    change = {tuple(s.split(",")): v for s, v in zip(found.setting, found.value, strict=True)}
    betas = sorted({beta for beta, _ in change}, key=lambda b: float(b.split("=")[1]))
    quiet = [change[(b, "smallest KL")] < 0.1 * change[(b, "largest KL")] for b in betas]
    sentence = glued("03_vae")["walk_sentence"]
    assert sentence.startswith("at every β") == all(quiet), sentence
    assert sentence.startswith("even the dimension") == (not any(quiet)), sentence


def test_chapter_2_noise_and_curves_sentences_follow_the_recorded_errors():
    from latent_notes.book import sentences

    noisy = rows("02_autoencoder", model="ae", metric="noisy_code_test_mse")
    errors = {float(setting.split("s=")[1]): v for setting, v in zip(noisy.setting, noisy.value,
                                                                       strict=True)}
    assert 0.0 in errors and len(errors) >= 2
    assert max(errors.values()) > errors[0.0]  # noise on the codes costs, at least at the end
    text = glued("02_autoencoder")
    assert text["noise_text"] == sentences.noise_sentence(errors)
    final = rows("02_autoencoder", model="ae", metric="final_val_mse")
    sizes = {int(setting.split("=")[1]): v for setting, v in zip(final.setting, final.value,
                                                                  strict=True)}
    assert text["curves_text"] == sentences.curves_sentence(sizes)
    smallest, largest = min(sizes), max(sizes)
    assert ("every larger code ends lower" in text["curves_text"]) == all(
        sizes[a] > sizes[b] for a, b in zip(sorted(sizes), sorted(sizes)[1:], strict=False))
    assert sizes[largest] < sizes[smallest]
