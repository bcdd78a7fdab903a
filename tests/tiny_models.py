"""Small models for tests, importable as ``tests.tiny_models:NAME`` factories."""

from __future__ import annotations

import os

import torch
from torch import nn


def _count_load() -> None:
    # Tests that check "one load per process" read this file.
    path = os.environ.get("VISIONAUDIT_TEST_LOAD_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\n")


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, stride=4)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def tiny() -> nn.Module:
    _count_load()
    torch.manual_seed(0)
    return TinyNet()


def tiny_other() -> nn.Module:
    _count_load()
    torch.manual_seed(1)
    return TinyNet()


def ten_classes() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(num_classes=10)


def gray() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(in_channels=1)


class NaNNet(TinyNet):
    def forward(self, x):
        return super().forward(x) * float("nan")


def nan_outputs() -> nn.Module:
    return NaNNet()


def not_a_module():
    return 42
