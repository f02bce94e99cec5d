"""What each chapter costs to run, per profile, as measured by builds that trained every model
they used (``python -m latent_notes.book.build --record-times``, or afterwards ``python -m
latent_notes.book.runtimes REPORT``): nothing here is typed by hand. The intro page shows the
table; each chapter quotes its own row near its top.

``profiles/run_times.json``: {profile: {chapter: {"seconds", "peak_rss_mb", "machine",
"date"}}}, one entry per chapter, replaced by the next cold build that executes it.
"""
from __future__ import annotations

import json
import math
import re
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMES = ROOT / "profiles" / "run_times.json"
PROFILES = ("quick", "standard", "full")
CHAPTER = re.compile(r"\d\d_[a-z0-9_]+(-[a-z0-9-]+)?")  # a chapter or one of its editions


def load(path: Path = RUN_TIMES) -> dict:
    """The recorded run times, checked: a missing file reads as none; an unreadable or
    malformed file reads as none, and a malformed entry is left out, with one warning that
    names what was ignored (the chapters quote what is left, and never fail for it)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        _ignored(path, [f"the whole file ({type(err).__name__}: {err})"])
        return {}
    if not isinstance(data, dict):
        _ignored(path, ["the whole file (not a JSON object)"])
        return {}
    clean, ignored = {}, []
    for profile, chapters in data.items():
        if profile not in PROFILES or not isinstance(chapters, dict):
            ignored.append(f"profile {profile!r}")
            continue
        clean[profile] = {}
        for name, entry in chapters.items():
            if well_formed(name, entry):
                clean[profile][name] = entry
            else:
                ignored.append(f"{profile}/{name}")
    if ignored:
        _ignored(path, ignored)
    return clean


def well_formed(name, entry) -> bool:
    """An entry as ``record`` writes it: a chapter's name, a finite, non-negative number of
    seconds, the machine and the date in words, the peak memory a number or None."""
    def number(value) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0)

    return (isinstance(name, str) and CHAPTER.fullmatch(name) is not None
            and isinstance(entry, dict) and number(entry.get("seconds"))
            and isinstance(entry.get("machine"), str) and isinstance(entry.get("date"), str)
            and (entry.get("peak_rss_mb") is None or number(entry["peak_rss_mb"])))


def _ignored(path: Path, what: list[str]) -> None:
    warnings.warn(f"{path.name}: ignored {', '.join(what)}: not a run time as a build records "
                  "it (seconds, machine, date). Record it again with --record-times.",
                  stacklevel=3)


def is_cold(report: dict) -> bool:
    """True when every model the build used was trained by the build itself: each model
    event is a training, or a load of a model an earlier event of the same build trained."""
    trained = set()
    for chapter in report["chapters"].values():
        for event in chapter.get("models", []):
            status = str(event.get("status", ""))
            if status.startswith(("trained", "retrained")):
                trained.add(event.get("key"))
            elif event.get("key") not in trained:
                return False  # found in the cache (or downloaded) from before this build
    return any(c.get("status") == "executed" for c in report["chapters"].values())


def record(report: dict, machine: str, path: Path = RUN_TIMES, date: str | None = None) -> dict:
    """Put the executed chapters of a cold build's ``report`` (build-report.json) into the
    record; returns the record. A report of a build that found models in its cache is refused:
    its times would say what a warm cache costs."""
    if not is_cold(report):
        raise ValueError("This build used models it did not train (found in the checkpoint "
                         "cache or downloaded), so its times are not what a chapter costs "
                         "from scratch. Build with an empty --cache-dir and --force to "
                         "record run times.")
    profile = report.get("profile")
    if profile not in PROFILES:
        raise ValueError(f"The report's profile is {profile!r}; run times are kept for "
                         f"{', '.join(PROFILES)} only.")
    times = load(path)
    date = date or time.strftime("%Y-%m-%d", time.gmtime())
    for name, chapter in report["chapters"].items():
        if not CHAPTER.fullmatch(str(name)):
            raise ValueError(f"The report names a chapter {name!r}, not a chapter of the book "
                             "(NN_name); it is not recorded.")
        if chapter.get("status") == "executed":
            times.setdefault(profile, {})[name] = {
                "seconds": chapter["seconds"], "peak_rss_mb": chapter.get("peak_rss_mb"),
                "machine": machine, "date": date}
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    return times


def machine_of(report: dict) -> str:
    """The machine a build trained on, in words (from its first training event)."""
    from ..training import describe_machine  # torch only when a report is recorded

    trained_on = [e.get("trained_on") for ch in report["chapters"].values()
                  for e in ch.get("models", []) if e.get("trained_on")]
    return describe_machine(trained_on[0] if trained_on else None)


def duration(seconds: float) -> str:
    """40 → '40 s'; 1576 → '26 min'; 6299 → '1 h 45 min'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def cost_sentence(chapter: str, times: dict | None = None) -> str:
    """What running ``chapter`` from scratch cost on each profile a cold build recorded."""
    times = load() if times is None else times
    parts = [f"{duration(entry['seconds'])} on the {profile} profile, on {entry['machine']} "
             f"on {entry['date']}"
             for profile in PROFILES
             if (entry := times.get(profile, {}).get(chapter))]
    if not parts:
        return ("No build that trained its models has recorded what this chapter costs yet "
                "(profiles/run_times.json)")
    return ("In a build that trained every model it used, this chapter took "
            + "; ".join(parts))


def table_markdown(chapters: list[str], times: dict | None = None) -> str:
    """The intro page's table: one row per chapter, one column per profile."""
    times = load() if times is None else times
    if not times:
        return ""
    shown = [p for p in PROFILES if p in times]
    rows = ["| chapter | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for chapter in chapters:
        cells = [duration(times[p][chapter]["seconds"]) if chapter in times[p] else "-"
                 for p in shown]
        rows.append(f"| {chapter} | " + " | ".join(cells) + " |")
    machines = sorted({f"{p}: {e['machine']}, {e['date']}" for p in shown
                       for e in times[p].values()})
    return ("\n## What each chapter costs to run\n\n"
            "Wall time of each chapter in a build that trained every model it used, as "
            "recorded by the build itself (`--record-times`; `profiles/run_times.json`), with "
            "the chapters in book order: a later chapter reuses the judge and the models that "
            "earlier chapters trained, and run alone it trains them too. With the published "
            "models (`weights = auto`) nothing is trained.\n\n"
            + "\n".join(rows) + "\n\nMeasured on: " + "; ".join(machines) + ".\n")


def main(argv=None) -> int:
    """python -m latent_notes.book.runtimes REPORT: record a cold build's report."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("report", type=Path, help="_build/reports/build-report.json")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    record(report, machine_of(report))
    print(f"recorded {report['profile']}: {', '.join(report['chapters'])} in {RUN_TIMES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
