"""The images a release lost, named: each side's top-1 class for the images that went right -> wrong in a paired
comparison (``Result.lost_examples``), read from a report's ``outcomes.top1`` (schema 6) or from this run."""

from __future__ import annotations

from typing import Any

import numpy as np

from visionaudit.data.label_space import LabelSpace
from visionaudit.errors import DataError
from visionaudit.families.baseline.statistics import Result, lost_examples


def class_namer(classes: dict[str, Any] | None) -> Any:
    """index -> class name as a run names a model's outputs (``accuracy.class_names``: LabelSpace.label), from a report
    model entry's ``classes``; the output index as text where the report names no classes."""
    try:
        space = LabelSpace.from_dict(classes) if classes else None
    except ValueError:
        space = None
    return (lambda i: str(i)) if space is None else (lambda i: space.label(i) if 0 <= i < len(space.names) else str(i))


def top1_names(report: dict[str, Any], spec: str, entry: dict[str, Any], top1: np.ndarray, n: int) -> np.ndarray:
    """Each image's top-1 class name: its output index named by the report's model entry ``classes``."""
    if len(top1) != n:
        raise DataError(f"{entry['nodeid']}: {len(top1)} per-image top-1 classes for {n} images; is the report intact?")
    name = class_namer(((report.get("models") or {}).get(spec) or {}).get("classes"))
    return np.array([name(int(i)) for i in top1], dtype=object)


def with_lost_examples(r: Result, old: Any, new: Any, c: Any) -> Result:
    """A paired comparison of right/wrong outcomes names up to 24 images it lost, with each side's top-1 class
    (the 16-way decisions on the stimuli; a side without top-1, a report before schema 6: None). ``old``/``new``: the
    two sides' ``ModelOutcomes``; ``c``: the comparison (``Compared``)."""
    if r.missing or r.discordant is None or c.kind not in ("accuracy", "category", "error") or not r.lost_count:
        return r
    a, b = old.outcomes[c.condition], new.outcomes[c.condition]
    if c.kind == "category":
        truth = np.array([i.split("/")[0] for i in b.ids], dtype=object)
        old_values, new_values = a.aligned_to(b.ids), b.values
        right_old, right_new, old_top1, new_top1 = old_values == truth, new_values == truth, old_values, new_values
    else:
        right_old, right_new = a.aligned_to(b.ids), b.values
        old_top1 = old.top1[c.condition].aligned_to(b.ids) if c.condition in old.top1 else None
        new_top1 = new.top1[c.condition].aligned_to(b.ids) if c.condition in new.top1 else None
    r.lost_examples = lost_examples(b.ids, right_old, right_new, b.role, c.condition, old_top1, new_top1)
    return r
