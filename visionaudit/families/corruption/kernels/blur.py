"""Blur corruptions: defocus_blur, glass_blur, motion_blur, zoom_blur, gaussian_blur.

Parameters per severity are ImageNet-C's (make_imagenet_c.py, the 224 version).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from visionaudit.families.corruption.kernels import seeding
from visionaudit.families.corruption.kernels.common import gaussian_blur as _gaussian
from visionaudit.families.corruption.kernels.common import to_float, to_uint8

DEFOCUS = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]
GLASS = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]  # sigma, max_delta, iterations
MOTION = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)]  # ImageMagick radius, sigma
GAUSSIAN = [1, 2, 3, 4, 6]
ZOOM_STEPS = [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)]  # np.arange


# --- defocus ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _disk(radius: int, alias_blur: float) -> torch.Tensor:
    """The reference's ``disk``: an aliased disk, normalized, then cv2.GaussianBlur (3x3, or 5x5 past
    radius 8; cv2's default border, reflect-101)."""
    half = 8 if radius <= 8 else radius
    ksize = 3 if radius <= 8 else 5
    L = torch.arange(-half, half + 1, dtype=torch.float32)
    Y, X = torch.meshgrid(L, L, indexing="ij")
    d = ((X ** 2 + Y ** 2) <= radius ** 2).float()
    d /= d.sum()
    g = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    g = torch.exp(-(g ** 2) / (2 * alias_blur ** 2))
    g = (g / g.sum()).float()
    r = ksize // 2
    out = F.pad(d[None, None], (r, r, r, r), mode="reflect")
    out = F.conv2d(F.conv2d(out, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
    return out[0, 0]


def defocus_blur(batch, sample_ids, seed, severity):
    """cv2.filter2D of each channel with the anti-aliased disk (reflect-101 border), through the FFT
    (as OpenCV itself does for kernels this large): pad, multiply the spectra, keep the valid part."""
    kernel = _disk(*DEFOCUS[severity - 1]).to(batch.device)
    x = to_float(batch)
    r = kernel.shape[0] // 2
    h, w = x.shape[-2:]
    padded = F.pad(x, (r, r, r, r), mode="reflect")
    size = padded.shape[-2:]
    # The disk is symmetric, so correlation = convolution; circular convolution equals the linear one
    # on the window that starts 2r in.
    y = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(kernel, s=size), s=size)
    return to_uint8(y[..., 2 * r:2 * r + h, 2 * r:2 * r + w])


# --- gaussian --------------------------------------------------------------------------------------

def gaussian_blur(batch, sample_ids, seed, severity):
    """skimage.filters.gaussian(sigma=c): scipy's kernel (truncate 4), border 'nearest'."""
    return to_uint8(_gaussian(to_float(batch), GAUSSIAN[severity - 1]))


# --- zoom ------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def clipped_zoom_matrix(size: int, zoom: float) -> torch.Tensor:
    """The reference's ``clipped_zoom`` along one axis as a (size, size) matrix: crop the central
    ``ceil(size / zoom)`` pixels, scipy.ndimage.zoom them (order 1, output ``round(ch * zoom)``, corners
    aligned: input coordinate ``o (ch - 1) / (n - 1)``), trim the centre ``size`` pixels."""
    ch = int(np.ceil(size / zoom))
    top = (size - ch) // 2
    n = int(round(ch * zoom))
    trim = (n - size) // 2
    m = torch.zeros(size, size, dtype=torch.float64)
    for i in range(size):
        coord = (i + trim) * (ch - 1) / (n - 1) if n > 1 else 0.0
        lo = int(math.floor(coord))
        frac = coord - lo
        hi = min(lo + 1, ch - 1)
        m[i, top + lo] += 1 - frac
        m[i, top + hi] += frac
    return m


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """(..., H, W) zoomed about the centre and cropped back to (H, W), as the reference's helper."""
    mh = clipped_zoom_matrix(x.shape[-2], float(zoom)).to(x.device, x.dtype)
    mw = clipped_zoom_matrix(x.shape[-1], float(zoom)).to(x.device, x.dtype)
    return mh @ x @ mw.T


def zoom_blur(batch, sample_ids, seed, severity):
    """The mean of the image and its zooms by each factor of the reference's ``np.arange``."""
    zooms = np.arange(*ZOOM_STEPS[severity - 1])
    x = to_float(batch)
    out = x.clone()
    for z in zooms:
        out += clipped_zoom(x, float(z))
    return to_uint8(out / (len(zooms) + 1))


# --- motion ----------------------------------------------------------------------------------------

def motion_kernel(radius: float, sigma: float, angle: float) -> tuple[list[float], list[tuple[int, int]]]:
    """ImageMagick's MotionBlurImage kernel: ``2 ceil(radius) + 1`` taps along the angle, weights
    ``exp(-i^2 / 2 sigma^2)`` (one-sided) normalized, tap i at pixel offset
    ``(ceil(i cos a - 0.5), ceil(i sin a - 0.5))`` (x, y)."""
    width = int(2 * math.ceil(radius) + 1)
    w = [math.exp(-(i * i) / (2.0 * sigma * sigma)) for i in range(width)]
    total = sum(w)
    a = math.radians(angle)
    offsets = [(math.ceil(i * math.cos(a) - 0.5), math.ceil(i * math.sin(a) - 0.5)) for i in range(width)]
    return [v / total for v in w], offsets


def apply_motion_blur(x: torch.Tensor, radius: float, sigma: float, angles: list[float]) -> torch.Tensor:
    """Blur each image of float (B, C, H, W) along its own angle; pixels outside repeat the edge
    (ImageMagick's default virtual pixels). Returns floats on x's scale. Each tap of each image is
    a shifted window of the edge-padded batch (the offsets differ per image, the slicing is cheap)."""
    b, c, h, w = x.shape
    kernels = [motion_kernel(radius, sigma, a) for a in angles]
    reach = max(max(abs(o) for off in k[1] for o in off) for k in kernels)
    padded = F.pad(x, (reach, reach, reach, reach), mode="replicate")
    out = torch.zeros_like(x)
    for k, (weights, offsets) in enumerate(kernels):
        for wt, (ox, oy) in zip(weights, offsets):
            out[k] += wt * padded[k, :, reach + oy:reach + oy + h, reach + ox:reach + ox + w]
    return out


def imagemagick_8bit(x: torch.Tensor) -> torch.Tensor:
    """ImageMagick's result on a 0..255 scale as the reference reads it back: rounded to its 16-bit
    quantum (Q16, 257 per grey level), then cut down to 8 bits (which truncates)."""
    return torch.floor(torch.round(x * 257) / 257).clamp(0, 255)


def motion_blur(batch, sample_ids, seed, severity, *, _angles=None):
    """ImageMagick's motion blur (as the reference calls it through Wand), angle uniform in
    [-45, 45) per image."""
    radius, sigma = MOTION[severity - 1]
    angles = _angles if _angles is not None else seeding.scalars(
        sample_ids, seed, "motion_blur", lambda r: r.uniform(-45, 45))
    out = apply_motion_blur(batch.double(), radius, sigma, list(angles))
    return imagemagick_8bit(out).to(torch.uint8)


# --- glass ---------------------------------------------------------------------------------------

def glass_sources(draws: torch.Tensor, max_delta: int, size: int) -> torch.Tensor:
    """Where each pixel's value comes from after one pass of the reference's shuffle, batched.

    The reference scans (h, w) from (size - max_delta, size - max_delta) down to
    (max_delta + 1, max_delta + 1), row by row, and does ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``
    with (h', w') = (h + dy, w + dx), (dx, dy) drawn from [-max_delta, max_delta). On a numpy image
    ``x[h, w]`` is a view, so that line is not a swap: it copies the current pixel at (h', w') into
    (h, w) and leaves (h', w') as it was. The current pixel at (h', w') is the pass's final one when
    (h', w') was scanned before (h, w), else the pass's input. So each pixel's source is found by
    following those pointers until one lands on a position not yet scanned, done here for all pixels
    at once by pointer jumping (about log2 of the longest chain rounds). Exact given the draws.

    ``draws`` (B, n * n, 2) as (dx, dy) in scan order (n = size - 2 max_delta); returns (B, size * size)
    flat source indices.
    """
    b = draws.shape[0]
    device = draws.device
    md = max_delta
    line = torch.arange(size - md, md, -1, device=device)  # scan order along one axis
    n = line.numel()
    hs = line.repeat_interleave(n)
    ws = line.repeat(n)
    pos = hs * size + ws  # (n * n,) flat positions in scan order
    scan_index = torch.full((size * size,), -1, dtype=torch.long, device=device)
    scan_index[pos] = torch.arange(n * n, device=device)
    target = (hs + draws[..., 1]) * size + (ws + draws[..., 0])  # (B, n * n)
    t_index = scan_index[target]
    # Follow the pointer when the target was scanned earlier in this pass (its value is then final).
    follow = (t_index >= 0) & (t_index < torch.arange(n * n, device=device))
    ptr = torch.arange(size * size, device=device).repeat(b, 1)
    done = torch.ones(b, size * size, dtype=torch.bool, device=device)
    ptr[:, pos] = target
    done[:, pos] = ~follow
    while not bool(done.all()):
        ptr, done = torch.where(done, ptr, ptr.gather(1, ptr)), done | done.gather(1, ptr)
    return ptr


def apply_glass_shuffle(x: torch.Tensor, passes: list[torch.Tensor], max_delta: int) -> torch.Tensor:
    """The reference's shuffle of (B, C, H, W), one (B, n * n, 2) draw tensor per pass."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    for draws in passes:
        src = glass_sources(draws.to(x.device), max_delta, h)
        flat = flat.gather(2, src[:, None, :].expand(b, c, h * w))
    return flat.reshape(b, c, h, w)


def apply_glass_blur(batch: torch.Tensor, passes: list[torch.Tensor], severity: int) -> torch.Tensor:
    sigma, md, _ = GLASS[severity - 1]
    x = to_uint8(_gaussian(to_float(batch), sigma)).float()
    return to_uint8(_gaussian(apply_glass_shuffle(x, passes, md) / 255.0, sigma))


def glass_blur(batch, sample_ids, seed, severity):
    """Gaussian blur, the reference's local pixel shuffle, gaussian blur again, batched (see
    :func:`glass_sources` for how the reference's ~50 000 sequential Python "swaps" per pass become a
    few gathers); the same process as the reference, exact given its draws."""
    _, md, iterations = GLASS[severity - 1]
    n = batch.shape[-1] - 2 * md
    draws = seeding.draw(sample_ids, seed, "glass_blur", "cpu",
                         lambda g: torch.randint(-md, md, (iterations, n * n, 2), generator=g))
    return apply_glass_blur(batch, list(draws.unbind(1)), severity)
