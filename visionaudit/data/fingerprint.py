"""What a paired comparison with another report must share: the images (sample ids and the bytes of
each file) and the protocol (how random draws are seeded). A model's preprocessing is part of the model,
so the geometry the images are fed at is not in it; the stimulus geometry of shape bias is compared per
model from the entries (visionaudit/families/baseline/pairing.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from visionaudit.data.image_sets import ImageSet

# 1: transforms drawn per image position. 2: drawn per (seed, sample id), so subsets and shards see the same draws.
PROTOCOL_VERSION = 2


@lru_cache(maxsize=None)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    st = path.stat()
    return _file_sha256(path, st.st_size, st.st_mtime_ns)  # cached per process while the file is unchanged


def data_fingerprint(image_set: ImageSet, protocol: int = PROTOCOL_VERSION) -> str:
    """A digest of the sorted sample ids with each file's sha256, and the protocol version."""
    digest = hashlib.sha256(json.dumps({"protocol": protocol}).encode())
    for sample_id, path in sorted(zip(image_set.sample_ids, image_set.paths)):
        digest.update(f"{sample_id}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class SampleSet:
    """One image set of a run as the report describes it (``samples.<role>``): per-image outcomes of every
    condition on it are in the order of ``ids``."""

    role: str  # labelled, cue-conflict, edges, filled-silhouettes, corruption, imagenet-c
    name: str
    ids: tuple[str, ...]
    fingerprint: str
    subset: int | None  # --audit-samples (None: the whole set)
    seed: int
    protocol: int = PROTOCOL_VERSION
    shard: dict[str, Any] | None = None  # in a shard: which one, and the whole set it is part of (visionaudit/data/shards.py)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "n": len(self.ids), "subset": self.subset, "seed": self.seed, "protocol": self.protocol,
               "fingerprint": self.fingerprint, "ids": list(self.ids)}
        return {**out, "shard": self.shard} if self.shard is not None else out

    @classmethod
    def from_dict(cls, role: str, data: dict[str, Any]) -> "SampleSet":
        return cls(role, data["name"], tuple(data["ids"]), data["fingerprint"], data.get("subset"), data["seed"],
                   data["protocol"],
                   data.get("shard"))


def sample_set(role: str, image_set: ImageSet, subset: int | None, seed: int) -> SampleSet:
    return SampleSet(role, image_set.name, image_set.sample_ids, data_fingerprint(image_set), subset, seed)
