"""Paired comparison of a model with the previous release, image by image: statistics and verdicts.

Accuracies (clean, under each transform, 16-way on shape-only stimuli) by exact McNemar on the paired
right/wrong bits; balanced accuracy by a sign-flip test on the images whose outcome changed, each weighing
1/(classes x its class's images) (with equal weights: exact McNemar), its interval by a paired bootstrap within
each class when every class has enough images; per-class accuracy by exact McNemar per class with Holm over the
classes; shape bias by a paired permutation test swapping the two releases' decisions per cue-conflict image, its
interval by a paired bootstrap; deterministic metrics (channel shares) by tolerance alone. Holm's correction runs
over one model's p-values. A change is a ``regression`` (the gate fails) when it goes the bad way by more than its
tolerance AND its Holm-adjusted p is below alpha; a ``warning`` when only one of the two holds; an
``improvement`` when it goes the good way by more than the tolerance or significantly; else ``unchanged``. Reports
that cannot be paired can still be compared ``unpaired``: two-proportion z-tests on the counts, said in every result.

Per-class accuracy is one comparison of the model's set: its p-value is the smallest Holm-adjusted p over the
classes (a test of "no class changed"), adjusted again with the model's others. A class's adjusted p is its Holm
p over the classes times the Holm factor the comparison had at its step among the model's comparisons (capped
at 1, never below the comparison's Holm p), so alpha is spent once. A class is significantly worse when that p
is below alpha; the comparison is a regression when a significantly worse class also fell beyond its tolerance, a
warning when classes are significantly worse within it. A class's fall beyond the tolerance without significance is
counted, not warned of: a class has few images, and such falls come and go between any two releases.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from visionaudit import stats
from visionaudit.data.image_sets import parse_cue_name
from visionaudit.families.baseline.resampling import (  # noqa: F401  (re-exported)
    SIGN_FLIP_EXACT,
    p_resamples_for,
    sign_flip_p,
    swap_p,
)
from visionaudit.formatting import first_few

VERDICTS = ("regression", "warning", "improvement", "unchanged", "not_compared")
LOST_SHOWN = 20  # sample ids listed per comparison (the count is always given)
_WNID = re.compile(r"(?:^|/)(n\d{8})(?:_|/)")


@dataclass(frozen=True)
class Tolerance:
    absolute: float
    relative: float | None = None  # of the baseline value; when given, a regression must exceed both (MLflow's rule)

    def exceeded_by(self, change: float, baseline: float) -> bool:
        if not math.isfinite(change) or change <= self.absolute:
            return False
        return self.relative is None or change > self.relative * abs(baseline)


@dataclass
class Result:
    """One compared metric of one model."""

    name: str  # the comparison: clean_top1, top1_rotation, shape_bias, edges_accuracy, ...
    metric: str
    higher_is_better: bool | None
    baseline: Any = None
    candidate: Any = None
    delta: Any = None  # candidate - baseline (a list for vectors)
    ci: tuple[float, float] | None = None  # 95 % interval of delta
    p_value: float | None = None
    p_value_holm: float | None = None
    test: str = ""
    n: int = 0
    tolerance: Tolerance | None = None
    verdict: str = "not_compared"
    reason: str = ""  # what the verdict rests on, or why it was not compared
    missing: str = ""  # set when it cannot be compared (no outcomes on one side, no decisions, not a number)
    missing_side: str = ""  # "baseline" (it never measured this), "candidate" (this run could not), or "setup"
    statistical: bool = True  # False: a deterministic metric judged by its tolerance alone
    discordant: tuple[int, int] | None = None  # (right -> wrong, wrong -> right)
    lost: list[str] = field(default_factory=list)  # the first sample ids that went from right to wrong
    lost_count: int = 0
    classes_lost: list[tuple[str, int]] = field(default_factory=list)  # classes with the most net losses
    per_class: dict[str, Any] | None = None  # the per-class comparison's classes (see per_class_change)
    class_rows: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # every compared class (not reported)
    # observed, expected, kappa, kappa_ci, n (and below: the bound kappa fell below): visionaudit/families/baseline/consistency.py
    error_consistency: dict[str, Any] | None = None
    # Up to LOST_EXAMPLES images that went right -> wrong, with each side's top-1 class (see lost_examples).
    lost_examples: list[dict[str, Any]] = field(default_factory=list)
    # Resamples behind a bootstrap or Monte Carlo p-value (None: an exact test), enough that its floor
    # 2 / (p_resamples + 1) lies below Holm's first step alpha / m (see p_resamples_for).
    p_resamples: int | None = None

    @property
    def bad_change(self) -> float:
        """How far the metric moved the bad way (negative: the good way); for no direction, the largest |delta|."""
        if self.higher_is_better is None:
            return float(np.max(np.abs(self.delta)))
        return -self.delta if self.higher_is_better else self.delta

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("name", "metric", "higher_is_better", "baseline", "candidate", "delta", "ci",
                                             "p_value", "p_value_holm", "test", "n", "verdict", "reason", "discordant",
                                             "lost_count", "lost", "classes_lost", "missing_side", "lost_examples",
                                             "p_resamples")}
        if self.per_class is not None:
            out["per_class"] = self.per_class
        out["error_consistency"] = self.error_consistency
        tolerance = self.tolerance  # its two keys named: a field added to Tolerance is not a report schema change
        out["tolerance"] = None if tolerance is None else {"absolute": tolerance.absolute, "relative": tolerance.relative}
        return out


LOST_EXAMPLES = 24  # right -> wrong images the page shows per comparison (with their two top-1 classes)


def lost_examples(ids: Sequence[str], old: np.ndarray, new: np.ndarray, role: str, condition: str,
                  old_top1: Sequence[Any] | None, new_top1: Sequence[Any] | None,
                  limit: int = LOST_EXAMPLES) -> list[dict[str, Any]]:
    """The first ``limit`` images (in ``ids`` order) right in the baseline (``old``) and wrong in the candidate (``new``),
    each ``{"id", "set", "condition", "baseline_top1", "candidate_top1"}``: the class names each side predicted
    (``old_top1``/``new_top1``, aligned to ``ids``), None for a side that did not record them (a report before
    schema 6)."""
    lost = np.flatnonzero(np.asarray(old, dtype=bool) & ~np.asarray(new, dtype=bool))[:limit]
    name = lambda top1, k: None if top1 is None or top1[k] is None else str(top1[k])
    return [{"id": ids[k], "set": role, "condition": condition, "baseline_top1": name(old_top1, k),
             "candidate_top1": name(new_top1, k)} for k in lost.tolist()]


def class_of(sample_id: str) -> str:
    """The class a sample id belongs to: its WNID (flat ``n01440764_x.JPEG`` or a WNID folder), else its folder."""
    m = _WNID.search(sample_id)
    return m.group(1) if m else sample_id.split("/")[0]


def _losses(ids: Sequence[str], old: np.ndarray, new: np.ndarray,
            classes: Sequence[str] | None = None) -> tuple[list[str], int, list[tuple[str, int]]]:
    lost = [s for s, a, b in zip(ids, old, new) if a and not b]
    net: Counter = Counter()
    for k, (s, a, b) in enumerate(zip(ids, old, new)):
        if a != b:
            net[class_of(s) if classes is None else str(classes[k])] += 1 if a else -1
    worst = [(c, k) for c, k in net.most_common() if k > 0][:5]
    return lost[:LOST_SHOWN], len(lost), worst


def accuracy_change(result: Result, ids: Sequence[str], old: np.ndarray, new: np.ndarray, resamples: int, seed: int) -> Result:
    """Paired accuracies: exact McNemar on the discordant pairs, a paired bootstrap interval on the change."""
    old, new = np.asarray(old, dtype=bool), np.asarray(new, dtype=bool)
    b, c = int((old & ~new).sum()), int((~old & new).sum())
    lo, hi = stats.paired_bootstrap_ci(new, old, resamples=resamples, seed=seed)  # of mean(new - old)
    result.baseline, result.candidate = float(old.mean()), float(new.mean())
    result.delta, result.ci, result.n = result.candidate - result.baseline, (lo, hi), int(old.size)
    result.p_value, result.test, result.discordant = stats.mcnemar_exact(b, c), "exact McNemar (paired)", (b, c)
    result.lost, result.lost_count, result.classes_lost = _losses(ids, old, new)
    return result


def _class_groups(classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Image positions by class, classes in sorted order (a fixed order: the bootstrap's draws depend on it)."""
    classes = np.asarray(classes, dtype=object)
    return {str(c): np.flatnonzero(classes == c) for c in sorted(set(classes.tolist()), key=str)}


