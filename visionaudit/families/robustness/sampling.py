"""One grid-sampling call for a whole batch with one geometric transform per image.

torchvision.transforms.v2.functional's rotate/affine/perspective on uint8 tensors build one sampling grid per
call, so images with different parameters need one call each. These helpers build the same grids for a batch
of per-image matrices (the same arithmetic: float32, output pixel centres at half-pixel offsets,
``align_corners=False``, zero padding, rounded back to uint8; no ``fill``), so that one
``torch.nn.functional.grid_sample`` serves the batch. The pixels are bit-exact to torchvision's on the CPU
(tests/families/robustness/test_batched_transforms.py); on CUDA the batched ``bmm`` may round a grid coordinate
by an ulp otherwise, so within one grey level is the stated bound there, unmeasured so far (docs/robustness.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn.functional import grid_sample


def inverse_rotation(angle: float) -> list[float]:
    """torchvision's inverse matrix for ``rotate(img, angle)`` about the centre (``_get_inverse_affine_matrix``
    with ``-(angle % 360)``, no shear, scale 1), written out so that its float64 values are the same."""
    rot = math.radians(-(angle % 360))
    a = math.cos(rot) / 1.0
    b = -(a * 0.0 + math.sin(rot))
    c = math.sin(rot) / 1.0
    d = math.cos(rot) - c * 0.0
    return [d, -b, 0.0, -c, a, 0.0]


def inverse_translation(tx: float, ty: float) -> list[float]:
    """torchvision's inverse matrix for ``affine(img, angle=0, translate=[tx, ty], scale=1, shear=0)``."""
    return [1.0, 0.0, -float(tx), 0.0, 1.0, -float(ty)]


def affine_grid(matrices: Sequence[Sequence[float]], h: int, w: int, device) -> torch.Tensor:
    """Sampling grids ``(B, h, w, 2)`` for inverse affine matrices (6 values each), as torchvision's
    ``_affine_grid`` builds them (output size = input size)."""
    theta = torch.tensor(matrices, dtype=torch.float32, device=device).reshape(-1, 2, 3)
    base = _base_grid(h, w, torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device),
                      torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device))
    scaled = theta.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=device))
    return base.expand(len(theta), -1, -1).bmm(scaled).view(-1, h, w, 2)


def perspective_coefficients(start: Sequence[Sequence[int]], ends: Sequence[Sequence[Sequence[int]]]) -> torch.Tensor:
    """The 8 coefficients per image ``(B, 8)``, float32, mapping each image's end corners onto ``start``: one
    batched float64 least-squares solve of torchvision's ``_get_perspective_coeffs`` system."""
    e = torch.tensor(ends, dtype=torch.float64).reshape(-1, 4, 2)  # (B, 4, 2), B may be 0
    s = torch.tensor(start, dtype=torch.float64).expand_as(e)
    x, y, sx, sy = e[..., 0], e[..., 1], s[..., 0], s[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    row_x = torch.stack([x, y, one, zero, zero, zero, -sx * x, -sx * y], dim=-1)  # (B, 4, 8)
    row_y = torch.stack([zero, zero, zero, x, y, one, -sy * x, -sy * y], dim=-1)
    a = torch.stack([row_x, row_y], dim=2).reshape(-1, 8, 8)  # rows interleaved x, y per corner
    b = s.reshape(-1, 8, 1)
    return torch.linalg.lstsq(a, b, driver="gels").solution.squeeze(-1).to(torch.float32)


def perspective_grid(coeffs: torch.Tensor, h: int, w: int, device) -> torch.Tensor:
    """Sampling grids ``(B, h, w, 2)`` for perspective coefficients ``(B, 8)``, as torchvision's
    ``_perspective_grid`` builds them."""
    c = coeffs.to(device=device, dtype=torch.float32)
    ones = torch.ones(len(c), 1, dtype=torch.float32, device=device)
    theta1 = c[:, :6].reshape(-1, 2, 3)
    row2 = torch.cat([c[:, 6:8], ones], dim=1)
    theta2 = torch.stack([row2, row2], dim=1)
    base = _base_grid(h, w, torch.linspace(0.5, w - 0.5, steps=w, device=device, dtype=torch.float32),
                      torch.linspace(0.5, h - 0.5, steps=h, device=device, dtype=torch.float32))
    base = base.expand(len(c), -1, -1)
    scaled = theta1.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=device))
    grid = base.bmm(scaled).div_(base.bmm(theta2.transpose(1, 2))).sub_(1.0)
    return grid.view(-1, h, w, 2)


def sample(batch: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` sampled at ``grid`` (one per image): zero outside, rounded to the nearest grey level."""
    out = grid_sample(batch.to(torch.float32), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out.round_().to(batch.dtype)


def _base_grid(h: int, w: int, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    base = torch.empty(1, h, w, 3, dtype=torch.float32, device=xs.device)
    base[..., 0].copy_(xs)
    base[..., 1].copy_(ys.unsqueeze(-1))
    base[..., 2].fill_(1)
    return base.view(1, h * w, 3)
