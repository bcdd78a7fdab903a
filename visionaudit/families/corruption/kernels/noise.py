"""Noise corruptions: gaussian_noise, shot_noise, impulse_noise, speckle_noise.

Each public kernel draws its noise per image (see seeding) and hands it to a pure function of
(image, draws); tests hand the reference's own draws to the pure functions.
"""

from __future__ import annotations

import torch

from visionaudit.families.corruption.kernels import seeding
from visionaudit.families.corruption.kernels.common import to_float, to_uint8

GAUSSIAN = [0.08, 0.12, 0.18, 0.26, 0.38]
SHOT = [60, 25, 12, 5, 3]
IMPULSE = [0.03, 0.06, 0.09, 0.17, 0.27]
SPECKLE = [0.15, 0.2, 0.35, 0.45, 0.6]


def _standard_normal(batch, sample_ids, seed, name):
    shape = tuple(batch.shape[1:])
    return seeding.draw(sample_ids, seed, name, batch.device, lambda g: torch.randn(shape, generator=g))


def apply_gaussian_noise(x: torch.Tensor, unit_noise: torch.Tensor, severity: int) -> torch.Tensor:
    """``clip(x + N(0, c))`` with the standard-normal draws given."""
    return to_uint8(x + unit_noise * GAUSSIAN[severity - 1])


def gaussian_noise(batch, sample_ids, seed, severity):
    return apply_gaussian_noise(to_float(batch), _standard_normal(batch, sample_ids, seed, "gaussian_noise"), severity)


def apply_speckle_noise(x: torch.Tensor, unit_noise: torch.Tensor, severity: int) -> torch.Tensor:
    return to_uint8(x + x * unit_noise * SPECKLE[severity - 1])


def speckle_noise(batch, sample_ids, seed, severity):
    return apply_speckle_noise(to_float(batch), _standard_normal(batch, sample_ids, seed, "speckle_noise"), severity)


def apply_shot_noise(counts: torch.Tensor, severity: int) -> torch.Tensor:
    """``clip(Poisson(x c) / c)`` given the Poisson counts."""
    return to_uint8(counts / SHOT[severity - 1])


def shot_noise(batch, sample_ids, seed, severity):
    c = SHOT[severity - 1]
    rates = (to_float(batch) * c).cpu()
    ids = seeding.sample_list(sample_ids)
    # torch.poisson takes the rates, so the draws are per image on the CPU with that image's generator.
    counts = torch.stack([torch.poisson(rates[k], generator=seeding.torch_generator(seed, "shot_noise", i))
                          for k, i in enumerate(ids)])
    return apply_shot_noise(counts.to(batch.device), severity)


def apply_impulse_noise(x: torch.Tensor, flip_u: torch.Tensor, salt_u: torch.Tensor, severity: int) -> torch.Tensor:
    """skimage.util.random_noise(mode='s&p', amount=c): each value (per channel) is replaced with
    probability c, by 1 or 0 with even odds; given uniforms decide which and how."""
    flipped = flip_u <= IMPULSE[severity - 1]  # skimage's _bernoulli: random() <= p
    salted = salt_u <= 0.5
    out = torch.where(flipped & salted, torch.ones_like(x), x)
    out = torch.where(flipped & ~salted, torch.zeros_like(x), out)
    return to_uint8(out)


def impulse_noise(batch, sample_ids, seed, severity):
    shape = (2,) + tuple(batch.shape[1:])
    u = seeding.draw(sample_ids, seed, "impulse_noise", batch.device, lambda g: torch.rand(shape, generator=g))
    return apply_impulse_noise(to_float(batch), u[:, 0], u[:, 1], severity)
