"""Digital corruptions: brightness, contrast, saturate, pixelate, jpeg_compression, elastic_transform.

Parameters per severity are ImageNet-C's (make_imagenet_c.py, the 224 version).
"""

from __future__ import annotations

import functools
import io

import numpy as np
import torch
from PIL import Image

from .common import to_float, to_uint8

BRIGHTNESS = [0.1, 0.2, 0.3, 0.4, 0.5]
CONTRAST = [0.4, 0.3, 0.2, 0.1, 0.05]
SATURATE = [(0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)]
JPEG_QUALITY = [25, 18, 15, 10, 7]
PIXELATE = [0.6, 0.5, 0.4, 0.3, 0.25]


def brightness(batch, sample_ids, seed, severity):
    """HSV value + c, clipped (skimage rgb2hsv/hsv2rgb). With hue and saturation kept, the HSV round
    trip scales every channel by v'/v (v = max channel); a black pixel (v = 0) becomes grey v'."""
    c = BRIGHTNESS[severity - 1]
    x = to_float(batch)
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    out = torch.where(v > 0, x * (v_new / v.clamp_min(1e-12)), v_new.expand_as(x))
    return to_uint8(out)


def contrast(batch, sample_ids, seed, severity):
    c = CONTRAST[severity - 1]
    x = to_float(batch)
    means = x.mean(dim=(2, 3), keepdim=True)
    return to_uint8((x - means) * c + means)


def saturate(batch, sample_ids, seed, severity):
    """HSV saturation * a + b, clipped. With hue and value kept, each channel moves along
    v - (v - channel) * s'/s; a grey pixel (s = 0, hue 0 in skimage) gets R = v, G = B = v (1 - s')."""
    a, b = SATURATE[severity - 1]
    x = to_float(batch)
    v = x.amax(dim=1, keepdim=True)
    mn = x.amin(dim=1, keepdim=True)
    delta = v - mn
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * a + b).clamp(0, 1)
    coloured = v - (v - x) * (s_new / s.clamp_min(1e-12))
    grey = torch.cat([v, v * (1 - s_new), v * (1 - s_new)], dim=1)
    return to_uint8(torch.where(delta > 0, coloured, grey))


def jpeg_compression(batch, sample_ids, seed, severity):
    """PIL's JPEG encoder at ImageNet-C's quality, per image on the CPU: the reference is PIL, and
    GPU encoders (nvJPEG) quantize differently."""
    quality = JPEG_QUALITY[severity - 1]
    out = torch.empty_like(batch, device="cpu")
    for k, img in enumerate(batch.permute(0, 2, 3, 1).cpu().numpy()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=quality)
        buf.seek(0)
        out[k] = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)
    return out.to(batch.device)


@functools.lru_cache(maxsize=None)
def _box_weights(n_in: int, n_out: int) -> torch.Tensor:
    """PIL's BOX resampling matrix (n_out, n_in) (Resample.c: support = 0.5 * scale, box filter on
    [-0.5, 0.5), weights normalized per output pixel)."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    w = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        for j in range(lo, hi):
            t = (j - center + 0.5) / filterscale
            w[i, j] = 1.0 if -0.5 <= t < 0.5 else 0.0
        w[i] /= w[i].sum()
    return w


def _pil_box_resize(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Resize a float (B, C, H, W) holding uint8 values with PIL's BOX filter: horizontal pass, then
    vertical, each rounded to uint8 as PIL's 8-bit path does."""
    h, w = x.shape[-2:]
    wh = _box_weights(w, n_out).to(x.device, torch.float32)
    wv = _box_weights(h, n_out).to(x.device, torch.float32)
    x = torch.round(torch.einsum("bchw,ow->bcho", x, wh)).clamp(0, 255)
    return torch.round(torch.einsum("bchw,oh->bcow", x, wv)).clamp(0, 255)


def pixelate(batch, sample_ids, seed, severity):
    size = batch.shape[-1]
    small = int(size * PIXELATE[severity - 1])
    x = _pil_box_resize(batch.float(), small)
    return _pil_box_resize(x, size).to(torch.uint8)
