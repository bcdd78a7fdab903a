"""Benchmark of the corruption kernels: throughput against ImageNet-C's own code, as ratios.

For each corruption (at one severity), images per second of visionaudit.families.corruption.kernels' batched kernels
(CPU; and CUDA when present) over the reference's (make_imagenet_c.py, one PIL/numpy image at a
time, as ImageNet-C was made). Speed is printed, never asserted.

The reference needs numpy < 2, scikit-image < 0.20, OpenCV, Wand and ImageMagick, which the project's
environment does not hold: it runs in a subprocess with the interpreter of a throwaway environment
(the one tests/corruption_reference/make_reference.py describes), given by ``--reference-python``, on
the same decoded images (handed over as a .npy file).

    python benchmarks/corruptions.py --data ../shared/data --images 32 \
        --reference-python /tmp/refenv/bin/python --reference /tmp/ref/make_imagenet_c.py

Without ``--reference-python`` only our throughput is printed.

``--ahead`` measures the corruption audit's passes instead (a real model, ``--model``, on ``--device``): each
condition's pass (kernel, JPEG round trip, forward) with each batch prepared in turn and with batches prepared in
threads ahead of the device (visionaudit.families.corruption.ahead), the ratio of the two, and the bare forward pass
beside them; on a CUDA device also with the JPEG round trip on the GPU (nvJPEG, ``jpeg_on_device``, in turn). Per mode
and condition it prints how long the reader (the thread that runs the forward passes) waited for the prepared
batches after the first: near 0 when the device never waits for the CPU's share:

    python benchmarks/corruptions.py --ahead --images 96 --only fog speckle_noise --severity 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from visionaudit.data.image_sets import data_root, labelled_images, load_images
from visionaudit.families.corruption import PROTOCOL_GEOMETRY, CorruptionRun
from visionaudit.families.corruption.kernels import CORRUPTIONS, EXTRA_CORRUPTIONS
from visionaudit.families.corruption.switch import default_ahead
from visionaudit.models.batching import default_batch_size
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Geometry

ROOT = Path(__file__).resolve().parents[1]
ALL = {**CORRUPTIONS, **EXTRA_CORRUPTIONS}

# Runs under the reference's interpreter: time each reference function on the images, one at a time.
REFERENCE_SCRIPT = """
import json, sys, time
import numpy as np
from PIL import Image
sys.path.insert(0, {helper_dir!r})
from make_reference import load_reference
from pathlib import Path
import os
ref = load_reference(Path({reference!r}))
images = [Image.fromarray(a) for a in np.load({images!r})]
os.chdir({frost_dir!r})
out = {{}}
for name, count in json.loads({plan!r}):
    np.random.seed(0)
    start = time.perf_counter()
    for img in images[:count]:
        np.uint8(getattr(ref, name)(img.copy(), {severity}))
    out[name] = count / (time.perf_counter() - start)
