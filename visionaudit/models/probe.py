"""The load's forward passes (:func:`visionaudit.models.loading.load_model`): they prove that the model takes its declared
input and returns ``(batch, classes)`` logits, the same for an image however often it runs and whatever else is in its
batch (one output, a sigmoid's logit, is audited as two classes: :func:`as_logits`). A model that fails one is refused
with what is wrong and the fix: nothing an audit measured of it would mean anything (a draw's numbers are not the model's).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch

from visionaudit.errors import ModelOutputError

LOW_PRECISION = (torch.float16, torch.bfloat16)
# Largest difference of one image's logits between the probe's two passes, as a share of its largest logit (at least
# 1), whatever the output's dtype: a model may compute in float16 or bfloat16 (autocast, an ONNX file exported in
# float16) and return float32, so its batch-size-dependent kernels differ by a few of those steps (one bfloat16 step
# is 4e-3 of a logit of 8). Training mode moves logits far more, measured on CPU for 3 images drawn as the probe's:
# ResNet-50 (random init) 0.14, efficientnet_lite0 2.3. A false refusal of a good model is worse than a missed one.
SAME_LOGITS = 5e-2
PROBABILITY_SUM = 1e-2  # how far from 1 a row of probabilities may sum (float16's rounding over 1,000 classes)
# ... when its values are float32 (not all of a low precision's): a float32 softmax's rows sum to 1 within about 1e-6
# (autocast computes softmax in float32 too), so a few logits in [0, 1] summing to 1.005 are not taken for probabilities
FLOAT32_PROBABILITY_SUM = 1e-4


class UnreadOutput(ModelOutputError):
    """An output the suite cannot read as one logits tensor without guessing (said by :func:`_inside`)."""


def _shape(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def _inside(output: Any) -> Any:
    """The logits tensor in a model's output: an HF-style ``.logits`` (or a plain dict's ``"logits"``, read alike), or
    a tuple's one (batch, classes) tensor, the first (a tuple of HF's ``return_dict=False``: logits, then hidden
    states). What it cannot read without guessing is refused naming what it saw and the fix (:class:`UnreadOutput`)."""
    output = getattr(output, "logits", output)
    if isinstance(output, Mapping):
        if "logits" not in output:
            raise UnreadOutput(
                f"returned a dict with keys {sorted(map(str, output))} and no 'logits': the suite reads a dict's "
                "'logits' (as a Hugging Face output's); return the logits tensor, or a dict with them under 'logits', or "
                "wrap the model (a factory returning a module whose forward returns model(x)[KEY])")
        output = output["logits"]
    if isinstance(output, (tuple, list)) and output:
        matrices = [i for i, o in enumerate(output) if isinstance(o, torch.Tensor) and o.dim() == 2]
        if matrices != [0] and len(output) > 1:  # (features, logits), (logits, aux_logits): which is meant is a guess
            shapes = ", ".join(_shape(o) for o in output)
            raise UnreadOutput(
                f"returned a {type(output).__name__} of {len(output)} ({shapes}), not one logits tensor: the suite reads "
                "the first element only when it is the one (batch, classes) tensor, and will not guess which of these "
                "are the logits; return the logits alone, or wrap the model (a factory returning a module whose forward "
                "returns model(x)[i], i the logits' index)")
        output = output[0]
    return output


def _one_logit(out: Any) -> bool:
    if not (isinstance(out, torch.Tensor) and out.dim() == 2):
        return False
    if not torch.jit.is_tracing():
        return out.shape[1] == 1
    with warnings.catch_warnings():  # a model's class count is fixed: the trace keeping this test constant is right
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return bool(out.shape[1] == 1)


def _logits_and_one(output: Any) -> tuple[Any, bool]:
    """:func:`as_logits`, and whether the model has one output (audited as two)."""
    output = _inside(output)
    one = _one_logit(output)
    return (torch.cat([torch.zeros_like(output), output], 1) if one else output), one


def as_logits(output: Any) -> Any:
    """The logits tensor inside a model's output (HF-style ``.logits`` or a dict's ``"logits"``, or the first of a tuple
    when it is its one (batch, classes) tensor: :func:`_inside`). One output ``z`` (a binary classifier's logit, read
    through a sigmoid) is two classes' logits ``[0, z]``: their softmax is ``1 - sigmoid(z), sigmoid(z)``. The one place
    outputs become logits (inference, the deployment forms' wrappers and exports, the functional audits), so every
    loader, ONNX included, gets it."""
    return _logits_and_one(output)[0]


def model_dtype(module: torch.nn.Module) -> str | None:
    """The dtype the model runs in, as its report entry records it: its floating weights' (" and "-joined when several),
    an ONNX graph's input's (the suite sees no weights of it); None when it has neither (nothing to tell it by)."""
    graph_input = getattr(getattr(module, "graph", None), "input_dtype", None)
    if graph_input is not None:
        import numpy as np

        return np.dtype(graph_input).name
    dtypes = {str(p.dtype).replace("torch.", "") for p in module.parameters() if p.is_floating_point()}
    return " and ".join(sorted(dtypes)) or None


def probabilities_note(model_id: str) -> str:
    return (f"model {model_id} returns probabilities (every output within [0, 1], each image's summing to 1): the suite "
            "reads their logarithms as its logits, whose softmax gives them back, so its shape-bias categories aggregate "
            "its own probabilities, not a softmax of them; accuracy reads their order, which is the same (if it returns "
            "logits that look like probabilities, add ?outputs=logits to its spec)")


def _weights_not_float32(module: torch.nn.Module) -> str:
    """Why a float32 input can fail: the module's weights are float16, bfloat16 or float64 ('' when any is float32)."""
    dtypes = {p.dtype for p in module.parameters() if p.is_floating_point()}
    if not dtypes or torch.float32 in dtypes:
        return ""
    said = " and ".join(sorted(str(d).replace("torch.", "") for d in dtypes))
    return (f"its weights are {said}, and the suite feeds it float32 images: give the model in float32 (model.float() in "
            "the factory, or export it from the float32 model)"
            + ("; the deployment audit checks its float16 and bfloat16 forms against it" if dtypes & set(LOW_PRECISION) else ""))


def probe_classes(module: torch.nn.Module, channels: int, size: int, device: torch.device,
                  spec: str) -> tuple[int, bool, bool]:
    """The model's number of classes, whether it has one output (audited as two, :func:`as_logits`), and whether it
    returns probabilities (:func:`_probabilities`), from two forward passes of images drawn from a fixed seed: one
    image, then it with two others (not two: the batch-size probe's count, visionaudit/models/batching.py)."""
    # Three images of other brightness and contrast: batch statistics left in training mode then differ between one
    # image and three (images drawn alike barely move them: a 4-channel BatchNorm net moved its logits 0.008, now 0.09)
    spread = torch.tensor([[1.0, 0.0], [0.5, 0.5], [2.0, 1.0]]).view(3, 2, 1, 1, 1)
    x = torch.randn(3, channels, size, size, generator=torch.Generator().manual_seed(0)) * spread[:, 0] + spread[:, 1]
    x = x.to(device)
    shown, in_batch = (1, *x.shape[1:]), None
    try:
        with torch.inference_mode():
            out, one = _logits_and_one(module(x[:1]))  # unwrapped once: the output's form is read in one place
            if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] > 1:
                shown = tuple(x.shape)
                in_batch = as_logits(module(x))
    except UnreadOutput as e:  # an output it cannot read (a dict without logits, a tuple of several)
        raise ModelOutputError(f"model {spec} {e}") from None
    except Exception as e:
        low = _weights_not_float32(module)
        raise ModelOutputError(
            f"model {spec} failed on a {shown} input ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            + (low or "check its input size (?size=N); a model that takes grayscale is fed it when its first convolution "
               "can be found, else give it one mean and one std (?mean=M&std=S)")
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelOutputError(f"model {spec} returned {shape} for one image; an image classifier returns (batch, "
                               "classes) logits")
    _check_same(out, in_batch, spec)
    return int(out.shape[1]), one, not one and _probabilities(out, True) and _probabilities(in_batch, True)