MIN_CLASS_BOOTSTRAP = 5  # paired images every class needs for the balanced-accuracy bootstrap interval
def balanced_accuracy_change(result: Result, ids: Sequence[str], classes: Sequence[str], old: np.ndarray, new: np.ndarray,
                             resamples: int, seed: int, p_resamples: int | None = None) -> Result:
    """Paired balanced accuracy (the mean of the per-class accuracies over the K classes with images): the change;
    p from a sign-flip test on the images whose outcome changed, each weighing 1 / (K x its class's images) (equal
    weights: exact McNemar); a 95 % percentile interval from a bootstrap that resamples image pairs within each
    class (each class keeps its count, so its weight) when every class has ``MIN_CLASS_BOOTSTRAP`` paired images,
    else no interval (a class of one image has no spread to resample: the interval would collapse to the change)."""
    old, new = np.asarray(old, dtype=bool), np.asarray(new, dtype=bool)
    groups = _class_groups(classes)
    k = len(groups)
    result.baseline = float(np.mean([old[g].mean() for g in groups.values()]))
    result.candidate = float(np.mean([new[g].mean() for g in groups.values()]))
    result.delta, result.n = result.candidate - result.baseline, int(old.size)
    result.discordant = (int((old & ~new).sum()), int((~old & new).sum()))
    result.lost, result.lost_count, result.classes_lost = _losses(ids, old, new, classes)
    weights, signs = [], []
    for g in groups.values():
        d = new[g].astype(np.int8) - old[g].astype(np.int8)
        changed = d[d != 0]
        weights.extend([1.0 / (k * g.size)] * changed.size)
        signs.extend(changed.tolist())
    weights_arr, signs_arr = np.asarray(weights), np.asarray(signs, dtype=np.float64)
    p_resamples = max(resamples, p_resamples or 0)
    result.p_value = sign_flip_p(weights_arr, signs_arr, p_resamples, seed)
    how = "exact" if weights_arr.size <= SIGN_FLIP_EXACT else f"{p_resamples} random sign patterns"
    result.p_resamples = None if weights_arr.size <= SIGN_FLIP_EXACT else p_resamples
    result.test = (f"sign-flip test on the {weights_arr.size} changed images, each weighing 1/(classes x its class's "
                   f"images), {how}, over {k} classes")
    small = sum(1 for g in groups.values() if g.size < MIN_CLASS_BOOTSTRAP)
    if small:
        result.ci = None
        result.test += (f"; no interval: {small} of {k} classes have fewer than {MIN_CLASS_BOOTSTRAP} paired images "
                        "(a within-class bootstrap has no spread there)")
        return result
    rng = np.random.default_rng(seed)
    changes = np.zeros(resamples)
    for g in groups.values():
        d = new[g].astype(np.float64) - old[g].astype(np.float64)
        if not d.any():
            continue  # a class where no image changed adds 0 to every resample
        for start in range(0, resamples, 250):  # chunks keep memory bounded
            stop = min(resamples, start + 250)
            changes[start:stop] += d[rng.integers(0, d.size, size=(stop - start, d.size))].mean(axis=1)
    changes /= k
    lo, hi = np.percentile(changes, [2.5, 97.5])
    result.ci = (float(lo), float(hi))
    result.test += "; interval: paired bootstrap resampled within each class"
    return result


