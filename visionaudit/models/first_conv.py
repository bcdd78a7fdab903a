"""Finding the convolution that consumes a model's input, from the computation itself.

Attribute names lie (``conv1``, ``features.0``, ``conv_proj``, ``_conv_stem``) and "the first named
parameter" is wrong for ViT, whose first parameter is ``class_token``. Instead one forward pass runs
with a pre-hook on every ``nn.Conv2d`` (subclasses included, so static "same" padding modules are
found as they are): the first convolution to run is the one that consumes the input. The hook also
keeps the tensor it received, so callers can tell whether anything changed the input on the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from visionaudit.errors import ModelOutputError


@dataclass
class FirstConv:
    name: str  # qualified module name, as in model.named_modules()
    module: nn.Conv2d
    input_is_model_input: bool  # the conv received the model's input unchanged

    @property
    def in_channels(self) -> int:
        return self.module.in_channels


def find_first_conv(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> FirstConv:
    """The first ``nn.Conv2d`` (or subclass) that runs in a forward pass on a random input of ``input_shape``."""
    names = {m: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not names:
        raise ModelOutputError(f"{type(model).__name__} has no nn.Conv2d: there is no first convolution to audit")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.rand(input_shape, device=device, dtype=dtype)
    seen: list[tuple[nn.Conv2d, torch.Tensor]] = []

    class _Found(Exception):
        pass

    def hook(module, args):
        seen.append((module, args[0]))
        raise _Found  # nothing after the first conv matters: stop the pass here

    handles = [m.register_forward_pre_hook(hook) for m in names]
    try:
        with torch.inference_mode():
            model(x)
    except _Found:
        pass
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ModelOutputError(f"no convolution ran in a forward pass of {type(model).__name__} (a TorchScript or functional conv cannot be hooked)")
    module, received = seen[0]
    same = received.shape == x.shape and torch.equal(received, x)
    return FirstConv(names[module], module, same)


def weight_per_input_channel(conv: nn.Conv2d) -> torch.Tensor:
    """Sum of |w| acting on each input channel, grouped convolutions included: shape (in_channels,)."""
    w = conv.weight.detach().abs().double()
    out_ch, cin_per_group = w.shape[:2]
    groups = conv.groups
    per = torch.zeros(conv.in_channels, dtype=torch.float64, device=w.device)
    outs_per_group = out_ch // groups
    for g in range(groups):
        block = w[g * outs_per_group : (g + 1) * outs_per_group].sum(dim=(0, 2, 3))
        per[g * cin_per_group : (g + 1) * cin_per_group] += block
    return per.cpu()
