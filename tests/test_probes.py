"""The book's one probe protocol: labelled draws, CV-chosen probes, label spreading, and the
label-efficiency table and its sentences. Small data (sklearn's digits, blobs, circles)."""
import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits, make_circles
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

matplotlib.use("Agg")

from latent_notes.checks import ParameterError  # noqa: E402
from latent_notes.experiments import efficiency, probes  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    """600 training and 300 test images of sklearn's 8x8 digits, pixels in [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:600], order[600:900]
    return x[train], y[train], x[test], y[test]


# -- probe_indices -----------------------------------------------------------------------------

def test_probe_indices_are_class_balanced_seeded_and_nested():
    labels = torch.tensor([0] * 30 + [1] * 20 + [2] * 50)[torch.randperm(100)]
    idx = probes.probe_indices(labels, per_class=5, seed=3)
    assert np.array_equal(idx, np.sort(idx)) and len(set(idx)) == 15
    assert np.array_equal(np.bincount(labels.numpy()[idx]), [5, 5, 5])
    assert np.array_equal(idx, probes.probe_indices(labels, per_class=5, seed=3))
    assert not np.array_equal(idx, probes.probe_indices(labels, per_class=5, seed=4))
    # one seed: the 2-per-class draw is part of the 5-per-class one
    assert set(probes.probe_indices(labels, per_class=2, seed=3)) <= set(idx)
    subset = probes.probe_indices(labels, max_train=7, seed=0)
    assert len(set(subset)) == 7 and np.array_equal(subset, np.sort(subset))
    assert np.array_equal(probes.probe_indices(labels), np.arange(100))
    assert np.array_equal(probes.probe_indices(labels, max_train=500), np.arange(100))


def test_probe_indices_names_a_class_that_is_too_small():
    labels = np.array([0] * 30 + [1] * 20 + [2] * 50)
    with pytest.raises(probes.TooFewLabelsError, match=r"class 1 has only 20 images") as error:
        probes.probe_indices(labels, per_class=25)
    assert isinstance(error.value, ValueError) and "at most 20 per class" in str(error.value)
    with pytest.raises(ParameterError):
        probes.probe_indices(labels, per_class=0)


# -- fit_probe ---------------------------------------------------------------------------------

def test_probes_never_look_at_the_test_labels(digits, monkeypatch):
    x, y, x_test, y_test = digits
    fitted = []
    real_fit = probes.fit_probe

    def spy(kind, codes, labels, **kw):
        fitted.append((np.array(codes), np.array(labels), real_fit(kind, codes, labels, **kw)))
        return fitted[-1][2]

    monkeypatch.setattr(probes, "fit_probe", spy)
    for probe in (probes.linear_probe, probes.knn_probe):
        right = probe(x, y, x_test, y_test)
        flipped = probe(x, y, x_test, (y_test + 1) % 10)  # every test label wrong
        (a_x, a_y, a), (b_x, b_y, b) = fitted[-2:]
        assert np.array_equal(a_x, x) and np.array_equal(b_y, y)  # fitted on training codes only
        assert a.params == b.params and a.cv_accuracy == b.cv_accuracy
        assert right == a.score(x_test, y_test) > 0.9 and flipped < 0.1


@pytest.mark.parametrize("kind", ["logistic", "knn"])
def test_fit_probe_keeps_the_setting_with_the_best_cv_accuracy(digits, kind):
    x, y = digits[0][:300], digits[1][:300]
    probe = probes.fit_probe(kind, x, y, seed=1)
    key, values = (("C", probes.LOGISTIC_C) if kind == "logistic"
                   else ("n_neighbors", probes.KNN_NEIGHBOURS))
    folds = StratifiedKFold(probes.CV_FOLDS, shuffle=True, random_state=1)
    scores = {}  # scikit-learn's own estimators, cold-started, through its own CV
    for standardise in (True, False):
        for value in values:
            model = (LogisticRegression(C=value, max_iter=100) if kind == "logistic"
                     else KNeighborsClassifier(n_neighbors=value))
            pipe = make_pipeline(StandardScaler() if standardise else "passthrough", model)
            scores[standardise, value] = cross_val_score(pipe, x, y, cv=folds).mean()
    assert set(probe.params) == {"standardise", key}
    # k-NN: the same neighbours, so the same accuracies; logistic: warm-started fits along C
    # stop at max_iter nearer the optimum than cold ones, within a point of them here
    tolerance = 1e-9 if kind == "knn" else 0.01
    assert probe.cv_accuracy == pytest.approx(max(scores.values()), abs=tolerance)
    chosen = scores[probe.params["standardise"], probe.params[key]]
    assert chosen == pytest.approx(max(scores.values()), abs=tolerance)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_nearest_neighbours_predict_what_scikit_learn_predicts(digits, k):
    x, y, x_test = digits[0][:500], digits[1][:500], digits[2]
    ours = probes.NearestNeighbours(n_neighbors=k).fit(x, y).predict(x_test)
    theirs = KNeighborsClassifier(n_neighbors=k).fit(x, y).predict(x_test)
    assert np.mean(ours == theirs) >= 0.995  # equal but for ties in distance


def _scaled_blobs(informative_scale, noise_scale, noise_dims, n=300, seed=0):
    """Three classes apart in 2 dims of size ``informative_scale``, plus noise dims."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[0, 0], [1, 0], [0, 1]]) * 6.0
    signal = (centres[y] + rng.normal(0, 1, (n, 2))) * informative_scale
    return np.hstack([signal, rng.normal(0, noise_scale, (n, noise_dims))]), y


