"""Judging a gate: every audit hands what it measured to its family's *assessor*, the one function that
records the statistics and ends the gate (returns: passed; raises ``AssertionError``: failed; raises
:class:`NotJudged`: too little data; raises :class:`NotApplicable`: nothing here to judge).

A family names its assessors on its descriptor (``Family.assessors``: test name -> function); an
assessor is ``assessor(record, measured, thresholds, context)``, where ``context`` holds what is not
measured (the model's id, a test parameter). An audit that splits by image (accuracy, robustness, shape
bias) measures :class:`PerImage` arrays (right or wrong, 16-way decisions, labels) and its assessor
computes every statistic from those alone. In a sharded run (``--audit-shard``) the arrays also go into
the partial report under the assessor's stored name ``"<family>.<test name>"``, so that ``visionaudit
merge`` calls the same assessor on the arrays of all shards and gets what an unsharded run gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from visionaudit.errors import ConfigError
from visionaudit.families.outcomes import decode, encode_bits
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import get_family
from visionaudit.files import to_jsonable

# assessor(record, measured, thresholds, context)
Assessor = Callable[[AuditRecord, Any, Mapping[str, Any], Mapping[str, Any]], None]


class NotJudged(Exception):
    """The gate had too little data to be judged (``min_images``); the record says why."""


class NotApplicable(Exception):
    """The gate does not apply here (nothing to hold the model to); the test is skipped with this message."""


@dataclass(frozen=True)
class PerImage:
    """What a test that splits by image measured: per-image ``arrays`` on ``sample_set`` (a ``SampleSet``), and
    ``context``: what the measurement says of itself that its assessor reads beside the test's context (how the
    images were scored, which conditions were not available), stored with that context for a merge."""

    sample_set: Any
    arrays: Mapping[str, np.ndarray]
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arrays", {k: v if isinstance(v, np.ndarray) else np.asarray(v) for k, v in self.arrays.items()})


@dataclass(frozen=True)
class Deferred:
    """What a test measures, handed to its assessor unmeasured: the image count the gate is judged on, and
    ``measure()``, which the assessor calls once that count is enough (too few images measure nothing),
    after recording what must survive a measurement that fails."""

    n_images: int
    measure: Callable[[], Any]


def require_count(record: AuditRecord, thresholds: Mapping[str, Any], n: int, what: str = "images",
                  key: str = "min_images") -> None:
    """The one "too few images" rule: fewer than ``thresholds[key]`` and the gate ends as ``NotJudged``, with
    the count and the minimum, instead of passing or failing on noise."""
    minimum = thresholds[key]
    if n < minimum:
        record.not_judged = f"{n} {what}; this gate needs at least {minimum} ({key} in audit.toml)"
        raise NotJudged(record.not_judged)


def find_assessor(name: str) -> Assessor:
    """The assessor stored as ``"<family>.<test name>"`` (a partial report's), from its family's descriptor."""
    family, _, test = name.partition(".")
    try:
        return get_family(family).assessor(test)
    except (ValueError, ConfigError) as e:
        raise ValueError(f"no assessor named {name!r} ({e}); was the partial report written by another version of "
                         "the suite?") from None


def assess(family: str, test: str, record: AuditRecord, measured: Any, thresholds: Mapping[str, Any],
           context: Mapping[str, Any], keep_for_merge: bool = False) -> None:
    """Judge ``measured`` with ``family``'s assessor of ``test``; with ``keep_for_merge`` (a shard), first put
    its per-image inputs into the record for ``visionaudit merge``."""
    judge = get_family(family).assessor(test)
    if isinstance(measured, PerImage) and measured.context:
        context = {**context, **measured.context}
    if keep_for_merge:
        if not isinstance(measured, PerImage):
            raise TypeError(f"{family}.{test}: only per-image data is kept for a merge, got {type(measured).__name__}")
        sample_set = measured.sample_set  # the part's ids and positions too, whether or not the assessor records outcomes
        record.samples[sample_set.role] = sample_set.to_dict()
        record.shard_data = {"assessor": f"{family}.{test}", "set": sample_set.role, "thresholds": to_jsonable(dict(thresholds)),
                             "context": to_jsonable(dict(context)), "arrays": encode_arrays(measured.arrays)}
    judge(record, measured, thresholds, context)


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
            out[key] = {"encoding": "values", "n": int(values.size),
                        "data": [None if v is None else str(v) for v in values.tolist()]}
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