print(json.dumps(out))
"""


def ours_per_second(name: str, batch: torch.Tensor, ids: list, severity: int, repeats: int) -> float:
    kernel = ALL[name]
    kernel(batch[:2], ids[:2], 0, severity)  # warm-up: caches, CUDA context
    sync = torch.cuda.synchronize if batch.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for r in range(repeats):
        kernel(batch, ids, r, severity)
    sync()
    return repeats * len(batch) / (time.perf_counter() - start)


def reference_per_second(args, images: np.ndarray, names: list[str]) -> dict[str, float]:
    # Glass blur's ~50 000 Python swaps per pass take seconds per image: fewer images for it.
    plan = [(n, min(len(images), args.slow_images) if n == "glass_blur" else len(images)) for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        np.save(path, images)
        script = REFERENCE_SCRIPT.format(
            helper_dir=str(ROOT / "tests" / "corruption_reference"), reference=str(args.reference),
            images=str(path), frost_dir=str(ROOT / "visionaudit" / "resources" / "frost"),
            plan=json.dumps(plan), severity=args.severity)
        done = subprocess.run([args.reference_python, "-c", script], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the reference run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_cell(in_turn: float, ahead: float, width: int = 16) -> str:
    """The in-turn pass over the ahead one, or "-" when the ahead pass took no measurable time (as the cells say)."""
    return f"{in_turn / ahead:{width}.2f}" if ahead else f"{'-':>{width}}"


def ahead_table(args) -> None:
    """Per mode (in turn, threads ahead; on a GPU also nvJPEG) and condition: the pass's seconds, the reader's wait for
    its first prepared batch (the pipeline filling) and for all the others (seconds and share of the pass: 0 when the
    device never waits for the CPU's share), and the ratio of the in-turn pass to the ahead one."""
    model = load_model(args.model, args.device)
    if args.batch:
        model.batch_size = args.batch
    image_set = labelled_images(data_root(args.data) / "imagenet-sample").stratified_subset(args.images, 0)
    image_set = image_set.for_classes(model.label_space)
    images = load_images(image_set, PROTOCOL_GEOMETRY)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    ahead = args.ahead_batches or max(1, default_ahead(model.device))
    modes = [("in turn", 0, False), (f"{ahead} ahead", ahead, False)]
    if model.device.type == "cuda":  # nvJPEG runs in turn whatever is asked (switch.resolve_ahead: pytorch/vision#9606)
        modes += [("in turn, nvjpeg", 0, True)]
    names = args.only or ["fog", "speckle_noise", "jpeg_compression"]
    labels = image_set.label_tensor()
    few = min(len(images), 8)
    for name in names:  # warm-up: each kernel's caches, the device's first launches
        CorruptionRun(model, images[:few], labels[:few], image_set.sample_ids[:few], ahead=0).condition(name, args.severity)

    def timed(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    # The modes take turns within each repeat, so that a machine's load drifting over the run weighs on all alike.
    seconds: dict[str, dict[str, float]] = {label: dict.fromkeys(names, 0.0) for label, _, _ in modes}
    fill: dict[str, dict[str, float]] = {label: dict.fromkeys(names, 0.0) for label, _, _ in modes}
    waited: dict[str, dict[str, float]] = {label: dict.fromkeys(names, 0.0) for label, _, _ in modes}
    bare = 0.0
    for r in range(args.repeats):
        bare += timed(lambda: predict_logits(model, images)) / args.repeats
        runs = {label: CorruptionRun(model, images, labels, image_set.sample_ids, seed=r, jpeg=True, jpeg_on_device=on_device,
                                     ahead=batches_ahead) for label, batches_ahead, on_device in modes}
        clean = runs[modes[0][0]].clean()
        for run in runs.values():
            run._clean = clean  # not timed, and the same for every mode: the clean pass prepares nothing
        for name in names:
            for label, run in runs.items():
                seconds[label][name] += timed(lambda run=run, name=name: run.condition(name, args.severity)) / args.repeats
                wait = run.waits[f"{name} severity {args.severity}"]
                fill[label][name] += wait.first / args.repeats
                waited[label][name] += wait.rest / args.repeats
    batch = model.batch_size or default_batch_size(model.device)
    print(f"{model.id} on {model.device}, {len(images)} images, batch {batch} ({-(-len(images) // batch)} batches), severity "
          f"{args.severity}, torch threads {torch.get_num_threads()}, {args.repeats} repeats; "
          f"bare forward {bare:.2f} s per pass")
    print("per mode: the pass (s); the reader's wait for the first batch (s); its wait for the other batches (s, % of the pass)")
    head = f"{'corruption':<18} " + " ".join(f"{label:>34}" for label, _, _ in modes) + f" {'in turn / ahead':>16}"
    print(head)
    print("-" * len(head))

    def total(per: dict[str, dict[str, float]], label: str, name: str) -> float:
        return sum(per[label].values()) if name == "all" else per[label][name]

    for name in names + ["all"]:
        cells = []
        for label, _, _ in modes:
            pass_s, rest = total(seconds, label, name), total(waited, label, name)
            cells.append(f"{pass_s:8.2f} {total(fill, label, name):7.3f} {rest:7.3f} "
                         f"{100 * rest / pass_s:5.1f} %" if pass_s else "-")
        ratio = ratio_cell(total(seconds, modes[0][0], name), total(seconds, modes[1][0], name))
        print(f"{name:<18} " + " ".join(f"{c:>34}" for c in cells) + f" {ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="data root holding imagenet-sample (default: $VISIONAUDIT_DATA)")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--severity", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None, help="corruption names (default: all 19)")
    ap.add_argument("--reference-python", default=None, help="interpreter of the reference's environment")
    ap.add_argument("--reference", type=Path, default=None, help="path to make_imagenet_c.py")
    ap.add_argument("--slow-images", type=int, default=4, help="images for the reference's glass blur")
    ap.add_argument("--random", action="store_true",
                    help="random uint8 images instead of imagenet-sample (where the data is absent; no reference run)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's); 1 compares core for core with the single-threaded reference")
    ap.add_argument("--ahead", action="store_true", help="time the audit's passes in turn and with threads ahead")
    ap.add_argument("--ahead-batches", type=int, default=None, help="with --ahead: batches ahead (default: the device's)")
    ap.add_argument("--model", default="efficientnet_lite0", help="with --ahead: the model")
    ap.add_argument("--batch", type=int, default=None, help="with --ahead: images per batch (default: the device's)")
    ap.add_argument("--device", default="cpu", help="with --ahead: the model's device")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ahead:
        return ahead_table(args)
    names = args.only or list(ALL)

    n = args.images
    if args.random:
        batch = torch.randint(0, 256, (n, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        ids = list(range(n))
    else:
        image_set = labelled_images(data_root(args.data) / "imagenet-sample")
        image_set = dataclasses.replace(image_set, paths=image_set.paths[:n], labels=image_set.labels[:n],
                                        categories=image_set.categories[:n])
        batch = load_images(image_set, Geometry(256, 224))  # ImageNet-C's Resize(256) + CenterCrop(224)
        ids = [p.name for p in image_set.paths]

    cpu = {n: ours_per_second(n, batch, ids, args.severity, args.repeats) for n in names}
    gpu = {}
    if torch.cuda.is_available():
        on_gpu = batch.cuda()
        gpu = {n: ours_per_second(n, on_gpu, ids, args.severity, args.repeats) for n in names}
    ref = {}
    if args.reference_python and not args.random:
        if args.reference is None:
            raise SystemExit("--reference-python needs --reference (the path of make_imagenet_c.py)")
        ref = reference_per_second(args, batch.permute(0, 2, 3, 1).numpy(), names)

    print(f"{len(batch)} images 224x224, severity {args.severity}, torch threads {torch.get_num_threads()}; images/s")
    head = f"{'corruption':<18} {'ours CPU':>9} {'ours GPU':>9} {'reference':>9} {'CPU/ref':>8} {'GPU/ref':>8}"
    print(head)
    print("-" * len(head))
    for n in names:
        r = ref.get(n)
        g = gpu.get(n)
        cells = [f"{cpu[n]:9.1f}", f"{g:9.1f}" if g else f"{'-':>9}", f"{r:9.2f}" if r else f"{'-':>9}",
                 f"{cpu[n] / r:8.1f}" if r else f"{'-':>8}", f"{g / r:8.1f}" if (r and g) else f"{'-':>8}"]
        print(f"{n:<18} " + " ".join(cells))


if __name__ == "__main__":
    main()
