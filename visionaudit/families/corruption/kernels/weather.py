"""Weather corruptions: snow, frost, fog, spatter.

Parameters per severity are ImageNet-C's (make_imagenet_c.py, the 224 version). The frost textures
(visionaudit/families/corruption/kernels/frost/) come from the hendrycks/robustness repository, Apache License 2.0 (see
the README there).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from visionaudit.families.corruption.kernels import seeding
from visionaudit.families.corruption.kernels.blur import (
    apply_motion_blur,
    clipped_zoom,
    imagemagick_8bit,
)
from visionaudit.families.corruption.kernels.common import (
    gaussian_blur,
    to_float,
    to_uint8,
)

FOG = [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)]
FROST = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]
# The reference draws np.random.randint(5): the sixth texture is never used.
FROST_FILES = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
FROST_DIR = Path(__file__).resolve().parent / "frost"
# loc, scale, zoom, threshold, motion radius, motion sigma, blend
SNOW = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)]
# loc, scale, sigma, threshold, intensity (water) / mud sigma, mud?
SPATTER = [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
           (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)]


# --- fog -------------------------------------------------------------------------------------------

def plasma_fractal(uniform, mapsize: int = 256, wibbledecay: float = 3) -> torch.Tensor:
    """The reference's diamond-square height map, batched: ``uniform(shape)`` returns (B, *shape)
    draws in [-1, 1), consumed in the reference's order and shapes; returns (B, mapsize, mapsize) in
    [0, 1]."""
    first = uniform((1, 1))
    b = first.shape[0]
    m = torch.zeros(b, mapsize, mapsize, dtype=torch.float64, device=first.device)
    step = mapsize
    wibble = 100.0
    pending = [first]  # the first draw is consumed by the first fillsquares

    def wibbled(a):
        r = pending.pop() if pending else uniform(tuple(a.shape[1:]))
        return a / 4 + wibble * (wibble * r.to(a))

    while step >= 2:
        half = step // 2
        corners = m[:, 0:mapsize:step, 0:mapsize:step]
        sq = corners + torch.roll(corners, -1, dims=1)
        sq = sq + torch.roll(sq, -1, dims=2)
        m[:, half:mapsize:step, half:mapsize:step] = wibbled(sq)
        dr = m[:, half:mapsize:step, half:mapsize:step]
        ul = m[:, 0:mapsize:step, 0:mapsize:step]
        lt = dr + torch.roll(dr, 1, dims=1) + ul + torch.roll(ul, -1, dims=2)
        m[:, 0:mapsize:step, half:mapsize:step] = wibbled(lt)
        tt = dr + torch.roll(dr, 1, dims=2) + ul + torch.roll(ul, -1, dims=1)
        m[:, half:mapsize:step, 0:mapsize:step] = wibbled(tt)
        step //= 2
        wibble /= wibbledecay
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def apply_fog(x: torch.Tensor, plasma: torch.Tensor, severity: int) -> torch.Tensor:
    a, _ = FOG[severity - 1]
    h, w = x.shape[-2:]
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    y = x + a * plasma[:, None, :h, :w].to(x)
    return to_uint8(y * max_val / (max_val + a))


def fog(batch, sample_ids, seed, severity):
    """Adds the reference's plasma fractal (its own draws per image), scaled as the reference does. The draws are
    made on the CPU (seeded per image) and the fractal is built on the batch's device: on a GPU the CPU's share is
    the draws alone (a quarter of the fractal's cost on a core); float64 additions, products, quotients and
    extrema round alike on either."""
    gens = [seeding.torch_generator(seed, "fog", i) for i in seeding.sample_list(sample_ids)]

    def uniform(shape):
        return torch.stack([torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1 for g in gens]).to(batch.device)

    plasma = plasma_fractal(uniform, wibbledecay=FOG[severity - 1][1])
    return apply_fog(to_float(batch), plasma, severity)


# --- frost -----------------------------------------------------------------------------------------

def frost_unavailable() -> str | None:
    missing = [f for f in FROST_FILES[:5] if not (FROST_DIR / f).is_file()]
    if missing:
        return f"frost needs ImageNet-C's frost textures, missing from {FROST_DIR}: {', '.join(missing)}"
    return None


@functools.lru_cache(maxsize=None)
def frost_texture(index: int) -> torch.Tensor:
    """Texture ``index`` (0-based) as uint8 (3, H, W) RGB."""
    with Image.open(FROST_DIR / FROST_FILES[index]) as img:
        return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous()


def frost_draws(rng, size: int = 224) -> tuple[int, int, int]:
    """(texture index, top, left): the reference's randint(5), randint(0, H - 224), randint(0, W - 224)."""
    index = rng.randrange(5)
    _, h, w = frost_texture(index).shape
    return index, rng.randrange(h - size), rng.randrange(w - size)


def apply_frost(batch: torch.Tensor, draws, severity: int) -> torch.Tensor:
    a, b = FROST[severity - 1]
    h, w = batch.shape[-2:]
    crops = torch.stack([frost_texture(i)[:, t:t + h, l:l + w] for i, t, l in draws]).to(batch.device)
    return (a * batch.double() + b * crops.double()).clamp(0, 255).to(torch.uint8)  # float64 as the reference


def frost(batch, sample_ids, seed, severity):
    """``clip(a x + b crop)`` with a random crop of one of the first five frost textures."""
    reason = frost_unavailable()
    if reason:
        raise RuntimeError(reason)
    draws = seeding.scalars(sample_ids, seed, "frost", frost_draws)
    return apply_frost(batch, draws, severity)


# --- snow ------------------------------------------------------------------------------------------

def apply_snow(x: torch.Tensor, unit_normal: torch.Tensor, angles: list[float], severity: int) -> torch.Tensor:
    """``unit_normal`` (B, H, W) standard-normal draws, ``angles`` the motion-blur angles."""
    loc, scale, zoom, threshold, radius, sigma, blend = SNOW[severity - 1]
    layer = clipped_zoom(unit_normal.double() * scale + loc, zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    layer = (layer.clamp(0, 1) * 255).to(torch.uint8).double()  # the reference's 8-bit greyscale PNG
    layer = (imagemagick_8bit(apply_motion_blur(layer[:, None], radius, sigma, angles)) / 255).to(x.dtype)
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])  # cv2 RGB2GRAY
    x = blend * x + (1 - blend) * torch.maximum(x, grey * 1.5 + 0.5)
    return to_uint8(x + layer + torch.rot90(layer, 2, dims=(-2, -1)))


