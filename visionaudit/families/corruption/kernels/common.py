"""Shared pieces of the corruption kernels: the float/uint8 round trip and the filters several use."""

from __future__ import annotations

import functools

import torch


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) to float32 in [0, 1], as the reference's ``np.array(x) / 255.``."""
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
    """Convolve each channel of (..., H, W) with the symmetric 1-D ``kernel`` along H and W, the
    border folded in as ``mode`` says: 'replicate' (scipy 'nearest'), 'reflect' (scipy 'mirror',
    OpenCV reflect-101) or 'symmetric' (scipy 'reflect'). Done as two matrix products with the
    (size, size) operator of the padded convolution, which costs the same for any kernel length
    (elastic_transform's sigma of 170 px means 1 025 taps)."""
    mh = _operator(x.shape[-2], tuple(kernel.double().cpu().tolist()), mode).to(x.device, x.dtype)
    mw = mh if x.shape[-1] == x.shape[-2] else _operator(x.shape[-1], tuple(kernel.double().cpu().tolist()),
                                                         mode).to(x.device, x.dtype)
    return mh @ x @ mw.T


@functools.lru_cache(maxsize=64)
def _operator(n: int, kernel: tuple, mode: str) -> torch.Tensor:
    k = torch.tensor(kernel, dtype=torch.float64)
    r = len(kernel) // 2
    rows = torch.arange(n).repeat_interleave(len(kernel))
    cols = fold(torch.arange(n)[:, None] + torch.arange(-r, r + 1)[None, :], n, mode).reshape(-1)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.index_put_((rows, cols), k.repeat(n), accumulate=True)
    return m


def fold(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map indices outside [0, n) back inside by the border rule ``mode`` (see :func:`separable`)."""
    if mode == "replicate":
        return i.clamp(0, n - 1)
    if mode == "reflect":
        period = 2 * n - 2
        i = i.abs() % period
        return torch.where(i >= n, period - i, i)
    if mode == "symmetric":
        period = 2 * n
        i = i % period
        return torch.where(i >= n, period - 1 - i, i)
    raise ValueError(f"unknown border mode {mode!r}")


def gaussian_blur(x: torch.Tensor, sigma: float, mode: str = "replicate", truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian on float images (default mode 'nearest' = torch 'replicate')."""
    return separable(x, gaussian_kernel1d(sigma, truncate, x.device).to(x.dtype), mode)
