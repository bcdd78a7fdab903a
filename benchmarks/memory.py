"""Benchmark of the decode budget: peak memory and throughput of a clean forward pass, decoded whole vs
streamed. Prints ratios, not a timed test.

Each case runs in its own process (peak RSS is the process's ``ru_maxrss``): the model is loaded, the
image set is loaded with ``load_images`` under the given decode budget and run through
``predict_logits`` once (decode + forward, timed together, as an audit's first pass on a set).

Image sets of 1,000 and 10,000 images are imagenet-sample's 1,000 files under 1 and 10 names each
(symlinks in a temporary folder, named ``<wnid>_<name>-<k>.JPEG``, so the labels stay real). The
budget (default 512 MiB) is chosen so that 1,000 images at 224 x 224 (147 MiB) fit and 10,000
(1.4 GiB) stream; the suite's default (2 GiB) would hold both.

Cases: ``1k whole`` (today's decode-once path), ``1k streamed`` (a budget of 1 byte: the same set
streamed), ``10k streamed``; with ``--whole-10k`` also ``10k whole`` (the growth the budget prevents).
Targets: peak(10k streamed) / peak(1k whole) <= 1.15; images/s of 1k streamed / 1k whole >= 1.0.
With ``--repeat``, images/s is the best run's and peak RSS the worst run's.

    python benchmarks/memory.py --data ../shared/data [--model efficientnet_lite0] [--budget 512MiB] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_copies(source: Path, dest: Path, n: int) -> Path:
    """``n`` images: the files of ``source`` under ``ceil(n / len)`` names each (symlinks)."""
    files = sorted(p for p in source.iterdir() if p.is_file())
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = files[i % len(files)]
        (dest / f"{src.stem}-{i // len(files)}{src.suffix}").symlink_to(src.resolve())
    return dest


def child(args: argparse.Namespace) -> None:
    import torch

    from visionaudit.data import decode_budget
    from visionaudit.data.decoding import decode_images
    from visionaudit.data.image_sets import labelled_images, load_images
    from visionaudit.data.streaming import StreamedImages
    from visionaudit.models.inference import predict_logits
    from visionaudit.models.loading import load_model

    model = load_model(args.model, args.device)
    geometry = model.preprocessing.geometry
    image_set = labelled_images(Path(args.child))
    predict_logits(model, decode_images(image_set.paths[:16], geometry))  # warm-up: kernels, heap
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    decode_budget.set_budget(decode_budget.parse_size(args.budget))
    t0 = time.perf_counter()
    images = load_images(image_set, geometry)
    logits = predict_logits(model, images)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"n": len(image_set), "streamed": isinstance(images, StreamedImages), "seconds": seconds,
                      "images_per_s": len(image_set) / seconds, "peak_rss": peak, "rss_before_images": before,
                      "logits": list(logits.shape), "device": str(model.device), "threads": torch.get_num_threads()}))


def run_case(args: argparse.Namespace, folder: Path, budget: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), "--budget", budget, "--model", args.model, "--device", args.device]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget", default="512MiB", help="the decode budget of the 'whole' and '10k' cases")
    ap.add_argument("--sizes", type=int, nargs=2, default=(1000, 10000), metavar=("SMALL", "LARGE"))
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every case this many times (timings on a shared machine are noisy)")
    ap.add_argument("--whole-10k", action="store_true", help="also decode the large set whole (needs its memory)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    small, large = args.sizes
    cases = [(f"{small} whole", small, args.budget), (f"{small} streamed", small, "1"), (f"{large} streamed", large, args.budget)]
    if args.whole_10k:
        cases.append((f"{large} whole", large, "1TiB"))
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="visionaudit-memory-") as tmp:
        folders = {n: make_copies(Path(args.data) / "imagenet-sample", Path(tmp) / str(n), n) for n in (small, large)}
        for round_ in range(args.repeat):
            for name, n, budget in cases:
                r = run_case(args, folders[n], budget)
                results.setdefault(name, []).append(r)
                print(f"[{round_ + 1}/{args.repeat}] {name:>16}: {'streamed' if r['streamed'] else 'decoded whole'}, "
                      f"{r['seconds']:.1f} s, {r['images_per_s']:.1f} images/s, peak RSS {r['peak_rss'] / 2**20:.0f} MiB "
                      f"({r['rss_before_images'] / 2**20:.0f} MiB before the images), {r['device']}, {r['threads']} threads",
                      flush=True)

    # Throughput: the best run (the least disturbed by other work); peak memory: the worst run.
    best = {name: {"rate": max(r["images_per_s"] for r in rs), "peak": max(r["peak_rss"] for r in rs)}
            for name, rs in results.items()}
    print(f"model {args.model}, budget {args.budget}, {args.repeat} run(s) each: images/s the best, peak RSS the worst")
    ratio_peak = best[f"{large} streamed"]["peak"] / best[f"{small} whole"]["peak"]
    print(f"peak RSS {large} streamed / {small} whole     = {ratio_peak:.3f}   (target <= 1.15)")
    print(f"peak RSS {large} streamed / {small} streamed  = "
          f"{best[f'{large} streamed']['peak'] / best[f'{small} streamed']['peak']:.3f}")
    print(f"images/s {small} streamed / {small} whole     = "
          f"{best[f'{small} streamed']['rate'] / best[f'{small} whole']['rate']:.3f}   (target >= 1.0)")
    print(f"images/s {large} streamed / {small} whole    = "
          f"{best[f'{large} streamed']['rate'] / best[f'{small} whole']['rate']:.3f}")
    if args.whole_10k:
        print(f"peak RSS {large} whole / {small} whole        = "
              f"{best[f'{large} whole']['peak'] / best[f'{small} whole']['peak']:.3f}")


if __name__ == "__main__":
    main()