def test_knn_standardises_only_when_it_helps():
    # tiny noise dims: standardising blows them up to the signal's size, so raw codes win
    x, y = _scaled_blobs(informative_scale=1.0, noise_scale=1e-3, noise_dims=20)
    raw = probes.fit_probe("knn", x, y)
    assert raw.params["standardise"] is False and raw.cv_accuracy > 0.9
    # tiny signal dims next to big noise dims: only standardised codes see the classes
    x, y = _scaled_blobs(informative_scale=1e-3, noise_scale=1.0, noise_dims=2)
    scaled = probes.fit_probe("knn", x, y)
    assert scaled.params["standardise"] is True and scaled.cv_accuracy > 0.8


def test_fit_probe_with_one_label_per_class_and_a_cv_subsample(digits):
    x, y = digits[0], digits[1]
    one = probes.probe_indices(y, per_class=1)
    for kind, key, default in (("logistic", "C", 1.0), ("knn", "n_neighbors", 1)):
        probe = probes.fit_probe(kind, x[one], y[one])
        assert probe.params == {"standardise": True, key: default} and np.isnan(probe.cv_accuracy)
    three = probes.probe_indices(y, per_class=3)  # 3 folds: training folds hold 2 per class
    assert probes.fit_probe("knn", x[three], y[three]).params["n_neighbors"] <= 2
    big = probes.fit_probe("knn", x, y, cv_max=100)  # CV on 100, the choice refitted on 600
    assert big.model[-1].n_samples_fit_ == 600 and big.score(x, y) > 0.9
    with pytest.raises(ParameterError):
        probes.fit_probe("forest", x, y)


# -- label spreading ---------------------------------------------------------------------------

def test_label_spreading_beats_supervised_probes_with_one_label_per_class():
    x, y = make_circles(n_samples=900, factor=0.5, noise=0.04, random_state=0)
    train, test = np.arange(600), np.arange(600, 900)
    labelled = probes.probe_indices(y[train], per_class=1, seed=0)
    partial = np.full(600, -1)
    partial[labelled] = y[labelled]
    spread = probes.label_spreading(x[train], partial, x[test], y[test])
    linear = probes.linear_probe(x[labelled], y[labelled], x[test], y[test])
    knn = probes.knn_probe(x[labelled], y[labelled], x[test], y[test])
    assert spread > 0.97 and spread > max(linear, knn) + 0.15
    inductive = probes.label_spreading(x[train], partial, x[test], y[test], transductive=False)
    assert inductive > 0.95
    with pytest.raises(ParameterError):
        probes.label_spreading(x[train], np.full(600, -1), x[test], y[test])


def test_spreading_graph_is_symmetric_without_self_loops():
    x = np.random.default_rng(0).normal(size=(200, 70)).astype(np.float32)
    graph = probes._SpreadGraph(x[:150], x[150:], n_neighbors=5, standardise=False,
                                transductive=True, graph_dims=50, seed=0)
    assert graph.points.shape == (200, 50)  # wider codes: their first 50 principal components
    assert (graph.graph != graph.graph.T).nnz == 0 and graph.graph.diagonal().sum() == 0
    assert (graph.graph.sum(1) >= 5).all()
    as_is = probes._SpreadGraph(x[:150], x[150:], n_neighbors=5, standardise=False,
                                transductive=False, graph_dims=None, seed=0)
    assert as_is.points.shape == (150, 70)


# -- the label-efficiency table ----------------------------------------------------------------

