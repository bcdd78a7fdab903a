"""The image sets the collected tests read, listed and opened at startup, before any model loads: each set found
(a subset larger than a set is said), the labelled images' class names matched (plugins/label_checks.py), and the
headers of the images the tests will decode opened (visionaudit/data/header_check.py; the ImageNet-C conditions'
too): unusable files are problems that stop the run (exit 4, plugins/data_check.py); EXIF orientations are said
once. The observers' files of shape bias are verified here too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from visionaudit.data.fetch import OBSERVERS
from visionaudit.data.header_check import check_headers
from visionaudit.data.image_sets import (
    LABELLED,
    ROLES,
    ImageSet,
    data_root,
    run_image_set,
)
from visionaudit.data.observers import ObserversAbsent, observer_files
from visionaudit.errors import DataError, UnusableImages
from visionaudit.families.baseline import ALL_COMPARED
from visionaudit.families.corruption import check_severities
from visionaudit.families.corruption.folder import condition_images
from visionaudit.families.corruption.imagenet_c import condition_folder

from .label_checks import check_labels, unmatched_labels
from .run_notes import say_once
from .settings import Settings

LABELLED_COUNT_KEY = pytest.StashKey[int]()  # the labelled images the run's tests read (its --audit-samples subset)
ABSENT_KEY = pytest.StashKey[set]()  # the optional data said absent (a failed fetch may leave an empty folder)
# Data a test reads if it is there: absent and not fetchable (offline, a data root without it, a failed fetch),
# what it feeds is left out with the reason (said once), and the test runs. Its value: what is left out.
OPTIONAL_DATA = {OBSERVERS: "the error consistency with the human observers (shape bias is judged without it)"}


def imagenet_c_conditions(settings: Settings, meta: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    """The (corruption, severity) folders of ``--audit-imagenet-c`` the collected tests read: a condition's test (and the
    baseline's comparison of it) its own; the mCE (and the baseline's comparison of it) each its model scores."""
    if not settings.imagenet_c:
        return []
    out: dict[tuple[str, int], None] = {}
    for m in meta.values():
        params = m.get("params") or {}
        compared = ALL_COMPARED.get(params.get("comparison")) if m.get("audit") == "baseline" else None
        if compared is not None and compared.family != "corruption":
            continue
        if m.get("audit") == "corruption" and "corruption" in params:
            out[(params["corruption"], int(params["severity"]))] = None
        elif compared is not None and compared.kind == "error":  # condition "gaussian_noise-3"
            corruption, severity = compared.condition.rsplit("-", 1)
            out[(corruption, int(severity))] = None
        elif m.get("audit") == "corruption" or compared is not None:
            table = settings.config.thresholds("corruption", m.get("model") or "")
            out.update(dict.fromkeys((c, s) for c in table["corruptions"] for s in check_severities(table["severities"])))
    return sorted(out)


def check_image_sets(config: pytest.Config, settings: Settings, needs: set[str],
                     imagenet_c: list[tuple[str, int]] = ()) -> list[str]:
    """List each image set the tests read, match the labelled images' class names against every model's classes
    known before it loads, open the headers of the images they decode (``imagenet_c``: the ImageNet-C conditions'
    too); the problems, each naming its fix (the notes go to the terminal and the report)."""
    problems: list[str] = []
    try:
        root = data_root(settings.data)
    except DataError as e:
        return [str(e)]
    for role in [r for r in ROLES if r in needs]:
        try:
            whole = run_image_set(role, root, settings.images, None, settings.seed, download=False)
        except UnusableImages as e:  # its class names and its usable images' headers are checked now too: every
            # problem in one message. All its usable images: a refused set has no --audit-samples subset to draw.
            problems += [*e.problems, *unmatched_labels(settings, e)]
            refusal = check_headers(ImageSet(Path(settings.images).stem, e.root, e.paths)).problem() if e.paths else None
            problems += [refusal] if refusal else []
            continue
        except DataError as e:
            problems.append(str(e))
            continue
        if settings.samples and settings.samples > len(whole):
            say_once(config, f"--audit-samples {settings.samples:,} is more than the {len(whole):,} images of {whole.name}: "
                             f"all {len(whole):,} are used")
        if role == LABELLED:
            problems += check_labels(config, settings, whole)
        # The images this run's tests will decode (the subset they read), from their headers: a bad file stops the run
        # now rather than once a model has loaded (visionaudit/data/header_check.py).
        read = whole.stratified_subset(settings.samples, settings.seed)
        if role == LABELLED:
            config.stash[LABELLED_COUNT_KEY] = len(read)
        problems += _headers(config, read)
    for corruption, severity in imagenet_c:  # the files scored as they are (--audit-imagenet-c), checked alike
        if not condition_folder(Path(settings.imagenet_c), corruption, severity).is_dir():
            continue  # not downloaded: its test says so (skipped), the mCE leaves it out, naming it
        try:
            problems += _headers(config, condition_images(Path(settings.imagenet_c), corruption, severity, settings.samples,
                                                          settings.seed))
        except UnusableImages as e:
            refusal = check_headers(ImageSet(f"imagenet-c {corruption}/{severity}", e.root, e.paths)).problem() if e.paths else None
            problems += [*e.problems, *([refusal] if refusal else [])]
        except DataError as e:
            problems.append(str(e))
    if OBSERVERS in needs:  # verified here, once; an absent observer is said, not skipped silently
        try:
            note = observer_files(root / OBSERVERS).note()
            if note:
                say_once(config, note)
        except ObserversAbsent as e:  # optional; absent was said by check_data, an empty folder is said here
            if OBSERVERS not in config.stash.get(ABSENT_KEY, set()):
                say_once(config, f"{OPTIONAL_DATA[OBSERVERS]} is not recorded: {e}")
        except DataError as e:  # a file with other bytes: the fix named
            problems.append(str(e))
    return problems


def _headers(config: pytest.Config, images: ImageSet) -> list[str]:
    """The refusal of ``images``' unusable files, if any; their EXIF orientations said once."""
    headers = check_headers(images)
    refusal, note = headers.problem(), headers.orientation_note()
    if note:
        say_once(config, note)
    return [refusal] if refusal else []

