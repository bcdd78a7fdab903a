"""The baseline comparison's settings: each comparison's tolerance, alpha, the bootstrap's resamples and seed, the
error-consistency bounds, from the baseline family's bounds (``[audits.baseline]``, per model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visionaudit.errors import ConfigError
from visionaudit.families.baseline.compared import ALL_COMPARED
from visionaudit.families.baseline.statistics import Tolerance


@dataclass(frozen=True)
class Settings:
    tolerances: dict[str, Tolerance]  # by comparison name
    # Paired images a comparison needs to be judged (fewer: not judged, never a pass). No default here: the
    # family's descriptor (min_images, 20) is its one home, and the thresholds always carry it.
    min_images: int
    alpha: float = 0.05
    resamples: int = 2000
    seed: int = 0
    paired: bool = True
    min_class_images: int = 10  # paired images a class needs to be compared on its own
    min_kappa: float = -1.0  # error consistency: below it a comparison fails (-1: off)
    kappa_warning: float = 0.5  # below it an unchanged comparison is a warning
    # Resamples of the bootstrap and Monte Carlo p-values (None: ``resamples``); compare_model sets it from the
    # model's comparison set (statistics.p_resamples_for) so that those p-values can pass Holm's first step.
    p_resamples: int | None = None


def settings_from(thresholds: Any, seed: int = 0, paired: bool = True) -> Settings:
    """The comparison settings from the baseline family's bounds (``[audits.baseline]``, per model)."""
    # A table that names some metrics keeps the defaults of the others (visionaudit/config.py merges per-name
    # tables over the family's defaults), so no tolerance is ever a silent 0.
    absolute = thresholds.get("tolerance") or {}
    relative = thresholds.get("relative_tolerance") or {}
    tolerances = {}
    for c in ALL_COMPARED.values():
        a = absolute.get(c.name, absolute.get(c.metric))
        if a is None:
            raise ConfigError(f"[audits.baseline] tolerance sets nothing for {c.name} or {c.metric}; add {c.metric} = ...")
        tolerances[c.name] = Tolerance(a, relative.get(c.name, relative.get(c.metric)))
    return Settings(tolerances, thresholds["min_images"], thresholds["alpha"], thresholds["bootstrap_resamples"], seed, paired,
                    thresholds.get("min_class_images", 10), thresholds.get("min_kappa", -1.0),
                    thresholds.get("kappa_warning", 0.5))
