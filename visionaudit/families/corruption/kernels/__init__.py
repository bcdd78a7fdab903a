"""The ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) as batched uint8 torch kernels.

``kernel(batch, sample_ids, seed, severity)``: ``batch`` is uint8 ``(B, 3, 224, 224)`` on any device,
``sample_ids`` one per image (str, or int for images without files), ``severity`` 1..5; the result is
uint8 of the same shape on the same device. Parameters per severity are those of the reference,
``make_imagenet_c.py`` in github.com/hendrycks/robustness (ImageNet-C/create_c/, the 224 version).
Random draws are per image, seeded by (seed, corruption, sample id) (see ``seeding``), so an image gets
the same corruption whatever batch, subset, shard, worker or device it is in. Outputs are truncated to
uint8 as ImageNet-C's ``np.uint8(...)`` did (the published files were then saved as JPEG quality 85;
that last step is not part of the kernels).

Modules: ``noise`` (gaussian, shot, impulse, speckle), ``blur`` (defocus, glass, motion, zoom,
gaussian), ``weather`` (snow, frost, fog, spatter), ``digital`` (brightness, contrast, saturate,
pixelate, jpeg_compression, elastic_transform). How each kernel compares with the reference is said in
its docstring and tested in tests/families/corruption/test_corruption_kernels.py against ImageNet-C's
own code: given the reference's random draws, every kernel reproduces its output within 1 grey level (most exactly),
glass blur included (its ~50 000 sequential Python pixel copies per pass become a few batched gathers,
see ``blur.glass_sources``), as do motion blur and snow (ImageMagick's motion-blur kernel and its
16-bit rounding) and spatter (OpenCV's Canny, chamfer distance and equalization, in torch).

Frost blends crops of ImageNet-C's frost textures, shipped in visionaudit/families/corruption/kernels/frost/ under the
Apache License 2.0 of github.com/hendrycks/robustness (see the README there); ``unavailable("frost")``
says so when they are missing.
"""

from __future__ import annotations

import functools
import operator
from typing import Callable, Sequence

import torch

from visionaudit.families.corruption.kernels import blur, digital, noise, weather

# kernel(batch uint8 (B, 3, 224, 224), sample ids (one per image), seed, severity 1..5) -> uint8 batch
Kernel = Callable[[torch.Tensor, Sequence, int, int], torch.Tensor]


def _checked(kernel: Kernel) -> Kernel:
    """Refuse what the kernels cannot take, with the fix, before any work."""
    @functools.wraps(kernel)
    def run(batch, sample_ids, seed, severity):
        name = kernel.__name__
        try:
            level = operator.index(severity)
        except TypeError:
            level = None
        if level is None or isinstance(severity, bool) or not 1 <= level <= 5:
            raise ValueError(f"{name}: severity must be a whole number from 1 to 5, got {severity!r}")
        if not isinstance(batch, torch.Tensor) or batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] != 3:
            got = f"{batch.dtype} {tuple(batch.shape)}" if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ValueError(f"{name}: corruption kernels take uint8 (B, 3, H, W) images; got {got}")
        h, w = batch.shape[-2:]
        if h != w or not 16 <= h <= 256:
            # ImageNet-C's parameters are for 224 x 224 (fog's fractal is 256 wide): corrupt there, then resize.
            raise ValueError(f"{name}: images must be square, 16 to 256 pixels (ImageNet-C's are 224 x 224); got {h} x {w}")
        if len(sample_ids) != len(batch):
            raise ValueError(f"{name}: {len(batch)} images but {len(sample_ids)} sample ids; give one id per image")
        if batch.device.type == "mps":  # several kernels work in float64, which MPS lacks
            return kernel(batch.cpu(), sample_ids, seed, level).to(batch.device)
        return kernel(batch, sample_ids, seed, level)
    return run


# The published order (ImageNet-C's folder names).
CORRUPTIONS: dict[str, Kernel] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}

# The four held-out corruptions of ImageNet-C (for validation, not in mCE).
EXTRA_CORRUPTIONS: dict[str, Kernel] = {
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "spatter": weather.spatter,
    "saturate": digital.saturate,
}
CORRUPTIONS = {name: _checked(k) for name, k in CORRUPTIONS.items()}
EXTRA_CORRUPTIONS = {name: _checked(k) for name, k in EXTRA_CORRUPTIONS.items()}


def unavailable(name: str) -> str | None:
    """Why corruption ``name`` cannot run here, or None when it can."""
    get(name)
    if name == "frost":
        return weather.frost_unavailable()
    return None


def get(name: str) -> Kernel:
    try:
        return {**CORRUPTIONS, **EXTRA_CORRUPTIONS}[name]
    except KeyError:
        known = ", ".join([*CORRUPTIONS, *EXTRA_CORRUPTIONS])
        raise ValueError(f"unknown corruption {name!r}; known: {known}") from None
