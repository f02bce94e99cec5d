"""Which of the book's claims hold at which seed and thread count: the claims matrix.

Builds the book (``--no-render``) once per (seed, threads) cell, each in its own build, results
and checkpoint folders, then runs the claims tests (tests/test_claims.py) against that build and
prints a table of claim × cell. The thread count changes the order of floating-point reductions,
so it stands in for another CPU: a claim the book makes must hold in every cell.

    python scripts/claims_matrix.py --seeds 0 1 2 --threads 1 2 --jobs 2 --out matrix.md

``-p KEY=VALUE`` passes parameters to every build (as the book's build takes them); ``--jobs``
runs that many cells at once (give each at most cores / jobs threads, or the timings suffer,
not the results). Each cell's logs stay in its folder under ``--work``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from latent_notes.book.claims import RECORD, load, read_junit, table  # noqa: E402


def machine() -> str:
    """'2 CPU cores, x86_64, AVX2': the cores, the architecture and the vector extensions torch
    uses (another CPU rounds differently, as another thread count does)."""
    import torch

    return (f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
            f"{torch.backends.cpu.get_cpu_capability()}")


def cell_name(seed: int, threads: int) -> str:
    return f"seed{seed}-threads{threads}"


def run_cell(seed: int, threads: int, params: list[str], work: Path, profile: str,
             record_times: bool = False) -> dict:
    """Build one cell and run the claims tests on it: {test name: passed | failed | error}."""
    folder = work / cell_name(seed, threads)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "LATENT_NOTES_BUILD_DIR": str(folder / "build"),
           "LATENT_NOTES_CLAIMS_RESULTS": str(folder / "results"),
           "LATENT_NOTES_CACHE": str(folder / "cache"), "LATENT_NOTES_PROGRESS": "0",
           # this checkout's package, in the chapters' kernels too (not another one installed)
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    build = [sys.executable, "-m", "latent_notes.book.build", "--profile", profile,
             "--no-render", "--results-dir", str(folder / "results"),
             "--cache-dir", str(folder / "cache"), "-p", f"seed={seed}"]
    for param in params:
        build += ["-p", param]
    if record_times:  # a cold build alone on the machine: its times go to run_times.json
        build.append("--record-times")
    with open(folder / "build.log", "w") as log:
        built = subprocess.run(build, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if built.returncode != 0:
        return {"(build)": "error"}
    report = folder / "claims.xml"
    with open(folder / "claims.log", "w") as log:
        subprocess.run([sys.executable, "-m", "pytest", "tests/test_claims.py", "-q",
                        "-p", "no:cacheprovider", f"--junitxml={report}"],
                       cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return read_junit(report)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--jobs", type=int, default=1, help="cells built at once")
    parser.add_argument("--skip", nargs="*", default=[], metavar="seedS-threadsT",
                        help="cells not to build (already recorded for this commit)")
    parser.add_argument("--work", type=Path, default=ROOT / "_build" / "claims-matrix")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--record-times", action="store_true",
                        help="record each cell's cold build times (run one cell, alone)")
    parser.add_argument("--keep-older", action="store_true",
                        help="with --record, keep recorded cells of other commits (each "
                             "column then names its commit) instead of dropping them")
    parser.add_argument("--record", action="store_true",
                        help="keep the matrix in profiles/claims_matrix.json (the intro shows it)")
    args = parser.parse_args(argv)
    if min(args.seeds) < 0 or min(args.threads) < 1 or args.jobs < 1:
        parser.error("seeds must be ≥ 0, threads and jobs ≥ 1")
    cells = [(s, t) for t in args.threads for s in args.seeds
             if cell_name(s, t) not in args.skip]
    with ThreadPoolExecutor(args.jobs) as pool:
        found = pool.map(lambda c: run_cell(*c, args.param, args.work, args.profile,
                                            args.record_times), cells)
        outcomes = {cell_name(*c): result for c, result in zip(cells, found, strict=True)}
    text = table(outcomes)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.record:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
        commit = commit or "unknown"
        kept = load()  # cells of the same commit and profile built by an earlier call stay
        if kept.get("profile") != args.profile:
            kept = {}
        kept_commits = {cell: c for cell, c in kept.get("commits", {}).items()
                        if c == commit or args.keep_older}
        cells = {**{c: kept["cells"][c] for c in kept_commits}, **outcomes}
        commits = {**kept_commits, **{cell: commit for cell in outcomes}}
        here = machine()
        machines = {**{c: m for c, m in kept.get("machines", {}).items() if c in kept_commits},
                    **{cell: here for cell in outcomes}}
        RECORD.write_text(json.dumps({
            "profile": args.profile, "date": time.strftime("%Y-%m-%d"), "machine": here,
            "commit": commit, "cells": cells, "commits": commits, "machines": machines},
            indent=1, ensure_ascii=False))
    return 0 if all(v == "passed" for o in outcomes.values() for v in o.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
