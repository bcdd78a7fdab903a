"""Benchmark of the colour-space fold: prints ratios, not a timed test.

Latency of the converted grayscale model (1-channel first conv, gray input) against the original
fed the gray image stacked three times, for the first layer alone and for the whole model.

    python benchmarks/conversion.py [--model efficientnet_lite0] [--device auto] [--batch 8] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from visionaudit.devices import resolve_device
from visionaudit.families.conversion import rgb_to_gray
from visionaudit.models.loading import load_model


def _time(fn, x, repeats: int, device: torch.device) -> float:
    with torch.inference_mode():
        for _ in range(3):
            fn(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    size = model.input_size
    converted = rgb_to_gray(model.module, model.preprocessing)
    gray = torch.rand(args.batch, 1, size, size, device=device)
    stacked = gray.expand(-1, 3, -1, -1).contiguous()
    first = model.module.get_submodule(converted.first_conv)
    first_new = converted.model.get_submodule(converted.first_conv)  # the folded conv, or its BorderOffset wrapper

    t_first_orig = _time(first, stacked, args.repeats, device)
    t_first_conv = _time(first_new, gray, args.repeats, device)
    t_model_orig = _time(model.module, stacked, args.repeats, device)
    t_model_conv = _time(converted.model, gray, args.repeats, device)
    print(f"model {args.model} on {device}, batch {args.batch}, {size}x{size}, best of {args.repeats}")
    print(f"first layer: stacked gray {t_first_orig * 1e3:.2f} ms, converted {t_first_conv * 1e3:.2f} ms "
          f"-> converted / original = {t_first_conv / t_first_orig:.3f}")
    print(f"whole model: stacked gray {t_model_orig * 1e3:.2f} ms, converted {t_model_conv * 1e3:.2f} ms "
          f"-> converted / original = {t_model_conv / t_model_orig:.3f}")
    print(f"saved: {converted.params_saved} parameters, {converted.macs_saved} multiply-adds per image")


if __name__ == "__main__":
    main()
