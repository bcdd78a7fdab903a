"""Blur corruptions: defocus_blur, glass_blur, motion_blur, zoom_blur, gaussian_blur.

Parameters per severity are ImageNet-C's (make_imagenet_c.py, the 224 version).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import seeding
from .common import gaussian_blur as _gaussian, to_float, to_uint8

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
    """cv2.filter2D of each channel with the anti-aliased disk (reflect-101 border)."""
    kernel = _disk(*DEFOCUS[severity - 1]).to(batch.device)
    x = to_float(batch)
    r = kernel.shape[0] // 2
    b, c, h, w = x.shape
    y = F.pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode="reflect")
    return to_uint8(F.conv2d(y, kernel[None, None]).reshape(b, c, h, w))


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
    (ImageMagick's default virtual pixels). Returns floats on x's scale."""
    b, c, h, w = x.shape
    kernels = [motion_kernel(radius, sigma, a) for a in angles]
    taps = len(kernels[0][0])
    weights = torch.tensor([k[0] for k in kernels], dtype=x.dtype, device=x.device)  # (B, taps)
    offsets = torch.tensor([k[1] for k in kernels], device=x.device)  # (B, taps, 2) as (dx, dy)
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device)
    bidx = torch.arange(b, device=x.device)[:, None, None]
    out = torch.zeros_like(x)
    flat = x.permute(0, 2, 3, 1)  # gather (B, H, W) positions, channels last
    for i in range(taps):
        yy = (ys[None, :] + offsets[:, i, 1:2]).clamp(0, h - 1)[:, :, None]
        xx = (xs[None, :] + offsets[:, i, 0:1]).clamp(0, w - 1)[:, None, :]
        out += weights[:, i].view(b, 1, 1, 1) * flat[bidx, yy, xx].permute(0, 3, 1, 2)
    return out


def motion_blur(batch, sample_ids, seed, severity, *, _angles=None):
    """ImageMagick's motion blur (as the reference calls it through Wand), angle uniform in
    [-45, 45) per image; the 16-bit result written to 8-bit PNG is rounded, not truncated."""
    radius, sigma = MOTION[severity - 1]
    angles = _angles if _angles is not None else seeding.scalars(
        sample_ids, seed, "motion_blur", lambda r: r.uniform(-45, 45))
    out = apply_motion_blur(batch.float(), radius, sigma, list(angles))
    return torch.round(out).clamp(0, 255).to(torch.uint8)


# --- glass -----------------------------------------------------------------------------------------

_GLASS_TABLE = Path(__file__).with_name("glass_blur_displacements.npz")


def reference_swap_permutation(severity: int, rng: np.random.Generator, size: int = 224) -> np.ndarray:
    """The reference's pixel shuffle as a permutation: ``perm[h, w]`` is the flat index of the pixel
    that ends at (h, w). Sequential Python swaps exactly as make_imagenet_c.py does them (slow: only
    to build and check the displacement table, never in the kernel)."""
    _, md, iterations = GLASS[severity - 1]
    cells = np.arange(size * size).reshape(size, size).tolist()
    for _ in range(iterations):
        n = (size - 2 * md) ** 2
        draws = rng.integers(-md, md, size=(n, 2)).tolist()  # randint(-md, md): md excluded, as there
        k = 0
        for h in range(size - md, md, -1):
            for w in range(size - md, md, -1):
                dx, dy = draws[k]
                k += 1
                hp, wp = h + dy, w + dx
                cells[h][w], cells[hp][wp] = cells[hp][wp], cells[h][w]
    return np.array(cells)


@functools.lru_cache(maxsize=None)
def glass_displacements(severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(offsets (K, 2) as (dy, dx) source minus destination, cumulative probabilities (K,)) of the
    reference's shuffle, tabulated in glass_blur_displacements.npz by ``_build_glass_table``."""
    with np.load(_GLASS_TABLE) as table:
        offsets = torch.from_numpy(table[f"offsets_{severity}"].astype(np.int64))
        counts = torch.from_numpy(table[f"counts_{severity}"].astype(np.float64))
    return offsets, torch.cumsum(counts / counts.sum(), 0)


def _build_glass_table(runs: int = 24, seed: int = 0) -> None:
    """Tabulate the displacement (source - destination) of the reference's shuffle, pooled over
    ``runs`` simulated permutations, interior pixels only (the border band is never swapped)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for severity in range(1, 6):
        md = GLASS[severity - 1][1]
        pairs = []
        for _ in range(runs):
            perm = reference_swap_permutation(severity, rng)
            sy, sx = np.divmod(perm, perm.shape[1])
            yy, xx = np.mgrid[: perm.shape[0], : perm.shape[1]]
            inner = (slice(md + 1, -md - 1),) * 2
            pairs.append(np.stack([(sy - yy)[inner].ravel(), (sx - xx)[inner].ravel()], 1))
        offsets, counts = np.unique(np.concatenate(pairs), axis=0, return_counts=True)
        arrays[f"offsets_{severity}"] = offsets.astype(np.int8)
        arrays[f"counts_{severity}"] = counts.astype(np.int32)
    np.savez_compressed(_GLASS_TABLE, **arrays)


def apply_glass_shuffle(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, margin: int) -> torch.Tensor:
    """Each pixel of (B, C, H, W) inside the ``margin`` band takes the pixel at its offset (dy, dx)
    ((B, H, W) integer tensors), clamped into the image."""
    b, c, h, w = x.shape
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys > margin) & (ys <= h - margin) & (xs > margin) & (xs <= w - margin)  # the scanned range
    sy = torch.where(inside, (ys + dy).clamp(0, h - 1), ys.expand(b, h, w))
    sx = torch.where(inside, (xs + dx).clamp(0, w - 1), xs.expand(b, h, w))
    bidx = torch.arange(b, device=x.device).view(b, 1, 1)
    return x.permute(0, 2, 3, 1)[bidx, sy, sx].permute(0, 3, 1, 2)


def glass_blur(batch, sample_ids, seed, severity):
    """Gaussian blur, local pixel shuffle, gaussian blur (the reference's sigma and max_delta).

    The reference shuffles with ~50 000 sequential Python swaps per iteration (each pixel, scanned
    from bottom-right, swapped with a neighbour at offset in [-max_delta, max_delta)); a swapped pixel
    that lands on a position not yet scanned is carried on, so displacements have a long one-sided
    tail. The batched equivalent draws each pixel's source offset independently from the reference's
    own displacement distribution (tabulated from simulations of its exact swap sequence,
    glass_blur_displacements.npz) and gathers once. Each pixel's displacement then has the reference's
    distribution; what differs is that the reference is a permutation (every pixel used once) while
    independent draws may use a pixel twice or not at all, which changes no blur statistic measurably
    (tests compare spectra with the reference's outputs)."""
    sigma, md, _ = GLASS[severity - 1]
    x = to_uint8(_gaussian(to_float(batch), sigma)).float()
    offsets, cdf = glass_displacements(severity)
    b, _, h, w = x.shape
    u = seeding.draw(sample_ids, seed, "glass_blur", "cpu",
                     lambda g: torch.rand((h, w), generator=g, dtype=torch.float64))
    pick = torch.searchsorted(cdf, u.contiguous()).clamp_max(len(cdf) - 1)
    d = offsets[pick].to(batch.device)  # (B, H, W, 2)
    shuffled = apply_glass_shuffle(x, d[..., 0], d[..., 1], md)
    return to_uint8(_gaussian(shuffled / 255.0, sigma))
