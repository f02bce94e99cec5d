"""Trained models for readers: export a build's checkpoints, and fetch them back, verified.

    python -m latent_notes.weights export --profile standard [--cache-dir DIR] OUT/

writes every checkpoint the profile's last build trained or loaded (listed in the build's
events, ``_build/reports/*.events.jsonl``) into OUT/, with ``manifest.json``: per model its
cache key, file name, bytes, sha256, aliases, config and the headline metric of its training.

A **weights source** is a URL or a folder holding such an export. When the checkpoint cache
misses, :func:`fetch` looks the file up in the source's manifest, downloads it with pooch (a
progress bar, the sha256 checked against the manifest), checks that it loads with
``weights_only=True`` and moves it into the cache. Any failure (unreachable source, unknown
model, wrong hash, truncated file, a broken manifest) costs one warning line and the model is
trained as if there were no source. The source is the chapters' ``weights`` parameter or
``$LATENT_NOTES_WEIGHTS``: ``"auto"`` (the published release of the repository named in
``_config.yml``; the default in Colab), ``"off"``, a URL or a folder.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .checks import ParameterError

MANIFEST = "manifest.json"
FIELDS = ("file", "name", "key", "bytes", "sha256", "aliases", "config", "headline")
HEADLINES = ("test_accuracy", "test_neg_elbo", "test_mse", "test_bits_per_code", "test_loss")
_state = {"source": None, "configured": False, "manifests": {}, "dead": set()}


class WeightsError(RuntimeError):
    """A weights source or an export could not be used; the message says why."""


# -- where the weights come from ---------------------------------------------------------------

def in_colab() -> bool:
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def release_url() -> str:
    """The published weights: the latest release of the repository named in _config.yml."""
    root = Path(__file__).resolve().parent.parent
    if (root / "_config.yml").exists():
        from .build import repository_url

        return f"{repository_url(root)}/releases/latest/download"
    try:  # a pip install from git (Colab's install cell) records the repository it came from
        from importlib.metadata import distribution

        url = json.loads(distribution("latent-notes").read_text("direct_url.json") or "{}")["url"]
        return f"{url.removesuffix('.git').rstrip('/')}/releases/latest/download"
    except Exception as err:
        raise WeightsError(f"weights='auto' needs the repository's URL, found neither _config.yml "
                           f"beside the package nor a pip install from git ({err}).") from None


def resolve(weights) -> str | None:
    """A ``weights`` value → the source (a URL or a folder), or None for no source."""
    if weights is None:
        weights = os.environ.get("LATENT_NOTES_WEIGHTS") or ("auto" if in_colab() else "off")
    text = str(weights).strip()
    if text == "off":
        return None
    if text == "auto":
        return release_url()
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    if Path(text).expanduser().is_dir():
        return str(Path(text).expanduser().resolve())
    raise ParameterError(
        f"weights={weights!r} is not a weights source. Use one of three forms: \"auto\" (the "
        f"trained models published with the book's latest release), \"off\" (train everything "
        f"here), or a URL (http:// or https://) or an existing folder holding an export made by "
        f"`python -m latent_notes.weights export` (with its {MANIFEST}).")


def configure(weights) -> str | None:
    """Set this process's weights source from a chapter's ``weights`` parameter."""
    _state.update(source=resolve(weights), configured=True)
    return _state["source"]


def current_source() -> str | None:
    if not _state["configured"]:
        configure(None)
    return _state["source"]


# -- fetching ----------------------------------------------------------------------------------

def _progress() -> bool:
    return os.environ.get("LATENT_NOTES_PROGRESS", "1") != "0"


def _retrieve(source: str, file: str, folder: Path, sha256: str | None) -> Path:
    """``source/file`` as a local file in ``folder``: downloaded by pooch (checked against
    ``sha256`` when given) or copied from a folder source and checked here."""
    if source.startswith(("http://", "https://")):
        import pooch

        downloader = pooch.HTTPDownloader(progressbar=_progress(), timeout=30)
        return Path(pooch.retrieve(f"{source}/{file}", known_hash=sha256 and f"sha256:{sha256}",
                                   fname=file, path=folder, downloader=downloader))
    target = folder / file
    shutil.copyfile(Path(source) / file, target)
    if sha256 and sha256_of(target) != sha256:
        target.unlink()
        raise WeightsError(f"{Path(source) / file} does not match the sha256 in its manifest")
    return target


def manifest(source: str) -> dict:
    """The source's manifest as {file: entry}, read once per process."""
    if source not in _state["manifests"]:
        with tempfile.TemporaryDirectory() as folder:
            path = _retrieve(source, MANIFEST, Path(folder), None)
            try:
                entries = json.loads(path.read_text())["models"]
                for entry in entries:
                    missing = [f for f in FIELDS if f not in entry]
                    if missing:
                        raise KeyError(f"an entry lacks {', '.join(missing)}")
            except (ValueError, KeyError, TypeError) as err:
                raise WeightsError(f"{source}/{MANIFEST} is not a weights manifest ({err}); "
                                   "export it again with `python -m latent_notes.weights export`"
                                   ) from None
        _state["manifests"][source] = {entry["file"]: entry for entry in entries}
    return _state["manifests"][source]


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def fetch(file: str, target: Path, alias: str | None = None) -> str | None:
    """Put the source's checkpoint ``file`` (or the one stored under ``alias``) at ``target``.

    Returns the file name fetched, or None (no source, not there, or a failure: warned).
    """
    from .cache import CheckpointError, load_checkpoint

    source = current_source()
    if source is None or source in _state["dead"]:
        return None
    try:
        entries = manifest(source)
    except Exception as err:  # unreachable, or a broken manifest: one warning, then train
        _state["dead"].add(source)
        _warn(f"The weights source {source} could not be read ({type(err).__name__}: {err}); "
              "models missing from the cache will be trained here.")
        return None
    entry = entries.get(file) or next((e for e in entries.values()
                                       if alias and alias in e["aliases"]), None)
    if entry is None:
        return None
    target = Path(target)
    if alias:
        target = target.parent / entry["file"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        try:
            path = _retrieve(source, entry["file"], Path(folder), entry["sha256"])
            load_checkpoint(path)  # loads with weights_only=True, or raises
        except (Exception, CheckpointError) as err:
            _warn(f"The trained model {entry['file']} from {source} was rejected "
                  f"({type(err).__name__}: {err}); it will be trained here.")
            return None
        os.replace(path, target)  # atomic: the cache never holds half a file
    return entry["file"]


# -- exporting -----------------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _headline(history: dict) -> dict:
    for metric in HEADLINES:
        if history.get(metric):
            return {"metric": metric, "value": float(history[metric][-1])}
    return {}


def build_events(profile: str, reports: Path) -> list[dict]:
    """The models the profile's last build trained or loaded, from its report and events."""
    report_path = reports / "build-report.json"
    if not report_path.exists():
        raise WeightsError(f"No build report in {reports}: build the {profile} profile first "
                           f"(`python -m latent_notes.build --profile {profile}`).")
    built = json.loads(report_path.read_text()).get("profile")
    if built != profile:
        raise WeightsError(f"The last build in {reports.parent} was the {built!r} profile, not "
                           f"{profile!r}: build it first (`python -m latent_notes.build --profile "
                           f"{profile}`), then export.")
    events = []
    for path in sorted(reports.glob("*.events.jsonl")):
        events += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("file")]


