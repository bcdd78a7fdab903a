"""A shape-bias ``category_map`` against the classes of every model whose label space is known before it loads, at
startup (plugins/data_check.py stops the run on a problem, exit 4); and whether any model's shape bias can be
measured at all (the observers' data serves only that). Plain arguments in: the run's model specs, its
--audit-classes and the config's bounds."""

from __future__ import annotations

from typing import Sequence

from visionaudit.errors import ConfigError
from visionaudit.families.shape_bias import categories_or_reason, check_category_map
from visionaudit.families.thresholds import Bounds
from visionaudit.models.classes import spaces_known_before_load


def check_category_maps(models: Sequence[str], classes: str | None, bounds: Bounds) -> list[str]:
    """A shape-bias ``category_map`` typo (a class the model lacks, a name several of its classes share, a category
    not of the 16), for each model whose classes are known before it loads (the others: when the model loads, as the
    test's error)."""
    problems = []
    for model_id, space in spaces_known_before_load(models, classes):
        try:
            check_category_map(space, bounds("shape_bias", model_id).get("category_map"))
        except ConfigError as e:
            problems.append(f"{model_id}: {e}")
    return problems


def shape_bias_measurable(models: Sequence[str], classes: str | None, bounds: Bounds) -> bool:
    """Whether some model's shape bias may be measured: its classes unknown before it loads, or known and mapped
    onto the 16 categories (the observers' data serves only that)."""
    known = list(spaces_known_before_load(models, classes))
    if len(known) < len(models):
        return True  # a model known only once it loads (or whose spec is said wrong there)
    for model_id, space in known:
        try:
            if categories_or_reason(space, bounds("shape_bias", model_id).get("category_map"))[0] is not None:
                return True
        except ConfigError:
            return True  # a category_map typo: said by check_category_maps
    return False
