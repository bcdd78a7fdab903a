"""The labelled images' class names, and a shape-bias ``category_map``, against the classes of every model whose label
space is known before it loads (visionaudit/models/classes.py), at startup: a label that names no class, or a map
naming a class the model lacks, is a problem that stops the run (exit 4, plugins/data_check.py); classes without
images are said once. A model whose classes are known only once loaded is checked as it loads (fixtures/models.py)."""

from __future__ import annotations

import pytest

from visionaudit.data.image_sets import ImageSet, classes_without_images
from visionaudit.data.label_space import LabelSpace, unmatched_message
from visionaudit.errors import ConfigError, DataError, UnusableImages
from visionaudit.families.shape_bias import categories_or_reason, check_category_map
from visionaudit.formatting import first_few
from visionaudit.models.classes import imagenet_hint, known_before_load
from visionaudit.models.specs import parse_spec

from .run_notes import say_once
from .settings import Settings


def check_category_maps(settings: Settings) -> list[str]:
    """A shape-bias ``category_map`` typo (a class the model lacks, a category not of the 16), for each model whose
    classes are known before it loads (the others: when the model loads, as the test's error)."""
    problems = []
    for model_id in settings.models:
        try:
            spec = parse_spec(model_id)
            space = known_before_load(spec, settings.classes)
        except (ConfigError, ValueError, KeyError):
            continue  # said where the model loads
        if space is None:
            continue
        try:
            check_category_map(space, settings.config.thresholds("shape_bias", spec.id).get("category_map"))
        except ConfigError as e:
            problems.append(f"{model_id}: {e}")
    return problems


def shape_bias_measurable(settings: Settings) -> bool:
    """Whether some model's shape bias may be measured: its classes unknown before it loads, or known and mapped
    onto the 16 categories (the observers' data serves only that)."""
    for model_id in settings.models:
        try:
            spec = parse_spec(model_id)
            space = known_before_load(spec, settings.classes)
            category_map = settings.config.thresholds("shape_bias", spec.id).get("category_map")
            if space is None or categories_or_reason(space, category_map)[0] is not None:
                return True
        except (ConfigError, ValueError, KeyError):
            return True  # said where the model loads (or by check_category_maps)
    return False


def _known_spaces(settings: Settings) -> dict[LabelSpace, list[str]]:
    """The label spaces of the run's models known before they load, each with its models."""
    spaces: dict[LabelSpace, list[str]] = {}
    for model_id in settings.models:
        try:
            space = known_before_load(parse_spec(model_id), settings.classes)
        except (ConfigError, ValueError, KeyError):
            continue  # said where the model loads
        if space is not None:
            spaces.setdefault(space, []).append(model_id)
    return spaces


def unmatched_labels(settings: Settings, images: UnusableImages) -> list[str]:
    """The class names of labelled images that cannot be used as they are, matched all the same."""
    refusals = [(models, space, unmatched_message(space, images.labels, images.numeric, images.root))
                for space, models in _known_spaces(settings).items()]
    return [f"{', '.join(models)}: {refusal}{imagenet_hint(space)}" for models, space, refusal in refusals if refusal]


def check_labels(config: pytest.Config, settings: Settings, images: ImageSet) -> list[str]:
    problems = []
    for space, models in _known_spaces(settings).items():
        if settings.classes and not space.source.startswith(("--audit-classes", "?classes=")):
            say_once(config, f"--audit-classes is not used for {', '.join(models)}: it names its own classes "
                             f"({space.source}); ?classes=FILE in its spec overrides them")
        try:
            missing = classes_without_images(images, space)
        except DataError as e:
            problems.append(f"{', '.join(models)}: {e}{imagenet_hint(space)}")
            continue
        note_uncovered(config, images, space, missing, models)
    return problems


def note_uncovered(config: pytest.Config, images: ImageSet, space: LabelSpace, missing: list[str], models: list[str]) -> None:
    """Say once that the images cover only some of a model's classes (which is fine: results are per class seen)."""
    if missing:
        shown = first_few(missing, 10, ", ")
        say_once(config, f"the labelled images {images.name} ({len(images):,} images) cover {len(space) - len(missing):,} of the "
                         f"{len(space):,} classes of {', '.join(models)}; {len(missing):,} class(es) have no images: {shown}")

