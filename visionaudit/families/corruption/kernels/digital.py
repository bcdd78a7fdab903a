"""Digital corruptions: brightness, contrast, saturate, pixelate, jpeg_compression, elastic_transform.

Parameters per severity are ImageNet-C's (make_imagenet_c.py, the 224 version).
"""

from __future__ import annotations

import functools
import io

import numpy as np
import torch
from PIL import Image

from visionaudit.families.corruption.kernels import seeding
from visionaudit.families.corruption.kernels.common import (
    fold,
    gaussian_blur,
    to_float,
    to_uint8,
)

BRIGHTNESS = [0.1, 0.2, 0.3, 0.4, 0.5]
CONTRAST = [0.4, 0.3, 0.2, 0.1, 0.05]
SATURATE = [(0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)]
JPEG_QUALITY = [25, 18, 15, 10, 7]
PIXELATE = [0.6, 0.5, 0.4, 0.3, 0.25]


def brightness(batch, sample_ids, seed, severity):
    """HSV value + c, clipped (skimage rgb2hsv/hsv2rgb). With hue and saturation kept, the HSV round
    trip scales every channel by v'/v (v = max channel); a black pixel (v = 0) becomes grey v'."""
    c = BRIGHTNESS[severity - 1]
    x = batch.double() / 255  # float64 as the reference: its truncation to uint8 sees the same values
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
    x = batch.double() / 255  # float64 as the reference
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


_PRECISION_BITS = 22  # PIL's 8-bit resampling: weights in fixed point, 32 - 8 - 2 bits


def _pil_box_resize(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Resize a float64 (B, C, H, W) holding uint8 values with PIL's BOX filter: horizontal pass, then
    vertical, each in PIL's fixed-point arithmetic (weights rounded to 2^-22, half added, shifted
    down, clipped to uint8); exact in float64, whose integers are exact far beyond these sums."""
    h, w = x.shape[-2:]
    scale = float(1 << _PRECISION_BITS)
    wh = torch.round(_box_weights(w, n_out) * scale).to(x.device)
    wv = torch.round(_box_weights(h, n_out) * scale).to(x.device)
    half = float(1 << (_PRECISION_BITS - 1))
    x = torch.floor((torch.einsum("bchw,ow->bcho", x, wh) + half) / scale).clamp(0, 255)
    return torch.floor((torch.einsum("bchw,oh->bcow", x, wv) + half) / scale).clamp(0, 255)


def pixelate(batch, sample_ids, seed, severity):
    size = batch.shape[-1]
    small = int(size * PIXELATE[severity - 1])
    x = _pil_box_resize(batch.double(), small)
    return _pil_box_resize(x, size).to(torch.uint8)


# 244 should have been 224, says the reference, "but ultimately nothing is incorrect": kept as published.
ELASTIC = [(244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
           (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
           (244 * 0.12, 244 * 0.01, 244 * 0.02)]  # alpha, sigma, affine jitter


def _affine_source_coords(matrix: np.ndarray, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cv2.warpAffine's source coordinates for each destination pixel, with its fixed-point rounding:
    the inverse map is evaluated in 1/1024 steps and sampled in 1/32 pixel steps (INTER_BITS 5)."""
    inv = np.linalg.inv(np.vstack([matrix.astype(np.float64), [0, 0, 1]]))[:2]
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    ab = 1024
    ax = np.rint(inv[0, 0] * xs * ab).astype(np.int64)[None,
                                                       :] + np.rint((inv[0, 1] * ys + inv[0, 2]) * ab).astype(np.int64)[:, None]
    ay = np.rint(inv[1, 0] * xs * ab).astype(np.int64)[None,
                                                       :] + np.rint((inv[1, 1] * ys + inv[1, 2]) * ab).astype(np.int64)[:, None]
    sx = ((ax + 16) >> 5) / 32.0
    sy = ((ay + 16) >> 5) / 32.0
    return torch.from_numpy(sy), torch.from_numpy(sx)


