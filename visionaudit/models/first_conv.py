"""Finding the convolution that consumes a model's input, from the computation itself.

Attribute names lie (``conv1``, ``features.0``, ``conv_proj``, ``_conv_stem``) and "the first named
parameter" is wrong for ViT, whose first parameter is ``class_token``. Instead one forward pass runs
with a pre-hook on every ``nn.Conv2d`` (subclasses included, so static "same" padding modules are
found as they are): the first convolution to run is the one that consumes the input. The hook also
keeps the tensor it received, so callers can tell whether anything changed the input on the way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from visionaudit.errors import ModelOutputError, SpecError
from visionaudit.preprocessing import Preprocessing


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
        raise ModelOutputError(f"no convolution ran in a forward pass of {type(model).__name__} (a TorchScript or functional "
                               "conv cannot be hooked)")
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


def fit_input_channels(model: nn.Module, pre: Preprocessing, device: torch.device | str, spec: str,
                       given: Mapping[str, str]) -> Preprocessing:
    """``pre`` made to fit the channels the model's first convolution takes from its input: a 1-channel model is fed
    grayscale (:meth:`Preprocessing.as_gray`). ``given``: the spec's options (a mean/std given there is the user's).
    Left as it is when no first convolution can be found (a TorchScript or functional conv; the load's probe then
    says what is wrong) or something before it changes the input."""
    try:
        first = find_first_conv(model, (1, pre.channels, pre.crop_size, pre.crop_size), device)
    except Exception:  # noqa: BLE001  (any failure here is the probe's to explain, with the model's own error)
        return pre
    if not first.input_is_model_input or first.in_channels == pre.channels:
        return pre
    from_spec = "mean" in given or "std" in given
    where = f"({first.name} is its first convolution)"
    if first.in_channels == 1 and not from_spec:
        return pre.as_gray()
    if first.in_channels == 1:
        raise SpecError(f"model {spec} takes 1 input channel {where}, so it is fed grayscale images (their luminance): "
                        f"give one mean and one std in its spec, ?mean=M&std=S, not {pre.channels}")
    if first.in_channels == 3:
        raise SpecError(f"model {spec} takes 3 input channels {where} but its spec gives {pre.channels} mean/std "
                        "value(s): give three, ?mean=R,G,B&std=R,G,B, or leave them out for the default")
    raise SpecError(f"model {spec} takes {first.in_channels} input channels {where}: the suite feeds RGB images "
                    "(3 channels), or their luminance to a 1-channel model")


def plain_copy(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of ``conv`` whose weight is a plain parameter holding the weight it computes with: a reparametrized weight
    (weight or spectral norm, as ``torch.nn.utils.parametrizations`` or the older forward pre-hooks make it) would
    recompute, or refuse, a weight set on the copy."""
    from torch.nn.utils import parametrize, remove_spectral_norm, remove_weight_norm

    new = copy.deepcopy(conv)
    if parametrize.is_parametrized(new):
        # Not remove_parametrizations: the copy shares its parametrized class with ``conv``, whose properties it deletes.
        values = {name: getattr(conv, name).detach().clone() for name in new.parametrizations}
        new.__class__ = type(new).__bases__[0]
        del new.parametrizations
        for name, value in values.items():
            new.register_parameter(name, nn.Parameter(value))
    for hook in list(new._forward_pre_hooks.values()):
        if type(hook).__name__ in ("WeightNorm", "SpectralNorm"):
            (remove_weight_norm if type(hook).__name__ == "WeightNorm" else remove_spectral_norm)(new, hook.name)
    return new
