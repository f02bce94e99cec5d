"""One probe protocol for the whole book (chapters 2, 3 and 5).

A probe asks what frozen codes know: fit a small classifier on the codes of labelled training
images, score it on the test set. Every chapter uses the same three steps:

- ``probe_indices`` picks the labelled training images (class-balanced, seeded);
- ``fit_probe`` chooses the probe's few settings (standardise or not; C or k) by stratified
  cross-validation on those labelled images only, never on the test set, then refits;
- ``linear_probe`` / ``knn_probe`` / ``label_spreading`` return a test accuracy.

``latent_notes.experiments.efficiency`` runs them for several inputs (pixels, PCA, each
model's codes) from 1 label per class to all labels (chapter 5's label-efficiency curve).
Codes are tensors or arrays (N, ...), flattened to (N, D) float32; labels are (N,).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning

from ..checks import ParameterError
from .latent import _one_thread  # scikit-learn single-threaded beside torch

LOGISTIC_C = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strength tried by the logistic probe
KNN_NEIGHBOURS = (1, 3, 5, 10)  # k tried by the k-NN probe (capped by the smallest class)
CV_FOLDS, CV_MAX = 3, 2000  # stratified folds; CV runs on at most this many labelled codes
SPREAD_GRAPH_DIMS = 50  # label spreading builds its graph on at most this many PCA dims
SPREAD_ALPHA, SPREAD_STEPS = 0.99, 100  # label spreading's α and number of steps


class TooFewLabelsError(ParameterError):
    """A class has fewer labelled images than a probe asks for."""


def as_codes(x) -> np.ndarray:
    """Codes (N, ...) as a tensor or array → (N, D) float32 array."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)


def _tensor(codes) -> torch.Tensor:
    """as_codes as a tensor; a read-only array (joblib memory-maps large inputs for the
    label-efficiency workers) is copied, as torch cannot share memory it may not write."""
    x = as_codes(codes)
    return torch.from_numpy(x if x.flags.writeable else x.copy())


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


class NearestNeighbours(ClassifierMixin, BaseEstimator):
    """A k-nearest-neighbour classifier with scikit-learn's interface: exact Euclidean
    neighbours found by one matrix product per chunk of queries (torch, which uses every core;
    scikit-learn's brute-force search runs single-threaded here beside torch), then a majority
    vote with ties going to the smallest label, as scikit-learn's uniform-weight vote does."""

    def __init__(self, n_neighbors: int = 1):
        self.n_neighbors = n_neighbors

    def fit(self, codes, labels) -> "NearestNeighbours":
        self.classes_, y = np.unique(_as_labels(labels), return_inverse=True)
        self._points = _tensor(codes)
        self._norms = self._points.pow(2).sum(1)
        self._labels = torch.as_tensor(y)
        self.n_samples_fit_ = len(self._points)
        return self

    def neighbours(self, codes, k: int, chunk: int = 1024) -> torch.Tensor:
        """Indices (N, k) of each query's k nearest fitted points, nearest first."""
        queries = _tensor(codes)
        k = min(k, len(self._points))
        found = []
        for start in range(0, len(queries), chunk):
            q = queries[start:start + chunk]
            # |q - p|^2 = |q|^2 - 2 q.p + |p|^2; |q|^2 is the same for every p of a row
            distance = self._norms[None] - 2 * q @ self._points.T
            found.append(distance.topk(k, dim=1, largest=False).indices)
        return torch.cat(found)

    def vote(self, neighbours: torch.Tensor, k: int) -> np.ndarray:
        """The labels the first ``k`` of each row of ``neighbours`` vote for."""
        votes = torch.zeros(len(neighbours), len(self.classes_))
        votes.scatter_add_(1, self._labels[neighbours[:, :k]], torch.ones(len(neighbours), k))
        return self.classes_[votes.argmax(1).numpy()]  # argmax: the first (smallest) of ties

    def predict(self, codes) -> np.ndarray:
        return self.vote(self.neighbours(codes, self.n_neighbors), self.n_neighbors)


