"""Benchmark of the robustness audit: prints ratios, not a timed test.

(a) the audit's wall time (clean pass + nine transformed passes + statistics, on images decoded once)
    over the time of the bare forward passes it needs (ten, on the same images): target <= 1.25;
(b) a study-style pipeline (for the clean run and each transform, re-read every image with PIL,
    transform it with PIL, preprocess, forward) over the audit's wall time: target >= 2.

    python benchmarks/robustness.py --data ../shared/data --images 200 [--model efficientnet_lite0] [--device auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from visionaudit.datasets import labelled_images, load_images
from visionaudit.devices import resolve_device
from visionaudit.inference import predict_logits
from visionaudit.models import load_model
from visionaudit.robustness import evaluate_transform
from visionaudit.transforms import TRANSFORMS


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pil_transform(img: Image.Image, name: str, index: int) -> Image.Image:
    """The study's way: one PIL operation per image (same magnitudes as visionaudit.transforms)."""
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


def study_pipeline(model, paths, name: str | None, batch_size: int) -> torch.Tensor:
    pre = model.preprocessing
    mode = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC, "nearest": InterpolationMode.NEAREST}[pre.interpolation]
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
            outs.append(model.module(torch.stack(batch).to(model.device)).float().cpu())
    return torch.cat(outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    device = resolve_device(args.device)
    model = load_model(args.model, device)
    image_set = labelled_images(Path(args.data) / "imagenet-sample").stratified_subset(args.images, seed=0)
    labels = image_set.label_tensor()
    from visionaudit.inference import default_batch_size

    bs = default_batch_size(device)
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

    # (b) the study-style pipeline: PIL, per transform, every image read again.
    t0 = time.perf_counter()
    study_pipeline(model, image_set.paths, None, bs)
    for name in TRANSFORMS:
        study_pipeline(model, image_set.paths, name, bs)
    _sync(device)
    t_study = time.perf_counter() - t0

    print(f"model {args.model} on {device}, {len(image_set)} images, batch {bs}, {torch.get_num_threads()} CPU threads")
    print(f"decode once: {t_decode:.1f} s; audit (clean + 9 transforms + statistics): {t_audit:.1f} s; bare forwards x10: {t_bare:.1f} s; study-style: {t_study:.1f} s")
    print(f"(a) audit / bare forward passes      = {t_audit / t_bare:.3f}   (target <= 1.25)")
    print(f"(b) study-style / audit incl. decode = {t_study / (t_audit + t_decode):.3f}   (target >= 2)")


if __name__ == "__main__":
    main()
