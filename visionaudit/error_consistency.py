"""Error consistency of two decision makers on the same trials (Geirhos, Meding & Wichmann, NeurIPS 2020,
https://arxiv.org/abs/2006.16736), as model-vs-human computes it (``modelvshuman/plotting/analyses.py``,
``ErrorConsistency.analysis``):

- observed consistency ``c_obs``: the share of trials on which both are right or both are wrong;
- expected consistency ``c_exp = p1 * p2 + (1 - p1) * (1 - p2)`` from the two accuracies alone (independent errors);
- Cohen's kappa ``(c_obs - c_exp) / (1 - c_exp)``: 0 for independent errors, 1 for the same errors, below 0 for
  errors on different trials;

with a 95 % percentile interval of kappa over trials resampled with replacement (pairs kept, seeded).

When ``c_exp = 1`` (both always right, or both always wrong) kappa is undefined: it is ``None`` with the reason,
never NaN. model-vs-human returns 1.0 there (``observed_consistency == 1.0``); here nothing is claimed about
errors that did not happen. A resample that is degenerate in the same way is left out of the interval and counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class ErrorConsistency:
    n: int  # paired trials
    accuracy_1: float
    accuracy_2: float
    observed: float  # c_obs
    expected: float  # c_exp
    kappa: float | None  # None when undefined (see reason)
    kappa_ci: tuple[float, float] | None  # percentile interval; None without resamples or when too few are defined
    reason: str | None = None  # why kappa (or its interval) is None
    resamples: int = 0
    undefined_resamples: int = 0  # resamples with c_exp = 1, left out of the interval
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kappa_ci"] = list(self.kappa_ci) if self.kappa_ci is not None else None
        return out


def kappa_of(observed: float, expected: float) -> float | None:
    """Cohen's kappa from the observed and expected consistency; None when ``expected`` is 1 (undefined)."""
    return None if expected >= 1.0 else (observed - expected) / (1.0 - expected)


def kappa_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kappa per row of the boolean matrices ``a`` and ``b`` (rows: resamples), and which rows are defined."""
    p1, p2 = a.mean(axis=1), b.mean(axis=1)
    c_obs = (a == b).mean(axis=1)
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    defined = c_exp < 1.0
    kappa = np.where(defined, (c_obs - c_exp) / np.where(defined, 1.0 - c_exp, 1.0), np.nan)
    return kappa, defined


def error_consistency(correct_1: Any, correct_2: Any, resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> ErrorConsistency:
    """Error consistency of two boolean arrays (right or wrong per trial, the same trials in the same order).
    ``resamples=0`` skips the interval."""
    a = np.asarray(correct_1, dtype=bool).ravel()
    b = np.asarray(correct_2, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"error consistency pairs trials: {a.size} outcomes against {b.size}")
    if a.size == 0:
        return ErrorConsistency(0, float("nan"), float("nan"), float("nan"), float("nan"), None, None,
                                "no paired trials", 0, 0, seed)
    p1, p2 = float(a.mean()), float(b.mean())
    observed = float((a == b).mean())
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    kappa = kappa_of(observed, expected)
    reason = None
    if kappa is None:
        reason = (f"kappa is undefined: both are {'right' if p1 == 1.0 else 'wrong'} on all {a.size} trials, so the "
                  "expected consistency is 1 (model-vs-human reports 1.0 here)")
    ci, undefined = None, 0
    if resamples > 0 and kappa is not None:
        rng = np.random.default_rng(seed)
        values = np.empty(resamples)
        ok = np.empty(resamples, dtype=bool)
        for start in range(0, resamples, 250):  # chunks keep memory bounded for large trial sets
            stop = min(resamples, start + 250)
            idx = rng.integers(0, a.size, size=(stop - start, a.size))
            values[start:stop], ok[start:stop] = kappa_rows(a[idx], b[idx])
        undefined = int((~ok).sum())
        if ok.sum() >= resamples / 2:
            tail = (1.0 - level) / 2 * 100
            lo, hi = np.percentile(values[ok], [tail, 100 - tail])
            ci = (float(lo), float(hi))
        else:
            reason = f"no interval: kappa is undefined in {undefined} of {resamples} resamples (errors too rare)"
    return ErrorConsistency(int(a.size), p1, p2, observed, expected, kappa, ci, reason, resamples if kappa is not None else 0,
                            undefined, seed)


def mean_kappa(pairs: list[tuple[Any, Any]], resamples: int = RESAMPLES, seed: int = 0,
               level: float = LEVEL) -> tuple[float | None, tuple[float, float] | None]:
    """The mean kappa of several pairs on the same trials (a model against each observer) and its percentile
    interval, the trials resampled together for every pair; undefined kappas are left out of each mean."""
    if not pairs:
        return None, None
    a = np.stack([np.asarray(x, dtype=bool).ravel() for x, _ in pairs])
    b = np.stack([np.asarray(y, dtype=bool).ravel() for _, y in pairs])
    point, defined = kappa_rows(a, b)
    if not defined.any():
        return None, None
    mean = float(point[defined].mean())
    if resamples <= 0 or a.shape[1] == 0:
        return mean, None
    rng = np.random.default_rng(seed)
    values = np.full(resamples, np.nan)
    for start in range(0, resamples, 250):
        stop = min(resamples, start + 250)
        idx = rng.integers(0, a.shape[1], size=(stop - start, a.shape[1]))
        for row in range(stop - start):
            kappa, ok = kappa_rows(a[:, idx[row]], b[:, idx[row]])
            values[start + row] = kappa[ok].mean() if ok.any() else np.nan
    values = values[~np.isnan(values)]
    if values.size < resamples / 2:
        return mean, None
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return mean, (float(lo), float(hi))