def _fold_accuracies(kind: str, train, y_train, held, y_held, values) -> np.ndarray:
    """Accuracy on the held-out fold for each setting in ``values`` (C or k), each fitted on
    the fold's training part: logistic fits warm-started along the increasing C, the k-NN
    neighbours found once for the largest k."""
    if kind == "knn":
        knn = NearestNeighbours().fit(train, y_train)
        near = knn.neighbours(held, max(values))
        return np.array([np.mean(knn.vote(near, k) == y_held) for k in values])
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=100, warm_start=True)
    accuracies = []
    for c in values:  # ascending: each fit starts from the last one's weights
        model.set_params(C=c).fit(train, y_train)
        accuracies.append(model.score(held, y_held))
    return np.array(accuracies)


def _pipeline(kind: str, value, standardise: bool):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = (LogisticRegression(C=value, max_iter=100) if kind == "logistic"
             else NearestNeighbours(n_neighbors=value))
    return Pipeline([("scale", StandardScaler() if standardise else "passthrough"),
                     ("model", model)])


def _cross_validate(kind: str, x, y, values, folds: int, seed: int) -> tuple:
    """(value, standardise, mean accuracy) of the best setting by stratified k-fold CV: every
    (value, standardise) pair scored on every fold, the first best in the order value, then
    standardise (True first), as scikit-learn's grid search orders and breaks ties."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    scores = np.zeros((len(values), 2))
    for train_idx, held_idx in StratifiedKFold(folds, shuffle=True,
                                               random_state=seed).split(x, y):
        for column, standardise in enumerate((True, False)):
            train, held = x[train_idx], x[held_idx]
            if standardise:  # the fold's own statistics, as a pipeline would fit them
                scaler = StandardScaler().fit(train)
                train, held = scaler.transform(train), scaler.transform(held)
            scores[:, column] += _fold_accuracies(kind, train, y[train_idx], held,
                                                  y[held_idx], values)
    scores /= folds
    best = int(np.argmax(scores.ravel()))  # row-major: value outer, standardise inner
    return values[best // 2], best % 2 == 0, float(scores.ravel()[best])


def fit_probe(kind: str, codes, labels, *, seed: int = 0, cv_max: int = CV_MAX) -> Probe:
    """Fit a "logistic" or "knn" probe whose settings stratified k-fold CV chose on the labelled
    codes alone (on a seeded stratified subsample of ``cv_max`` when there are more); the
    chosen settings are then refitted on all labelled codes."""
    from sklearn.model_selection import train_test_split

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
    values = list(LOGISTIC_C) if kind == "logistic" else list(KNN_NEIGHBOURS)
    with _one_thread(), warnings.catch_warnings():
        # lbfgs may stop at max_iter for C=10; the probe is still a fair linear classifier
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        if smallest < 2:  # one label of some class: no CV possible, use the defaults
            value, standardise, cv_accuracy = (1.0 if kind == "logistic" else 1), True, np.nan
        else:
            folds = min(CV_FOLDS, smallest)
            if kind == "knn":  # k may not exceed a CV training fold's smallest class
                cap = smallest - math.ceil(smallest / folds)
                values = sorted({min(k, cap) for k in values})
            value, standardise, cv_accuracy = _cross_validate(kind, cv_x, cv_y, values,
                                                              folds, seed)
        model = _pipeline(kind, value, standardise).fit(x, y)
    key = "C" if kind == "logistic" else "n_neighbors"
    return Probe(model, {"standardise": standardise, key: value}, cv_accuracy)


def linear_probe(train_codes, train_labels, test_codes, test_labels, *, seed: int = 0) -> float:
    """Test accuracy of the CV-tuned logistic-regression probe fitted on the training codes."""
    probe = fit_probe("logistic", train_codes, train_labels, seed=seed)
    return probe.score(test_codes, test_labels)


def knn_probe(train_codes, train_labels, test_codes, test_labels, *, seed: int = 0) -> float:
    """Test accuracy of the CV-tuned k-nearest-neighbour probe fitted on the training codes."""
    probe = fit_probe("knn", train_codes, train_labels, seed=seed)
    return probe.score(test_codes, test_labels)


# -- label spreading (Zhou et al. 2004) ---------------------------------------------------------

class _SpreadGraph:
    """The points label spreading runs on and their symmetric k-NN graph, built once.

    Zhou et al. 2004 ("Learning with local and global consistency") spread labels over a
    symmetric affinity W with W_ii = 0; scikit-learn's kernel="knn" graph is directed, so the
    graph here is the k-NN connectivity made symmetric (i ~ j when either is among the other's
    k nearest). It does not depend on the labels, so every labelled draw reuses it.
    """

    def __init__(self, train, test, *, n_neighbors: int, standardise: bool, transductive: bool,
                 graph_dims: int | None, seed: int):
        from sklearn.decomposition import PCA
        from sklearn.neighbors import NearestNeighbors
        from sklearn.preprocessing import StandardScaler

        self.n_train, self.transductive = len(train), transductive
        with _one_thread():
            if standardise:  # statistics of the training codes only
                scaler = StandardScaler().fit(train)
                train, test = scaler.transform(train), scaler.transform(test)
            # a few training codes give at most as many principal components as codes
            dims = None if graph_dims is None else min(graph_dims, len(train))
            if dims is not None and train.shape[1] > dims:
                # exact neighbours of 70,000 points in 784-d took 140 s, in 50 PCA dims 18 s
                pca = PCA(dims, random_state=seed).fit(train)
                train, test = pca.transform(train), pca.transform(test)
            self.points = np.vstack([train, test]) if transductive else train  # (N, D)
            self.test = test
            self._near = NearestNeighbors(n_neighbors=n_neighbors).fit(self.points)
            graph = self._near.kneighbors_graph(mode="connectivity")  # (N, N), no self-loops
            self.graph = graph.maximum(graph.T).tocsr()

    def kernel(self, x, y):
        """LabelSpreading's kernel: the cached graph among the fitted points, else each new
        point's k nearest fitted points, (n_fitted, n_new)."""
        if y is x:
            if x.shape != self.points.shape:
                raise RuntimeError("label spreading was fitted on other points than its graph's")
            return self.graph
        return self._near.kneighbors_graph(y, mode="connectivity").T

    def accuracy(self, train_labels: np.ndarray, test_labels: np.ndarray, *, alpha: float,
                 max_iter: int) -> float:
        """Spread ``train_labels`` (-1 = unlabelled) and score the test points' labels."""
        from sklearn.semi_supervised import LabelSpreading

        y = train_labels
        if self.transductive:  # the test codes join the graph unlabelled (Kingma et al. 2014)
            y = np.concatenate([train_labels, np.full(len(self.test), -1, dtype=np.int64)])
        spread = LabelSpreading(kernel=self.kernel, alpha=alpha, max_iter=max_iter)
        with _one_thread(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            spread.fit(self.points, y)
            predicted = (spread.transduction_[self.n_train:] if self.transductive
                         else spread.predict(self.test))
        return float(np.mean(predicted == test_labels))


def label_spreading(train_codes, train_labels, test_codes, test_labels, *, n_neighbors: int = 10,
                    standardise: bool = False, transductive: bool = True,
                    alpha: float = SPREAD_ALPHA, max_iter: int = SPREAD_STEPS,
                    graph_dims: int | None = SPREAD_GRAPH_DIMS, seed: int = 0) -> float:
    """Test accuracy of label spreading (Zhou et al. 2004) over a k-NN graph of the codes;
    ``train_labels`` holds -1 for every unlabelled training code.

    Codes wider than ``graph_dims`` are projected on their first principal components (fitted on
    the training codes) before the graph is built. alpha=0.99 is Zhou et al.'s value
    (scikit-learn's defaults, a directed graph and α=0.2, stopped after 7 steps: 85% instead of
    95% on MNIST pixels with 10 labels per class); 100 steps of F ← αSF + (1-α)Y give the labels
    of 1,000 (94.7% either way).
    Standardising is off by default: it blows up near-constant pixels (87% instead of 95%).
    """
    train, test = as_codes(train_codes), as_codes(test_codes)
    y, y_test = _as_labels(train_labels), _as_labels(test_labels)
    _check_pair(train, y, "label_spreading (training codes)")
    _check_pair(test, y_test, "label_spreading (test codes)")
    if not (y >= 0).any():
        raise ParameterError("label_spreading needs at least one labelled training code "
                             "(labels >= 0); all of them are -1.")
    graph = _SpreadGraph(train, test, n_neighbors=n_neighbors, standardise=standardise,
                         transductive=transductive, graph_dims=graph_dims, seed=seed)
    return graph.accuracy(y, y_test, alpha=alpha, max_iter=max_iter)
