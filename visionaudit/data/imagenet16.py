"""The 16 entry-level categories of Geirhos et al. and the ImageNet-1k classes in each: the one home
of the mapping. Source: Geirhos et al. 2019 / model-vs-human (shipped as resources/imagenet16_indices.json).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where logits are read: the category names are read on the xdist controller without torch
    import torch

AGGREGATIONS = ("mean", "sum", "max")
# Each category's WordNet noun synset: the one that holds all of the category's ImageNet-1k classes in Geirhos et al.'s
# own lists (model-vs-human, helper/human_categories.py: knife = cleaver n03041632, keyboard = n03085013 and n04505470,
# cat includes cougar n02125311) and none of the word's other senses (railcar, elevator car, feeding bottle, orchestra
# chair, knife the weapon). A label space with WNIDs (timm's ImageNet-12k / 21k) binds each category to its synset's
# class by these, never by name: 'car' there is also railcar's and elevator car's name.
SYNSETS = {
    "airplane": "n02691156", "bear": "n02131653", "bicycle": "n02834778", "bird": "n01503061", "boat": "n02858304",
    "bottle": "n02876657", "car": "n02958343", "cat": "n02121620", "chair": "n03001627", "clock": "n03046257",
    "dog": "n02084071", "elephant": "n02503517", "keyboard": "n03614007", "knife": "n03623556", "oven": "n03862676",
    "truck": "n04490091",
}


@lru_cache(maxsize=1)
def mapping() -> dict[str, tuple[int, ...]]:
    data = json.loads(resources.files("visionaudit").joinpath("resources/imagenet16_indices.json").read_text())
    return {name: tuple(idx) for name, idx in sorted(data["categories"].items())}


def categories() -> tuple[str, ...]:
    """The 16 category names, alphabetical (ties in a decision go to the first)."""
    return tuple(mapping())


def category_probabilities(probabilities: torch.Tensor, aggregation: str = "mean") -> torch.Tensor:
    """(N, 1000) ImageNet probabilities to (N, 16) category scores.

    ``mean`` (the authors' recommendation) averages each category's class probabilities, so the 109 dog
    classes do not outvote the single airplane class; ``sum`` and ``max`` are there for comparison.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    if probabilities.dim() != 2 or probabilities.shape[1] != 1000:
        raise ValueError(f"expected (N, 1000) ImageNet-1k probabilities, got {tuple(probabilities.shape)}")
    import torch

    cols = []
    for idx in mapping().values():
        sub = probabilities[:, list(idx)]
        cols.append(sub.mean(1) if aggregation == "mean" else sub.sum(1) if aggregation == "sum" else sub.amax(1))
    return torch.stack(cols, dim=1)


def decide(logits: torch.Tensor, aggregation: str = "mean") -> list[str]:
    """The 16-class decision for each row of ImageNet logits: softmax, aggregate, top category."""
    import torch

    scores = category_probabilities(torch.softmax(logits.double(), dim=1), aggregation)
    names = categories()
    return [names[i] for i in scores.argmax(dim=1).tolist()]  # argmax returns the first maximum on ties