def export(profile: str, out: Path, cache_dir: Path, reports: Path) -> dict:
    """Copy the build's checkpoints into ``out`` and write the manifest; return it."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for event in build_events(profile, reports):
        source = cache_dir / event["file"]
        if not source.exists():
            raise WeightsError(f"{source} is missing: was the build's cache folder {cache_dir}? "
                               "Pass --cache-dir.")
        entry = entries.get(event["file"])
        if entry is None:
            payload = torch.load(source, map_location="cpu", weights_only=True)
            shutil.copyfile(source, out / event["file"])
            entry = entries[event["file"]] = {
                "file": event["file"], "name": payload["name"], "key": payload["key"],
                "bytes": source.stat().st_size, "sha256": sha256_of(source), "aliases": [],
                "config": payload["config"], "headline": _headline(payload["history"])}
        for alias in event.get("aliases", []):
            if alias not in entry["aliases"]:
                entry["aliases"].append(alias)
    manifest = {"format": 1, "profile": profile,
                "created": datetime.datetime.now().isoformat(timespec="seconds"),
                "models": sorted(entries.values(), key=lambda e: e["file"])}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None) -> int:
    from .build import BUILD

    parser = argparse.ArgumentParser(description="Export a build's trained models for readers.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="copy the profile's checkpoints and write manifest.json")
    ex.add_argument("out", type=Path)
    ex.add_argument("--profile", default="standard")
    ex.add_argument("--cache-dir", type=Path, default=None,
                    help="the build's cache folder (default: $LATENT_NOTES_CACHE or .cache/checkpoints)")
    ex.add_argument("--build-dir", type=Path, default=BUILD, help="the build folder (default _build)")
    args = parser.parse_args(argv)
    cache = args.cache_dir or (Path(os.environ["LATENT_NOTES_CACHE"])
                               if os.environ.get("LATENT_NOTES_CACHE")
                               else BUILD.parent / ".cache" / "checkpoints")
    try:
        result = export(args.profile, args.out, cache, args.build_dir / "reports")
    except WeightsError as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 1
    total = sum(e["bytes"] for e in result["models"])
    print(f"exported {len(result['models'])} models ({total / 2**20:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
