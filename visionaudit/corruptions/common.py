"""Shared pieces of the corruption kernels: the float/uint8 round trip and the filters several use."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) to float32 in [0, 1], as the reference's ``np.array(x) / 255.``."""
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"corruption kernels take uint8 (B, 3, H, W) images; got {batch.dtype} {tuple(batch.shape)}")
    return batch.float() / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats back to uint8 the way ImageNet-C wrote its files: ``np.uint8(clip(x, 0, 1) * 255)``
    truncates, it does not round."""
    return (x.clamp(0, 1) * 255).to(torch.uint8)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, device=None) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d's kernel (radius ``int(truncate * sigma + 0.5)``), which
    skimage.filters.gaussian uses."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float().to(device)


def separable(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Convolve each channel of (B, C, H, W) with ``kernel`` along H and W. ``mode`` is torch's pad mode:
    'replicate' = scipy 'nearest', 'reflect' = scipy 'mirror'; scipy's 'reflect' is handled by
    :func:`pad_symmetric`."""
    b, c, h, w = x.shape
    r = kernel.numel() // 2
    y = x.reshape(b * c, 1, h, w)
    y = pad(y, (r, r, r, r), mode)
    y = F.conv2d(y, kernel.view(1, 1, 1, -1))
    y = F.conv2d(y, kernel.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def pad(x: torch.Tensor, widths, mode: str) -> torch.Tensor:
    if mode == "symmetric":
        return pad_symmetric(x, widths)
    return F.pad(x, widths, mode=mode)


def pad_symmetric(x: torch.Tensor, widths) -> torch.Tensor:
    """numpy 'symmetric' / scipy.ndimage 'reflect' padding (the edge pixel repeated), any width."""
    left, right, top, bottom = widths
    h, w = x.shape[-2:]
    rows = _symmetric_index(h, top, bottom, x.device)
    cols = _symmetric_index(w, left, right, x.device)
    return x[..., rows, :][..., cols]


def _symmetric_index(n: int, before: int, after: int, device) -> torch.Tensor:
    i = torch.arange(-before, n + after, device=device)
    period = 2 * n
    i = i % period
    return torch.where(i >= n, period - 1 - i, i)


def gaussian_blur(x: torch.Tensor, sigma: float, mode: str = "replicate", truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian on float images (default mode 'nearest' = torch 'replicate')."""
    return separable(x, gaussian_kernel1d(sigma, truncate, x.device).to(x.dtype), mode)


def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b))
