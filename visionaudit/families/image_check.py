"""The image sets the collected tests read, listed and opened at startup, before any model loads: each set found
(a subset larger than a set is said), the labelled images' class names matched (visionaudit/models/label_check.py),
and the headers of the images the tests will decode opened (visionaudit/data/header_check.py; the ImageNet-C
conditions' too): unusable files are problems that stop the run (exit 4, plugins/data_check.py says them); EXIF
orientations are notes. The observers' files of shape bias are verified here too. Plain arguments in, problems
and notes out (a families-layer module: it reads the corruption family's ImageNet-C folder layout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Sequence

from visionaudit.data.duplicates import duplicates_warning
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
from visionaudit.data.system_files import skipped_note
from visionaudit.errors import DataError, UnusableImages
from visionaudit.families.corruption.folder import condition_images, other_images
from visionaudit.families.corruption.imagenet_c import condition_folder
from visionaudit.models.label_check import check_labels, unmatched_labels

# Data a test reads if it is there: absent and not fetchable (offline, a data root without it, a failed fetch),
# what it feeds is left out with the reason (said once), and the test runs. Its value: what is left out.
OPTIONAL_DATA = {OBSERVERS: "the error consistency with the human observers (shape bias is judged without it)"}


@dataclass
class ImageSetCheck:
    """What the startup check found: problems (each naming its fix), notes (in order), warnings (notes that must stand
    out: the same image under two labels), and the labelled images the run's tests read (its --audit-samples subset;
    None where they read none)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    labelled_count: int | None = None


@dataclass(frozen=True)
class RunImages:
    """Where a run's images are and which it reads: --audit-data, --audit-images, --audit-samples, --audit-seed, the
    models' specs and --audit-classes (their class names), --audit-imagenet-c."""

    data: str | None
    images: str | None
    samples: int | None
    seed: int
    models: Sequence[str]
    classes: str | None
    imagenet_c: str | None


def check_image_sets(run: RunImages, needs: Collection[str], imagenet_c: Sequence[tuple[str, int]] = (),
                     observers_said_absent: bool = False, reference_conditions: Sequence[tuple[str, int]] = ()
                     ) -> ImageSetCheck:
    """List each image set the tests read (``needs``), match the labelled images' class names against every model's
    classes known before it loads, open the headers of the images they decode (``imagenet_c``: the ImageNet-C
    conditions' too, each matched with the reference folder of ``reference_conditions``, every model's configured
    ones); ``observers_said_absent``: the observers' absence was said already."""
    out = ImageSetCheck()
    try:
        root = data_root(run.data)
    except DataError as e:
        out.problems.append(str(e))
        return out
    for role in [r for r in ROLES if r in needs]:
        try:
            whole = run_image_set(role, root, run.images, None, run.seed, download=False)
        except UnusableImages as e:  # its class names and its usable images' headers are checked now too: every
            # problem in one message. All its usable images: a refused set has no --audit-samples subset to draw.
            out.problems += [*e.problems, *unmatched_labels(run.models, run.classes, e)]
            refusal = check_headers(ImageSet(Path(run.images).stem, e.root, e.paths)).problem() if e.paths else None
            out.problems += [refusal] if refusal else []
            continue
        except DataError as e:
            out.problems.append(str(e))
            continue
        if run.samples and run.samples > len(whole):
            out.notes.append(f"--audit-samples {run.samples:,} is more than the {len(whole):,} images of {whole.name}: "
                             f"all {len(whole):,} are used")
        if role == LABELLED:
            problems, notes = check_labels(run.models, run.classes, whole)
            out.problems += problems
            out.notes += notes
        # The images this run's tests will decode (the subset they read), from their headers: a bad file stops the run
        # now rather than once a model has loaded (visionaudit/data/header_check.py).
        read = whole.stratified_subset(run.samples, run.seed)
        if role == LABELLED:
            out.labelled_count = len(read)
            if read.label_names is not None and (warning := duplicates_warning(whole.name, read.sample_ids, read.paths,
                                                                               read.label_names)):
                out.warnings.append(warning)
        _headers(out, read)
    scored: dict[tuple[str, int], ImageSet] = {}
    for corruption, severity in imagenet_c:  # the files scored as they are (--audit-imagenet-c), checked alike
        if not condition_folder(Path(run.imagenet_c), corruption, severity).is_dir():
            continue  # not downloaded: its test says so (skipped), the mCE leaves it out, naming it
        try:
            scored[(corruption, severity)] = condition_images(Path(run.imagenet_c), corruption, severity, run.samples, run.seed)
            _headers(out, scored[(corruption, severity)])
        except UnusableImages as e:
            refusal = check_headers(ImageSet(f"imagenet-c {corruption}/{severity}", e.root,
                                             e.paths)).problem() if e.paths else None
            out.problems += [*e.problems, *([refusal] if refusal else [])]
        except DataError as e:
            out.problems.append(str(e))
    # the folders whose own problem is said above: a reference among them is compared with nothing
    said = [condition_folder(Path(run.imagenet_c), c, s) for c, s in imagenet_c if (c, s) not in scored]
    if scored and (unmatched := other_images(Path(run.imagenet_c), scored, reference_conditions, run.samples, run.seed,
                                             said)):
        out.problems.append(unmatched)  # every scored condition is paired, image by image, with the reference folder
    if OBSERVERS in needs:  # verified here, once; an absent observer is said, not skipped silently
        try:
            note = observer_files(root / OBSERVERS).note()
            out.notes += [note] if note else []
        except ObserversAbsent as e:  # optional; absent was said by check_data, an empty folder is said here
            if not observers_said_absent:
                out.notes.append(f"{OPTIONAL_DATA[OBSERVERS]} is not recorded: {e}")
        except DataError as e:  # a file with other bytes: the fix named
            out.problems.append(str(e))
    return out


def labelled_count(run: RunImages) -> int | None:
    """How many labelled images the run's tests read (its --audit-samples subset), from the set's listing alone, no
    file opened: ``--collect-only``'s count, for the sample-floor warning; None where the set cannot be listed (a run
    says why)."""
    try:
        whole = run_image_set(LABELLED, data_root(run.data), run.images, None, run.seed, download=False)
    except DataError:
        return None
    return len(whole.stratified_subset(run.samples, run.seed))


def _headers(out: ImageSetCheck, images: ImageSet) -> None:
    """The refusal of ``images``' unusable files, if any, to ``out``'s problems; their EXIF orientations and the
    operating-system metadata files skipped beside them to its notes."""
    headers = check_headers(images)
    refusal, note = headers.problem(), headers.orientation_note()
    out.notes += [n for n in (skipped_note(images.root, images.skipped), note) if n]
    out.problems += [refusal] if refusal else []
