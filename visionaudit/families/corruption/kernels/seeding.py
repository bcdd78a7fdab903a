"""Per-image random draws for the corruption kernels, seeded by (seed, corruption, sample id).

An image gets the same draws whatever batch, subset, shard, worker or device it is in: each image has
its own CPU ``torch.Generator`` (or ``random.Random``), seeded from a stable hash (SHA-256, not Python's
salted ``hash()``), and the numbers are drawn on the CPU and moved to the batch's device afterwards.
"""

from __future__ import annotations

import hashlib
import random
from typing import Callable, Sequence

import torch


def sample_list(sample_ids: Sequence) -> list:
    return sample_ids.tolist() if isinstance(sample_ids, torch.Tensor) else list(sample_ids)


def _key(seed: int, name: str, sample_id) -> str:
    return f"{seed}:{name}:{sample_id}"


def python_rng(seed: int, name: str, sample_id) -> random.Random:
    """For scalar draws (an angle, a crop offset); the same key scheme as visionaudit.families.robustness.transforms."""
    return random.Random(_key(seed, name, sample_id))


def torch_generator(seed: int, name: str, sample_id) -> torch.Generator:
    digest = hashlib.sha256(_key(seed, name, sample_id).encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def draw(sample_ids: Sequence, seed: int, name: str, device, fn: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """Stack ``fn(generator)`` over the images (drawn on the CPU), moved to ``device``."""
    out = torch.stack([fn(torch_generator(seed, name, i)) for i in sample_list(sample_ids)])
    return out.to(device)


def scalars(sample_ids: Sequence, seed: int, name: str, fn: Callable[[random.Random], float]) -> list:
    return [fn(python_rng(seed, name, i)) for i in sample_list(sample_ids)]
