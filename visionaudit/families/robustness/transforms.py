"""The nine transforms of the robustness audit, as batched uint8 kernels on the model's device.

Each acts on decoded uint8 images ``(B, 3, H, W)`` before the model's normalization, through
torchvision.transforms.v2 functional kernels, or, where the parameters differ per image (rotation,
translation, perspective), through one batched grid sample that reproduces them (:mod:`.sampling`). Random choices
(rotation sign, translation direction,
perspective corners) are drawn per image from ``(seed, sample id)``, so a run is reproducible and every
image sees the same transform whatever the batch, subset, shard or worker it is in.

Default magnitudes (severity 1; ``severity`` scales them):

============================ ================================================================
rotation                     +-30 degrees (sign per image), bilinear, black corners
brightness                   factor 1.5 (``1 + 0.5 * severity``)
histogram_equalization       per-channel histogram equalization (no magnitude)
horizontal_flip              mirror left-right (no magnitude)
translation                  20 % of the width left or right, or of the height up or down (per image), black fill
zoom                         zoom in 1.5x about the centre (``1 + 0.5 * severity``), bilinear
perspective                  each corner moved inward by up to 30 % of the half side (per image)
vertical_flip                upside down (no magnitude)
histeq_zoom_brightness       histogram equalization, then zoom 1.5x, then brightness 1.5
============================ ================================================================
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:  # torch, torchvision and the sampling kernels are imported by the kernels: the names are read on
    import torch  # the xdist controller (the descriptor, the baseline), which never imports torch

# kernel(batch, sample ids (one per image: str, or int for images without files), seed, severity)
Kernel = Callable[["torch.Tensor", Sequence, int, float], "torch.Tensor"]


def _rng(seed: int, sample_id: str | int, salt: str) -> random.Random:
    return random.Random(f"{seed}:{salt}:{sample_id}")


def _draws(sample_ids: Sequence, seed: int, salt: str, choose) -> list:
    ids = sample_ids.tolist() if hasattr(sample_ids, "tolist") else list(sample_ids)  # a tensor of ids, or a sequence
    return [choose(_rng(seed, i, salt)) for i in ids]


def rotation(batch, sample_ids, seed, severity):
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    from visionaudit.families.robustness import sampling

    angle = 30.0 * severity
    angles = _draws(sample_ids, seed, "rotation", lambda r: r.choice((-angle, angle)))
    if angle % 90 == 0:  # torchvision's exact fast paths (rot90, clone): one call per drawn angle, at most two
        out = torch.empty_like(batch)
        for a in set(angles):
            at = torch.tensor([k for k, x in enumerate(angles) if x == a], device=batch.device)
            out[at] = F.rotate(batch[at], a, interpolation=InterpolationMode.BILINEAR)
        return out
    h, w = batch.shape[-2:]
    grid = sampling.affine_grid([sampling.inverse_rotation(a) for a in angles], h, w, batch.device)
    return sampling.sample(batch, grid, "bilinear")


def brightness(batch, sample_ids, seed, severity):
    from torchvision.transforms.v2 import functional as F

    return F.adjust_brightness(batch, 1.0 + 0.5 * severity)


def histogram_equalization(batch, sample_ids, seed, severity):
    from torchvision.transforms.v2 import functional as F

    return F.equalize(batch)


def horizontal_flip(batch, sample_ids, seed, severity):
    from torchvision.transforms.v2 import functional as F

    return F.horizontal_flip(batch)


def vertical_flip(batch, sample_ids, seed, severity):
    from torchvision.transforms.v2 import functional as F

    return F.vertical_flip(batch)


def translation(batch, sample_ids, seed, severity):
    from visionaudit.families.robustness import sampling

    h, w = batch.shape[-2:]
    # 20 % of the width left or right, of the height up or down (the same for the audit's square inputs)
    dx, dy = round(0.2 * severity * w), round(0.2 * severity * h)
    moves = ((dx, 0), (-dx, 0), (0, dy), (0, -dy))
    chosen = _draws(sample_ids, seed, "translation", lambda r: r.choice(moves))
    grid = sampling.affine_grid([sampling.inverse_translation(*t) for t in chosen], h, w, batch.device)
    return sampling.sample(batch, grid, "nearest")  # F.affine's default interpolation, as before


def zoom(batch, sample_ids, seed, severity):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    return F.affine(batch, angle=0.0, translate=[0, 0], scale=1.0 + 0.5 * severity, shear=[0.0, 0.0],
                    interpolation=InterpolationMode.BILINEAR)


def perspective(batch, sample_ids, seed, severity):
    from visionaudit.families.robustness import sampling

    h, w = batch.shape[-2:]
    d = 0.3 * severity

    def corners(r: random.Random):
        dx, dy = (w / 2) * d, (h / 2) * d
        return (
            (round(r.uniform(0, dx)), round(r.uniform(0, dy))),
            (w - 1 - round(r.uniform(0, dx)), round(r.uniform(0, dy))),
            (w - 1 - round(r.uniform(0, dx)), h - 1 - round(r.uniform(0, dy))),
            (round(r.uniform(0, dx)), h - 1 - round(r.uniform(0, dy))),
        )

    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    coeffs = sampling.perspective_coefficients(start, _draws(sample_ids, seed, "perspective", corners))
    return sampling.sample(batch, sampling.perspective_grid(coeffs, h, w, batch.device), "bilinear")


def histeq_zoom_brightness(batch, sample_ids, seed, severity):
    return brightness(zoom(histogram_equalization(batch, sample_ids, seed, severity), sample_ids, seed, severity),
                      sample_ids, seed, severity)


TRANSFORMS: dict[str, Kernel] = {
    "rotation": rotation,
    "brightness": brightness,
    "histogram_equalization": histogram_equalization,
    "horizontal_flip": horizontal_flip,
    "translation": translation,
    "zoom": zoom,
    "perspective": perspective,
    "vertical_flip": vertical_flip,
    "histeq_zoom_brightness": histeq_zoom_brightness,
}


def get(name: str) -> Kernel:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}") from None
