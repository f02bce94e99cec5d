"""Trained models for readers: export a build's checkpoints, and fetch them back, verified.

    python -m latent_notes.store.weights export --profile standard [--cache-dir DIR] OUT/

writes every checkpoint the profile's last build trained or loaded (listed in the build's
events, ``_build/reports/*.events.jsonl``) into OUT/, with ``manifest.json``: per model its
cache key, file name, bytes, sha256, aliases, config and the headline metric of its training.

A **weights source** (:class:`Source`) is a URL or a folder holding such an export. When the
checkpoint cache misses, :meth:`Source.fetch` looks the file up in the source's manifest,
downloads it with pooch (a progress bar, the sha256 checked against the manifest), checks that
it loads with ``weights_only=True``, holds the config its manifest entry names (before its model
is built, every size bounded: ``latent_notes.store.checkpoint.load_checkpoint``) and only
finite numbers, and moves it into the cache. Any failure (unreachable source, unknown
model, wrong hash, truncated file, a broken manifest) costs one warning line and the model is
trained as if there were no source. The source is the chapters' ``weights`` parameter or
``$LATENT_NOTES_WEIGHTS``: ``"auto"`` (the published release of the repository named in
``_config.yml``; the default in Colab), ``"off"``, a URL or a folder.

A manifest is data from elsewhere, checked field by field when read (:func:`validate_manifest`):
file names are plain names that stay inside the cache, every file has its sha256 and size, and a
download stops at the size the manifest gives. Remote sources are ``https://`` (plain
``http://`` only on this machine's loopback address, for tests), and a redirect may neither
change the scheme nor leave https.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import ipaddress
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..checks import ParameterError
from ..training import progress_enabled, temporary_path
from .checkpoint import CheckpointError, config_key, load_checkpoint

CHECKOUT = Path(__file__).resolve().parents[2]  # latent_notes/store/weights.py -> the checkout

MANIFEST = "manifest.json"
# every field of a manifest entry and the JSON type it must have
FIELDS = {"file": str, "name": str, "key": str, "bytes": int, "sha256": str, "aliases": list,
          "config": dict, "headline": dict}
PLAIN_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")  # no separator, no leading dot
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_MODEL_BYTES = 2 * 2**30  # no checkpoint of the book comes near this
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_REDIRECTS = 5
HEADLINES = ("val_accuracy", "val_neg_elbo", "val_mse", "val_bits_per_code", "val_loss")


class WeightsError(RuntimeError):
    """A weights source or an export could not be used; the message says why."""


# -- where the weights come from ---------------------------------------------------------------

def in_colab() -> bool:
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def repository_url(root: Path = CHECKOUT) -> str:
    """The repository's URL, kept in one place: ``repository.url`` in _config.yml."""
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def release_url() -> str:
    """The published weights: the latest release of the repository named in _config.yml."""
    if (CHECKOUT / "_config.yml").exists():
        return f"{repository_url()}/releases/latest/download"
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
        check_url(text)
        return text.rstrip("/")
    if Path(text).expanduser().is_dir():
        return str(Path(text).expanduser().resolve())
    raise ParameterError(
        f"weights={weights!r} is not a weights source. Use one of three forms: \"auto\" (the "
        f"trained models published with the book's latest release), \"off\" (train everything "
        f"here), or an https:// URL or an existing folder holding an export made by "
        f"`python -m latent_notes.store.weights export` (with its {MANIFEST}).")


# -- fetching ----------------------------------------------------------------------------------

def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def check_url(url: str, scheme: str | None = None) -> None:
    """Raise WeightsError unless ``url`` is https (or http on loopback) with the given scheme."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname)):
        if scheme is None or parts.scheme == scheme:
            return
        raise WeightsError(f"a redirect to {shown_location(url)} changes the scheme from "
                           f"{scheme}; refused.")
    raise WeightsError(f"{shown_location(url)} is not an https:// address (plain http:// is "
                       "accepted only on this machine's loopback address, for tests): trained "
                       "models are code-free data, but only over a connection that cannot be "
                       "tampered with.")


def _capped_downloader(limit: int):
    """A pooch downloader that follows at most MAX_REDIRECTS redirects, each checked by
    :func:`check_url` against the first address's scheme, and stops past ``limit`` bytes."""
    def download(url, output_file, pooch_obj=None, check_only=False):
        import requests
        from tqdm.auto import tqdm

        scheme = urlsplit(url).scheme
        with requests.Session() as session:
            for _ in range(MAX_REDIRECTS + 1):
                check_url(url, scheme)
                response = session.get(url, stream=True, timeout=30, allow_redirects=False)
                if not response.is_redirect:
                    break
                url = urljoin(url, response.headers["location"])
                response.close()
            else:
                raise WeightsError(f"more than {MAX_REDIRECTS} redirects; refused.")
            with response:
                response.raise_for_status()
                announced = int(response.headers.get("content-length") or 0)
                if announced > limit:
                    raise WeightsError(f"{shown_location(url)} announces {announced} bytes, "
                                       f"more than the {limit} its manifest allows; not "
                                       "downloaded.")
                got = 0
                with open(output_file, "wb") as f, tqdm(
                        total=announced or None, unit="B", unit_scale=True,
                        desc=Path(urlsplit(url).path).name, disable=not progress_enabled()) as bar:
                    for chunk in response.iter_content(1 << 16):
                        got += len(chunk)
                        if got > limit:
                            raise WeightsError(f"{shown_location(url)} sent more than the "
                                               f"{limit} bytes its manifest gives; the "
                                               "download was stopped.")
                        f.write(chunk)
                        bar.update(len(chunk))
    return download