def test_label_efficiency_rows_and_paired_draws(digits):
    x, y, x_test, y_test = digits
    rng = np.random.default_rng(0)
    noise = rng.normal(size=x.shape), rng.normal(size=x_test.shape)
    inputs = {"pixels": (x, x_test), "copy": (torch.tensor(x), x_test.copy()), "noise": noise}
    table = efficiency.label_efficiency(inputs, y, y_test, labels_per_class=(1, 3, None), repeats=2,
                                    repeats_large=1, large_from=100, spread_at=(3,), progress=False)
    assert list(table.columns) == ["model", "setting", "metric", "value", "labels_per_class",
                                   "draws"]
    assert not table.duplicated(["model", "setting", "metric"]).any()
    supervised = {"probe_accuracy", "probe_accuracy_std", "knn_accuracy", "knn_accuracy_std"}
    for model in inputs:
        for setting in ("labels=1", "labels=3", "labels=all"):
            rows = table[(table.model == model) & (table.setting == setting)]
            spread = {"spread_accuracy", "spread_accuracy_std"} if setting == "labels=3" else set()
            assert set(rows.metric) == supervised | spread
            assert set(rows.draws) == {1 if setting == "labels=all" else 2}
    everything = table[table.setting == "labels=all"].set_index(["model", "metric"])["value"]
    assert everything["pixels", "probe_accuracy"] > 0.9
    assert everything["noise", "knn_accuracy"] < 0.3
    assert everything["pixels", "probe_accuracy_std"] == 0.0
    assert set(table[table.setting == "labels=all"].labels_per_class) == {60.0}
    # paired: the same labelled draws for every input, so equal inputs score exactly alike
    by_input = table.pivot_table(index=["setting", "metric"], columns="model", values="value")
    assert np.array_equal(by_input["pixels"], by_input["copy"])
    # draw r is probe_indices(..., seed=seed + r), and the mean and sample std are over draws
    scores = [probes.linear_probe(x[i], y[i], x_test, y_test, seed=r)
              for r, i in enumerate(probes.probe_indices(y, per_class=3, seed=r) for r in range(2))]
    three = table[(table.model == "pixels") & (table.setting == "labels=3")].set_index("metric")
    assert three.value["probe_accuracy"] == pytest.approx(np.mean(scores))
    assert three.value["probe_accuracy_std"] == pytest.approx(np.std(scores, ddof=1))
    with pytest.raises(ParameterError):
        efficiency.label_efficiency(inputs, y, y_test, labels_per_class=(1,), spread_at=(10,))
    with pytest.raises(probes.TooFewLabelsError):
        efficiency.label_efficiency(inputs, y, y_test, labels_per_class=(1, 1000), spread_at=(),
                                progress=False)


def test_label_efficiency_is_the_same_table_in_one_process_or_two(digits, monkeypatch):
    x, y, x_test, y_test = digits
    inputs = {"pixels": (x, x_test), "half": (x[:, ::2], x_test[:, ::2])}
    kwargs = dict(labels_per_class=(1, 3, None), repeats=2, spread_at=(3,), progress=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert efficiency._workers(8) == 1
    alone = efficiency.label_efficiency(inputs, y, y_test, **kwargs)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(efficiency.os, "cpu_count", lambda: 2)
    assert efficiency._workers(8) == 2 and efficiency._workers(1) == 1
    pd.testing.assert_frame_equal(efficiency.label_efficiency(inputs, y, y_test, **kwargs), alone)


def test_pca_codes_fit_on_the_training_images():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(100, 1, 4, 4)), rng.normal(size=(30, 1, 4, 4))
    scores, test_scores = efficiency.pca_codes(torch.tensor(train), test, 3)
    assert scores.shape == (100, 3) and test_scores.shape == (30, 3)
    assert np.allclose(scores.mean(0), 0, atol=1e-5)  # centred by the training mean
    assert scores.var(0)[0] >= scores.var(0)[1] >= scores.var(0)[2]
    with pytest.raises(ParameterError):
        efficiency.pca_codes(train, test, 17)


# -- reading the table: hand-made numbers test the wording -------------------------------------

def _table(accuracies: dict) -> pd.DataFrame:
    """{(model, per_class): (probe, knn)} → a label-efficiency-shaped table."""
    rows = []
    for (model, k), (probe, knn) in accuracies.items():
        for metric, value in (("probe_accuracy", probe), ("knn_accuracy", knn),
                              ("probe_accuracy_std", 0.01), ("knn_accuracy_std", 0.0)):
            rows.append({"model": model, "setting": efficiency.setting_name(k), "metric": metric,
                         "value": value, "labels_per_class": 6000 if k is None else k, "draws": 1})
    return pd.DataFrame(rows)


