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


@dataclass(frozen=True)
class InputPadding:
    """The conv received the model's input padded and otherwise unchanged: ``pads`` as ``F.pad`` takes them (left, right,
    top, bottom); ``value`` the one value every padded position holds, None when they hold no one value."""

    pads: tuple[int, int, int, int]
    value: float | None

    @property
    def is_zero(self) -> bool:
        return self.value == 0.0


@dataclass
class FirstConv:
    name: str  # qualified module name, as in model.named_modules()
    module: nn.Conv2d
    input_is_model_input: bool  # the conv received the model's input unchanged
    padding: InputPadding | None = None  # the conv received the input padded, and nothing else changed it

    @property
    def in_channels(self) -> int:
        return self.module.in_channels


def _padding_of(received: torch.Tensor, x: torch.Tensor) -> InputPadding | None:
    """How ``received`` is ``x`` padded around its borders (a ``ZeroPad2d``, a ``ConstantPad2d``), or None."""
    if received.dim() != 4 or received.shape[:2] != x.shape[:2]:
        return None
    (h, w), (dh, dw) = x.shape[2:], (received.shape[2] - x.shape[2], received.shape[3] - x.shape[3])
    if dh < 0 or dw < 0 or dh + dw == 0:
        return None
    for top in range(dh + 1):
        for left in range(dw + 1):
            if torch.equal(received[:, :, top:top + h, left:left + w], x):
                border = torch.ones(received.shape[2:], dtype=torch.bool, device=received.device)
                border[top:top + h, left:left + w] = False
                values = received[:, :, border]
                value = float(values.flatten()[0]) if bool((values == values.flatten()[0]).all()) else None
                return InputPadding((left, dw - left, top, dh - top), value)
    return None


def find_first_conv(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> FirstConv:
    """The first ``nn.Conv2d`` (or subclass) that runs in a forward pass on a random input of ``input_shape``."""
    names = {m: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not names:
        raise ModelOutputError(f"{type(model).__name__} has no nn.Conv2d: there is no first convolution to audit")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    # Signed: a ReLU or a clamp at 0 before the conv would leave an input in [0, 1) as it was, and pass as no change.
    x = torch.rand(input_shape, device=device, dtype=dtype) * 2 - 1
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
    return FirstConv(names[module], module, same, None if same else _padding_of(received, x))


def applied_weight(conv: nn.Conv2d) -> torch.Tensor:
    """The kernel ``conv`` computes with: the weight its forward hands ``conv2d``, read from one forward on zeros.

    A weight-standardized conv (timm's ``StdConv2d``, ``StdConv2dSame``, ``ScaledStdConv2d``; transformers' BiT
    ``WeightStandardizedConv2d``) standardizes its stored weight in every forward, and a weight or spectral norm
    recomputes it: the stored ``conv.weight`` is not what acts on the image. The stored weight is returned only when
    the forward hands ``conv2d`` no single kernel of the weight's shape (a conv that computes some other way)."""
    from torch.overrides import TorchFunctionMode

    seen: list[torch.Tensor] = []

    class _Kernels(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.conv2d:
                seen.append(kwargs["weight"] if "weight" in kwargs else args[1])
            return func(*args, **kwargs)

    w = conv.weight
    side = [d * (k - 1) + 1 for d, k in zip(conv.dilation, conv.kernel_size)]  # enough for any padding, "valid" too
    x = torch.zeros(1, conv.in_channels, *side, dtype=w.dtype, device=w.device)
    try:
        with torch.no_grad(), _Kernels():  # not inference mode: a norm's pre-hook sets the weight the model keeps
            # The forward alone: the conv's hooks and the global ones (a user's recorder, one that raises) are not for a
            # probe. Only the old weight and spectral norms' pre-hooks run: they compute the weight the forward reads.
            for hook in list(conv._forward_pre_hooks.values()):
                if type(hook).__name__ in ("WeightNorm", "SpectralNorm"):
                    hook(conv, (x,))
            conv.forward(x)
    except Exception:  # noqa: BLE001  (a conv that cannot run alone keeps its stored weight, as before)
        seen = []
    if len(seen) == 1 and seen[0].shape == w.shape:
        return seen[0].detach().clone()
    return w.detach()


def weight_per_input_channel(conv: nn.Conv2d) -> torch.Tensor:
    """Sum of |w| acting on each input channel, grouped convolutions included: shape (in_channels,). ``w`` is the
    kernel the conv computes with (:func:`applied_weight`), standardized where the conv standardizes it."""
    w = applied_weight(conv).abs().double()
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
    says what is wrong) or something before it changes the input other than padding it (a padding module keeps the
    channels: the conv behind it still takes the model's input, as the suite's own gray fold of a padded model does)."""
    try:
        first = find_first_conv(model, (1, pre.channels, pre.crop_size, pre.crop_size), device)
    except Exception:  # noqa: BLE001  (any failure here is the probe's to explain, with the model's own error)
        return pre
    if (not first.input_is_model_input and first.padding is None) or first.in_channels == pre.channels:
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


def swap_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where ``model``'s module ``name`` is, under every name it goes by; owners' ``num_channels`` follow."""
    old = model.get_submodule(name)
    # Every name the module goes by (a tied copy, an alias attribute), else the old conv still reads the input.
    for alias in [n for n, m in model.named_modules(remove_duplicate=False) if m is old]:
        owner_name, _, child = alias.rpartition(".")
        setattr(model.get_submodule(owner_name) if owner_name else model, child, new)
    # Hugging Face models check the input's channels against a ``num_channels`` kept by the modules around the first
    # conv (ViT's patch embeddings) and in their config: the copy's must say the new count, else it refuses its input.
    before, after = getattr(old, "in_channels", None), getattr(new, "in_channels", None)
    parts = name.split(".")[:-1]  # the owners above the first conv
    owners = [model, *(model.get_submodule(".".join(parts[:i + 1])) for i in range(len(parts)))]
    for owner in [*owners, getattr(model, "config", None)]:
        if getattr(owner, "num_channels", None) == before and isinstance(before, int):
            owner.num_channels = after


def conv_macs(conv: nn.Conv2d, in_channels: int, out_hw: tuple[int, int]) -> int:
    """Multiply-adds of ``conv`` per image on ``in_channels`` input channels, at output size ``out_hw``."""
    kh, kw = conv.kernel_size
    return conv.out_channels * (in_channels // conv.groups) * kh * kw * out_hw[0] * out_hw[1]
