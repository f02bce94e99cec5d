"""What a code is worth in labels: the label-efficiency experiment of chapter 5 (issue 12).

For several inputs (pixels, PCA, each model's codes) and from 1 label per class to all labels,
the book's one probe protocol (``latent_notes.experiments.probes``) is run on the same
class-balanced draws for every input, as in Kingma et al. 2014 ("Semi-supervised learning with
deep generative models", table 1: MNIST with 100-3000 labels). The table it returns is read by
``verdict`` and ``curves_meet`` (the chapter's sentences) and drawn by
``label_efficiency_plot``.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import sklearn

from ..checks import ParameterError
from ..store.checkpoint import EXPERIMENTS, code_version
from ..store.tables import fingerprint
from ..training import progress_enabled
from .latent import fit_pca
from .probes import (
    CV_MAX,
    SPREAD_ALPHA,
    SPREAD_GRAPH_DIMS,
    SPREAD_STEPS,
    _as_labels,
    _check_pair,
    _one_thread,
    _SpreadGraph,
    as_codes,
    fit_probe,
    probe_indices,
)


def pca_codes(train_images, test_images, n_components: int, seed: int = 0):
    """PCA scores of the pixels (fitted on the training images): (train (N, n), test (M, n))."""
    pca = fit_pca(train_images, n_components, seed)
    with _one_thread():
        return (pca.transform(as_codes(train_images)).astype(np.float32),
                pca.transform(as_codes(test_images)).astype(np.float32))


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
                     spread_neighbors: int = 10, cv_max: int = CV_MAX, seed: int = 0,
                     progress: bool = True, store=None) -> pd.DataFrame:
    """Probe accuracy against labels per class for every input {name: (train_codes,
    test_codes)}: the tidy table (model, setting, metric, value, labels_per_class, draws).

    Each labels-per-class value gets ``repeats`` class-balanced draws (draw r uses seed + r;
    ``repeats_large`` from ``large_from`` on and for "all"), the same draws for every input, so
    inputs are compared on the same labelled images. Logistic and k-NN probes use fit_probe's
    CV (``cv_max``: its subsample size); values in ``spread_at`` also get transductive label
    spreading with label_spreading's defaults. ``*_std`` rows hold the sample standard
    deviation over the draws (ddof=1; 0.0 for a single draw).

    With a ``store`` (a chapter's ``run.store``) the table is computed once and read from the
    store's cache after that, keyed by the inputs' contents, every parameter and this code.
    """
    arguments = dict(locals())  # every parameter, so that a new one enters the cache key too
    if store is not None:
        return store.table("label-efficiency", _table_key(**arguments),
                           lambda: label_efficiency(**{**arguments, "store": None}))
    from tqdm.auto import tqdm

    y, y_test = _as_labels(train_labels), _as_labels(test_labels)
    if not inputs:
        raise ParameterError("label_efficiency needs at least one input {name: (train, test)}.")
    for name, (train, test) in inputs.items():
        _check_pair(train, y, f"label_efficiency: {name}'s training codes")
        _check_pair(test, y_test, f"label_efficiency: {name}'s test codes")
    if set(spread_at) - set(labels_per_class):
        raise ParameterError(f"label_efficiency: spread_at={tuple(spread_at)} must be among "
                             f"labels_per_class={tuple(labels_per_class)}.")
    # every draw first (a too-small class fails here, before minutes of fitting)
    draws = {}
    for k in labels_per_class:
        n = repeats_large if k is None or k >= large_from else repeats
        draws[k] = [probe_indices(y, per_class=k, seed=seed + r) for r in range(n)]
    # one task per (input, labels per class); their tables are merged in this order, so the
    # result does not depend on how many processes ran them or in which order they finished
    tasks = [(name, as_codes(train), as_codes(test), k)
             for name, (train, test) in inputs.items() for k in draws]
    bar = tqdm(total=len(inputs) * sum(map(len, draws.values())), desc="label efficiency",
               unit="fit", disable=not (progress and progress_enabled()))
    done = {}
    for i, result in _run_tasks(tasks, y, y_test, draws, spread_at=spread_at,
                                spread_neighbors=spread_neighbors, cv_max=cv_max, seed=seed):
        done[i] = result
        bar.set_postfix_str(f"{tasks[i][0]}, {setting_name(tasks[i][3])}")
        bar.update(len(draws[tasks[i][3]]))
    bar.close()
    values = {}  # (name, setting, metric) → one accuracy per draw
    for i in range(len(tasks)):
        values.update(done[i])
    return _tidy(values, mean_class_size=len(y) / len(np.unique(y)))


def _workers(n_tasks: int) -> int:
    """Processes for the probe fits: torch's thread count (every fit is single-threaded, so
    ``OMP_NUM_THREADS=1`` keeps it to one core), at most one per task."""
    import torch

    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1, n_tasks))


def _run_tasks(tasks, y, y_test, draws, **options):
    """(task index, its values) for every task, as they finish: the largest first (codes ×
    labelled images) across ``_workers`` processes, or one after the other in this one."""
    def score(i):
        name, train, test, k = tasks[i]
        return _score_task(name, train, test, y, y_test, k, draws[k], **options)

    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][1].shape[1] * sum(
        map(len, draws[tasks[i][3]])))
    workers = _workers(len(tasks))
    if workers == 1:
        for i in order:
            yield i, score(i)
        return
    from joblib import Parallel, delayed

    # large codes reach the workers memory-mapped (written once, shared by every task)
    run = Parallel(n_jobs=workers, return_as="generator_unordered")
    yield from run(delayed(_indexed)(i, _score_task, tasks[i][0], tasks[i][1], tasks[i][2],
                                     y, y_test, tasks[i][3], draws[tasks[i][3]], **options)
                   for i in order)


def _indexed(i, function, *args, **kwargs):
    return i, function(*args, **kwargs)


def _table_key(inputs, train_labels, test_labels, progress, store, **parameters) -> dict:
    """What label_efficiency's table depends on: the codes and labels as the probes see them,
    the other parameters, the experiment code (this module, the probes) and scikit-learn."""
    return {"inputs": [[name, fingerprint(as_codes(train)), fingerprint(as_codes(test))]
                       for name, (train, test) in inputs.items()],
            "labels": [fingerprint(_as_labels(train_labels)), fingerprint(_as_labels(test_labels))],
            "parameters": parameters, "code": code_version(label_efficiency, EXPERIMENTS),
            "scikit-learn": sklearn.__version__}


def _score_task(name, train, test, y, y_test, k, picks, *, spread_at, spread_neighbors,
                cv_max, seed) -> dict:
    """One input's probes (and label spreading) on every draw of one labels-per-class value
    ``k``: {(name, setting, metric): [accuracy per draw]}."""
    values, graph, row = {}, None, (name, setting_name(k))
    for r, idx in enumerate(picks):
        for kind, metric in (("logistic", "probe_accuracy"), ("knn", "knn_accuracy")):
            probe = fit_probe(kind, train[idx], y[idx], seed=seed + r, cv_max=cv_max)
            values.setdefault(row + (metric,), []).append(probe.score(test, y_test))
        if k in spread_at:
            if graph is None:  # built once, reused by every draw
                graph = _SpreadGraph(train, test, n_neighbors=spread_neighbors,
                                     standardise=False, transductive=True,
                                     graph_dims=SPREAD_GRAPH_DIMS, seed=seed)
            partial = np.full(len(y), -1, dtype=np.int64)
            partial[idx] = y[idx]
            accuracy = graph.accuracy(partial, y_test, alpha=SPREAD_ALPHA, max_iter=SPREAD_STEPS)
            values.setdefault(row + ("spread_accuracy",), []).append(accuracy)
    return values


def _tidy(values: dict, mean_class_size: float) -> pd.DataFrame:
    """{(model, setting, metric): per-draw accuracies} → mean and sample-std rows."""
    rows = []
    for (name, setting, metric), scores in values.items():
        per_class = _per_class(setting)
        std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
        for m, v in ((metric, float(np.mean(scores))), (f"{metric}_std", std)):
            rows.append({"model": name, "setting": setting, "metric": m, "value": v,
                         "labels_per_class": mean_class_size if np.isinf(per_class) else per_class,
                         "draws": len(scores)})
    return pd.DataFrame(rows)


# -- reading the table -------------------------------------------------------------------------

NAMES = {"pixels": "the raw pixels", "pca": "PCA", "ae": "the AE", "vae": "the VAE",
         "vqvae2": "VQ-VAE-2"}
LEGEND = {"pixels": "raw pixels", "pca": "PCA of the pixels", "ae": "AE code",
          "vae": "VAE code (μ)", "vqvae2": "VQ-VAE-2 code (both maps)"}


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


def meet_sentence(table: pd.DataFrame) -> str:
    """Where the curves meet, for the chapter (see curves_meet)."""
    meet = curves_meet(table)
    if meet is None:
        return "the pixel inputs never catch up with the best code within 1 point"
    return (f"from {meet.removeprefix('labels=')} labels per class on, the best pixel input is "
            "within 1 point of the best code (or above it)")


def spread_sentence(table: pd.DataFrame, setting, neighbours: int,
                    codes=("ae", "vae", "vqvae2"), baselines=("pixels", "pca")) -> str:
    """Label spreading's best code against its best pixel input at ``setting``, beside the best
    supervised code with the same labels."""
    setting = setting if isinstance(setting, str) else setting_name(setting)
    spread = table[(table["metric"] == "spread_accuracy") & (table["setting"] == setting)]
    best = spread.groupby("model")["value"].max()
    code, base = _best_of(best, codes), _best_of(best, baselines)
    if code is None or base is None:
        return f"label spreading was not run at {setting} (see the parameter spread_at)"
    supervised = _best_of(best_by_input(table, setting), codes)
    above = "above" if code[1] > base[1] else "not above"
    return (f"label spreading over the {neighbours}-neighbour graph reaches {code[1]:.1%} on "
            f"{NAMES.get(code[0], code[0])}'s codes, against {base[1]:.1%} on "
            f"{NAMES.get(base[0], base[0])} ({above} the pixel inputs; supervised, the same "
            f"{setting.removeprefix('labels=')} labels per class gave at best "
            f"{supervised[1]:.1%} on a code)")


def curve_table(table: pd.DataFrame) -> pd.DataFrame:
    """The curve's means as a table: one row per input, one column per (setting, metric)."""
    means = table[~table["metric"].str.endswith("_std")]
    wide = means.pivot_table(index="model", columns=["setting", "metric"], values="value")
    columns = sorted(wide.columns, key=lambda c: (_per_class(c[0]), c[1]))
    return wide[columns].reindex(list(dict.fromkeys(table["model"])))


