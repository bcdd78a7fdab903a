"""Cue-conflict decisions as CSV files, in the raw-data format of texture-vs-shape and model-vs-human:
the one home of that format, read and written (a model's, and the human observers' data set).

Columns ``subj,session,trial,rt,object_response,category,condition,imagename``. model-vs-human
(``modelvshuman/evaluation/evaluate.py``, ``ResultPrinter``) writes a model's decisions to
``raw-data/cue-conflict/cue-conflict_<model, "_" as "-">_session-1.csv``, one row per stimulus in
ImageFolder order (shape folders sorted, then file names sorted as strings), with ``subj`` the model
name, ``session`` 1, ``trial`` from 1, ``rt`` and ``condition`` ``NaN``, ``category`` the shape folder and
``imagename`` the bare file name (``airplane1-bicycle2.png``). Human files name images
``0001_s5n_s02_0_clock_00_clock4-chair1.png``; both end in the file name that carries the two cues.
A non-response (``na``, ``NaN``) counts as neither shape nor texture and is counted as such.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from visionaudit.data.image_sets import ImageSet, parse_cue_name
from visionaudit.data.imagenet16 import categories
from visionaudit.data.observers import ObserverFiles
from visionaudit.errors import DataError
from visionaudit.families.shape_bias import ShapeBiasResult, shape_bias

COLUMNS = ("subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename")
NO_RESPONSE = ("na", "nan")  # compared lower-case
EXPERIMENT = "cue-conflict"


@dataclass(frozen=True)
class Decisions:
    image_names: tuple[str, ...]
    shapes: tuple[str, ...]
    textures: tuple[str, ...]
    decisions: tuple[str | None, ...]  # None: no response

    def shape_bias(self) -> ShapeBiasResult:
        return shape_bias(self.decisions, self.shapes, self.textures)


def read_decisions(path: str | Path) -> Decisions:
    """Read one raw-data CSV; every problem names the file and the line."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give a decisions CSV file (columns {','.join(COLUMNS)})")
    allowed = set(categories())
    names, shapes, textures, decisions = [], [], [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("object_response", "imagename") if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
            for row in reader:
                line = reader.line_num  # the file's line, blank lines counted
                if None in row.values() or None in row:
                    raise DataError(f"{path}:{line}: the row has {len([v for v in row.values() if v is not None])} fields "
                                    f"where the header has {len(reader.fieldnames or [])}; fix or remove the line")
                image = row["imagename"].strip()
                cues = parse_cue_name(image.rsplit("_", 1)[-1])
                if cues is None:
                    raise DataError(f"{path}:{line}: image name {image!r} does not end in SHAPEn-TEXTUREm.png")
                category = (row.get("category") or "").strip()
                if category and category != cues[0]:
                    raise DataError(f"{path}:{line}: category {category!r} is not the shape cue {cues[0]!r} of {image}")
                response = row["object_response"].strip()
                if response.lower() in NO_RESPONSE:
                    response = None
                elif response not in allowed:
                    raise DataError(f"{path}:{line}: unknown response {response!r}; allowed: {', '.join(sorted(allowed))}, "
                                    f"or na / NaN for no response")
                names.append(image)
                shapes.append(cues[0])
                textures.append(cues[1])
                decisions.append(response)
    except FileNotFoundError:
        raise DataError(f"decisions file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); is it a CSV file?") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    if not decisions:
        raise DataError(f"{path} holds no decisions")
    return Decisions(tuple(names), tuple(shapes), tuple(textures), tuple(decisions))


def shape_bias_from_csv(path: str | Path) -> ShapeBiasResult:
    """Shape bias from a decisions CSV in the raw-data format (human observers, or a model's export)."""
    return read_decisions(path).shape_bias()


def subject_name(model_id: str) -> str:
    """A model id as model-vs-human names a decision maker: letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", model_id).strip("-") or "model"


def export_path(folder: str | Path, subject: str) -> Path:
    """``<folder>/cue-conflict_<subject, "_" as "-">_session-1.csv``, model-vs-human's file name."""
    return Path(folder) / f"{EXPERIMENT}_{subject.replace('_', '-')}_session-1.csv"


def write_decisions(folder: str | Path, subject: str, image_set: ImageSet, decisions: Sequence[str]) -> Path:
    """Write ``decisions`` (one category per image of the cue-conflict ``image_set``, in its order) as
    model-vs-human writes a model's raw data; returns the file written."""
    if image_set.categories is None or len(decisions) != len(image_set):
        raise ValueError(f"{len(decisions)} decisions for the {len(image_set)} images of {image_set.name}")
    path = export_path(folder, subject)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ImageFolder order: shape folders sorted, then file names sorted as strings (airplane1, airplane10, ...).
    order = sorted(range(len(image_set)), key=lambda i: (image_set.categories[i], image_set.paths[i].name))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for trial, i in enumerate(order, start=1):
            writer.writerow([subject, 1, trial, "NaN", decisions[i], image_set.categories[i], "NaN", image_set.paths[i].name])
    return path


def image_id(imagename: str) -> str:
    """The stimulus a row is about, as model-vs-human keys trials (``helper/plotting_helper.py``,
    ``get_short_imagename``): the last ``_``-part, ``0001_s5n_s02_0_clock_00_clock4-chair1.png`` -> ``clock4-chair1.png``."""
    return imagename.rsplit("_", 1)[-1]


def read_observers(files: ObserverFiles) -> dict:
    """The observers' decisions, compactly (what the shape-bias assessor takes, JSON-ready for a shard's merge):
    ``{"images": [image ids, sorted], "subjects": {subject: [response or None per image]}, "missing": [...],
    "note": ...}``. Every observer must have seen each image once (model-vs-human pairs trials by image)."""
    images: list[str] | None = None
    subjects: dict[str, list[str | None]] = {}
    for subject, path in files.files.items():
        read = read_decisions(path)
        by_image: dict[str, str | None] = {}
        for name, decision in zip(read.image_names, read.decisions):
            key = image_id(name)
            if key in by_image:
                raise DataError(f"{path}: image {key} appears twice; an observer's file has one trial per stimulus")
            by_image[key] = decision
        keys = sorted(by_image)
        if images is None:
            images = keys
        elif keys != images:
            raise DataError(f"{path}: its {len(keys)} images are not the {len(images)} of {next(iter(subjects))}'s file; "
                            "the observers must have seen the same stimuli")
        subjects[subject] = [by_image[k] for k in keys]
    return {"images": images or [], "subjects": subjects, "missing": list(files.missing), "note": files.note()}
