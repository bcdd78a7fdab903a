"""A near-free classifier for the benchmarks: a 1x1 convolution, a global pool and a linear layer to 1000
classes (random init), so that what a benchmark times around its forward passes is the suite's own work.

    --model benchmarks.near_free:conv1x1
"""

from __future__ import annotations

import torch
from torch import nn


class Conv1x1(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def conv1x1() -> nn.Module:
    torch.manual_seed(0)
    return Conv1x1()