def _retrieve(source: str, file: str, folder: Path, sha256: str | None, size: int) -> Path:
    """``source/file`` as a local file in ``folder``, at most ``size`` bytes: downloaded by
    pooch (checked against ``sha256`` when given) or copied from a folder source and checked."""
    if not PLAIN_FILE.fullmatch(file):
        raise WeightsError(f"{file!r} is not a plain file name")
    if source.startswith(("http://", "https://")):
        import pooch

        return Path(pooch.retrieve(f"{source}/{file}", known_hash=sha256 and f"sha256:{sha256}",
                                   fname=file, path=folder, downloader=_capped_downloader(size),
                                   progressbar=False))
    origin, target = Path(source) / file, folder / file
    if not origin.is_file() or origin.stat().st_size > size:
        raise WeightsError(f"{origin} is missing, not a file, or larger than {size} bytes")
    shutil.copyfile(origin, target)
    if sha256 and sha256_of(target) != sha256:
        target.unlink()
        raise WeightsError(f"{origin} does not match the sha256 in its manifest")
    return target


def validate_manifest(data, where: str) -> dict[str, dict]:
    """A manifest's entries as {file: entry}, every field checked, or one WeightsError that
    names the manifest, the entry and the field."""
    def bad(message: str):
        raise WeightsError(f"{where} is not a valid weights manifest: {message}. Export it again "
                           "with `python -m latent_notes.store.weights export`, or use another "
                           "source.")

    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        bad('it must be a JSON object with a list of models under "models"')
    entries, aliases = {}, set()
    for number, entry in enumerate(data["models"], 1):
        label = f"model {number}"
        if not isinstance(entry, dict):
            bad(f"{label} is not an object")
        for field, kind in FIELDS.items():
            value = entry.get(field)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                bad(f"{label} has no {field} of type {kind.__name__} (found {value!r:.60})")
        label = f"model {number} ({entry['file']!r:.60})"
        if not PLAIN_FILE.fullmatch(entry["file"]) or not entry["file"].endswith(".pt"):
            bad(f"{label}: file must be a plain name ending in .pt (letters, digits, '.', '_', "
                "'-'; no folder, no leading dot)")
        if not SHA256.fullmatch(entry["sha256"]):
            bad(f"{label}: sha256 must be 64 lower-case hex digits")
        if not 0 < entry["bytes"] <= MAX_MODEL_BYTES:
            bad(f"{label}: bytes must be a positive size of at most {MAX_MODEL_BYTES}")
        for alias in entry["aliases"]:
            if not isinstance(alias, str) or not PLAIN_FILE.fullmatch(f"{alias}.pt"):
                bad(f"{label}: alias {alias!r:.60} is not a plain name")
            if alias in aliases:
                bad(f"{label}: alias {alias!r} is listed twice")
            aliases.add(alias)
        if entry["file"] in entries:
            bad(f"{label}: the file is listed twice")
        entries[entry["file"]] = entry
    return entries


