"""The images a run will decode, checked before any model loads from their headers alone (``Image.open`` reads
the header; nothing is decoded): a file that is no image or cannot be opened, one whose pixels have no known
range (32-bit integer or float, PIL modes ``I`` and ``F``), or one over the pixel limit is named at startup, all
in one message, rather than when a model first needs it. What a header cannot show (a file cut off after its
header, a bad compressed stream) is still found when the image is decoded (:mod:`visionaudit.data.decoding`).

What the check costs against decoding, measured, and why every image a run selects is therefore checked, subset or
not: docs/data.md ("Bad files stop the run at startup"), the one home of those figures.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from visionaudit.data.decoding import (
    DECODE_THREADS,
    ORIENTATIONS,
    read_header,
    unusable_message,
)
from visionaudit.progress import phase

if TYPE_CHECKING:
    from visionaudit.data.image_sets import ImageSet


@dataclass(frozen=True)
class HeaderCheck:
    """What the headers of one image set said."""

    name: str
    total: int
    bad: tuple[str, ...]  # why each unusable file cannot be used, as decoding would say it
    rotated: tuple[tuple[Path, int], ...]  # (file, EXIF orientation) for each image a viewer would turn or mirror

    def problem(self) -> str | None:
        """The set's one refusal, naming every unusable file (the first 10, then their count) and the fix."""
        if not self.bad:
            return None
        return unusable_message(self.bad, self.total, of=f" of {self.name}", shown=10, indent="    ")

    def orientation_note(self) -> str | None:
        """Said once (``run.notes``): the EXIF orientation is not applied, as in torchvision's ImageFolder."""
        if not self.rotated:
            return None
        path, value = self.rotated[0]
        return (f"{len(self.rotated):,} of the {self.total:,} images of {self.name} carry an EXIF orientation tag, which "
                f"is not applied (as torchvision's ImageFolder does not apply it): they are audited as stored, not as a "
                f"viewer shows them, e.g. {path} (orientation {value}: a viewer shows it {ORIENTATIONS[value]}). To audit "
                "them as people see them, transpose the files on disk first (PIL.ImageOps.exif_transpose, then save)")


def check_headers(image_set: ImageSet) -> HeaderCheck:
    """Open the header of every image of ``image_set`` (in threads: from a network disk each open waits on a read)."""
    paths = image_set.paths
    bad: list[str] = []
    rotated: list[tuple[Path, int]] = []
    with phase("check", image_set.name, "image headers", total=len(paths)) as p, warnings.catch_warnings(), \
            ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        # PIL warns of malformed EXIF ("Corrupt EXIF data") naming no file; decoding ignores EXIF, so it is no problem
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        for path, (reason, orientation) in zip(paths, pool.map(read_header, paths)):
            if reason is not None:
                bad.append(reason)
            elif orientation is not None:
                rotated.append((path, orientation))
            p.advance()
    return HeaderCheck(image_set.name, len(paths), tuple(bad), tuple(rotated))
