"""The book on a GPU, checked in one go: every family trained, every verb exercised, a model
saved on the GPU and loaded on the CPU and back, training throughput with the data on the
device and off it, and the full profile under a time limit.

    python scripts/gpu_check.py --out gpu-check/ [--data-root DATA] [--full-minutes 6]

(about 2 minutes of checks on a GPU, then the full profile for at most ``--full-minutes``).

It refuses to run without a GPU (``--device cpu`` runs the same checks on the CPU: the tests do
that, with ``--full-minutes 0``, so the script cannot rot unseen). It writes
``gpu-check.json`` and ``gpu-check.md`` into ``--out`` and prints the markdown; a failed check
is reported and the script goes on to the next, ending with exit status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from latent_notes import families  # noqa: E402
from latent_notes.data import Batches, load_data  # noqa: E402
from latent_notes.models.autoencoder import build_autoencoder, reconstruction_loss  # noqa: E402
from latent_notes.store.cache import Run, load_checkpoint  # noqa: E402
from latent_notes.training import TrainConfig, machine, pick_device, synchronize, train_model  # noqa: E402


def train_families(data, device, cache: Path) -> dict:
    """One epoch of each family on the embedded digits, through the book's own recipes."""
    run = Run.here(0, device, cache)

    def one_epoch(family, **options):
        return families.train(family, data, *family.recipe(data, epochs=1, **options), run=run)

    judge = one_epoch(families.CLASSIFIER, arch="cnn_deep")
    ae = one_epoch(families.FAMILIES["ae"], latent_size=8, width=16)
    vae = one_epoch(families.FAMILIES["vae"], latent_size=8, width=16)
    vq = one_epoch(families.FAMILIES["vqvae2"], width=32, embed_dim=16)
    priors = families.train_priors(vq, data, epochs=1, channels=16, layers=3, run=run)
    vq.model.attach_priors(priors["top"].model, priors["bottom"].model)
    return {"classifier": judge, "ae": ae, "vae": vae, "vqvae2": vq, **{
        f"prior-{level}": prior for level, prior in priors.items()}}


def exercise_verbs(models: dict, data, device) -> dict:
    """Every eval-mode verb on ``device``; returns the output shapes."""
    x = data.test.images[:8].to(device)
    labels = torch.arange(8, device=device) % 10
    shapes = {"classifier": models["classifier"].model(x).shape}
    for name in ("ae", "vae", "vqvae2"):
        model = models[name].model.to(device).eval()
        codes = model.encode(x)
        shapes[f"{name}.encode"] = codes.shape
        shapes[f"{name}.decode"] = model.decode(codes).shape
        shapes[f"{name}.reconstruct"] = model.reconstruct(x).shape
        shapes[f"{name}.sample"] = model.sample(4, seed=1, labels=labels[:4]).shape
    vq = models["vqvae2"].model
    q = vq.quantise(x[:1])
    shapes["vqvae2.decode_code"] = vq.decode_code(q.codes_top, q.codes_bottom).shape
    shapes["vqvae2.edit_code"] = vq.edit_code(q.codes_top, q.codes_bottom, "top", (0, 0),
                                              [0, 1, 2]).shape
    shapes["prior-top.sample"] = models["prior-top"].model.sample(2, labels=labels[:2]).shape
    return {key: list(value) for key, value in shapes.items()}


def round_trip(models: dict, data, device) -> dict:
    """Saved on the device, loaded on the CPU and back: the same outputs (largest difference)."""
    x = data.test.images[:8]
    differences = {}
    for name in ("classifier", "ae", "vae", "vqvae2"):
        trained = models[name]
        on_cpu = load_checkpoint(trained.path, "cpu")
        again = load_checkpoint(trained.path, device)
        with torch.no_grad():
            reference = trained.model.to(device).eval()
            outputs = [(m if name == "classifier" else m.reconstruct)(x.to(d))
                       for m, d in ((reference, device), (on_cpu.model, "cpu"),
                                    (again.model, device))]
        differences[name] = max(float((o.cpu() - outputs[0].cpu()).abs().max())
                                for o in outputs[1:])
    return differences


