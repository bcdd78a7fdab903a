"""Shards: one run's images split over several jobs by a stable hash of each sample id.

``--audit-shard I/N`` keeps the images whose id hashes to shard I of N (sha256, so every machine,
Python and worker agrees), after ``--audit-samples`` chose the run's images: every audit of a shard sees
the same images, and the N shards together are exactly the unsharded run's images. Families that do not
split by image (weight shares, conversion folds, fixed subsets) run whole in shard 1 only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from visionaudit.data.image_sets import ImageSet

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written on the command line
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def first(self) -> bool:
        return self.index == 1

    def to_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str) -> Shard:
    """``"2/3"`` -> ``Shard(2, 3)``; anything else is a ValueError saying what is expected."""
    m = _SPEC.match(str(text))
    if not m:
        raise ValueError(f"--audit-shard must be I/N (this job's shard I of N, e.g. 2/3), got {text!r}")
    index, count = int(m[1]), int(m[2])
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--audit-shard {text}: I must be between 1 and N (N at least 1)")
    return Shard(index, count)


def shard_of(sample_id: str | int, count: int) -> int:
    """The 1-based shard of ``sample_id`` among ``count``."""
    digest = hashlib.sha256(str(sample_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def positions_in(image_set: ImageSet, shard: Shard) -> list[int]:
    """Positions, in the whole set, of the images in ``shard``."""
    return [i for i, sample_id in enumerate(image_set.sample_ids) if shard_of(sample_id, shard.count) == shard.index]


def select(image_set: ImageSet, shard: Shard) -> ImageSet:
    """The images of ``image_set`` in ``shard``; the name stays the whole set's, as the report names the set."""
    return image_set.select(positions_in(image_set, shard), name=image_set.name)


def shard_section(whole: ImageSet, shard: Shard, whole_fingerprint: str) -> dict[str, Any]:
    """What a partial report says of one image set, for ``visionaudit merge``: which shard, and the whole set
    it is part of (its size, fingerprint, and where each of this shard's images sits in it)."""
    return {**shard.to_dict(), "whole": {"n": len(whole), "fingerprint": whole_fingerprint},
            "positions": positions_in(whole, shard)}
