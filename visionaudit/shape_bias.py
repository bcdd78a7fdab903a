"""Shape bias on cue-conflict stimuli, computed as Geirhos et al. (ICLR 2019) compute it.

Images whose shape and texture categories agree are dropped; among the rest, a decision equal to the
shape category is a shape hit, one equal to the texture category a texture hit, and
``shape_bias = shape_hits / (shape_hits + texture_hits)``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from . import threshold_fields as f
from .datasets import parse_cue_name
from .errors import DataError
from .families import Family, register_family
from .imagenet16 import AGGREGATIONS

# Published reference points (Geirhos et al. 2019, Fig. 4 / model-vs-human), as fractions.
REFERENCES = {
    "humans (average)": 0.96,
    "AlexNet": 0.253,
    "torchvision ResNet-50": 0.215,
    "VGG-16": 0.092,
    "ResNet-50 trained on Stylized-ImageNet": 0.814,
}
CSV_COLUMNS = ("subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename")


@dataclass(frozen=True)
class ShapeBiasResult:
    shape_bias: float  # NaN when there is neither a shape nor a texture hit
    shape_hits: int
    texture_hits: int
    n_conflict: int  # images whose shape and texture differ
    n_excluded: int  # images whose shape and texture agree
    shape_fraction: float
    texture_fraction: float
    neither_fraction: float
    per_category: dict[str, float]  # shape bias among conflict images of each shape category

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(a: int, b: int) -> float:
    return a / (a + b) if a + b else math.nan


def shape_bias(decisions: Sequence[str], shapes: Sequence[str], textures: Sequence[str]) -> ShapeBiasResult:
    if not (len(decisions) == len(shapes) == len(textures)):
        raise ValueError(f"{len(decisions)} decisions for {len(shapes)} shapes and {len(textures)} textures")
    shape_hits = texture_hits = n_conflict = 0
    per: dict[str, list[int]] = {}
    for decision, shape, texture in zip(decisions, shapes, textures):
        if shape == texture:
            continue
        n_conflict += 1
        hits = per.setdefault(shape, [0, 0])
        if decision == shape:
            shape_hits += 1
            hits[0] += 1
        elif decision == texture:
            texture_hits += 1
            hits[1] += 1
    if n_conflict == 0:
        raise DataError("no cue-conflict images left after dropping those whose shape and texture agree")
    return ShapeBiasResult(
        shape_bias=_ratio(shape_hits, texture_hits),
        shape_hits=shape_hits,
        texture_hits=texture_hits,
        n_conflict=n_conflict,
        n_excluded=len(decisions) - n_conflict,
        shape_fraction=shape_hits / n_conflict,
        texture_fraction=texture_hits / n_conflict,
        neither_fraction=(n_conflict - shape_hits - texture_hits) / n_conflict,
        per_category={c: _ratio(*per[c]) for c in sorted(per)},
    )


def category_accuracy(decisions: Sequence[str], categories: Sequence[str]) -> float:
    """16-way accuracy: the share of decisions equal to the image's category (shape-only stimuli)."""
    if len(decisions) != len(categories):
        raise ValueError(f"{len(decisions)} decisions for {len(categories)} images")
    if not decisions:
        raise ValueError("no decisions to score")
    return sum(d == c for d, c in zip(decisions, categories)) / len(decisions)


def shape_bias_from_csv(path: str | Path) -> ShapeBiasResult:
    """Shape bias from a decisions CSV in the authors' raw-data format.

    Columns ``subj,session,trial,rt,object_response,category,condition,imagename``; the image name
    ends in the stimulus file name, which carries both cues: ``0001_s5n_dnn_0_airplane_00_airplane1-bicycle2.png``.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("object_response", "imagename") if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
            decisions, shapes, textures = [], [], []
            for line, row in enumerate(reader, start=2):
                cues = parse_cue_name(row["imagename"].rsplit("_", 1)[-1])
                if cues is None:
                    raise DataError(f"{path}:{line}: image name {row['imagename']!r} does not end in SHAPEn-TEXTUREm.png")
                decisions.append(row["object_response"].strip())
                shapes.append(cues[0])
                textures.append(cues[1])
    except FileNotFoundError:
        raise DataError(f"decisions file {path} does not exist") from None
    if not decisions:
        raise DataError(f"{path} holds no decisions")
    return shape_bias(decisions, shapes, textures)


def _summary_lines(report: dict) -> list[str]:
    if not any(a["audit"] == "shape_bias" and a["metrics"].get("shape_bias") is not None for a in report["audits"]):
        return []
    return ["shape bias, published (Geirhos et al. 2019): " + ", ".join(f"{k} {v:.1%}" for k, v in REFERENCES.items())]


FAMILY = register_family(Family(
    name="shape_bias",
    gates="Geirhos et al. (ICLR 2019) shape bias on the 1,280 cue-conflict stimuli, and 16-way accuracy on the shape-only stimuli",
    key_metric="shape_bias",
    higher_is_better=True,
    metrics=("shape_hits", "texture_hits", "n_conflict", "shape_fraction", "texture_fraction", "neither_fraction",
             "per_category", "edges_accuracy", "silhouettes_accuracy"),
    thresholds={
        "min": f.fraction("shape bias at least this (a shape-bias-trained model sets a high min)"),
        "max": f.fraction("shape bias at most this"),
        "aggregation": f.choice(AGGREGATIONS, "1,000 probabilities to 16 categories: mean (the authors'), sum or max"),
        "min_edges_accuracy": f.fraction("16-way accuracy on the edge stimuli"),
        "min_silhouettes_accuracy": f.fraction("16-way accuracy on the filled silhouettes"),
    },
    summary_lines=_summary_lines,
))