def per_class_change(result: Result, classes: Sequence[str], old: np.ndarray, new: np.ndarray, min_images: int) -> Result:
    """Each class with at least ``min_images`` paired images: its accuracies, discordant pairs and exact McNemar p,
    Holm-adjusted over those classes; the others are named as not compared, with their count. The comparison's
    p-value is the smallest adjusted p (judged with the model's other comparisons; :func:`judge` then names the
    classes significantly worse)."""
    old, new = np.asarray(old, dtype=bool), np.asarray(new, dtype=bool)
    rows, few = {}, {}
    for name, g in _class_groups(classes).items():
        if g.size < min_images:
            few[name] = int(g.size)
            continue
        b, c = int((old[g] & ~new[g]).sum()), int((~old[g] & new[g]).sum())
        rows[name] = {"class": name, "n": int(g.size), "baseline": float(old[g].mean()), "candidate": float(new[g].mean()),
                      "delta": float(new[g].mean() - old[g].mean()), "discordant": [b, c], "p_value": stats.mcnemar_exact(b, c)}
    for name, (p, _) in stats.holm({n: r["p_value"] for n, r in rows.items()}).items():
        rows[name]["p_value_classes"] = p  # Holm over the classes
    result.test = f"exact McNemar per class, Holm over the {len(rows)} classes with {min_images} or more paired images"
    result.n = sum(r["n"] for r in rows.values())
    result.per_class = {"min_images": min_images, "compared": len(rows), "worse": [], "better": [],
                        "not_compared": {"count": len(few), "classes": dict(sorted(few.items(), key=lambda kv: kv[::-1])[:20])}}
    result.class_rows = rows  # judged in judge(), after Holm over the model's comparisons
    if not rows:
        result.missing = result.reason = (
            f"no class has {min_images} paired images or more (min_class_images): {len(few)} classes not compared, "
            + first_few([f"{n} ({k})" for n, k in result.per_class["not_compared"]["classes"].items()], 5, ", ", len(few)))
        result.missing_side = "setup"
        return result
    shown = min(rows.values(), key=lambda r: (r["p_value_classes"], r["delta"], r["class"]))
    result.baseline, result.candidate, result.delta = shown["baseline"], shown["candidate"], shown["delta"]
    result.p_value = min(r["p_value_classes"] for r in rows.values())
    return result


