"""What the model-loading tests compare a loaded model with: a seeded torchvision ResNet-18, an input batch, and a
file's sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torchvision


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resnet18(num_classes: int = 1000, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=num_classes).eval()


X = torch.rand(2, 3, 64, 64)
