"""Error consistency in the baseline gate: do the two releases get the same images wrong?

Each paired comparison of right/wrong outcomes records ``error_consistency`` (observed and expected consistency,
Cohen's kappa with its 95 % bootstrap interval over images, n; visionaudit/error_consistency.py, after Geirhos,
Meding & Wichmann 2020). Two releases of equal accuracy that fail on other images have a low kappa while the
accuracy test sees nothing. Judged on the accuracy-like comparisons (clean top-1, each transform, the 16-way
shape-only accuracies, each corruption condition), on the point estimate of kappa: below ``min_kappa`` (default
-1: off) the comparison fails even when its accuracy held; below ``kappa_warning`` (default 0.5) an unchanged
comparison becomes a warning. Balanced and per-class accuracy carry the same images' consistency as clean top-1,
recorded but not judged again (one change would fail three times). An undefined kappa (both releases right on
every image, or wrong on every image) is not judged: nothing is claimed about errors that did not happen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionaudit.error_consistency import error_consistency

JUDGED_KINDS = ("accuracy", "category", "error")  # the comparisons whose kappa is judged (see the module docstring)
KEYS = ("observed", "expected", "kappa", "kappa_ci", "n")


def consistency_of(old: Any, new: Any, resamples: int, seed: int) -> dict[str, Any]:
    """``{"observed", "expected", "kappa", "kappa_ci", "n"}`` of two paired right/wrong arrays (and ``reason`` when
    kappa or its interval is undefined)."""
    ec = error_consistency(np.asarray(old, dtype=bool), np.asarray(new, dtype=bool), resamples=resamples, seed=seed).to_dict()
    out = {k: ec[k] for k in KEYS}
    if ec.get("reason"):
        out["reason"] = ec["reason"]
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
        text = f"{kappa_text(ec)} over {ec['n']} paired images"
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
