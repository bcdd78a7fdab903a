"""Benchmark of the robustness audit: prints ratios, not a timed test.

(a) the audit's wall time (clean pass + nine transformed passes + statistics, on images decoded once)
    over the time of the bare forward passes it needs (ten, on the same images): target <= 1.25;
(b) a study-style pipeline (for the clean run and each transform, re-read every image with PIL,
    transform it with PIL, preprocess, forward) over the audit's wall time: target >= 2. The study-style
    pipeline runs as a study's script would, in its own process with PyTorch's defaults; (b') runs it
    in the audit's process, sharing the CPU heap tuning and channels_last input of
    ``visionaudit.devices``, to show how much of (b) is decode-once and on-device transforms alone.

    python benchmarks/robustness.py --data ../shared/data --images 200 [--model efficientnet_lite0] [--device auto]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.devices import resolve_device
from visionaudit.families.robustness import evaluate_transform
from visionaudit.families.robustness.transforms import TRANSFORMS
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pil_transform(img: Image.Image, name: str, index: int) -> Image.Image:
    """The study's way: one PIL operation per image (same magnitudes as visionaudit.families.robustness.transforms)."""
    w, h = img.size
    sign = 1 if index % 2 else -1
    if name == "rotation":
        return img.rotate(30 * sign, resample=Image.BILINEAR)
    if name == "brightness":
        return ImageEnhance.Brightness(img).enhance(1.5)
    if name == "histogram_equalization":
        return ImageOps.equalize(img)
    if name == "horizontal_flip":
        return ImageOps.mirror(img)
    if name == "vertical_flip":
        return ImageOps.flip(img)
    if name == "translation":
        return img.transform(img.size, Image.AFFINE, (1, 0, -0.2 * w * sign, 0, 1, 0))
    if name == "zoom":
        return img.crop((w / 6, h / 6, w * 5 / 6, h * 5 / 6)).resize((w, h), Image.BILINEAR)
    if name == "perspective":
        d = 0.15 * w
        return TF.perspective(img, [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]],
                              [[d, d], [w - 1 - d, 0], [w - 1, h - 1 - d], [0, h - 1]], InterpolationMode.BILINEAR)
    if name == "histeq_zoom_brightness":
        return pil_transform(pil_transform(ImageOps.equalize(img), "zoom", index), "brightness", index)
    return img


def study_pipeline(model, paths, name: str | None, batch_size: int, memory_format=torch.contiguous_format) -> torch.Tensor:
    pre = model.preprocessing
    mode = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
            "nearest": InterpolationMode.NEAREST}[pre.interpolation]
    outs = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = []
            for k, path in enumerate(paths[start : start + batch_size]):
                img = Image.open(path).convert("RGB")
                img = TF.center_crop(TF.resize(img, pre.resize_size, mode), pre.crop_size)
                if name:
                    img = pil_transform(img, name, start + k)
                batch.append(TF.normalize(TF.to_tensor(img), pre.mean, pre.std))
            x = torch.stack(batch).to(model.device).contiguous(memory_format=memory_format)
            outs.append(model.module(x).float().cpu())
    return torch.cat(outs)


def time_study(model, image_set, bs: int, memory_format=torch.contiguous_format) -> float:
    """Seconds for the study-style pipeline: the clean run, then every transform."""
    study_pipeline(model, image_set.paths[:bs], None, bs, memory_format)  # warm-up
    _sync(model.device)
    t0 = time.perf_counter()
    for name in (None, *TRANSFORMS):
        study_pipeline(model, image_set.paths, name, bs, memory_format)
    _sync(model.device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--study-only", action="store_true", help=argparse.SUPPRESS)  # the subprocess for (b)
    args = ap.parse_args()

    device = resolve_device(args.device)
    model = load_model(args.model, device)
    image_set = labelled_images(Path(args.data) / "imagenet-sample").stratified_subset(args.images, seed=0)
    labels = image_set.label_tensor()
    from visionaudit.models.batching import default_batch_size

    bs = default_batch_size(device)
    if args.study_only:
        print(time_study(model, image_set, bs))
        return
    # (b) first, in a fresh process that has not touched visionaudit's CPU settings.
    out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--study-only"], check=True, capture_output=True, text=True)
    t_study = float(out.stdout.strip().splitlines()[-1])
    predict_logits(model, load_images(image_set.stratified_subset(bs, 1), model.preprocessing.geometry))  # warm-up

    # (a) the audit vs the bare forward passes it needs.
    _sync(device)
    t0 = time.perf_counter()
    images = load_images(image_set, model.preprocessing.geometry)
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    clean = predict_logits(model, images)
    for name in TRANSFORMS:
        evaluate_transform(model, images, labels, clean, name)
    _sync(device)
    t_audit = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(1 + len(TRANSFORMS)):
        predict_logits(model, images)
    _sync(device)
    t_bare = time.perf_counter() - t0

    # (b') the study-style pipeline in this process: same heap, same input layout as the audit.
    from visionaudit.devices import inference_memory_format

    t_study_shared = time_study(model, image_set, bs, inference_memory_format(device, images[:1].float()))

    print(f"model {args.model} on {device}, {len(image_set)} images, batch {bs}, {torch.get_num_threads()} CPU threads")
    print(f"decode once: {t_decode:.1f} s; audit (clean + 9 transforms + statistics): {t_audit:.1f} s; bare forwards x10: "
          f"{t_bare:.1f} s; study-style: {t_study:.1f} s (own process), {t_study_shared:.1f} s (shared settings)")
    print(f"(a) audit / bare forward passes      = {t_audit / t_bare:.3f}   (target <= 1.25)")
    print(f"(b) study-style / audit incl. decode = {t_study / (t_audit + t_decode):.3f}   (target >= 2)")
    print(f"(b') same, study-style sharing the audit's CPU settings = {t_study_shared / (t_audit + t_decode):.3f}")


if __name__ == "__main__":
    main()