def _probabilities(out: torch.Tensor, found: bool = False) -> bool:
    """Rows that are a softmax's (every value within [0, 1], each row summing to 1): a model that returns probabilities.
    Logits of three images drawn as the probe's are never so by chance; log-probabilities need nothing (their softmax
    is the probabilities). The sums' tolerance is a float16 softmax's rounding over many classes; to be ``found`` so
    (not declared, nor checked again), rows of float32 values must sum to 1 within a float32 softmax's rounding."""
    x = out.detach().double()
    if out.shape[1] < 2 or not torch.isfinite(x).all():
        return False
    tolerance = PROBABILITY_SUM
    if found and not (out.dtype in LOW_PRECISION or any(torch.equal(out.detach().to(d).to(out.dtype), out.detach())
                                                        for d in LOW_PRECISION)):
        tolerance = FLOAT32_PROBABILITY_SUM  # float32 values
    return bool((x >= 0).all() and (x <= 1 + PROBABILITY_SUM).all() and ((x.sum(1) - 1).abs() <= tolerance).all())


def read_outputs(logits: torch.Tensor, outputs: str, model_id: str) -> torch.Tensor:
    """A model's logits (:func:`as_logits`) in the form every audit reads: as they are, or, for a model found (or
    declared, ``?outputs=``) to return probabilities, their logarithms (softmax(log p) is p, not a softmax of p).
    Probabilities are checked batch by batch: outputs that are not (a model whose logits looked like probabilities on
    the probe's three images) are refused, never clamped to a logarithm silently."""
    if outputs != "probabilities":
        return logits
    if not _probabilities(logits):
        x = logits.detach().double()
        raise ModelOutputError(
            f"model {model_id} was read as returning probabilities (its outputs on the load's probe images were a softmax's, "
            f"or its spec says ?outputs=probabilities) but returned outputs that are not probabilities here (from "
            f"{float(x.min()):.3g} to {float(x.max()):.3g}, rows summing to {float(x.sum(1).min()):.3g} to "
            f"{float(x.sum(1).max()):.3g}): if it returns logits, add ?outputs=logits to its spec")
    return logits.clamp_min(torch.finfo(logits.dtype).tiny).log()