def _bilinear(x: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor, border: str) -> torch.Tensor:
    """Bilinear samples of (B, C, H, W) at (B, H, W) coordinates; ``border`` is common.fold's mode."""
    b, c, h, w = x.shape
    y0 = torch.floor(sy)
    x0 = torch.floor(sx)
    fy = (sy - y0).to(x.dtype).reshape(b, 1, h * w)
    fx = (sx - x0).to(x.dtype).reshape(b, 1, h * w)
    y0 = y0.long()
    x0 = x0.long()
    rows = (fold(y0, h, border) * w, fold(y0 + 1, h, border) * w)
    cols = (fold(x0, w, border), fold(x0 + 1, w, border))
    flat = x.reshape(b, c, h * w)

    def at(r, q):
        return flat.gather(2, (r + q).reshape(b, 1, h * w).expand(b, c, h * w))

    top = at(rows[0], cols[0]) * (1 - fx) + at(rows[0], cols[1]) * fx
    bottom = at(rows[1], cols[0]) * (1 - fx) + at(rows[1], cols[1]) * fx
    return (top * (1 - fy) + bottom * fy).reshape(b, c, h, w)


def elastic_points(size: int) -> np.ndarray:
    center = np.float32((size, size)) // 2
    square = size // 3
    return np.float32([center + square, [center[0] + square, center[1] - square], center - square])


def apply_elastic(x: torch.Tensor, jitter: np.ndarray, ux: torch.Tensor, uy: torch.Tensor, severity: int) -> torch.Tensor:
    """The reference's elastic transform given its draws: ``jitter`` (B, 3, 2) uniform in [-1, 1) for
    the affine points, ``ux``/``uy`` (B, H, W) uniform in [-1, 1) for the displacement fields.

    A random affine (cv2.warpAffine, bilinear, reflect-101 border), then a smooth displacement
    (gaussian-blurred uniform noise, scipy 'reflect' border, truncate 3) sampled bilinearly with
    scipy's 'reflect' (edge-repeating) border."""
    alpha, sigma, jit = ELASTIC[severity - 1]
    b, _, h, w = x.shape
    pts1 = elastic_points(h)
    rows = []
    for k in range(b):
        pts2 = pts1 + (np.asarray(jitter[k], dtype=np.float64) * jit).astype(np.float32)
        # cv2.getAffineTransform: the exact affine through three point pairs (solved in double).
        src = np.hstack([pts1.astype(np.float64), np.ones((3, 1))])
        matrix = np.linalg.solve(src, pts2.astype(np.float64)).T
        sy, sx = _affine_source_coords(matrix, h, w)
        rows.append((sy, sx))
    sy = torch.stack([r[0] for r in rows]).to(x.device)
    sx = torch.stack([r[1] for r in rows]).to(x.device)
    x = _bilinear(x, sy, sx, "reflect")  # cv2 BORDER_REFLECT_101

    # float32 is enough for the fields: the reference casts them to float32 too.
    fields = torch.stack([ux, uy], 1).to(x.device, torch.float32)
    blurred = gaussian_blur(fields, sigma, mode="symmetric", truncate=3) * alpha
    dx = blurred[:, 0].double()
    dy = blurred[:, 1].double()
    ys = torch.arange(h, device=x.device, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=torch.float64).view(1, 1, w)
    return to_uint8(_bilinear(x, ys + dy, xs + dx, "symmetric"))  # scipy mode="reflect"


def elastic_transform(batch, sample_ids, seed, severity):
    h, w = batch.shape[-2:]

    def draws(g):
        return torch.cat([torch.rand(6, generator=g, dtype=torch.float64),
                          torch.rand(2 * h * w, generator=g, dtype=torch.float64)]) * 2 - 1

    u = seeding.draw(sample_ids, seed, "elastic_transform", "cpu", draws)
    jitter = u[:, :6].reshape(-1, 3, 2).numpy()
    ux = u[:, 6:6 + h * w].reshape(-1, h, w)
    uy = u[:, 6 + h * w:].reshape(-1, h, w)
    return apply_elastic(to_float(batch), jitter, ux, uy, severity)