def _download_folder(parent: Path) -> Path:
    """A fresh private folder for downloads, named by its process and machine so that the cache
    sweeps it if we die (and another machine sharing the cache leaves it alone while we live)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = temporary_path(parent / f"download.{os.urandom(4).hex()}")
    folder.mkdir(mode=0o700)
    return folder


def _listed(entry: dict):
    """A check for load_checkpoint: the file holds the config its manifest entry names."""
    def check(builder: str, config) -> str | None:
        if config_key(config) == entry["key"]:
            return None
        return f"it holds another config than the manifest's entry {entry['file']!r}"
    return check


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=4)


def shown_location(location: str) -> str:
    """A weights source as pages and warnings show it: a URL without the user name and password
    it may carry, a folder by its name alone (not a path of the building machine)."""
    parts = urlsplit(str(location))
    if parts.scheme and parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return f"the folder {Path(location).name!r}"


class Source:
    """A weights source: a URL or a folder holding an export, its manifest read (and
    validated) once. A source that cannot be read is warned about once, then left alone."""

    def __init__(self, location: str):
        self.location = location
        self.shown = shown_location(location)  # for messages: no password, no path
        self._entries: dict | None = None
        self._dead = False

    @classmethod
    def of(cls, weights) -> "Source | None":
        """The source a ``weights`` value names (see :func:`resolve`), or None for "off"."""
        location = resolve(weights)
        return cls(location) if location else None

    def __repr__(self) -> str:
        return f"Source({self.shown!r})"

    def manifest(self) -> dict[str, dict]:
        """The source's manifest as {file: entry}, validated."""
        if self._entries is None:
            with tempfile.TemporaryDirectory() as folder:
                path = _retrieve(self.location, MANIFEST, Path(folder), None, MAX_MANIFEST_BYTES)
                try:
                    data = json.loads(path.read_text())
                except (ValueError, UnicodeDecodeError) as err:
                    raise WeightsError(f"the {MANIFEST} of {self.shown} is not JSON "
                                       f"({err})") from None
            self._entries = validate_manifest(data, f"the {MANIFEST} of {self.shown}")
        return self._entries

    def fetch(self, file: str, target: Path, alias: str | None = None) -> str | None:
        """Put the checkpoint ``file`` (or the one stored under ``alias``) in ``target``'s
        folder (the cache), as ``target`` or, for an alias, under the manifest's file name.

        Returns the file name fetched, or None (not there, or a failure: warned).
        """
        if self._dead:
            return None
        try:
            entries = self.manifest()
        except Exception as err:  # unreachable, or a broken manifest: one warning, then train
            self._dead = True
            _warn(f"The weights source {self.shown} could not be read ({type(err).__name__}: "
                  f"{err}); models missing from the cache will be trained here.")
            return None
        entry = entries.get(file) or next((e for e in entries.values()
                                           if alias and alias in e["aliases"]), None)
        if entry is None:
            return None
        cache = Path(target).parent.resolve()
        target = cache / entry["file"] if alias else Path(target).resolve()
        if target.parent != cache:  # validated names cannot get here; the check stays anyway
            raise WeightsError(f"{target} lies outside the cache {cache}; refused.")
        folder = None
        try:
            folder = _download_folder(cache)
            path = _retrieve(self.location, entry["file"], folder, entry["sha256"],
                             entry["bytes"])
            if path.stat().st_size != entry["bytes"]:
                raise WeightsError(f"{path.stat().st_size} bytes, the manifest says "
                                   f"{entry['bytes']}")
            # weights_only=True, the manifest's config, bounded and finite, or it raises
            load_checkpoint(path, checks=(_listed(entry),))
            os.replace(path, target)  # atomic: the cache never holds half a file
        except (Exception, CheckpointError) as err:
            _warn(f"The trained model {entry['file']} from {self.shown} was rejected "
                  f"({type(err).__name__}: {err}); it will be trained here.")
            return None
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
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
                           f"(`python -m latent_notes.book.build --profile {profile}`).")
    built = json.loads(report_path.read_text()).get("profile")
    if built != profile:
        raise WeightsError(f"The last build in {reports.parent} was the {built!r} profile, not "
                           f"{profile!r}: build it first (`python -m latent_notes.book.build "
                           f"--profile {profile}`), then export.")
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
                "models": sorted(entries.values(), key=lambda e: e["file"]),
                "explorers": export_explorers(reports.parent / "src" / "book" / "explorers",
                                              out)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def export_explorers(source: Path, out: Path) -> list[dict]:
    """The ONNX files the build's chapters exported for their explorers (``source``:
    ``<build>/src/book/explorers/<page>/``), copied into ``out`` as ``explorer-<page>-<file>``
    (a release holds files, not folders): the release carries the in-page models too.
    Returns one entry per file (name, page, bytes, sha256)."""
    entries = []
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*/*.onnx")):
        name = f"explorer-{path.parent.name}-{path.name}"
        shutil.copyfile(path, out / name)
        entries.append({"file": name, "page": path.parent.name,
                        "bytes": path.stat().st_size, "sha256": sha256_of(path)})
    return entries


def main(argv=None) -> int:
    build = Path(os.environ.get("LATENT_NOTES_BUILD_DIR") or CHECKOUT / "_build")
    parser = argparse.ArgumentParser(description="Export a build's trained models for readers.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="copy the profile's checkpoints and write manifest.json")
    ex.add_argument("out", type=Path)
    ex.add_argument("--profile", default="standard")
    ex.add_argument("--cache-dir", type=Path, default=None,
                    help="the build's cache folder "
                         "(default: $LATENT_NOTES_CACHE or .cache/checkpoints)")
    ex.add_argument("--build-dir", type=Path, default=build,
                    help="the build folder (default _build)")
    args = parser.parse_args(argv)
    cache = args.cache_dir or (Path(os.environ["LATENT_NOTES_CACHE"])
                               if os.environ.get("LATENT_NOTES_CACHE")
                               else CHECKOUT / ".cache" / "checkpoints")
    try:
        result = export(args.profile, args.out, cache, args.build_dir / "reports")
    except WeightsError as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 1
    total = sum(e["bytes"] for e in result["models"])
    onnx = sum(e["bytes"] for e in result["explorers"])
    print(f"exported {len(result['models'])} models ({total / 2**20:.1f} MB) and "
          f"{len(result['explorers'])} explorer files ({onnx / 2**20:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
