"""The labelled images' class names against the classes of every model whose label space is known before it loads
(visionaudit/models/classes.py), at startup: a label that names no class is a problem that stops the run (exit 4,
plugins/data_check.py says it); classes without images are a note. A model whose classes are known only once loaded
is checked as it loads (fixtures/models.py). Plain arguments in, problems and notes out: the pytest side says them."""

from __future__ import annotations

from typing import Sequence

from visionaudit.data.image_sets import ImageSet, classes_without_images
from visionaudit.data.label_space import LabelSpace, unmatched_message
from visionaudit.errors import DataError, UnusableImages
from visionaudit.formatting import first_few
from visionaudit.models.classes import imagenet_hint, spaces_known_before_load


def known_spaces(models: Sequence[str], classes: str | None) -> dict[LabelSpace, list[str]]:
    """The label spaces of ``models`` (specs: ``Settings.model_specs``) known before they load (``classes``:
    --audit-classes), each with its models."""
    spaces: dict[LabelSpace, list[str]] = {}
    for model_id, space in spaces_known_before_load(models, classes):
        spaces.setdefault(space, []).append(model_id)
    return spaces


def unmatched_labels(models: Sequence[str], classes: str | None, images: UnusableImages) -> list[str]:
    """The class names of labelled images that cannot be used as they are, matched all the same."""
    refusals = [(names, space, unmatched_message(space, images.labels, images.numeric, images.root))
                for space, names in known_spaces(models, classes).items()]
    return [f"{', '.join(names)}: {refusal}{imagenet_hint(space)}" for names, space, refusal in refusals if refusal]


def check_labels(models: Sequence[str], classes: str | None, images: ImageSet) -> tuple[list[str], list[str]]:
    """``images``' class names against each known label space: (problems, notes), each in order."""
    problems, notes = [], []
    for space, names in known_spaces(models, classes).items():
        if classes and not space.source.startswith(("--audit-classes", "?classes=")):
            notes.append(f"--audit-classes is not used for {', '.join(names)}: it names its own classes "
                         f"({space.source}); ?classes=FILE in its spec overrides them")
        try:
            missing = classes_without_images(images, space)
        except DataError as e:
            problems.append(f"{', '.join(names)}: {e}{imagenet_hint(space)}")
            continue
        note = uncovered_note(images, space, missing, names)
        notes += [note] if note else []
    return problems, notes


def uncovered_note(images: ImageSet, space: LabelSpace, missing: list[str], models: list[str]) -> str | None:
    """That the images cover only some of a model's classes (which is fine: results are per class seen), or None."""
    if not missing:
        return None
    shown = first_few(missing, 10, ", ")
    return (f"the labelled images {images.name} ({len(images):,} images) cover {len(space) - len(missing):,} of the "
            f"{len(space):,} classes of {', '.join(models)}; {len(missing):,} class(es) have no images: {shown}")
