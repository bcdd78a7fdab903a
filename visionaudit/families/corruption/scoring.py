"""Statistics over a model's ImageNet-C conditions: which severities are valid, Holm over the conditions, and
the bootstrap interval of the mCE (the conditions and the clean pass resampled together)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from visionaudit import stats
from visionaudit.errors import ConfigError
from visionaudit.families.corruption.imagenet_c import BENCHMARK, SEVERITIES, summarize


@dataclass
class Condition:
    """One corruption at one severity, paired image by image with the clean pass."""

    corruption: str
    severity: int
    n_images: int
    error: float
    error_ci: tuple[float, float]  # 95 % Wilson interval
    clean_error: float  # NaN when there is no clean reference (an ImageNet-C folder of other images)
    p_value: float  # exact McNemar against clean; NaN without a clean reference
    discordant: tuple[int, int]  # (right clean -> wrong corrupted, wrong -> right)
    correct: np.ndarray = field(repr=False)
    predicted: np.ndarray | None = field(default=None, repr=False)  # top-1 output index per image (names what was lost)


def paired(corruption: str, severity: int, correct: np.ndarray, clean: np.ndarray | None,
           predicted: np.ndarray | None = None) -> Condition:
    n = int(correct.size)
    wrong = int((~correct).sum())
    if clean is None:
        p, b, c, clean_error = math.nan, 0, 0, math.nan
    else:
        b, c = int((clean & ~correct).sum()), int((~clean & correct).sum())
        # errors / n: 1 - mean stores 0.16000000000000003
        p, clean_error = stats.mcnemar_exact(b, c), int((~clean).sum()) / clean.size
    return Condition(corruption, severity, n, wrong / n, stats.wilson_interval(wrong, n), clean_error, p, (b, c), correct,
                     predicted)


class Unavailable(Exception):
    """A corruption that cannot run here (frost without its pictures): its conditions are reported as
    not available, with the reason, and the mCE over the rest says so."""


def _benchmark_keys(correct: dict[tuple[str, int], np.ndarray]) -> list[tuple[str, int]]:
    return [k for k in correct if k[0] in BENCHMARK]


def _resampled_errors(correct: dict[tuple[str, int], np.ndarray], keys: list[tuple[str, int]], clean: np.ndarray | None,
                      resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Top-1 errors of ``keys`` (and the clean pass, last, when given) under ``resamples`` bootstrap resamples of
    the images, in chunks of (conditions [+ clean], chunk) arrays: one resample serves every condition, so their
    correlation is kept."""
    bits = np.stack([correct[k] for k in keys] + ([clean] if clean is not None else [])).astype(np.float64)
    n = bits.shape[1]
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, 250):  # chunks bound the (images, resamples) weight matrix's memory
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=min(250, resamples - start)).T / n  # (n, r)
        yield 1.0 - bits @ weights


def check_severities(severities: Sequence[Any]) -> tuple[int, ...]:
    bad = [s for s in severities if s not in SEVERITIES or isinstance(s, bool)]
    if bad:
        raise ConfigError(f"[audits.corruption] severities must be whole numbers 1 to 5 (ImageNet-C's levels), got {bad[0]!r}")
    return tuple(sorted({int(s) for s in severities}))


def mce_interval(correct: dict[tuple[str, int], np.ndarray], clean: np.ndarray | None, resamples: int = 2000,
                 level: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile intervals of mCE, relative mCE and mean error over images resampled with replacement (the
    same resample for every condition and the clean pass, so their correlation is kept)."""
    keys = _benchmark_keys(correct)
    if not keys:
        return {}
    draws: dict[str, list[float]] = {"mce": [], "relative_mce": [], "mean_error": []}
    for errors in _resampled_errors(correct, keys, clean, resamples, seed):
        for r in range(errors.shape[1]):
            per: dict[str, dict[int, float]] = {}
            for (c, s), e in zip(keys, errors[: len(keys), r]):
                per.setdefault(c, {})[s] = float(e)
            summary = summarize(per, float(errors[-1, r]) if clean is not None else None)
            for name in draws:
                draws[name].append(getattr(summary, name))
    tail = (1.0 - level) / 2 * 100
    return {name: tuple(float(v) for v in np.percentile(values, [tail, 100 - tail])) for name, values in draws.items()}


def holm_over_conditions(p_values: dict[str, float], alpha: float = 0.05) -> dict[str, dict[str, float | bool]]:
    """Holm over one model's conditions (``corruption-severity``); NaN p-values (no clean reference) are left out."""
    finite = {k: p for k, p in p_values.items() if p == p}
    return {k: {"p_value_holm": p, "significant": sig} for k, (p, sig) in stats.holm(finite, alpha).items()}


def condition_name(corruption: str, severity: int) -> str:
    return f"{corruption}-{severity}"


def own_summary(errors: dict[str, dict[int, float]], clean_error: float | None,
                missing: dict[str, str] | None = None) -> dict[str, Any]:
    """A model of its own label space, over the benchmark corruptions scored (extras left out, as in the mCE):
    ``mean_error`` (the mean top-1 error over corruptions and severities), ``mean_rise`` (its rise over the
    model's own clean error; None without a clean pass), and the mean error per corruption. Not normalized."""
    used = [c for c in BENCHMARK if errors.get(c)]
    if not used:
        raise ValueError("no ImageNet-C benchmark corruption was scored: the mean corruption error is undefined")
    severities = sorted({s for c in used for s in errors[c]})
    values = [errors[c][s] for c in used for s in errors[c]]
    mean_error = sum(values) / len(values)
    return {"mean_error": mean_error, "mean_rise": None if clean_error is None else mean_error - clean_error,
            "clean_error": clean_error, "corruption_errors": {c: sum(errors[c].values()) / len(errors[c]) for c in used},
            "corruptions": used, "severities": severities,
            "missing": {c: (missing or {}).get(c, "not in the configured corruptions") for c in BENCHMARK if c not in used}}


def mean_error_interval(correct: dict[tuple[str, int], np.ndarray], clean: np.ndarray | None, resamples: int = 2000,
                        level: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the mean error and the mean rise over the clean error, images resampled with
    replacement (one resample for every condition and the clean pass)."""
    keys = _benchmark_keys(correct)
    if not keys:
        return {}
    draws: dict[str, list[np.ndarray]] = {"mean_error": [], "mean_rise": []}
    for errors in _resampled_errors(correct, keys, clean, resamples, seed):
        mean = errors[: len(keys)].mean(axis=0)
        draws["mean_error"].append(mean)
        if clean is not None:
            draws["mean_rise"].append(mean - errors[-1])
    tail = (1.0 - level) / 2 * 100
    return {name: tuple(float(v) for v in np.percentile(np.concatenate(values), [tail, 100 - tail]))
            for name, values in draws.items() if values}