def test_best_by_input_and_verdict_wording():
    table = _table({("pixels", 10): (0.60, 0.70), ("pca", 10): (0.62, 0.75),
                    ("ae", 10): (0.80, 0.853), ("vae", 10): (0.84, 0.81),
                    ("pixels", None): (0.92, 0.97), ("pca", None): (0.90, 0.975),
                    ("ae", None): (0.95, 0.96), ("vae", None): (0.975, 0.95)})
    best = efficiency.best_by_input(table, 10)
    assert best.to_dict() == pytest.approx({"pixels": 0.70, "pca": 0.75, "ae": 0.853, "vae": 0.84})
    assert efficiency.verdict(table, "labels=10") == (
        "the AE's code leads the best pixel input (PCA) by 10.3 points (85.3% against 75.0%)")
    assert efficiency.verdict(table, None).startswith(
        "the VAE's code ties with the best pixel input (PCA)")
    assert efficiency.verdict(table, None, codes=("ae",)) == (
        "no code beats the pixels: the best code, the AE's, trails the best pixel input (PCA) "
        "by 1.5 points (96.0% against 97.5%)")
    with pytest.raises(ParameterError):
        efficiency.verdict(table, 10, codes=("vqvae2",))


def test_curves_meet_from_the_first_setting_where_baselines_stay_within_a_point():
    gaps = {1: 0.2, 10: 0.005, 100: 0.05, 1000: 0.008, None: -0.01}  # code minus baseline
    table = _table({**{("ae", k): (0.5, 0.5 + g) for k, g in gaps.items()},
                    **{("pca", k): (0.5, 0.5) for k in gaps}})
    assert efficiency.curves_meet(table) == "labels=1000"  # 10 is within a point, but 100 is not
    never = _table({("ae", k): (0.9, 0.9) for k in gaps} | {("pca", k): (0.5, 0.5) for k in gaps})
    assert efficiency.curves_meet(never) is None
    always = _table({("ae", k): (0.5, 0.5) for k in gaps}
                    | {("pixels", k): (0.6, 0.6) for k in gaps})
    assert efficiency.curves_meet(always) == "labels=1"


def test_label_efficiency_plot_draws_a_line_and_band_per_input():
    table = _table({(m, k): (0.5 + 0.1 * i, 0.6) for i, m in enumerate(["pixels", "ae"])
                    for k in (1, 10, 100, None)})
    table = pd.concat([table, pd.DataFrame([
        {"model": "ae", "setting": "labels=10", "metric": m, "value": v, "labels_per_class": 10,
         "draws": 5} for m, v in (("spread_accuracy", 0.9), ("spread_accuracy_std", 0.02))])])
    fig = efficiency.label_efficiency_plot(table, "test")
    left, right = fig.axes[:2]
    assert len(left.lines) == 2 and len(left.collections) == 2  # a line and a band per input
    assert [t.get_text() for t in left.get_xticklabels()] == ["1", "10", "100", "all"]
    assert left.get_xticks()[-1] == 6000  # "all" at the mean class size
    assert left.get_xscale() == "log" and len(right.get_legend().texts) == 3
    assert fig._suptitle.get_text() == "test"
    bare = efficiency.label_efficiency_plot(table.drop(columns="labels_per_class"), "no sizes")
    assert bare.axes[0].get_xticks()[-1] == 1000  # one decade past the largest count


def test_sentences_and_table_of_the_curve():
    table = _table({("pixels", 10): (0.60, 0.70), ("ae", 10): (0.80, 0.85),
                    ("pixels", None): (0.92, 0.97), ("ae", None): (0.95, 0.96)})
    assert efficiency.meet_sentence(table).startswith("from all labels per class on")
    assert "not run at labels=10" in efficiency.spread_sentence(table, 10, 10)
    spread = pd.DataFrame([{"model": m, "setting": "labels=10", "metric": "spread_accuracy",
                            "value": v} for m, v in (("pixels", 0.95), ("ae", 0.90))])
    sentence = efficiency.spread_sentence(pd.concat([table, spread]), 10, 7)
    assert sentence == ("label spreading over the 7-neighbour graph reaches 90.0% on the AE's "
                        "codes, against 95.0% on the raw pixels (not above the pixel inputs; "
                        "supervised, the same 10 labels per class gave at best 85.0% on a code)")
    wide = efficiency.curve_table(table)
    assert list(wide.index) == ["pixels", "ae"]
    assert list(wide.columns) == [("labels=10", "knn_accuracy"), ("labels=10", "probe_accuracy"),
                                  ("labels=all", "knn_accuracy"), ("labels=all", "probe_accuracy")]
    assert wide.loc["ae", ("labels=all", "probe_accuracy")] == 0.95