def throughput(data, device, batches: int = 200) -> dict:
    """Autoencoder training images per second, data gathered on the CPU and copied each batch,
    against data moved to the device once."""
    repeats = -(-batches * 128 // len(data.train.images))
    images = data.train.images.repeat(repeats, 1, 1, 1)[: batches * 128]
    labels = torch.zeros(len(images), dtype=torch.long)
    result = {}
    for where in ("cpu", "device"):
        loader = Batches(images, labels, 128, shuffle=True, seed=0)
        if where == "device" and hasattr(loader, "to"):
            loader = loader.to(device)
        config = families.FAMILIES["ae"].configure(data, latent_size=16, width=32)
        model = build_autoencoder({"model": asdict(config)}).to(device)
        history = train_model(model, reconstruction_loss, loader, None, TrainConfig(epochs=1),
                        device=device, name=f"ae, data on {where}")
        synchronize(device)
        result[f"data on {where}"] = round(float(history["images_per_s"].iloc[0]), 1)
    return result


def full_profile(minutes: float, data_root, out: Path) -> dict:
    """The full profile (no rendering), stopped after ``minutes``; per-chapter wall times."""
    if minutes <= 0:
        return {"skipped": "--full-minutes 0"}
    build = out / "full-build"
    env = {**os.environ, "LATENT_NOTES_BUILD_DIR": str(build), "LATENT_NOTES_PROGRESS": "0"}
    command = [sys.executable, "-m", "latent_notes.book.build", "--profile", "full", "--no-render",
               "--force", "--cache-dir", str(out / "full-cache"), "--results-dir",
               str(out / "full-results")] + (["--data-root", str(data_root)] if data_root else [])
    start = time.perf_counter()
    try:
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=minutes * 60)
        finished, tail = run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    except subprocess.TimeoutExpired as err:
        finished, tail = False, f"stopped after {minutes} minutes: {str(err.stdout)[-1500:]}"
    report = build / "reports" / "build-report.json"
    chapters = {}
    if report.exists():
        chapters = {name: {k: ch.get(k) for k in ("seconds", "peak_rss_mb")}
                    for name, ch in json.loads(report.read_text())["chapters"].items()}
    return {"finished": finished, "wall_s": round(time.perf_counter() - start, 1),
            "chapters": chapters, "tail": tail}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, mps or cpu")
    parser.add_argument("--data-root", help="MNIST and CIFAR-10 for the full profile")
    parser.add_argument("--full-minutes", type=float, default=6.0,
                        help="time limit of the full-profile run (0: skip it)")
    parser.add_argument("--subset", type=int, default=None,
                        help="train the families on this many digits (default: all 1,437)")
    parser.add_argument("--batches", type=int, default=200,
                        help="batches of 128 images per throughput measurement")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data("digits", subset=args.subset)
    results, failed = {"machine": machine(device)}, []
    with tempfile.TemporaryDirectory() as cache:
        steps = [("families", lambda: {k: v.status for k, v in models.items()}),
                 ("verbs", lambda: exercise_verbs(models, data, device)),
                 ("round trip (max abs difference)", lambda: round_trip(models, data, device)),
                 ("images per second", lambda: throughput(data, device, args.batches)),
                 ("full profile", lambda: full_profile(args.full_minutes, args.data_root,
                                                       args.out))]
        start = time.perf_counter()
        try:
            models = train_families(data, device, Path(cache))
        except Exception:
            results["families"] = traceback.format_exc()
            failed.append("families")
            steps = steps[3:]
        results["train_families_s"] = round(time.perf_counter() - start, 1)
        for name, step in steps:
            try:
                results[name] = step()
            except Exception:
                results[name] = traceback.format_exc()
                failed.append(name)
    results["failed"] = failed
    (args.out / "gpu-check.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [f"# GPU check on {results['machine']}", ""]
    lines += [f"- **{key}**: {json.dumps(value, default=str)[:1500]}" for key, value in
              results.items() if key != "machine"]
    text = "\n".join(lines) + "\n"
    (args.out / "gpu-check.md").write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
