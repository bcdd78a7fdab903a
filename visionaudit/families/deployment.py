"""Deployment conversions: the forms a model ships in, each returned as a module that maps the
normalized input batch to logits, so the audit can compare them with the original on real images.

``torchscript`` (trace), ``torch_export``, ``onnxruntime`` (onnx + onnxruntime, the ``deploy`` extra),
``bf16_cpu``, ``fp16_cuda`` and ``channels_last``. A conversion a model or machine does not support
raises :class:`Unsupported` with the exporter's reason; the audit reports it as a skip.

An ONNX file audited as the model (:mod:`visionaudit.models.onnx_model`) is already in deployment form: its
``onnxruntime`` row compares it with the torch model it was exported from (``?reference=SPEC``), image by image,
under the ``onnxruntime`` bounds (:func:`check_against_reference`); the torch forms do not apply to it.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping

from visionaudit.families import thresholds as f
from visionaudit.families.assessment import Deferred, NotApplicable, require_count
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import CountsLabelled, Family, register_family

if TYPE_CHECKING:  # torch and the models are imported where a form is made: the descriptor is read on the xdist
    import torch  # controller, which never imports torch (benchmarks/phases.py times the start-up)
    from torch import nn

    from visionaudit.models.inference import LogitComparison
    from visionaudit.models.loading import LoadedModel

DEPLOYMENTS = ("torchscript", "torch_export", "onnxruntime", "bf16_cpu", "fp16_cuda", "channels_last")


class Unsupported(Exception):
    """This deployment form does not apply here; the message says why."""


@functools.cache
def _wrappers() -> tuple[type, type, type]:
    """The forms' module wrappers (``Cast``, ``OnnxRuntime``, ``LogitsOnly``), defined once, on first use: this module is
    read for its descriptor on the xdist controller, which never imports torch."""
    import torch
    from torch import nn

    from visionaudit.models.probe import as_logits

    class Cast(nn.Module):
        """Run ``module`` in ``dtype`` (and memory format); logits come back as float32."""

        def __init__(self, module: nn.Module, dtype: torch.dtype, memory_format=torch.contiguous_format) -> None:
            super().__init__()
            self.module, self.dtype, self.memory_format = module, dtype, memory_format

        def forward(self, x):
            return as_logits(self.module(x.to(self.dtype).contiguous(memory_format=self.memory_format))).float()

    class OnnxRuntime(nn.Module):
        def __init__(self, session) -> None:
            super().__init__()
            self.session = session
            self.input_name = session.get_inputs()[0].name

        def forward(self, x):
            out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
            return torch.from_numpy(out).to(x.device)

    class LogitsOnly(nn.Module):
        """The model's logits tensor alone: what is traced for TorchScript. A Hugging Face classifier returns a
        ``ModelOutput`` (a dict), which ``torch.jit.trace`` refuses; its ``.logits`` (or a tuple's first) is what ships."""

        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module
            self.training = module.training  # in eval as the model is: an exporter warns of a wrapper in training mode

        def forward(self, x):
            return as_logits(self.module(x))  # x: HF classifiers' pixel_values, their first argument

    return Cast, OnnxRuntime, LogitsOnly


def _reason(e: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()  # torch's ONNX exporter colours its messages
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def convert(module: nn.Module, name: str, example: torch.Tensor) -> nn.Module:
    """``module`` (eval, on ``example``'s device) in deployment form ``name``; the original is not modified."""
    import torch

    from visionaudit.models.onnx_model import export_onnx

    _Cast, _OnnxRuntime, _LogitsOnly = _wrappers()
    device = example.device
    if name == "torchscript":
        try:
            return torch.jit.trace(_LogitsOnly(copy.deepcopy(module)), example, check_trace=False)
        except Exception as e:
            raise Unsupported(f"torch.jit.trace of {type(module).__name__} failed: {_reason(e)}") from None
    if name == "torch_export":
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            # its logits tensor, as for TorchScript: a model returning its own dataclass (logits and features) is no
            # pytree torch.export knows, and was skipped
            return torch.export.export(_LogitsOnly(copy.deepcopy(module)), (example,),
                                       dynamic_shapes=({0: batch},)).module()
        except Exception as e:
            raise Unsupported(f"torch.export failed: {_reason(e)}") from None
    if name == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError:
            raise Unsupported("onnxruntime is not installed: pip install 'visionaudit[deploy]'") from None
        # The session holds the model in memory once created, so the exported file need not outlive it.
        try:
            with tempfile.TemporaryDirectory(prefix="visionaudit-onnx-") as folder:
                path = os.path.join(folder, "model.onnx")
                export_onnx(_LogitsOnly(copy.deepcopy(module)).cpu(), example.cpu(), path)
                session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise Unsupported(f"ONNX export or ONNX Runtime load failed: {_reason(e)}") from None
        return _OnnxRuntime(session)
    if name == "bf16_cpu":
        if device.type != "cpu":
            raise Unsupported(f"bf16_cpu audits CPU inference; this run's device is {device}")
        return _Cast(copy.deepcopy(module).to(torch.bfloat16), torch.bfloat16)
    if name == "fp16_cuda":
        if device.type != "cuda":
            raise Unsupported(f"fp16 inference is audited on CUDA; this run's device is {device}")
        return _Cast(copy.deepcopy(module).half(), torch.float16)
    if name == "channels_last":
        return _Cast(copy.deepcopy(module).to(memory_format=torch.channels_last), example.dtype, torch.channels_last)
    raise ValueError(f"unknown deployment {name!r}; known: {', '.join(DEPLOYMENTS)}")


def check_form(model: LoadedModel, images: torch.Tensor, reference_logits: torch.Tensor, name: str) -> LogitComparison:
    """``model`` converted to deployment form ``name`` against ``reference_logits`` (the model as loaded)
    on ``images`` (uint8). Raises :class:`Unsupported` when the form does not apply here.

    The suite feeds CPU models channels_last input already, so ``channels_last`` is judged against a
    plain NCHW forward pass instead of ``reference_logits``. An ONNX model: :func:`check_against_reference`.
    """
    import torch

    from visionaudit.models.inference import compare_outputs, predict_logits
    from visionaudit.models.onnx_model import OnnxModule

    if isinstance(model.module, OnnxModule):
        return check_against_reference(model, images, reference_logits, name)
    example = model.preprocessing.normalize(images[:2].to(model.device))
    shipped = convert(model.module, name, example)
    logits = predict_logits(replace(model, module=shipped), images, what=f"deployment form {name}")
    if name == "channels_last":
        reference_logits = predict_logits(model, images, memory_format=torch.contiguous_format,
                                          what="deployment form channels_last: its NCHW reference")
    return compare_outputs(model, reference_logits, logits)


def _same_input(a: LoadedModel, b: LoadedModel) -> bool:
    pa, pb = a.preprocessing, b.preprocessing
    close = all(abs(x - y) <= 1e-9 for x, y in zip(pa.mean + pa.std, pb.mean + pb.std))
    return pa.geometry == pb.geometry and pa.channels == pb.channels and close


def check_against_reference(model: LoadedModel, images: torch.Tensor, logits: torch.Tensor, name: str) -> LogitComparison:
    """An ONNX ``model`` (its ``logits`` on ``images``) against the torch model named by its ``?reference=SPEC``, on
    the same images, each normalized by its own preprocessing: the deployed file and its source must agree image by
    image. Only the ``onnxruntime`` form applies (the others are torch conversions: :class:`Unsupported`); a
    preprocessing that differs from the reference's fails, naming both (the file would be fed other pixels)."""
    from visionaudit.models.inference import compare_outputs, predict_logits
    from visionaudit.models.loading import load_model

    if name != "onnxruntime":
        raise Unsupported(f"the model is an ONNX graph run by ONNX Runtime; {name} is a form of a torch model (audit its "
                          "torch model for it)")
    reference_spec = model.spec.options.get("reference")
    if not reference_spec:
        raise Unsupported("no ?reference=SPEC names the torch model this ONNX file was exported from; add it to the spec "
                          "to compare the two image by image")
    reference = load_model(reference_spec, model.device)
    if not _same_input(model, reference):
        raise AssertionError(f"{model.id} is fed other input than its reference {reference.id}: its preprocessing "
                             f"{model.preprocessing.to_dict()} vs the reference's {reference.preprocessing.to_dict()}; set "
                             "the file's metadata (visionaudit.preprocessing) or its spec's options to the reference's"
                             + _options_after_reference(model.spec.options))
    expected = predict_logits(reference, images, what=f"deployment form onnxruntime: the torch reference of {model.id}")
    if expected.shape != logits.shape:
        raise AssertionError(f"{model.id} returns {logits.shape[1]} logits per image, its reference {reference.id} "
                             f"{expected.shape[1]}: the reference is not the model the file was exported from")
    if model.outputs != reference.outputs:  # a softmax added at export (or left out): the two read in other forms
        raise AssertionError(f"{model.id} returns {model.outputs}, its reference {reference.id} {reference.outputs}: export "
                             "the model as it is (without adding or removing a softmax), or name the reference that returns "
                             f"{model.outputs}")
    return compare_outputs(model, expected, logits)


def _options_after_reference(options: Mapping[str, str]) -> str:
    """The other reading of a spec whose preprocessing options sit beside ``?reference=``: written after a reference
    with its own query (``?reference=F?classes=c&size=224``) they are the file's, not the reference's (hunt 35, F1)."""
    beside = sorted(k for k in options if k in ("size", "resize", "interpolation", "mean", "std"))
    if not beside or "?" not in options.get("reference", ""):  # a reference without a query: nothing was split off
        return ""
    return (f". Its spec gives the ONNX file {', '.join(beside)}: if they were meant for the reference, write %26 for "
            "each & inside ?reference=SPEC (docs/models.md)")


def assess_form(record: AuditRecord, measured: Deferred, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """The form's largest logit difference and top-1 agreement, within its own bounds (``context["deployment"]``).
    ``measured.measure()`` exports and compares (:func:`check_form`), raising :class:`Unsupported` where the
    form does not apply here."""
    form = context["deployment"]
    # The bounds before the count: a not_judged entry records what it would have been held to.
    record.threshold("max_abs_diff", thresholds.entry("max_abs_diff", form))
    record.threshold("min_top1_agreement", thresholds.entry("min_top1_agreement", form))
    require_count(record, thresholds, measured.n_images, "labelled images")
    try:
        result = measured.measure()
    except Unsupported as e:  # skipped: held to no bound, so it records none (a row of skipped forms shows none)
        for name in ("max_abs_diff", "min_top1_agreement"):
            record.thresholds.pop(name, None)
        raise NotApplicable(f"{context['model']} {form}: {e}") from None
    record.metric("n_images", measured.n_images)
    record.metric("max_rel_diff", result.max_rel_diff)
    ok = record.check_max("max_abs_diff", result.max_abs_diff, "max_abs_diff", thresholds.entry("max_abs_diff", form))
    ok &= record.check_min("top1_agreement", result.top1_agreement, "min_top1_agreement",
                           thresholds.entry("min_top1_agreement", form))
    if not ok:
        raise AssertionError(f"{context['model']} as {form}: logits differ by up to {result.max_abs_diff:.3g}, "
                             f"top-1 agreement {result.top1_agreement:.3f} on {measured.n_images} real images")


FAMILY = register_family(Family(
    name="deployment",
    gates="the forms a model ships in (TorchScript, torch.export, ONNX Runtime, bf16 on CPU, fp16 on CUDA, "
          "channels_last) give the logits of the model as loaded, on real images",
    key_metric="max_abs_diff",
    higher_is_better=False,
    # its forms are compared on a stratified subset of them; below min_images assess_form stops before exporting one
    counts_labelled=CountsLabelled(cap="images", measures=False),
    assessors={"form": assess_form},
    metrics=("max_rel_diff", "top1_agreement", "n_images"),
    thresholds={
        "images": f.count("real images (a stratified subset) each form is compared on", default=64),
        "min_images": f.min_images(default=16),
        "max_abs_diff": f.per_name(DEPLOYMENTS, f.nonnegative(), "per form: largest |logit difference|",
                                   default={"torchscript": 1e-4, "torch_export": 1e-4, "onnxruntime": 1e-3, "channels_last": 1e-3,
                                            "bf16_cpu": 1.5, "fp16_cuda": 0.5}),
        "min_top1_agreement": f.per_name(DEPLOYMENTS, f.fraction(), "per form: share of images with the same top-1",
                                         default={"torchscript": 0.99, "torch_export": 0.99, "onnxruntime": 0.99,
                                                  "channels_last": 0.99,
                                                  "bf16_cpu": 0.9, "fp16_cuda": 0.95}),
    },
    html_section="visionaudit.html.sections:conversion_and_deployment",  # one section with conversion
))