def label_efficiency_plot(table: pd.DataFrame, title: str):
    """Accuracy against labels per class (log x; "all" at the mean class size), one line per
    input with a ±1 std band: logistic probe on the left, k-NN (and label spreading, ◆) right."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = table.copy()
    if "labels_per_class" not in table:  # a hand-made table: "all" one decade past the rest
        x = table["setting"].map(_per_class)
        table["labels_per_class"] = x.replace(np.inf, 10 * x[np.isfinite(x)].max())
    models = list(dict.fromkeys(table["model"]))
    from .plots import model_colour  # matplotlib only when a figure is drawn

    colors = {model: model_colour(model, i) for i, model in enumerate(models)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    panels = ((axes[0], "probe_accuracy", "logistic-regression probe"),
              (axes[1], "knn_accuracy", "k-NN probe"), (axes[1], "spread_accuracy", None))
    for ax, metric, panel_title in panels:
        for model in models:
            rows = table[(table["model"] == model) & (table["metric"] == metric)]
            if rows.empty:
                continue
            rows = rows.sort_values("labels_per_class")
            stds = table[(table["model"] == model) & (table["metric"] == f"{metric}_std")]
            std = stds.set_index("setting")["value"].reindex(rows["setting"]).fillna(0).to_numpy()
            x, mean = rows["labels_per_class"].to_numpy(), rows["value"].to_numpy()
            style = dict(color=colors[model])
            if metric == "spread_accuracy":
                ax.errorbar(x, mean, yerr=std, fmt="D", markersize=7, capsize=3, **style)
                continue
            ax.plot(x, mean, "o-", label=LEGEND.get(model, model), **style)
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
