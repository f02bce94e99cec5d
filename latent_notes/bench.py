"""How fast the book trains, measured against what this machine can do.

    python -m latent_notes.bench                      # this checkout, 3 rounds
    python -m latent_notes.bench --compare ../before  # another checkout, alternated with this one
    python -m latent_notes.bench --cases vae judge --seconds 5 --rounds 5

For each model the book trains (the standard edition's recipe: its batch size and widths, read
from ``profiles/standard.yml``), on this machine's CPU threads:

- **step**: images (or code grids) per second of the training step (forward, backward, Adam),
  timed over ``--seconds`` after a warm-up, on real digits (``mnist5k``);
- **MFLOP/img**: the step's floating-point operations per image, counted by torch's
  ``FlopCounterMode`` (matrix products and convolutions, forward and backward; the optimiser
  and elementwise operations are not counted, so the share below is a lower bound);
- **GFLOP/s** and **% of peak**: achieved against a 2048² matrix product in the precision the
  step computes in (float32, or bfloat16 where the recipe uses it), measured here first;
- **outside**: the share of a whole ``fit`` (one epoch on ``mnist5k``'s 4,125 training and 375
  validation images, with the validation pass, the family's per-epoch monitor and the training
  state written, as in the book) spent outside the steps.

Each round runs every checkout once in a fresh process (this one, then ``--compare``'s, the
order alternating), and the table gives the median of the rounds. ``--compare`` runs this file
against the other checkout's package, so the other checkout needs no benchmark of its own.
Two torch processes at once slow each other: run it alone.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # this checkout's root
CASES = ("judge", "ae", "vae", "vqvae2", "prior")
TITLES = {"judge": "chapter 1's judge (cnn_deep)", "ae": "chapter 2's autoencoder, latent 16",
          "vae": "chapter 3's VAE, latent 16", "vqvae2": "chapter 4's VQ-VAE-2",
          "prior": "chapter 4's bottom prior"}
MAX_ROUNDS = 20
MAX_SECONDS = 120.0


# -- the machine ---------------------------------------------------------------------------------

def matmul_peak(dtype_name: str, size: int = 2048, repeats: int = 7,
                budget: float = 0.5) -> tuple[float, int]:
    """(GFLOP/s, n) of an n² matrix product in ``dtype_name``: the median of ``repeats``,
    n = ``size`` or, where ``repeats`` products would take longer than ``budget`` seconds
    (bfloat16 on a CPU without it, computed in software), the largest power of two that
    does not."""
    import torch

    dtype = getattr(torch, dtype_name)
    n = 256
    while True:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b  # warm-up: threads started, kernels chosen
        start = time.perf_counter()
        a @ b
        took = time.perf_counter() - start
        if n >= size or took * 2 * (repeats + 1) > budget:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9, n


# -- the cases: the standard edition's recipes ---------------------------------------------------

def _standard() -> dict:
    import yaml

    profile = yaml.safe_load((HERE / "profiles" / "standard.yml").read_text())
    return profile.get("chapters", {})


def _named(chapter: dict, *names: str, prefix: str = "") -> dict:
    """The recipe options the standard profile names for a chapter (the rest: the family's)."""
    return {name: chapter[prefix + name] for name in names if prefix + name in chapter}


def _recipe(name: str, data, families):
    """(family, model config, train config, data for the family) of one case."""
    chapters = _standard()
    recipe = ("batch_size", "lr", "schedule")
    if name == "judge":
        family = families.CLASSIFIER
        model, train = family.recipe(data, arch="cnn_deep", epochs=1,
                                     **_named(chapters.get("01_cnn_warmup", {}), *recipe))
        return family, model, train, data
    if name in ("ae", "vae"):
        family = families.FAMILIES[name]
        chapter = chapters.get("02_autoencoder" if name == "ae" else "03_vae", {})
        model, train = family.recipe(data, epochs=1, latent_size=16,
                                     **_named(chapter, "width", *recipe))
        return family, model, train, data
    vq_family = families.FAMILIES["vqvae2"]
    vq_model, vq_train = vq_family.recipe(data, epochs=1)
    if name == "vqvae2":
        return vq_family, vq_model, vq_train, data
    from latent_notes.models.pixelcnn import prior_config

    family = families.PRIOR
    model = prior_config(vq_model, "bottom", num_classes=len(data.classes),
                         **_named(chapters.get("04_vqvae2", {}), "channels", "layers",
                                  prefix="prior_"))
    return family, model, family.train_config(epochs=1), _code_data(vq_model, data, families)


def _code_data(vq_model, data, families):
    """Code grids of the right sizes for a prior (random codes: speed does not read them)."""
    import torch

    from latent_notes.models.vqvae2 import Codes

    generator = torch.Generator().manual_seed(0)

    def grids(split):
        n = len(split.images)
        return Codes(torch.randint(vq_model.codebook_size_top, (n, vq_model.top_grid,
                                                                 vq_model.top_grid),
                                   generator=generator),
                     torch.randint(vq_model.codebook_size_bottom,
                                   (n, vq_model.bottom_grid, vq_model.bottom_grid),
                                   generator=generator),
                     split.labels)

    return families.CodeData(grids(data.train), grids(data.test), "bench", data.name,
                             grids(data.val))


def _inputs(family, model_config, split):
    if family.inputs:
        return family.inputs(split, model_config)
    return split.images, split.labels


def _precision(training, train_config, device) -> str:
    """The precision the checkout's training step computes in ('float32' before it had one)."""
    resolve = getattr(training, "resolve_precision", None)
    return resolve(getattr(train_config, "precision", "float32"), device) if resolve \
        else "float32"


def _step_function(training, model, loss_fn, optimizer, train_config, device):
    """The checkout's own training step where it has one, else the plain step its ``fit`` ran
    before it had one (written out here: this file runs against that checkout's package)."""
    make = getattr(training, "make_step", None)
    if make is not None:
        return make(model, loss_fn, optimizer, precision=_precision(training, train_config,
                                                                     device), device=device)

    def step(x, y):
        terms = loss_fn(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return terms
    return step


def measure_case(name: str, seconds: float) -> dict:
    """One case in this process: its step's speed, FLOPs and share of ``fit`` outside it."""
    import tempfile

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from latent_notes import families, training
    from latent_notes.data import load_data
    from latent_notes.store.cache import Run

    device = torch.device("cpu")
    data = load_data("mnist5k")
    family, model_config, train_config, fed = _recipe(name, data, families)
    torch.manual_seed(0)
    model = family.build({"model": vars(model_config)}).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    x_all, y_all = _inputs(family, model_config, fed.train)
    batch = train_config.batch_size
    step = _step_function(training, model, family.loss, optimizer, train_config, device)
    batches = [(x_all[i:i + batch], y_all[i:i + batch])
               for i in range(0, len(x_all) - batch + 1, batch)]
    with FlopCounterMode(display=False) as counter:
        step(*batches[0])
    flops = counter.get_total_flops() / batch
    for x, y in batches[1:4]:  # warm-up
        step(x, y)
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step(*batches[i % len(batches)])
        done, i = done + batch, i + 1
    rate = done / (time.perf_counter() - start)
    precision = _precision(training, train_config, device)

    # a whole fit of one epoch, as the book runs it: validation, monitor, training state
    with tempfile.TemporaryDirectory() as cache:
        run = Run.here(seed=0, cache_dir=cache)
        start = time.perf_counter()
        trained = families.train(family, fed, model_config, train_config, run=run)
        fit_seconds = time.perf_counter() - start
    steps = len(trained.history) * len(range(0, len(x_all), batch))
    step_seconds = steps * batch / rate
    return {"case": name, "images_per_s": rate, "mflop_per_image": flops / 1e6,
            "gflops": rate * flops / 1e9, "precision": precision,
            "fit_seconds": fit_seconds, "outside": max(0.0, 1 - step_seconds / fit_seconds),
            "batch_size": batch, "threads": torch.get_num_threads()}


def worker(cases, seconds: float) -> dict:
    import torch

    from latent_notes import training

    native = getattr(training, "native_bfloat16", None)  # a checkout before it had one: None
    measured = {dtype: matmul_peak(dtype) for dtype in ("float32", "bfloat16")}
    peaks = {dtype: rate for dtype, (rate, _) in measured.items()}
    results = [measure_case(name, seconds) for name in cases]
    for row in results:
        row["share_of_peak"] = row["gflops"] / peaks[row["precision"]]
    return {"peaks": peaks, "peak_sizes": {dtype: n for dtype, (_, n) in measured.items()},
            "cases": results, "torch": torch.__version__,
            "cpu": torch.backends.cpu.get_cpu_capability(),
            "native_bfloat16": native("cpu") if native else None}


# -- several checkouts, alternated ---------------------------------------------------------------

def check_checkout(path: str) -> Path:
    """``path`` as a checkout of this book: a folder holding the package ``latent_notes``."""
    folder = Path(path).expanduser()
    if not (folder / "latent_notes" / "__init__.py").is_file() \
            or not (folder / "latent_notes" / "training.py").is_file():
        raise SystemExit(
            f"bench: --compare {path!r} is not a checkout of this book: it has no "
            "latent_notes/__init__.py and latent_notes/training.py. Give the root folder of "
            "another checkout (for example one made with `git worktree add ../before main`).")
    return folder.resolve()


def run_worker(root: Path, cases, seconds: float) -> dict:
    """This file run against the package of the checkout ``root``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(root), "LATENT_NOTES_PROGRESS": "0"}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                           "--cases", *cases, "--seconds", str(seconds)],
                          cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: the run of {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(runs: list[dict]) -> dict:
    """Per case, the median of every number over the rounds."""
    out = {"peaks": {k: statistics.median(r["peaks"][k] for r in runs) for k in runs[0]["peaks"]},
           "peak_sizes": runs[0].get("peak_sizes", {}), "cpu": runs[0]["cpu"],
           "torch": runs[0]["torch"], "cases": {}}
    for row in runs[0]["cases"]:
        name = row["case"]
        rows = [next(c for c in r["cases"] if c["case"] == name) for r in runs]
        out["cases"][name] = {key: (statistics.median(r[key] for r in rows)
                                    if isinstance(row[key], float) else row[key])
                              for key in row}
        rates = [r["images_per_s"] for r in rows]
        out["cases"][name]["range"] = [min(rates), max(rates)]
    return out


def table(results: dict[str, dict]) -> str:
    """Markdown: one row per case, a column group per checkout, the ratio to the first."""
    labels = list(results)
    head = ["model (standard recipe)", "MFLOP/img"]
    for label in labels:
        head += [f"{label}: img/s (min-max)", "% of peak", "outside"]
    if len(labels) > 1:
        head.append(f"{labels[-1]} / {labels[0]}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = results[labels[0]]
    for name, row in first["cases"].items():
        cells = [f"{TITLES[name]}, batch {row['batch_size']}", f"{row['mflop_per_image']:.1f}"]
        for label in labels:
            r = results[label]["cases"][name]
            low, high = r.get("range", [r["images_per_s"]] * 2)
            spread = f" ({low:,.0f}-{high:,.0f})" if high > low else ""
            cells += [f"{r['images_per_s']:,.0f}{spread}",
                      f"{100 * r['share_of_peak']:.0f} % ({r['precision']})",
                      f"{100 * r['outside']:.0f} %"]
        if len(labels) > 1:
            last = results[labels[-1]]["cases"][name]["images_per_s"]
            cells.append(f"×{last / row['images_per_s']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    peaks, sizes = first["peaks"], first.get("peak_sizes", {})

    def peak(dtype):
        n = sizes.get(dtype)
        return f"{peaks[dtype]:.0f} GFLOP/s in {dtype}" + (f" ({n}² product)" if n else "")
    lines += ["", f"Peak of this machine ({first['cpu']}, torch {first['torch']}, "
                  f"{first['cases'][next(iter(first['cases']))]['threads']} threads), the "
                  f"median of 7 matrix products: {peak('float32')}, {peak('bfloat16')}. "
                  "'outside': the share of one epoch's fit (the book's, on mnist5k) spent "
                  "outside the training steps."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="time each training step for this long (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per checkout (median)")
    parser.add_argument("--compare", metavar="CHECKOUT",
                        help="another checkout of the book, timed in the same run")
    parser.add_argument("--json", type=Path, help="also write the medians to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0.5 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between 0.5 and {MAX_SECONDS:g}, got {args.seconds:g}")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be between 1 and {MAX_ROUNDS}, got {args.rounds}")
    if args.worker:
        print(json.dumps(worker(args.cases, args.seconds)))
        return 0
    roots = {"this checkout": HERE}
    if args.compare:
        other = check_checkout(args.compare)
        roots = {f"{other.name} (--compare)": other, "this checkout": HERE}
    runs = {label: [] for label in roots}
    labels = list(roots)
    for round_ in range(args.rounds):
        order = labels if round_ % 2 == 0 else labels[::-1]
        for label in order:
            print(f"round {round_ + 1} of {args.rounds}: {label}", file=sys.stderr, flush=True)
            runs[label].append(run_worker(roots[label], args.cases, args.seconds))
    results = {label: medians(r) for label, r in runs.items()}
    text = table(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"medians": results, "rounds": runs}, indent=1))
    return 0


if __name__ == "__main__":
    # run as a file (--compare does): the package's own folder is not a place to import from
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.exit(main())
