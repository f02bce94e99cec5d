"""One probe protocol for the whole book, and the label-efficiency experiment (issue 12).

A probe asks what frozen codes know: fit a small classifier on the codes of labelled training
images, score it on the test set. Every chapter uses the same three steps:

- ``probe_indices`` picks the labelled training images (class-balanced, seeded);
- ``fit_probe`` chooses the probe's few settings (standardise or not; C or k) by stratified
  cross-validation on those labelled images only, never on the test set, then refits;
- ``linear_probe`` / ``knn_probe`` / ``label_spreading`` return a test accuracy.

``label_efficiency`` runs them for several inputs (pixels, PCA, each model's codes) from 1 label
per class to all labels, with the same labelled draws for every input, as in Kingma et al. 2014
("Semi-supervised learning with deep generative models", table 1: MNIST with 100-3000 labels).
Codes are tensors or arrays (N, ...), flattened to (N, D) float32; labels are (N,).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning

from .checks import ParameterError

LOGISTIC_C = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strength tried by the logistic probe
KNN_NEIGHBOURS = (1, 3, 5, 10)  # k tried by the k-NN probe (capped by the smallest class)
SPREAD_GRAPH_DIMS = 50  # label spreading builds its graph on at most this many PCA dims
METRICS = ("probe_accuracy", "knn_accuracy", "spread_accuracy")


class TooFewLabelsError(ParameterError):
    """A class has fewer labelled images than a probe asks for."""


def _one_thread():
    """Run scikit-learn single-threaded: its OpenMP/BLAS pools fight torch's (see latent.py)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def as_codes(x) -> np.ndarray:
    """Codes (N, ...) as a tensor or array → (N, D) float32 array."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)


def _as_labels(y) -> np.ndarray:
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return y.ravel().astype(np.int64)


def _check_pair(codes: np.ndarray, labels: np.ndarray, what: str) -> None:
    if len(codes) != len(labels):
        raise ParameterError(f"{what}: {len(codes)} codes but {len(labels)} labels; give one "
                             "label per code.")


# -- choosing the labelled images --------------------------------------------------------------

def probe_indices(labels, *, per_class: int | None = None, max_train: int | None = None,
                  seed: int = 0) -> np.ndarray:
    """Sorted indices of a probe's labelled training images: ``per_class`` of each class, or a
    random ``max_train`` of all (all when both are None). Seeded; draw r of a repeat uses seed + r.

    Each class (and the whole set) is shuffled once per seed and cut, so with one seed the
    10-per-class set contains the 1-per-class set: a learning curve only ever adds labels.
    """
    y = _as_labels(labels)
    rng = np.random.default_rng(seed)
    if per_class is not None and max_train is not None:
        raise ParameterError("probe_indices takes per_class or max_train, not both.")
    if per_class is not None:
        if not isinstance(per_class, (int, np.integer)) or per_class < 1:
            raise ParameterError(f"per_class must be a positive integer, got {per_class!r}.")
        classes, counts = np.unique(y, return_counts=True)
        short = counts < per_class
        if short.any():
            c, n = classes[short][0], counts[short][0]
            raise TooFewLabelsError(
                f"probe_indices: class {c} has only {n} images, fewer than the {per_class} per "
                f"class asked for. Ask for at most {counts.min()} per class (the smallest class), "
                "or use max_train for a random subset that need not be balanced.")
        picks = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes]
        return np.sort(np.concatenate(picks))
    if max_train is None or max_train >= len(y):
        return np.arange(len(y))
    if max_train < 1:
        raise ParameterError(f"max_train must be a positive integer or None, got {max_train!r}.")
    return np.sort(rng.permutation(len(y))[:max_train])


# -- one fair probe ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """A fitted probe: the pipeline, the settings cross-validation chose, their CV accuracy
    (nan when a class had a single label and the defaults were used)."""

    model: object  # a scikit-learn Pipeline: optional StandardScaler, then the classifier
    params: dict
    cv_accuracy: float

    def predict(self, codes) -> np.ndarray:
        with _one_thread():
            return self.model.predict(as_codes(codes))

    def score(self, codes, labels) -> float:
        """Accuracy on ``codes`` (N, ...) with ``labels`` (N,)."""
        return float(np.mean(self.predict(codes) == _as_labels(labels)))


def _pipeline(kind: str):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = (LogisticRegression(C=1.0, max_iter=1000) if kind == "logistic"
             else KNeighborsClassifier(n_neighbors=1))
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _readable(kind: str, best: dict) -> dict:
    params = {"standardise": best["scale"] != "passthrough"}
    key = "C" if kind == "logistic" else "n_neighbors"
    params[key] = best[f"model__{key}"]
    return params


def fit_probe(kind: str, codes, labels, *, seed: int = 0, cv_max: int = 5000) -> Probe:
    """Fit a "logistic" or "knn" probe whose settings stratified k-fold CV chose on the labelled
    codes alone (on a seeded stratified subsample of ``cv_max`` when there are more); the
    chosen settings are then refitted on all labelled codes."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.preprocessing import StandardScaler

    if kind not in ("logistic", "knn"):
        raise ParameterError(f"fit_probe: kind must be 'logistic' or 'knn', got {kind!r}.")
    x, y = as_codes(codes), _as_labels(labels)
    _check_pair(x, y, "fit_probe")
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2:
        raise ParameterError(f"fit_probe needs labels of at least two classes, got {len(counts)}.")
    cv_x, cv_y = x, y
    if len(y) > cv_max:  # CV on a subsample; its choice is refitted on every labelled code
        keep, _ = train_test_split(np.arange(len(y)), train_size=cv_max, random_state=seed,
                                   stratify=y if counts.min() >= 2 else None)
        cv_x, cv_y = x[keep], y[keep]
    smallest = np.unique(cv_y, return_counts=True)[1].min()
    pipe = _pipeline(kind)
    key = "model__C" if kind == "logistic" else "model__n_neighbors"
    with _one_thread(), warnings.catch_warnings():
        # lbfgs may stop at max_iter for C=10; the probe is still a fair linear classifier
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        if smallest < 2:  # one label of some class: no CV possible, use the defaults
            best, cv_accuracy = {"scale": StandardScaler(), key: 1.0 if kind == "logistic" else 1}, np.nan
        else:
            folds = min(5, smallest)
            values = list(LOGISTIC_C)
            if kind == "knn":  # k may not exceed a CV training fold's smallest class
                cap = smallest - -(-smallest // folds)
                values = sorted({min(k, cap) for k in KNN_NEIGHBOURS})
            search = GridSearchCV(pipe, {"scale": [StandardScaler(), "passthrough"], key: values},
                                  cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                  refit=False, error_score="raise")
            search.fit(cv_x, cv_y)
            best, cv_accuracy = search.best_params_, float(search.best_score_)
        model = pipe.set_params(**best).fit(x, y)
    return Probe(model, _readable(kind, best), cv_accuracy)


def linear_probe(train_codes, train_labels, test_codes, test_labels, *, seed: int = 0) -> float:
    """Test accuracy of the CV-tuned logistic-regression probe fitted on the training codes."""
    return fit_probe("logistic", train_codes, train_labels, seed=seed).score(test_codes, test_labels)


def knn_probe(train_codes, train_labels, test_codes, test_labels, *, seed: int = 0) -> float:
    """Test accuracy of the CV-tuned k-nearest-neighbour probe fitted on the training codes."""
    return fit_probe("knn", train_codes, train_labels, seed=seed).score(test_codes, test_labels)


# -- label spreading (Zhou et al. 2004) ---------------------------------------------------------

class _SpreadGraph:
    """The points label spreading runs on and their symmetric k-NN graph, built once.

    Zhou et al. 2004 ("Learning with local and global consistency") spread labels over a
    symmetric affinity W with W_ii = 0; scikit-learn's kernel="knn" graph is directed, so the
    graph here is the k-NN connectivity made symmetric (i ~ j when either is among the other's
    k nearest). It does not depend on the labels, so every labelled draw reuses it.
    """

    def __init__(self, train, test, n_neighbors: int, standardise: bool, transductive: bool,
                 seed: int):
        from sklearn.decomposition import PCA
        from sklearn.neighbors import NearestNeighbors
        from sklearn.preprocessing import StandardScaler

        self.n_neighbors, self.n_train, self.transductive = n_neighbors, len(train), transductive
        with _one_thread():
            if standardise:  # statistics of the training codes only
                scaler = StandardScaler().fit(train)
                train, test = scaler.transform(train), scaler.transform(test)
            if train.shape[1] > SPREAD_GRAPH_DIMS:  # an exact 70,000-point graph in 1,568-d: minutes
                pca = PCA(SPREAD_GRAPH_DIMS, random_state=seed).fit(train)
                train, test = pca.transform(train), pca.transform(test)
            self.points = np.vstack([train, test]) if transductive else train
            self.test = test
            near = NearestNeighbors(n_neighbors=n_neighbors).fit(self.points)
            graph = near.kneighbors_graph(mode="connectivity")  # (N, N), self excluded
            self.graph = graph.maximum(graph.T).tocsr()
            self._near = near

    def kernel(self, x, y):
        """LabelSpreading's kernel: the cached graph among the fitted points, else each
        new point's k nearest fitted points, (n_fitted, n_new)."""
        if y is x:
            if x.shape[0] != self.graph.shape[0]:
                raise RuntimeError("label spreading was fitted on other points than its graph's")
            return self.graph
        return self._near.kneighbors_graph(y, mode="connectivity").T

    def accuracy(self, train_labels: np.ndarray, test_labels: np.ndarray, alpha: float,
                 max_iter: int) -> float:
        """Spread ``train_labels`` (-1 = unlabelled) and score the test points' labels."""
        from sklearn.semi_supervised import LabelSpreading

        y = train_labels
        if self.transductive:  # the test codes join the graph unlabelled (Kingma et al. 2014)
            y = np.concatenate([train_labels, -np.ones(len(self.test), dtype=np.int64)])
        spread = LabelSpreading(kernel=self.kernel, alpha=alpha, max_iter=max_iter)
        with _one_thread(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            spread.fit(self.points, y)
            predicted = (spread.transduction_[self.n_train:] if self.transductive
                         else spread.predict(self.test))
        return float(np.mean(predicted == test_labels))


def label_spreading(train_codes, train_labels, test_codes, test_labels, *, n_neighbors: int = 10,
                    standardise: bool = True, transductive: bool = True, alpha: float = 0.99,
                    max_iter: int = 1000, seed: int = 0) -> float:
    """Test accuracy of label spreading (Zhou et al. 2004) over a k-NN graph of the codes;
    ``train_labels`` holds -1 for every unlabelled training code. Codes above 50 dims are
    first projected on their first 50 principal components (of the training codes)."""
    train, test = as_codes(train_codes), as_codes(test_codes)
    y, y_test = _as_labels(train_labels), _as_labels(test_labels)
    _check_pair(train, y, "label_spreading (training codes)")
    _check_pair(test, y_test, "label_spreading (test codes)")
    if not (y >= 0).any():
        raise ParameterError("label_spreading needs at least one labelled training code "
                             "(labels >= 0); all of them are -1.")
    graph = _SpreadGraph(train, test, n_neighbors, standardise, transductive, seed)
    return graph.accuracy(y, y_test, alpha, max_iter)


# -- the label-efficiency experiment -----------------------------------------------------------

def setting_name(per_class: int | None) -> str:
    """The table's setting for a number of labels per class: "labels=10", "labels=all"."""
    return "labels=all" if per_class is None else f"labels={int(per_class)}"


def _per_class(setting: str) -> float:
    value = str(setting).removeprefix("labels=")
    return np.inf if value == "all" else float(value)


def label_efficiency(inputs: dict, train_labels, test_labels, *,
                     labels_per_class=(1, 10, 100, 1000, None), repeats: int = 5,
                     repeats_large: int = 1, large_from: int = 1000, spread_at=(10,),
                     spread_neighbors: int = 10, seed: int = 0,
                     progress: bool = True) -> pd.DataFrame:
    """Probe accuracy against labels per class for every input {name: (train_codes,
    test_codes)}: the tidy table (model, setting, metric, value, labels_per_class, draws).

    Each labels-per-class value gets ``repeats`` class-balanced draws (draw r uses seed + r;
    ``repeats_large`` from ``large_from`` on and for "all"), the same draws for every input, so
    inputs are compared on the same labelled images. Logistic and k-NN probes use fit_probe's
    CV; values in ``spread_at`` also get transductive label spreading. ``*_std`` rows hold the
    sample standard deviation over the draws (ddof=1; 0.0 for a single draw).
    """
    from tqdm.auto import tqdm

    y, y_test = _as_labels(train_labels), _as_labels(test_labels)
    names = list(inputs)
    if not names:
        raise ParameterError("label_efficiency needs at least one input {name: (train, test)}.")
    for name in names:
        _check_pair(inputs[name][0], y, f"label_efficiency: {name}'s training codes")
        _check_pair(inputs[name][1], y_test, f"label_efficiency: {name}'s test codes")
    if set(spread_at) - set(labels_per_class):
        raise ParameterError(f"label_efficiency: spread_at={tuple(spread_at)} must be among "
                             f"labels_per_class={tuple(labels_per_class)}.")
    # every draw first (a too-small class fails here, before minutes of fitting)
    draws = {}
    for k in labels_per_class:
        n = repeats_large if k is None or k >= large_from else repeats
        draws[k] = [probe_indices(y, per_class=k, seed=seed + r) for r in range(n)]
    values = {}  # (name, setting, metric) → one accuracy per draw
    bar = tqdm(total=len(names) * sum(map(len, draws.values())), desc="label efficiency",
               unit="fit", disable=not (progress and progress_enabled()))
    for name in names:
        train, test = as_codes(inputs[name][0]), as_codes(inputs[name][1])
        graph = None
        for k, picks in draws.items():
            for r, idx in enumerate(picks):
                bar.set_postfix_str(f"{name}, {setting_name(k)}, draw {r}")
                row = (name, setting_name(k))
                for kind, metric in (("logistic", "probe_accuracy"), ("knn", "knn_accuracy")):
                    probe = fit_probe(kind, train[idx], y[idx], seed=seed + r)
                    values.setdefault(row + (metric,), []).append(probe.score(test, y_test))
                if k in spread_at:
                    if graph is None:  # built once per input, reused by every draw
                        graph = _SpreadGraph(train, test, spread_neighbors, True, True, seed)
                    partial = np.full(len(y), -1, dtype=np.int64)
                    partial[idx] = y[idx]
                    values.setdefault(row + ("spread_accuracy",), []).append(
                        graph.accuracy(partial, y_test, alpha=0.99, max_iter=1000))
                bar.update()
    bar.close()
    n_classes = len(np.unique(y))
    rows = []
    for (name, setting, metric), scores in values.items():
        k = _per_class(setting)
        per_class = len(y) / n_classes if np.isinf(k) else k
        std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
        for m, v in ((metric, float(np.mean(scores))), (f"{metric}_std", std)):
            rows.append({"model": name, "setting": setting, "metric": m, "value": v,
                         "labels_per_class": per_class, "draws": len(scores)})
    return pd.DataFrame(rows)


def pca_codes(train_images, test_images, n_components: int, seed: int = 0):
    """PCA scores of the pixels (fitted on the training images): (train (N, n), test (M, n))."""
    from sklearn.decomposition import PCA

    train, test = as_codes(train_images), as_codes(test_images)
    if not 1 <= n_components <= min(train.shape):
        raise ParameterError(f"PCA with {n_components} components needs at least that many "
                             f"training images and pixels; got {train.shape[0]} images of "
                             f"{train.shape[1]} pixels. Use fewer components.")
    with _one_thread():
        pca = PCA(n_components=n_components, random_state=seed).fit(train)
        return pca.transform(train).astype(np.float32), pca.transform(test).astype(np.float32)


# -- reading the table -------------------------------------------------------------------------

NAMES = {"pixels": "the raw pixels", "pca": "PCA", "ae": "the AE", "vae": "the VAE",
         "vqvae2": "VQ-VAE-2"}


def best_by_input(table: pd.DataFrame, setting) -> pd.Series:
    """Each input's best accuracy (max of the logistic and k-NN probes) at ``setting``
    ("labels=10", or 10 / None)."""
    setting = setting if isinstance(setting, str) else setting_name(setting)
    rows = table[(table["setting"] == setting)
                 & table["metric"].isin(["probe_accuracy", "knn_accuracy"])]
    return rows.groupby("model")["value"].max()


def _best_of(best: pd.Series, names) -> tuple[str, float] | None:
    present = [n for n in names if n in best.index]
    if not present:
        return None
    name = max(present, key=lambda n: best[n])
    return name, float(best[name])


def verdict(table: pd.DataFrame, setting, codes=("ae", "vae", "vqvae2"),
            baselines=("pixels", "pca")) -> str:
    """One sentence for the chapter: the best code against the best pixel input, in points."""
    best = best_by_input(table, setting)
    code, base = _best_of(best, codes), _best_of(best, baselines)
    if code is None or base is None:
        raise ParameterError(f"verdict: the table has no accuracy of {codes} or of {baselines} "
                             f"at {setting!r}; it has {sorted(best.index)}.")
    (c, c_acc), (b, b_acc) = code, base
    points = round(100 * (c_acc - b_acc), 1)
    owner = NAMES.get(c, c)
    baseline = f"the best pixel input ({NAMES.get(b, b)})"
    scores = f"({100 * c_acc:.1f}% against {100 * b_acc:.1f}%)"
    if points > 0:
        return f"{owner}'s code leads {baseline} by {points:.1f} points {scores}"
    if points == 0:
        return f"{owner}'s code ties with {baseline} {scores}"
    return (f"no code beats the pixels: the best code, {owner}'s, trails {baseline} by "
            f"{-points:.1f} points {scores}")


def curves_meet(table: pd.DataFrame, codes=("ae", "vae", "vqvae2"), baselines=("pixels", "pca"),
                tolerance: float = 0.01) -> str | None:
    """The smallest setting from which on (at it and every larger one) the best baseline is
    within ``tolerance`` (1 point) of the best code or above it; None if never."""
    settings = sorted(table["setting"].unique(), key=_per_class)
    met = None
    for setting in settings:
        best = best_by_input(table, setting)
        code, base = _best_of(best, codes), _best_of(best, baselines)
        if code is None or base is None:
            continue
        if base[1] >= code[1] - tolerance:
            met = met or setting
        else:
            met = None
    return met


def label_efficiency_plot(table: pd.DataFrame, title: str):
    """Accuracy against labels per class (log x; "all" at the mean class size), one line per
    input with a ±1 std band: logistic probe on the left, k-NN (and label spreading, ◆) right."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = table.copy()
    if "labels_per_class" not in table:
        table["labels_per_class"] = table["setting"].map(_per_class)
    models = list(dict.fromkeys(table["model"]))
    colors = dict(zip(models, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    panels = ((axes[0], "probe_accuracy", "logistic-regression probe"),
              (axes[1], "knn_accuracy", "k-NN probe"), (axes[1], "spread_accuracy", None))
    for ax, metric, panel_title in panels:
        for model in models:
            rows = table[(table["model"] == model) & (table["metric"] == metric)]
            if rows.empty:
                continue
            rows = rows.sort_values("labels_per_class")
            std = table[(table["model"] == model) & (table["metric"] == f"{metric}_std")
                        ].set_index("setting")["value"].reindex(rows["setting"]).fillna(0).to_numpy()
            x, mean = rows["labels_per_class"].to_numpy(), rows["value"].to_numpy()
            style = dict(color=colors[model])
            if metric == "spread_accuracy":
                ax.errorbar(x, mean, yerr=std, fmt="D", markersize=7, capsize=3, **style)
                continue
            ax.plot(x, mean, "o-", label=NAMES.get(model, model), **style)
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, **style)
        if panel_title:
            ax.set_title(panel_title)
    ticks = table.drop_duplicates("setting").sort_values("labels_per_class")
    labels = ["all" if s == "labels=all" else s.removeprefix("labels=") for s in ticks["setting"]]
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(ticks["labels_per_class"], labels)
        ax.minorticks_off()
        ax.set_xlabel("labelled training images per class")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    handles, names = axes[0].get_legend_handles_labels()
    if (table["metric"] == "spread_accuracy").any():
        handles.append(Line2D([], [], marker="D", color="grey", linestyle=""))
        names.append("label spreading (k-NN graph)")
    axes[1].legend(handles, names, loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