def shape_bias_hits(ids: Sequence[str], decisions: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per conflicting cue-conflict image: (shape hit, texture hit); images whose cues agree are dropped."""
    shape_hits, texture_hits = [], []
    for sample_id, decision in zip(ids, decisions):
        cues = parse_cue_name(sample_id.rsplit("/", 1)[-1])
        if cues is None or cues[0] == cues[1]:
            continue
        shape_hits.append(decision == cues[0])
        texture_hits.append(decision == cues[1])
    return np.array(shape_hits, dtype=bool), np.array(texture_hits, dtype=bool)


def _bias(s: np.ndarray, t: np.ndarray, axis: int | None = None) -> Any:
    hits = s.sum(axis=axis) + t.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s.sum(axis=axis) / hits


def shape_bias_change(result: Result, ids: Sequence[str], old: Sequence, new: Sequence, resamples: int, seed: int,
                      p_resamples: int | None = None) -> Result:
    """Shape bias, paired over the conflicting images: p from a paired permutation test (:func:`swap_p`) swapping the
    two releases' decisions per image over the k images whose shape or texture hit changed, exact up to
    ``SIGN_FLIP_EXACT``, else over ``p_resamples`` (at least ``resamples``) random patterns; floor 2 / 2^k. The 95 %
    interval: a paired bootstrap over images (``resamples`` draws), approximate when few images changed."""
    (s0, t0), (s1, t1) = shape_bias_hits(ids, old), shape_bias_hits(ids, new)
    result.baseline, result.candidate = float(_bias(s0, t0)), float(_bias(s1, t1))
    result.delta, result.n = result.candidate - result.baseline, int(s0.size)
    rng, changes = np.random.default_rng(seed), []
    for start in range(0, resamples, 250):  # chunks keep memory bounded
        idx = rng.integers(0, s0.size, size=(min(250, resamples - start), s0.size))
        changes.append(_bias(s1[idx], t1[idx], axis=1) - _bias(s0[idx], t0[idx], axis=1))
    d = np.concatenate(changes)
    d = d[np.isfinite(d)]
    if d.size == 0 or not math.isfinite(result.delta):
        result.missing = result.reason = "no shape or texture decisions to compare"
        result.missing_side = "setup"
        return result
    lo, hi = np.percentile(d, [2.5, 97.5])
    result.ci = (float(lo), float(hi))
    changed = (s0 != s1) | (t0 != t1)
    # A side's hits: the unchanged images' (the same on both) plus, per changed image, its own or the other side's.
    rest_s, rest_t = float(s0[~changed].sum()), float(t0[~changed].sum())
    a_s, a_t, b_s, b_t = (x[changed].astype(np.float64) for x in (s0, t0, s1, t1))

    def change(swapped: np.ndarray) -> np.ndarray:
        m = swapped.astype(np.float64)
        new_s, new_t = rest_s + b_s.sum() + m @ (a_s - b_s), rest_t + b_t.sum() + m @ (a_t - b_t)
        old_s, old_t = rest_s + a_s.sum() + m @ (b_s - a_s), rest_t + a_t.sum() + m @ (b_t - a_t)
        with np.errstate(invalid="ignore", divide="ignore"):
            return new_s / (new_s + new_t) - old_s / (old_s + old_t)

    k, total = int(changed.sum()), max(resamples, p_resamples or 0)
    result.p_value, result.p_resamples = swap_p(change, k, total, seed), None if k <= SIGN_FLIP_EXACT else total
    how = f"exact over the {2 ** k} swap patterns" if k <= SIGN_FLIP_EXACT else f"{total} random swap patterns"
    result.test = (f"paired permutation test swapping the two releases' decisions per image, over the {k} images whose "
                   f"shape or texture hit changed, {how}; interval: paired bootstrap over images ({resamples} resamples)")
    return result


def unpaired_change(result: Result, old: tuple[int, int], new: tuple[int, int]) -> Result:
    """Two proportions (hits, n) from different image sets: pooled two-proportion z-test, Wald interval."""
    (k0, n0), (k1, n1) = old, new
    result.baseline, result.candidate = k0 / n0 if n0 else math.nan, k1 / n1 if n1 else math.nan
    result.delta, result.n = result.candidate - result.baseline, n1
    result.test = "two-proportion z-test (unpaired: the reports did not score the same images)"
    pooled = (k0 + k1) / (n0 + n1) if n0 + n1 else math.nan
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1)) if n0 and n1 else math.nan
    # scipy imported here, not with the module: the descriptor is read on the xdist controller, which compares nothing
    from scipy import stats as sps

    result.p_value = 1.0 if se0 == 0 else float(2 * sps.norm.sf(abs(result.delta) / se0)) if se0 == se0 else math.nan
    se = math.sqrt(sum(p * (1 - p) / n for p, n in ((result.baseline, n0), (result.candidate, n1)))) if n0 and n1 else math.nan
    result.ci = (result.delta - 1.96 * se, result.delta + 1.96 * se)
    return result


def vector_change(result: Result, old: Sequence[float], new: Sequence[float]) -> Result:
    """A deterministic vector (channel shares): the change per component, judged by tolerance alone."""
    result.test, result.statistical = "tolerance (deterministic: no sampling noise)", False
    as_float = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan  # noqa: E731
    result.baseline, result.candidate = [as_float(v) for v in old], [as_float(v) for v in new]
    if len(old) != len(new):
        result.missing, result.missing_side = f"{len(old)} values in the baseline, {len(new)} here", "setup"
        result.reason = result.missing
        return result
    result.delta = [b - a for a, b in zip(result.baseline, result.candidate)]
    result.n = len(result.delta)
    return result


def judge(results: dict[str, Result], alpha: float) -> dict[str, Result]:
    """Holm over the results that have a p-value, then each result's verdict (see the module docstring)."""
    for r in results.values():
        if r.missing or r.delta is None:
            continue
        finite = all(math.isfinite(v) for v in (r.delta if isinstance(r.delta, list) else [r.delta]))
        if not finite or (r.statistical and not (isinstance(r.p_value, float | int) and math.isfinite(r.p_value))):
            r.missing = r.reason = "the change or its p-value is not a finite number (no images on one side?)"
            r.missing_side = "setup"
    compared = {k: r for k, r in results.items() if r.delta is not None and not r.missing}
    with_p = {k: r.p_value for k, r in compared.items() if r.statistical}
    for name, (p, _) in stats.holm(with_p, alpha).items():
        results[name].p_value_holm = p
    order = sorted(with_p, key=lambda k: (with_p[k], k))  # Holm's step order (stats.holm's)
    for r in compared.values():
        factor = len(order) - order.index(r.name) if r.name in order else 1
        r.verdict, r.reason = _class_verdict(r, alpha, factor) if r.per_class is not None else _verdict(r, alpha)
    return results


def _classes_text(rows: list[dict[str, Any]]) -> str:
    """The first ten classes, each with its change and its evidence, and how many more."""
    return first_few([f"{r['class']} {r['baseline']:.3f} -> {r['candidate']:.3f} ({r['delta']:+.3f}, {r['discordant'][0]} lost, "
                      f"{r['discordant'][1]} won of {r['n']}, Holm p {r['p_value_holm']:.3g})" for r in rows], 10, ", ")


def _class_verdict(r: Result, alpha: float, factor: int) -> tuple[str, str]:
    """The per-class comparison (module docstring): each class's adjusted p is its Holm p over the classes times
    ``factor``, the Holm multiplier the comparison had at its step among the model's comparisons (capped at 1),
    and never below the comparison's own Holm p (the step-down stops where an earlier step did not reject). Holm
    over the classes then runs at alpha / factor, the share of alpha the comparison was given: alpha is spent once."""
    rows = r.class_rows
    tol = r.tolerance or Tolerance(0.0)
    sign = 1.0 if r.higher_is_better is not False else -1.0
    for row in rows.values():
        row["p_value_holm"] = max(min(1.0, factor * row["p_value_classes"]), r.p_value_holm)
        row["beyond_tolerance"] = tol.exceeded_by(-sign * row["delta"], row["baseline"])
    worse = sorted((row for row in rows.values() if sign * row["delta"] < 0 and row["p_value_holm"] < alpha),
                   key=lambda row: (sign * row["delta"], row["p_value_holm"], row["class"]))
    better = sorted((row for row in rows.values() if sign * row["delta"] > 0 and row["p_value_holm"] < alpha),
                    key=lambda row: (-sign * row["delta"], row["p_value_holm"], row["class"]))
    r.per_class["worse"], r.per_class["better"] = worse, [row["class"] for row in better]
    shown = worse[0] if worse else min(rows.values(), key=lambda row: (row["p_value_holm"], sign * row["delta"], row["class"]))
    r.baseline, r.candidate, r.delta = shown["baseline"], shown["candidate"], shown["delta"]
    r.per_class["shown"] = shown["class"]
    noisy = sum(1 for row in rows.values() if row["beyond_tolerance"] and row not in worse)
    tol_text = f"tolerance {tol.absolute:g}" + (f" and {tol.relative:g} x baseline" if tol.relative is not None else "")
    of = f"of {len(rows)} classes compared"
    skipped = r.per_class["not_compared"]["count"]
    tail = (f"; {noisy} fell beyond the {tol_text} without significance" if noisy else "") + (
        f"; {skipped} classes not compared (fewer than {r.per_class['min_images']} paired images)" if skipped else "")
    regressed = [row for row in worse if row["beyond_tolerance"]]
    if regressed:
        return "regression", (f"{len(regressed)} {of} worse beyond the {tol_text} and significant (Holm over the classes "
                              f"and the model's comparisons, alpha {alpha:g}), worst first: {_classes_text(regressed)}{tail}")
    if worse:
        return "warning", (f"{len(worse)} {of} significantly worse within the {tol_text}: {_classes_text(worse)}; not a "
                           f"regression on this evidence alone{tail}")
    if better:
        return "improvement", f"{len(better)} {of} significantly better: {_classes_text(better)}{tail}"
    return "unchanged", f"no class significantly changed ({len(rows)} compared, smallest Holm p {r.p_value_holm:.3g})" + tail


def _verdict(r: Result, alpha: float) -> tuple[str, str]:
    change = r.bad_change
    tol = r.tolerance or Tolerance(0.0)
    baseline = float(np.max(np.abs(r.baseline))) if isinstance(r.baseline, list) else r.baseline
    beyond = tol.exceeded_by(change, baseline)
    tol_text = f"tolerance {tol.absolute:g}" + (f" and {tol.relative:g} x baseline" if tol.relative is not None else "")
    if not r.statistical:  # deterministic: the tolerance alone decides
        return ("regression", f"changed by {change:.4g}, beyond its {tol_text}") if beyond else (
            "unchanged", f"changed by {change:.4g}, within its {tol_text}")
    significant = r.p_value_holm < alpha
    p_text = f"Holm-adjusted p = {r.p_value_holm:.3g} ({'below' if significant else 'not below'} alpha {alpha:g})"
    if change > 0 and beyond and significant:
        return "regression", f"worse by {change:.4g}, beyond its {tol_text}, and {p_text}"
    if change > 0 and (beyond or significant):
        why = f"beyond its {tol_text}" if beyond else f"within its {tol_text}"
        return "warning", f"worse by {change:.4g}, {why}; {p_text}: not a regression on this evidence alone"
    if change < 0 and (tol.exceeded_by(-change, baseline) or significant):
        return "improvement", f"better by {-change:.4g}; {p_text}"
    return "unchanged", f"changed by {-change:+.4g} (good direction positive); {p_text}"
