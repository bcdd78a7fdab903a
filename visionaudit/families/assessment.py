"""Judging an audit from its per-image data: the one function a run and a merge of shards both call.

An audit that splits by image (accuracy, robustness, shape bias) measures per-image arrays (right or
wrong, 16-way decisions, labels) and hands them to its family's *assessor*: a function that computes every
statistic from those arrays alone, records it, and ends the gate (returns: passed; raises
``AssertionError``: failed; raises :class:`NotJudged`: too little data). In a sharded run
(``--audit-shard``) the arrays also go into the partial report, so that ``visionaudit merge`` can call the
same assessor on the arrays of all shards and get what an unsharded run gets.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from visionaudit.families.outcomes import decode, encode_bits
from visionaudit.families.records import AuditRecord
from visionaudit.files import to_jsonable

# assessor(record, sample_set, arrays, thresholds, context): context holds what is not per image
# (the model's id and class count, the set's name, a test parameter), the same in every shard.
Assessor = Callable[[AuditRecord, Any, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], None]
_ASSESSORS: dict[str, Assessor] = {}


class NotJudged(Exception):
    """The gate had too little data to be judged (``min_images``); the record says why."""


def assessor(name: str) -> Callable[[Assessor], Assessor]:
    """Register an assessor under ``name`` (``family.test``), for a merge to find it."""
    def register(fn: Assessor) -> Assessor:
        _ASSESSORS[name] = fn
        return fn
    return register


def get_assessor(name: str) -> Assessor:
    from visionaudit.families.registry import families

    families()  # the built-in families' modules register their assessors on import
    try:
        return _ASSESSORS[name]
    except KeyError:
        raise ValueError(f"no assessor named {name!r} (known: {', '.join(sorted(_ASSESSORS))}); "
                         "was the partial report written by another version of the suite?") from None


def require_count(record: AuditRecord, thresholds: Mapping[str, Any], n: int, what: str = "images",
                  key: str = "min_images") -> None:
    """Too few samples for the gate: ``NotJudged`` with the count and the minimum, instead of gating on noise."""
    minimum = thresholds[key]
    if n < minimum:
        record.not_judged = f"{n} {what}; this gate needs at least {minimum} ({key} in audit.toml)"
        raise NotJudged(record.not_judged)


def assess(name: str, record: AuditRecord, sample_set: Any, arrays: Mapping[str, Any], thresholds: Mapping[str, Any],
           context: Mapping[str, Any], keep_for_merge: bool = False) -> None:
    """Call assessor ``name``; with ``keep_for_merge`` (a shard) first put its inputs into the record."""
    arrays = {k: np.asarray(v) if not isinstance(v, np.ndarray) else v for k, v in arrays.items()}
    if keep_for_merge:  # the part's ids and positions too, whether or not the assessor records outcomes
        record.samples[sample_set.role] = sample_set.to_dict()
        record.shard_data = {"assessor": name, "set": sample_set.role, "thresholds": to_jsonable(dict(thresholds)),
                             "context": to_jsonable(dict(context)), "arrays": encode_arrays(arrays)}
    get_assessor(name)(record, sample_set, arrays, thresholds, context)


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Bool arrays as packed bits (visionaudit/families/outcomes.py); integers and strings as JSON lists."""
    out: dict[str, Any] = {}
    for key, values in arrays.items():
        values = np.asarray(values)
        if values.dtype == bool:
            out[key] = encode_bits(values)
        elif values.dtype.kind in "iu":
            out[key] = {"encoding": "ints", "n": int(values.size), "data": values.astype(np.int64).tolist()}
        else:
            out[key] = {"encoding": "values", "n": int(values.size), "data": [None if v is None else str(v) for v in values.tolist()]}
    return out


def decode_arrays(encoded: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, item in encoded.items():
        if item["encoding"] == "bits":
            out[key] = decode({**item, "condition": key})
        elif item["encoding"] == "ints":
            out[key] = np.asarray(item["data"], dtype=np.int64)
        else:
            out[key] = np.array(item["data"], dtype=object)
        if out[key].size != item["n"]:
            raise ValueError(f"per-image array {key!r}: {out[key].size} values where {item['n']} were written")
    return out
