"""What the baseline gate compares: each comparison's metric, family, the per-image outcomes it pairs and its kind
(:data:`COMPARED`, fixed; :data:`CORRUPTION_COMPARED`, one per corruption condition a report can hold, and the
corruption summary), and which of them one model's comparison set holds (:func:`comparisons_for`,
:func:`baseline_comparisons`: the corruption conditions depend on the baseline and on the configuration)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from visionaudit.data.image_sets import LABELLED
from visionaudit.families.baseline import corruptions as corr
from visionaudit.families.outcomes import Outcome
from visionaudit.families.robustness.transforms import TRANSFORMS


@dataclass(frozen=True)
class Compared:
    name: str  # the comparison's test id
    family: str
    metric: str  # the family's metric: its direction and the tolerance key
    condition: str | None  # the per-image outcomes it pairs; None: a deterministic metric
    kind: str  # accuracy | balanced | per_class | category | shape_bias | vector | error (a corruption condition) | summary
    test: str = ""  # the audit test that measures it (a family runs several: say which one a report lacks)


COMPARED: dict[str, Compared] = {c.name: c for c in [
    Compared("clean_top1", "accuracy", "clean_top1", "clean", "accuracy", "test_clean_top1"),
    Compared("balanced_accuracy", "accuracy", "balanced_accuracy", "clean", "balanced", "test_clean_top1"),
    Compared("per_class_accuracy", "accuracy", "class_accuracy", "clean", "per_class", "test_clean_top1"),
    *(Compared(f"top1_{t}", "robustness", "top1", t, "accuracy", "test_transform") for t in TRANSFORMS),
    Compared("shape_bias", "shape_bias", "shape_bias", "cue-conflict", "shape_bias", "test_shape_bias"),
    Compared("edges_accuracy", "shape_bias", "edges_accuracy", "edges", "category", "test_shape_only_accuracy"),
    Compared("silhouettes_accuracy", "shape_bias", "silhouettes_accuracy", "filled-silhouettes", "category",
             "test_shape_only_accuracy"),
    Compared("channel_shares", "channel_bias", "shares", None, "vector", "test_functional_shares"),
]}
CLASS_KINDS = ("balanced", "per_class")  # compared on each image's class: a baseline of schema 5 or later
RIGHT_WRONG_KINDS = ("accuracy", "balanced", "per_class", "category", "error")  # paired right/wrong: error consistency

# The corruption family's comparisons: one per condition a report can hold (which ones a run compares depends on
# the configured conditions and on what the baseline holds: :func:`comparisons_for`), and its summary.
CORRUPTION_COMPARED: dict[str, Compared] = {
    **{corr.comparison_name(c, s): Compared(corr.comparison_name(c, s), "corruption", "error", corr.condition_name(c, s),
                                            "error", "test_corruption") for c, s in corr.ALL_CONDITIONS},
    **{k: Compared(k, "corruption", k, None, "summary", "test_mce") for k in corr.SUMMARIES},
}
ALL_COMPARED: dict[str, Compared] = {**COMPARED, **CORRUPTION_COMPARED}


# Comparisons of right/wrong per image, where neither side getting any image right leaves nothing to compare: the
# accuracies, and each corruption condition's error (its bits are right/wrong too: every image wrong on both sides is
# error 1 against 1). Per-class accuracy has min_class_images; the corruption summary is held in
# baseline/__init__.py's _compare_summary (every condition it averages all wrong on both sides).
NOTHING_RIGHT_KINDS = ("accuracy", "balanced", "category", "error")


def nothing_right(c: Compared, old: Outcome, new: Outcome) -> str | None:
    """Why ``c`` cannot be judged when neither release got an image right (0 against 0 is "unchanged" by every test, yet
    no image could be lost: a pass on nothing), or None. One image right on either side is judged."""
    if c.kind not in NOTHING_RIGHT_KINDS or any(_right(c, o).any() for o in (old, new)):
        return None
    return (f"neither release got an image of {c.condition} right (0 of {len(old.values)} in the baseline, 0 of "
            f"{len(new.values)} here): nothing a regression could be measured on; is the model broken (preprocessing, "
            "label map)?")


def _right(c: Compared, o: Outcome) -> np.ndarray:
    """Each image right or wrong: a shape-only decision is right when it names the image's category (its id's folder);
    an accuracy's and a corruption condition's values are the right bits themselves (right = not wrong)."""
    if c.kind == "category":
        return np.asarray(o.values == np.array([i.split("/")[0] for i in o.ids], dtype=object), dtype=bool)
    return np.asarray(o.values, dtype=bool)


def comparisons_for(old: Any, new: Any, extra: Any = ()) -> dict[str, Compared]:
    """What one model's comparison set holds: :data:`COMPARED`, each corruption condition either side holds, the
    corruption summary of either side's label space (when either holds a condition), and ``extra`` names (a run's
    parametrized comparisons: its configured conditions)."""
    names = [corr.comparison_name(*k) for o in (old, new) for k in sorted(corruption_outcomes(o))]
    summaries = [o.corruption_summary for o in (old, new) if o.corruption_summary and corruption_outcomes(o)]
    wanted = set(names) | set(summaries) | set(extra)
    unknown = sorted(n for n in wanted if n not in ALL_COMPARED)
    if unknown:
        raise ValueError(f"no such baseline comparison: {', '.join(unknown)}")
    return {**COMPARED, **{k: c for k, c in CORRUPTION_COMPARED.items() if k in wanted}}


def baseline_comparisons(report: Mapping[str, Any], specs: Any, configured: Any = ()) -> list[str]:
    """A run's comparison names (its tests' ids) against ``report`` for the baseline models ``specs``: every name of
    :data:`COMPARED`; and, when the baseline holds per-image corruption outcomes for them, each condition it holds or
    this run is configured to score (``configured``: (corruption, severity) pairs), then the corruption summary of
    their label space (``mce`` or ``mean_error``). A condition on one side only is compared as absent, with the
    reason (never a pass). A baseline without corruption outcomes adds none: nothing to hold the run to."""
    held = corr.report_conditions(dict(report), list(specs))
    if not held:
        return list(COMPARED)
    order = {k: i for i, k in enumerate(corr.ALL_CONDITIONS)}
    conditions = sorted(set(held) | {(c, int(sv)) for c, sv in configured if (c, int(sv)) in order}, key=order.__getitem__)
    summaries = {corr.report_summary(dict(report), spec) for spec in specs} - {None}
    return [*COMPARED, *(corr.comparison_name(*k) for k in conditions), *(k for k in corr.SUMMARIES if k in summaries)]


def corruption_outcomes(o: Any) -> dict[tuple[str, int], Outcome]:
    """A side's (a ModelOutcomes) corruption conditions: (corruption, severity) -> per-image right/wrong."""
    out = {}
    for condition, outcome in o.outcomes.items():
        parsed = corr.parse_condition(condition) if outcome.role in corr.ROLES else None
        if parsed:
            out[parsed] = outcome
    return out


def data_role(c: Compared) -> str | None:
    """The image set a comparison reads (None: none, a weight statistic)."""
    if c.kind == "summary":  # the corruption conditions: a subset of the labelled images
        return LABELLED
    return None if c.condition is None else c.condition if c.kind in ("shape_bias", "category") else LABELLED


TOLERANCE_KEYS = tuple(dict.fromkeys([c.metric for c in ALL_COMPARED.values()] + list(ALL_COMPARED)))
