"""Error consistency in the baseline gate: do the two releases get the same images wrong?

Each paired comparison of right/wrong outcomes records ``error_consistency`` (observed and expected consistency,
Cohen's kappa with its 95 % bootstrap interval over images, n; visionaudit/error_consistency.py, after Geirhos,
Meding & Wichmann 2020). Two releases of equal accuracy that fail on other images have a low kappa while the
accuracy test sees nothing. Judged on the accuracy-like comparisons (clean top-1, each transform, the 16-way
shape-only accuracies) and once for the corruption family, on the point estimate of kappa: below ``min_kappa`` (default
-1: off) the comparison fails even when its accuracy held; below ``kappa_warning`` (default 0.5) an unchanged
comparison becomes a warning. Balanced and per-class accuracy carry the same images' consistency as clean top-1,
recorded but not judged again (one change would fail three times). An undefined kappa (both releases right on
every image, or wrong on every image) is not judged: nothing is claimed about errors that did not happen.

The corruption family is judged once, not per condition: its 75 default conditions would each be judged, and at
severities 4-5 the errors are near chance, so two honestly different releases would draw dozens of warnings. The
mCE (or mean error) entry carries the kappa of the pooled (image, condition) right/wrong outcomes of the conditions
both sides scored, its expected consistency taken within each condition (:func:`pooled_consistency`: the conditions'
different difficulty is not agreement), its interval by a bootstrap over images that keeps each image's conditions
together; each condition's entry records its own kappa, not judged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionaudit.error_consistency import error_consistency, kappa_of
from visionaudit.families.baseline import resampling

JUDGED_KINDS = ("accuracy", "category", "summary")  # the comparisons whose kappa is judged (see the module docstring)
KEYS = ("observed", "expected", "kappa", "kappa_ci", "n")


def consistency_of(old: Any, new: Any, resamples: int, seed: int) -> dict[str, Any]:
    """``{"observed", "expected", "kappa", "kappa_ci", "n"}`` of two paired right/wrong arrays (and ``reason`` when
    kappa or its interval is undefined)."""
    ec = error_consistency(np.asarray(old, dtype=bool), np.asarray(new, dtype=bool), resamples=resamples, seed=seed).to_dict()
    out = {k: ec[k] for k in KEYS}
    if ec.get("reason"):
        out["reason"] = ec["reason"]
    return out


def pooled_consistency(old: Any, new: Any, resamples: int, seed: int, level: float = 0.95) -> dict[str, Any]:
    """Error consistency of (conditions, images) right/wrong matrices pooled over every (image, condition) pair, the
    expected consistency stratified by condition: ``observed`` is the share of pairs both got right or both wrong,
    ``expected`` the mean over conditions of each condition's p1 p2 + (1 - p1)(1 - p2) (every condition has the same
    images), so two releases that are both right on the easy conditions and wrong on the hard ones, errors
    independent within each, have kappa ~0 (accuracies pooled over all conditions made that 0.64 at 0.9 and 0.1);
    ``n`` the pooled pairs, ``images`` and ``conditions``; the interval from a bootstrap over images, each drawn
    image bringing all its conditions (the conditions of one image are not independent trials)."""
    a, b = np.asarray(old, dtype=bool), np.asarray(new, dtype=bool)
    k, n = a.shape
    out: dict[str, Any] = {"observed": None, "expected": None, "kappa": None, "kappa_ci": None, "n": int(k * n),
                           "images": int(n), "conditions": int(k)}
    if k == 0 or n == 0:
        out["reason"] = "kappa is undefined: no (image, condition) pair"
        return out
    p1, p2 = a.mean(axis=1), b.mean(axis=1)
    out["observed"] = float(np.mean(a == b))
    out["expected"] = float(np.mean(p1 * p2 + (1 - p1) * (1 - p2)))
    out["kappa"] = kappa_of(out["observed"], out["expected"])
    if out["kappa"] is None:
        out["reason"] = ("kappa is undefined: in every condition both are right on every image or both wrong on every "
                         "image, so the expected consistency is 1")
        return out
    if resamples <= 0:
        return out
    fa, fb, agree = a.T.astype(np.float64), b.T.astype(np.float64), (a == b).sum(axis=0).astype(np.float64)
    rng = np.random.default_rng(seed)
    values, ok = np.empty(resamples), np.empty(resamples, dtype=bool)
    rows = resampling.block_rows(n, 500)  # blocks keep the (rows, images) draws and counts bounded
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        counts = np.bincount((idx + n * np.arange(stop - start)[:, None]).ravel(),
                             minlength=(stop - start) * n).reshape(stop - start, n).astype(np.float64)  # draws per image
        q1, q2 = counts @ fa / n, counts @ fb / n  # (rows, conditions): each condition's accuracies in the resample
        observed = counts @ agree / (n * k)
        expected = np.mean(q1 * q2 + (1 - q1) * (1 - q2), axis=1)
        ok[start:stop] = expected < 1.0
        values[start:stop] = np.where(ok[start:stop], (observed - expected) / np.where(ok[start:stop], 1.0 - expected, 1.0),
                                      np.nan)
    if ok.sum() >= resamples / 2:
        tail = (1.0 - level) / 2 * 100
        lo, hi = np.percentile(values[ok], [tail, 100 - tail])
        out["kappa_ci"] = [float(lo), float(hi)]
    else:
        out["reason"] = f"no interval: kappa is undefined in {int((~ok).sum())} of {resamples} resamples (errors too rare)"
    return out


def kappa_text(ec: dict[str, Any]) -> str:
    """``kappa 0.62 [95% 0.55, 0.69]`` (or why it is undefined)."""
    if ec.get("kappa") is None:
        return "kappa undefined"
    ci = ec.get("kappa_ci")
    return f"kappa {ec['kappa']:.3f}" + (f" [95% {ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def judge_consistency(results: dict[str, Any], kinds: dict[str, str], min_kappa: float, kappa_warning: float) -> None:
    """After the accuracy verdicts (:func:`visionaudit.families.baseline.statistics.judge`): a judged comparison whose
    kappa is below ``min_kappa`` is a regression (its errors moved, whatever its accuracy did); below
    ``kappa_warning`` an unchanged one becomes a warning, and any other verdict's reason says so. ``kinds``: name ->
    the comparison's kind (only :data:`JUDGED_KINDS` are judged). A judged entry's ``below`` names the bound its kappa
    fell below (``min_kappa``, ``kappa_warning``) or is None."""
    for name, r in results.items():
        ec = r.error_consistency
        if kinds.get(name) not in JUDGED_KINDS or r.verdict == "not_compared" or not ec or ec.get("kappa") is None:
            continue
        kappa = ec["kappa"]
        ec["below"] = "min_kappa" if kappa < min_kappa else "kappa_warning" if kappa < kappa_warning else None
        text = (f"{kappa_text(ec)} over {ec['n']} paired images" if not ec.get("conditions") else
                f"pooled {kappa_text(ec)} over {ec['images']} paired images x {ec['conditions']} conditions")
        if kappa < min_kappa:
            held = "" if r.verdict == "regression" else f" (its {r.metric} was {r.verdict.replace('_', ' ')})"
            r.reason = (f"errors moved: {text} is below min_kappa {min_kappa:g}{held}; " + r.reason)
            r.verdict = "regression"
        elif kappa < kappa_warning:
            if r.verdict == "unchanged":
                r.verdict = "warning"
                r.reason = f"errors moved: {text} is below kappa_warning {kappa_warning:g} while the {r.metric} held; " + r.reason
            else:
                r.reason += f"; errors moved: {text} is below kappa_warning {kappa_warning:g}"
