"""Per-image outcomes in the report, compactly: right/wrong as bits, 16-way decisions as bytes, base64.

An entry that measured a condition on an image set carries ``outcomes``: ``{"set": role, "condition":
name, "encoding": "bits" | "categories16", "n": count, "data": base64}``, in the order of the report's
``samples.<role>.ids``. Bits are packed little-endian (about 8 KB of base64 per 50,000 images); a
decision is the index of its category in ``imagenet16.categories()``, 255 for none.

The clean accuracy entry also carries each image's class (schema 5): ``outcomes.labels``, ``{"encoding":
"uint16" | "uint32", "n": count, "data": base64}``, output indices little-endian, named by the entry's ``per_class`` table;
the baseline gate compares balanced and per-class accuracy on them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from visionaudit.data.imagenet16 import categories
from visionaudit.errors import DataError

NO_DECISION = 255


def encode_bits(correct: Sequence[bool] | np.ndarray) -> dict[str, Any]:
    bits = np.asarray(correct, dtype=bool)
    return {"encoding": "bits", "n": int(bits.size),
            "data": base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode()}


def encode_decisions(decisions: Sequence[str | None]) -> dict[str, Any]:
    index = {c: i for i, c in enumerate(categories())}
    codes = bytes(NO_DECISION if d is None else index[d] for d in decisions)
    return {"encoding": "categories16", "n": len(codes), "data": base64.b64encode(codes).decode()}


_LABEL_TYPES = {"uint16": "<u2", "uint32": "<u4"}


def encode_labels(labels: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """Each image's class (its output index), little-endian: 2 bytes each below 65,536 classes (timm's ImageNet-21k
    included: 133 KB of base64 per 50,000 images), else 4."""
    values = np.asarray(labels, dtype=np.int64)
    encoding = "uint16" if values.size == 0 or values.max() < 1 << 16 else "uint32"
    packed = values.astype(_LABEL_TYPES[encoding]).tobytes()
    return {"encoding": encoding, "n": int(values.size), "data": base64.b64encode(packed).decode()}


def _unpacked(entry: dict[str, Any], what: str) -> tuple[bytes, int, str]:
    """The bytes, image count and encoding of a packed per-image entry (outcomes or classes)."""
    try:
        return base64.b64decode(entry["data"], validate=True), int(entry["n"]), entry["encoding"]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{what} are not readable ({e}); is the report intact?") from None


def decode_labels(labels: dict[str, Any]) -> np.ndarray:
    """The output indices of :func:`encode_labels`."""
    raw, n, encoding = _unpacked(labels, "per-image classes")
    dtype = _LABEL_TYPES.get(encoding)
    if dtype is None or len(raw) != np.dtype(dtype).itemsize * n:
        raise DataError(f"per-image classes: {len(raw)} bytes of {encoding!r} for {n} images; is the report intact?")
    return np.frombuffer(raw, dtype=dtype).astype(np.int64)


def decode(outcome: dict[str, Any]) -> np.ndarray:
    """Bits as a bool array; decisions as an object array of category names (None for none)."""
    raw, n, encoding = _unpacked(outcome, f"per-image outcomes {outcome.get('condition', '?')!r}")
    if encoding == "bits":
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")
        if bits.size < n:
            raise DataError(f"per-image outcomes {outcome.get('condition')!r}: {bits.size} bits for {n} images")
        return bits[:n].astype(bool)
    if encoding == "categories16":
        names = categories()
        if len(raw) != n or any(b >= len(names) and b != NO_DECISION for b in raw):
            raise DataError(f"per-image decisions {outcome.get('condition')!r} do not decode to {n} 16-class decisions")
        return np.array([None if b == NO_DECISION else names[b] for b in raw], dtype=object)
    raise DataError(f"per-image outcomes {outcome.get('condition')!r}: unknown encoding {encoding!r}")


@dataclass(frozen=True)
class Outcome:
    """One condition's per-image values on one image set, with the set's sample ids."""

    role: str
    condition: str
    ids: tuple[str, ...]
    values: np.ndarray  # bool (right/wrong) or category names

    def aligned_to(self, ids: Sequence[str]) -> np.ndarray:
        """The values in the order of ``ids`` (which must be the same images)."""
        if tuple(ids) == self.ids:
            return self.values
        where = {s: i for i, s in enumerate(self.ids)}
        missing = [s for s in ids if s not in where]
        if missing or len(ids) != len(self.ids):
            raise DataError(f"{self.condition}: the two runs did not score the same images ({len(missing)} of {len(ids)} "
                            "not in the other)")
        return self.values[[where[s] for s in ids]]
