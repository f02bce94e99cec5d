"""What the chapters claim, checked on the quick build's results tables and glued sentences.

Each test reads a chapter's results CSV (and, where the text adapts to the numbers, the
sentence the run glued into the page) and fails when a model is worse than the chapter says.
"""
import ast
import json
from functools import cache
from pathlib import Path

import nbformat
import pytest

from latent_notes.book.results import read_results
from latent_notes.experiments import published

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.book


@cache
def dataset_of(chapter: str) -> str:
    """The data set the chapter's page was executed on (its edition record)."""
    path = ROOT / "_build" / "reports" / f"{chapter}.edition.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make book` (or `make test`, which builds it).")
    return json.loads(path.read_text())["dataset"]


def rows(chapter: str, **match):
    path = ROOT / "results" / f"{chapter}.csv"
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
    notebook = nbformat.read(ROOT / "_build" / "src" / "book" / f"{chapter}.ipynb", as_version=4)
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
    assert accuracy.value.min() >= 0.90  # 8x8 digits, 8 epochs: every CNN reads them
    assert value("01_cnn_warmup", model="cnn_deep", metric="test_accuracy") >= 0.93


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
    notebook = nbformat.read(ROOT / "_build" / "src" / "book" / "03_vae.ipynb", as_version=4)
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


def fid_rows(setting: str, models) -> dict:
    """{model: (mean, std)} of the Fréchet distances chapter 5 recorded for ``setting``."""
    return {m: (value("05_comparison", model=m, metric="fid_cnn", setting=setting),
                value("05_comparison", model=m, metric="fid_cnn_std", setting=setting))
            for m in models}


def test_chapter_5_generation_rows_are_means_and_stds_over_five_draws():
    for model, setting in [("train images", "floor"), *((m, "unconditional")
                                                          for m in FAMILY_NAMES),
                           ("ae", "unconditional, N(0,I)"), ("vqvae2", "conditional")]:
        draws = value("05_comparison", model=model, metric="fid_draws", setting=setting)
        std = value("05_comparison", model=model, metric="fid_cnn_std", setting=setting)
        assert draws == 5, (model, setting, draws)
        assert std > 0, (model, setting, std)  # five different draws, a spread


def test_chapter_5_samples_are_farther_than_real_images_and_the_verdicts_match():
    unconditional = fid_rows("unconditional", FAMILY_NAMES)
    conditional = fid_rows("conditional", ["vqvae2"])["vqvae2"]
    floor = fid_rows("floor", ["train images"])["train images"]
    assert all(mean > floor[0] for mean, _ in unconditional.values()), (unconditional, floor)
    assert conditional[0] > floor[0], (conditional, floor)
    text = glued("05_comparison")
    means = {m: mean for m, (mean, _) in unconditional.items()}
    order = sorted(means, key=means.get)
    verdict = text["fid_verdict"]
    assert verdict.startswith("This run agrees") == (order == ["vqvae2", "vae", "ae"])
    assert verdict.startswith("This run agrees") or " < ".join(order) in verdict
    for a, b in zip(order, order[1:], strict=False):  # a pair the draws do not separate
        close = means[b] - means[a] <= unconditional[a][1] + unconditional[b][1]
        assert (f"{a} and {b}" in verdict) == close, (a, b, verdict)
    closer = conditional[0] < unconditional["vqvae2"][0]
    assert text["conditional_text"].startswith("closer") == closer
    mse = {m: value("05_comparison", model=m, metric="test_mse", setting="")
           for m in FAMILY_NAMES}
    assert text["best_recon"] == min(mse, key=mse.get)


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
    closer = [m for m in ("ae", "vae", "vqvae2") if path[m] < path["pixels"]]
    if len(closer) == 3:
        assert text["path_verdict"].startswith("Every latent path")
    elif closer:
        assert text["path_verdict"].startswith(f"Only {', '.join(closer)}")
    else:
        assert text["path_verdict"].startswith("No latent path")
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
    assert text["rate_vq_how"] == "with no label"  # the priors learnt "no label" (chapter 4)
    assert f"{vq['codes']:.0f}" == f"{float(text['rate_vq']):.0f}"
    gain = vq["codes"] - vq["codes|class"]
    assert (f"saves {gain:.1f} bits" in text["label_saving"]) == (gain > 0)
    share = vq["codes"] / vq["storage"]
    assert f"{share:.0%} of their" in text["storage_text"]
    assert ("what the priors learnt" in text["storage_text"]) == (share < 1)
    mse = {m: value("05_comparison", model=m, metric="test_mse", setting="")
           for m in ("vae", "vqvae2")}
    costlier, sharper = vq["codes"] > vae, mse["vqvae2"] < mse["vae"]
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
    vq_bits = value("05_comparison", model="vqvae2", metric="rate_bits", setting="codes")
    text = glued("05_comparison")["spatial_rate_text"]
    assert f"carries {bits:.0f} bits per test image" in text, text
    assert f"({vq_bits:.0f}, no label)" in text, text  # the priors' unconditional length
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
