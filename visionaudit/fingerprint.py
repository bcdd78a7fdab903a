"""The data fingerprint: what a paired comparison with another report must share. A digest of the
sorted sample ids (paths relative to the set's root) and each file's sha256, the geometry the images were
fed at (the stimulus geometry for shape bias) and the protocol version (how random draws are seeded)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .datasets import ImageSet
from .preprocessing import Geometry

PROTOCOL_VERSION = 1  # bump when the same images and seed would give other draws or decisions


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


def data_fingerprint(image_set: ImageSet, geometry: Geometry) -> str:
    ids = sorted((str(p.relative_to(image_set.root)) if p.is_relative_to(image_set.root) else str(p), p) for p in image_set.paths)
    digest = hashlib.sha256()
    digest.update(json.dumps({"geometry": geometry.to_dict(), "protocol": PROTOCOL_VERSION}, sort_keys=True).encode())
    for sample_id, path in ids:
        digest.update(f"{sample_id}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()