def snow(batch, sample_ids, seed, severity):
    """Zoomed, thresholded normal noise motion-blurred at an angle in [-135, -45) (ImageMagick's
    kernel, see blur.motion_kernel), added twice (as is and turned 180 degrees) to a brightened image."""
    h, w = batch.shape[-2:]
    noise = seeding.draw(sample_ids, seed, "snow", batch.device, lambda g: torch.randn((h, w), generator=g))
    angles = seeding.scalars(sample_ids, seed, "snow", lambda r: r.uniform(-135, -45))
    return apply_snow(to_float(batch), noise, angles, severity)


# --- spatter ---------------------------------------------------------------------------------------

def _box3(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur (3, 3), reflect-101 border, on (B, 1, H, W)."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)


def _canny(img: torch.Tensor, low: int = 50, high: int = 150) -> torch.Tensor:
    """cv2.Canny(img, low, high) of integer-valued (B, 1, H, W) floats: 3x3 Sobel (replicated border),
    L1 magnitude, non-maximum suppression in OpenCV's four directions (its tan 22.5 / 67.5 degree
    tests and tie rules; magnitude 0 outside the image), then hysteresis (8-connected)."""
    sobel_x = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=img.dtype, device=img.device)
    padded = F.pad(img, (1, 1, 1, 1), mode="replicate")
    dx = F.conv2d(padded, sobel_x[None, None])
    dy = F.conv2d(padded, sobel_x.T.contiguous()[None, None])
    mag = dx.abs() + dy.abs()
    m = F.pad(mag, (1, 1, 1, 1), value=0)

    def at(oy, ox):
        h, w = mag.shape[-2:]
        return m[..., 1 + oy:1 + oy + h, 1 + ox:1 + ox + w]

    shift = 15
    tg22 = int(0.4142135623730950488016887242097 * (1 << shift) + 0.5)
    ax, ay = dx.abs(), dy.abs() * (1 << shift)
    tg22x = ax * tg22
    tg67x = tg22x + ax * (1 << (shift + 1))
    horizontal = ay < tg22x
    vertical = ~horizontal & (ay > tg67x)
    diagonal = ~horizontal & ~vertical
    s = torch.where((dx < 0) != (dy < 0), -1, 1)
    keep_h = (mag > at(0, -1)) & (mag >= at(0, 1))
    keep_v = (mag > at(-1, 0)) & (mag >= at(1, 0))
    keep_d_pos = (mag > at(-1, -1)) & (mag > at(1, 1))  # s = 1
    keep_d_neg = (mag > at(-1, 1)) & (mag > at(1, -1))  # s = -1
    keep_d = torch.where(s > 0, keep_d_pos, keep_d_neg)
    nms = (horizontal & keep_h) | (vertical & keep_v) | (diagonal & keep_d)
    candidate = nms & (mag > low)
    edges = candidate & (mag > high)
    while True:
        grown = candidate & (F.max_pool2d(edges.float(), 3, stride=1, padding=1) > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def _chamfer_distance(zero: torch.Tensor, cap: float = 20.0) -> torch.Tensor:
    """cv2.distanceTransform(DIST_L2, 5) to the True pixels of (B, 1, H, W), capped at ``cap``: the
    5x5 chamfer metric (steps 1, 1.4 and 2.1969 for axial, diagonal and knight moves), computed by
    parallel min-plus relaxation until it settles (at most ``cap`` rounds matter)."""
    big = 1e6
    d = torch.where(zero, 0.0, big).to(torch.float32)
    moves = [(oy, ox) for oy in range(-2, 3) for ox in range(-2, 3) if (oy, ox) != (0, 0)]
    cost = {1: 1.0, 2: 1.4, 5: 2.1969}
    moves = [(oy, ox, cost[oy * oy + ox * ox]) for oy, ox in moves if oy * oy + ox * ox in cost]
    h, w = d.shape[-2:]
    for _ in range(int(cap) + 1):
        p = F.pad(d, (2, 2, 2, 2), value=big)
        new = d
        for oy, ox, c in moves:
            new = torch.minimum(new, p[..., 2 + oy:2 + oy + h, 2 + ox:2 + ox + w] + c)
        if torch.equal(new, d):
            break
        d = new
    return d.clamp_max(cap)


def apply_spatter(x: torch.Tensor, unit_normal: torch.Tensor, severity: int) -> torch.Tensor:
    """``unit_normal`` (B, H, W) standard-normal draws. Water (severities 1-3) follows the reference's
    OpenCV steps (Canny, distance transform, equalization, emboss) in torch; mud (4-5) is a blurred,
    thresholded mask blended with brown."""
    loc, scale, sigma, threshold, intensity, mud = SPATTER[severity - 1]
    liquid = gaussian_blur((unit_normal.double() * scale + loc)[:, None], sigma)  # (B, 1, H, W)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        m = gaussian_blur((liquid > threshold).float(), intensity).to(x.dtype)
        m = torch.where(m < 0.8, torch.zeros_like(m), m)
        color = torch.tensor([63, 42, 20], dtype=x.dtype, device=x.device).view(1, 3, 1, 1) / 255
        return to_uint8(x * (1 - m) + color * m)
    liquid8 = torch.floor(liquid * 255).float()  # .astype(np.uint8)
    dist = _chamfer_distance(_canny(liquid8))  # distance to the edges, truncated at 20
    dist = torch.floor(_box3(dist))  # .astype(np.uint8)
    dist = _equalize(dist)
    emboss = torch.tensor([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=torch.float32, device=x.device)
    dist = torch.round(F.conv2d(F.pad(dist, (1, 1, 1, 1), mode="reflect"), emboss[None, None])).clamp(0, 255)
    dist = _box3(dist)
    m = liquid8 * dist
    m = (m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * intensity).to(x.dtype)
    # The reference adds (175, 238, 238) / 255 through BGR-named OpenCV calls to an RGB image.
    color = torch.tensor([175, 238, 238], dtype=x.dtype, device=x.device).view(1, 3, 1, 1) / 255
    return to_uint8(x + m * color)


def _equalize(d: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist of integer-valued (B, 1, H, W) floats in [0, 255]."""
    b = d.shape[0]
    v = d.reshape(b, -1).long()
    hist = torch.zeros(b, 256, device=d.device).scatter_add_(1, v, torch.ones_like(v, dtype=torch.float32))
    cdf = hist.cumsum(1)
    total = v.shape[1]
    first = torch.gather(hist, 1, (hist > 0).float().argmax(1, keepdim=True))  # count of the lowest value
    scale = 255.0 / (total - first).clamp_min(1)
    lut = torch.round((cdf - first) * scale).clamp(0, 255)
    return torch.gather(lut, 1, v).reshape(d.shape)


def spatter(batch, sample_ids, seed, severity):
    """Water drops (severities 1-3) or mud (4-5) from blurred, thresholded normal noise."""
    h, w = batch.shape[-2:]
    noise = seeding.draw(sample_ids, seed, "spatter", batch.device, lambda g: torch.randn((h, w), generator=g))
    return apply_spatter(to_float(batch), noise, severity)
