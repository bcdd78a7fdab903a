"""The human observers' decisions on the cue-conflict stimuli (``texture-vs-shape-raw/`` under the data root):
which observers' files are there, each verified against the shipped manifest (the upstream listing of ten
files), and which are absent, named (never dropped without a word). Reading a file's rows is
visionaudit/families/shape_bias/decisions_csv.py's (the raw-data CSV format's one home).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from visionaudit.data.fetch import OBSERVERS, load_manifest
from visionaudit.errors import DataError
from visionaudit.files import sha256_file

_SUBJECT = re.compile(r"_(?P<subject>subject-\d+)_session")


def subject_of(file_name: str) -> str:
    """``..._subject-02_session_1.csv`` -> ``subject-02``."""
    m = _SUBJECT.search(file_name)
    return m["subject"] if m else Path(file_name).stem


@dataclass(frozen=True)
class ObserverFiles:
    folder: Path
    files: dict[str, Path]  # subject -> its verified CSV, sorted by subject
    missing: tuple[str, ...]  # subjects the manifest lists that are not in the folder
    listed: int  # how many files the manifest lists
    extra: tuple[str, ...] = field(default=())  # files in the folder the manifest does not list (not read)

    def note(self) -> str | None:
        """What a run says once when not every listed observer is there (None: all are)."""
        if not self.missing and not self.extra:
            return None
        parts = []
        if self.missing:
            parts.append(f"{self.folder} holds {len(self.files)} of the {self.listed} observers' files: "
                         f"{', '.join(self.missing)} absent, so the observers' error consistency is over the other "
                         f"{len(self.files)} (fetch it: python -m visionaudit fetch {OBSERVERS} --dest {self.folder.parent})")
        if self.extra:
            parts.append(f"{self.folder}: {', '.join(self.extra)} not in the manifest, not read")
        return "; ".join(parts)


class ObserversAbsent(DataError):
    """The observers' decisions are not under the data root (none of their files): the error consistency with them
    is then left out, with this reason, and shape bias is judged without it (plugins/data_check.py)."""


def absent_reason(folder: Path) -> str:
    """Why the error consistency with the observers is not recorded, and how to fetch them."""
    return (f"the human observers' decisions ({OBSERVERS}) are not at {folder}, so the error consistency with them is not "
            f"recorded (shape bias is judged without it); fetch them: python -m visionaudit fetch {OBSERVERS} --dest "
            f"{folder.parent}")


def observer_files(folder: str | Path, manifest: dict | None = None) -> ObserverFiles:
    """The observers' files in ``folder``, verified; a file whose bytes differ from the manifest's is refused (a
    DataError naming the fix); none there: :class:`ObserversAbsent`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ObserversAbsent(absent_reason(folder))
    listed = (manifest or load_manifest())[OBSERVERS]["files"]
    files, missing = {}, []
    for name, expected in sorted(listed.items()):
        path = folder / name
        subject = subject_of(name)
        if not path.is_file():
            missing.append(subject)
            continue
        want = expected if isinstance(expected, str) else expected["sha256"]
        got = sha256_file(path)
        if got != want:
            raise DataError(f"{path} is not the upstream file (sha256 {got[:12]}..., manifest says {want[:12]}...); delete it "
                            f"and fetch it again: python -m visionaudit fetch {OBSERVERS} --dest {folder.parent}")
        files[subject] = path
    if not files:
        raise ObserversAbsent(f"none of the {len(listed)} observers' files is in {folder}: " + absent_reason(folder))
    extra = tuple(sorted(p.name for p in folder.iterdir() if p.suffix == ".csv" and p.name not in listed))
    return ObserverFiles(folder, dict(sorted(files.items())), tuple(missing), len(listed), extra)
