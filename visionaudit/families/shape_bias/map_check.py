"""A shape-bias ``category_map`` against the classes of every model whose label space is known before it loads, at
startup (plugins/data_check.py stops the run on a problem, exit 4); and whether any model's shape bias can be
measured at all (the observers' data serves only that). Plain arguments in: the run's model specs, its
--audit-classes and the config's bounds."""

from __future__ import annotations

from typing import Sequence

from visionaudit.errors import ConfigError
from visionaudit.families.shape_bias import categories_or_reason, check_category_map
from visionaudit.families.thresholds import Bounds
from visionaudit.models.classes import known_before_load
from visionaudit.models.specs import parse_spec


def check_category_maps(models: Sequence[str], classes: str | None, bounds: Bounds) -> list[str]:
    """A shape-bias ``category_map`` typo (a class the model lacks, a category not of the 16), for each model whose
    classes are known before it loads (the others: when the model loads, as the test's error)."""
    problems = []
    for model_id in models:
        try:
            spec = parse_spec(model_id)
            space = known_before_load(spec, classes)
        except (ConfigError, ValueError, KeyError):
            continue  # said where the model loads
        if space is None:
            continue
        try:
            check_category_map(space, bounds("shape_bias", spec.id).get("category_map"))
        except ConfigError as e:
            problems.append(f"{spec.id}: {e}")
    return problems


def shape_bias_measurable(models: Sequence[str], classes: str | None, bounds: Bounds) -> bool:
    """Whether some model's shape bias may be measured: its classes unknown before it loads, or known and mapped
    onto the 16 categories (the observers' data serves only that)."""
    for model_id in models:
        try:
            spec = parse_spec(model_id)
            space = known_before_load(spec, classes)
            category_map = bounds("shape_bias", spec.id).get("category_map")
            if space is None or categories_or_reason(space, category_map)[0] is not None:
                return True
        except (ConfigError, ValueError, KeyError):
            return True  # said where the model loads (or by check_category_maps)
    return False
