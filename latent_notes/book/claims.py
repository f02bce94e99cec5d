"""Where the book's claims hold: the claims matrix, claim × (seed, thread count).

``scripts/claims_matrix.py`` builds the book once per cell and runs the claims tests
(tests/test_claims.py) on each build; this module reads their JUnit reports, keeps the result
in ``profiles/claims_matrix.json`` ({"profile", "date", "machine", "commit", "cells": {cell:
{claim: outcome}}, and, when cells were built at different commits, "commits": {cell:
commit}}, and "machines": {cell: what it was built on}, the CPU's vector extensions
included, where that was recorded) and writes the table the intro page shows. Nothing here is
typed by hand.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "profiles" / "claims_matrix.json"
OUTCOMES = {"passed": "✓", "failed": "✗", "error": "E", "skipped": "–"}
CELL = re.compile(r"seed\d{1,6}-threads\d{1,3}")
CLAIM = re.compile(r"\(?[A-Za-z0-9_ ]{1,200}\)?")
COMMIT = re.compile(r"[0-9a-f]{4,40}|unknown")
MACHINE = re.compile(r"[A-Za-z0-9 ,._()-]{1,100}")
MAX_BYTES = 2**20  # a record is a few kB


def read_junit(path: Path) -> dict:
    """{test name: passed | failed | error | skipped} from pytest's JUnit XML report."""
    if not path.exists():
        return {"(claims tests)": "error"}
    outcome = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome[case.get("name")] = ("failed" if "failure" in kinds else
                                     "error" if "error" in kinds else
                                     "skipped" if "skipped" in kinds else "passed")
    return outcome


def table(cells: dict, commits: dict | None = None) -> str:
    """A Markdown table: one row per claim, one column per cell (✓ held, ✗ failed); with
    ``commits`` ({cell: commit}) naming more than one commit, each column names its own."""
    names = list(cells)
    claims = sorted({claim for found in cells.values() for claim in found})
    several = commits and len({commits.get(c) for c in names}) > 1
    heads = [f"{c} ({commits.get(c, '?')})" if several else c for c in names]
    lines = ["| claim | " + " | ".join(heads) + " |", "|---" * (len(names) + 1) + "|"]
    for claim in claims:
        marks = [OUTCOMES.get(cells[c].get(claim, ""), "·") for c in names]
        lines.append(f"| {claim.removeprefix('test_').replace('_', ' ')} | "
                     + " | ".join(marks) + " |")
    held = sum(all(cells[c].get(claim) == "passed" for c in names) for claim in claims)
    newer = sum(all(cells[c].get(claim, "passed") == "passed" for c in names)
                for claim in claims) - held  # passed wherever its cell's commit had it
    where = (f"; {newer} more {'holds' if newer == 1 else 'hold'} in every cell whose commit "
             "had it" if newer else "")
    lines.append(f"\n{held} of {len(claims)} claims hold in all {len(names)} cells{where} "
                 "(✓ held, ✗ failed, E the build or its tests errored, · not a test at that "
                 "cell's commit).")
    return "\n".join(lines)


def load(path: Path = RECORD) -> dict:
    """The recorded matrix, checked: a missing, oversized or malformed file reads as none."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("cells"), dict):
        return {}
    cells = {}
    for cell, found in data["cells"].items():
        if not (isinstance(cell, str) and CELL.fullmatch(cell) and isinstance(found, dict)):
            return {}
        if not all(isinstance(k, str) and CLAIM.fullmatch(k) and v in OUTCOMES
                   for k, v in found.items()):
            return {}
        cells[cell] = found
    meta = {key: str(data.get(key, ""))[:200] for key in ("profile", "date", "machine", "commit")}
    commits = data.get("commits", {})
    if not (isinstance(commits, dict) and set(commits) <= set(cells)
            and all(isinstance(v, str) and COMMIT.fullmatch(v) for v in commits.values())):
        return {}
    commits = {cell: commits.get(cell, meta["commit"]) for cell in cells}
    machines = data.get("machines", {})
    if not (isinstance(machines, dict) and set(machines) <= set(cells)
            and all(isinstance(v, str) and MACHINE.fullmatch(v) for v in machines.values())):
        return {}
    return {**meta, "cells": cells, "commits": commits, "machines": machines} if cells else {}


def matrix_markdown(record: dict | None = None) -> str:
    """The intro page's section: which claim holds at which seed and thread count."""
    record = load() if record is None else record
    if not record:
        return ""
    return ("\n## Where the claims hold\n\n"
            "Every sentence of the book that compares two numbers is chosen by those numbers, "
            "and the claims tests (`tests/test_claims.py`) check each against the run's "
            f"results. This table is those tests on the {record['profile']} profile, built "
            "once per seed and per number of CPU threads (the thread count changes the order "
            "of floating-point sums, as another CPU would), by `scripts/claims_matrix.py` on "
            f"{record['date']} ({_provenance(record)}):\n\n"
            + table(record["cells"], record.get("commits")) + "\n")


def _provenance(record: dict) -> str:
    """"2 CPU cores, x86_64, AVX2, commit abc1234", or, for cells built at several commits or
    on several machines, which cells were built where ("seed0-threads2 and seed1-threads2 at
    commit abc1234 on a machine not recorded; ...")."""
    machines = record.get("machines") or {}
    groups = {}
    for cell in record["cells"]:
        where = (record.get("commits", {}).get(cell, record["commit"]),
                 machines.get(cell) if machines else record["machine"])
        groups.setdefault(where, []).append(cell)
    if len(groups) == 1:
        (commit, machine), = groups
        return f"{machine or 'a machine not recorded'}, commit {commit}"
    return "; ".join(f"{_and(cells)} at commit {commit} on "
                     f"{machine or 'a machine not recorded'}"
                     for (commit, machine), cells in groups.items())


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