def output_form(declared: str | None, found: bool) -> str:
    """What the model returns: ``declared`` by ``?outputs=``, else as the probe found it. Declared probabilities are
    checked as found ones are, batch by batch (:func:`read_outputs`), within a float16 softmax's rounding."""
    return declared or ("probabilities" if found else "logits")


def _check_same(alone: torch.Tensor, in_batch: Any, spec: str) -> None:
    """One image's logits alone and first of three: the same up to rounding, else the model is refused (NaN is left
    to the inference passes, which name the image)."""
    if not isinstance(in_batch, torch.Tensor) or in_batch.shape != (3, alone.shape[1]):
        shape = tuple(in_batch.shape) if isinstance(in_batch, torch.Tensor) else type(in_batch).__name__
        raise ModelOutputError(f"model {spec} returned {tuple(alone.shape)} for one image but {shape} for three; an image "
                               "classifier returns (batch, classes) logits")
    a, b = alone.double(), in_batch[:1].double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return
    scale, diff = float(a.abs().max()), float((a - b).abs().max())
    if diff > SAME_LOGITS * max(1.0, scale):
        raise ModelOutputError(
            f"model {spec} returned other logits for the same image on a second pass, among other images (largest "
            f"difference {diff:.3g}, its largest logit {scale:.3g}): its output depends on chance or on the other images of "
            "its batch, so nothing measured would be the model's. Dropout or BatchNorm left in training mode does this, "
            "and eval() cannot undo it in a TorchScript traced or an ONNX file exported in training mode: call "
            "model.eval() before torch.jit.trace / torch.onnx.export and export it again")
