"""A plugin for an audit run (``-p tests.perturbed_torchscript``): every module ``torch.jit.trace`` makes returns its
logits with :data:`OFFSET` added to class 0, so the deployment audit's TorchScript form must fail. The test that uses
it shows the form is judged on the traced module's own logits, not passed on the original's."""

from __future__ import annotations

OFFSET = 0.01  # far above the TorchScript bound (max_abs_diff 1e-4), far below anything a float32 trace does


def pytest_configure(config) -> None:
    import torch
    from torch import nn

    real = torch.jit.trace

    class Perturbed(nn.Module):
        def __init__(self, traced: nn.Module) -> None:
            super().__init__()
            self.traced = traced

        def forward(self, x):
            out = self.traced(x).clone()
            out[:, 0] += OFFSET
            return out

    def trace(module, example, *args, **kwargs):
        return Perturbed(real(module, example, *args, **kwargs))

    torch.jit.trace = trace  # this audit run's own process: nothing to restore
