"""Labels of a flat ImageNet validation folder (``ILSVRC2012_val_00000001.JPEG`` ...), as users have it.

Two sources, looked for in the image folder and the folders above it (nearest first):

- the ILSVRC2012 devkit (``ILSVRC2012_devkit_t12/data/``, unpacked or as ``ILSVRC2012_devkit_t12.tar.gz``):
  ``ILSVRC2012_validation_ground_truth.txt`` holds, on line i, the ILSVRC2012_ID (1-based) of image i, and
  ``meta.mat`` maps each ILSVRC2012_ID to its WNID. The ILSVRC2012_ID order is not the sorted-WNID order of
  the class indices (ID 1 is n02119789, kit fox; class 0 is n01440764, tench), so labels go through the WNID;
- Kaggle's ``LOC_val_solution.csv`` (ImageId, PredictionString starting with the WNID; the images are in
  ``ILSVRC/Data/CLS-LOC/val/``, four folders below it).

The WNID folders layout (``val/n01440764/*.JPEG``, torchvision's) needs none of this: datasets.labelled_images
reads it directly.
"""

from __future__ import annotations

import csv
import io
import re
import tarfile
from pathlib import Path
from typing import IO

from visionaudit.errors import DataError

VAL_NAME = re.compile(r"^ILSVRC2012_val_(?P<number>\d{8})$", re.IGNORECASE)
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META = "meta.mat"
DEVKIT = "ILSVRC2012_devkit_t12"
DEVKIT_ARCHIVE = f"{DEVKIT}.tar.gz"
KAGGLE_CSV = "LOC_val_solution.csv"
LEVELS_UP = 4  # Kaggle's CSV sits four folders above ILSVRC/Data/CLS-LOC/val


def image_id(path: Path) -> str | None:
    """``ILSVRC2012_val_00000001`` for a validation image's file, else None."""
    return path.stem if VAL_NAME.match(path.stem) else None


def val_wnids(folder: Path, files: list[Path]) -> dict[Path, str]:
    """The WNID of each ``ILSVRC2012_val_*`` file in ``files`` (empty when there is none), from the devkit or
    Kaggle's CSV found at or above ``folder``; a DataError naming the missing file and the fix otherwise."""
    ids = {path: name for path in files if (name := image_id(path))}
    if not ids:
        return {}
    labels, source = _find_labels(folder.resolve())
    out = {}
    for path, name in ids.items():
        if name not in labels:
            raise DataError(f"{path}: no label for {name} in {source}; is it the ILSVRC2012 validation set's?")
        out[path] = labels[name]
    return out


def label_folders(folder: Path, files: list[Path]) -> set[Path]:
    """The folders inside ``folder`` that hold labels of its ``ILSVRC2012_val_*`` files in ``files`` (the devkit unpacked
    there, ``ILSVRC2012_devkit_t12/``, or its ``data/`` alone), which :func:`_find_labels` reads: not class folders, so
    the flat layout stays flat. Empty when ``files`` holds no validation image."""
    if not any(image_id(path) for path in files):
        return set()
    data = folder / "data"
    return ({folder / DEVKIT} if (folder / DEVKIT).is_dir() else set()) | (
        {data} if (data / GROUND_TRUTH).is_file() or (data / META).is_file() else set())


def _find_labels(folder: Path) -> tuple[dict[str, str], str]:
    looked = []
    for here in [folder, *folder.parents][: LEVELS_UP + 1]:
        if (here / KAGGLE_CSV).is_file():
            return kaggle_labels(here / KAGGLE_CSV), str(here / KAGGLE_CSV)
        for data in (here, here / "data", here / DEVKIT / "data"):
            truth, meta = data / GROUND_TRUTH, data / META
            if truth.is_file() or meta.is_file():
                for needed in (truth, meta):
                    if not needed.is_file():
                        raise DataError(f"{needed} is missing: the devkit's {GROUND_TRUTH} gives each image's ILSVRC2012_ID "
                                        f"and its {META} the WNID of each ID; put both in {data} (from {DEVKIT_ARCHIVE})")
                with open(truth, "rb") as t, open(meta, "rb") as m:
                    return devkit_labels(t, m, str(truth)), str(truth)
        if (here / DEVKIT_ARCHIVE).is_file():
            return _archive_labels(here / DEVKIT_ARCHIVE), str(here / DEVKIT_ARCHIVE)
        looked.append(str(here))
    raise DataError(
        f"{folder} holds ILSVRC2012_val_* images but no labels for them: put the devkit's {GROUND_TRUTH} and {META} "
        f"(in {DEVKIT_ARCHIVE}, or the archive itself) or Kaggle's {KAGGLE_CSV} in that folder or one above it "
        f"(looked in {', '.join(looked)}), or sort the images into WNID folders (val/n01440764/...)")


def devkit_labels(truth: IO[bytes], meta: IO[bytes], where: str = GROUND_TRUTH) -> dict[str, str]:
    """``{ILSVRC2012_val_00000001: WNID}`` from the ground truth (line i: image i's 1-based ILSVRC2012_ID) and meta.mat."""
    from scipy.io import loadmat

    try:
        synsets = loadmat(meta, squeeze_me=True)["synsets"]
        by_id = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets.ravel()}
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise DataError(f"{META} beside {where} is not the devkit's (a 'synsets' struct with "
                        f"ILSVRC2012_ID and WNID): {e}") from None
    out = {}
    for number, line in enumerate(truth.read().decode("ascii", errors="replace").split(), 1):
        try:
            out[f"ILSVRC2012_val_{number:08d}"] = by_id[int(line)]
        except (KeyError, ValueError):
            raise DataError(f"{where} line {number}: {line!r} is not an ILSVRC2012_ID listed in {META}") from None
    return out


def kaggle_labels(path: Path) -> dict[str, str]:
    """``{ImageId: WNID}`` from Kaggle's LOC_val_solution.csv (the first word of each PredictionString)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"ImageId", "PredictionString"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected the columns ImageId,PredictionString (Kaggle's ILSVRC {KAGGLE_CSV})")
        out = {}
        for line, row in enumerate(reader, 2):
            words = (row["PredictionString"] or "").split()
            if not words:
                raise DataError(f"{path} line {line}: no WNID for {row['ImageId']}")
            out[row["ImageId"]] = words[0]
    return out


def _archive_labels(path: Path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.name.endswith(f"data/{GROUND_TRUTH}")
                   or m.name.endswith(f"data/{META}")}
        if set(members) != {GROUND_TRUTH, META}:
            raise DataError(f"{path} lacks data/{GROUND_TRUTH} or data/{META}: is it the ILSVRC2012 devkit (t12)?")
        read = lambda name: io.BytesIO(tar.extractfile(members[name]).read())  # noqa: E731
        return devkit_labels(read(GROUND_TRUTH), read(META), f"{path}:{GROUND_TRUTH}")
