"""onnxruntime-web, the runtime of the in-page explorers: its WebAssembly build only,
single-threaded (GitHub Pages cannot send the headers that threads need), three files of the
npm package, fetched once into the build cache and checked against the registry's integrity.

The package is pinned here (version, tarball, sha512 from the registry's ``dist.integrity``:
``npm view onnxruntime-web@VERSION dist.integrity``, base64 decoded to hex). pooch downloads
the tarball and checks its hash; only the three files named in ``FILES`` are read out of it,
by name, into a folder of our own. No node or npm is needed. Without network (and without a
cached copy) ``fetch`` returns None and the build shows still figures instead of explorers.
"""
from __future__ import annotations

import shutil
import tarfile
import warnings
from pathlib import Path

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
SHA512 = ("e46787f9b590f87c4cd74cfb7ab1a5b16aabcabc0c6d2be6ff5b6422c2934f8f"
          "20d1f235f555d5542e37e6de2ded5b0f75241e4bb366b993d7ad0ef793cd9447")
# What the page needs: the WebAssembly-only bundle (global `ort`), the loader it imports and
# the single WebAssembly binary (run with numThreads = 1, it needs no cross-origin isolation).
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MAX_BYTES = 64 * 2**20  # a member larger than this is not what we pinned


class RuntimeUnavailable(RuntimeError):
    """The runtime could not be fetched or read; the explorers fall back to still figures."""


def extract(tarball: Path, folder: Path) -> Path:
    """Copy the members ``package/dist/<FILES>`` of an npm tarball into ``folder`` (created),
    reading nothing else; a member that is missing, not a regular file or too large raises."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for name in FILES:
            try:
                member = archive.getmember(f"package/dist/{name}")
            except KeyError:
                raise RuntimeUnavailable(f"{tarball.name} has no package/dist/{name}: not the "
                                         f"{PACKAGE} {VERSION} package.") from None
            if not member.isfile() or member.size > MAX_BYTES:
                raise RuntimeUnavailable(f"package/dist/{name} in {tarball.name} is not a "
                                         f"regular file under {MAX_BYTES >> 20} MB.")
            partial = folder / f"{name}.partial"
            with archive.extractfile(member) as source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target)
            partial.replace(folder / name)
    return folder


def fetch(cache_dir: Path, url: str = TARBALL, sha512: str = SHA512) -> Path | None:
    """The folder holding ``FILES`` (fetched and checked on first use, then reused), or None
    with a warning when the tarball cannot be had."""
    folder = cache_dir / f"{PACKAGE}-{VERSION}"
    if all((folder / name).is_file() for name in FILES):
        return folder
    import pooch

    try:
        tarball = pooch.retrieve(url, known_hash=f"sha512:{sha512}", path=cache_dir,
                                 fname=f"{PACKAGE}-{VERSION}.tgz", progressbar=True)
        return extract(Path(tarball), folder)
    except (OSError, ValueError, RuntimeUnavailable, tarfile.TarError) as err:
        # pooch raises ValueError on a hash mismatch, requests' errors are OSErrors
        warnings.warn(f"The in-page runtime ({PACKAGE} {VERSION}) is not available: "
                      f"{type(err).__name__}: {err}. The explorers are shown as still "
                      "figures; build with network access to the npm registry once (it is "
                      "cached) to get them.", stacklevel=2)
        return None


def install(runtime: Path, static: Path) -> int:
    """Copy the runtime's files into the built book's ``_static/ort`` folder (after Jupyter
    Book has rendered, so that no page loads them but the explorers'); returns their bytes."""
    target = static / "ort"
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in FILES:
        shutil.copy2(runtime / name, target / name)
        total += (target / name).stat().st_size
    return total
