"""Deployment conversions (the deployment family's measurement; its descriptor and assessor are in
visionaudit/families/deployment.py): the forms a model ships in, each returned as a module that maps the
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
import os
import tempfile
from dataclasses import replace

import torch
from torch import nn

from visionaudit.families.deployment import DEPLOYMENTS, Unsupported
from visionaudit.models.inference import LogitComparison, compare_logits, predict_logits
from visionaudit.models.loading import LoadedModel, as_logits, load_model
from visionaudit.models.onnx_model import OnnxModule, export_onnx


class _Cast(nn.Module):
    """Run ``module`` in ``dtype`` (and memory format); logits come back as float32."""

    def __init__(self, module: nn.Module, dtype: torch.dtype, memory_format=torch.contiguous_format) -> None:
        super().__init__()
        self.module, self.dtype, self.memory_format = module, dtype, memory_format

    def forward(self, x):
        return as_logits(self.module(x.to(self.dtype).contiguous(memory_format=self.memory_format))).float()


class _OnnxRuntime(nn.Module):
    def __init__(self, session) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def forward(self, x):
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def convert(module: nn.Module, name: str, example: torch.Tensor) -> nn.Module:
    """``module`` (eval, on ``example``'s device) in deployment form ``name``; the original is not modified."""
    device = example.device
    if name == "torchscript":
        try:
            return torch.jit.trace(copy.deepcopy(module), example, check_trace=False)
        except Exception as e:
            raise Unsupported(f"torch.jit.trace failed: {_reason(e)}") from None
    if name == "torch_export":
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            return torch.export.export(copy.deepcopy(module), (example,), dynamic_shapes=({0: batch},)).module()
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
                export_onnx(copy.deepcopy(module).cpu(), example.cpu(), path)
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
    if isinstance(model.module, OnnxModule):
        return check_against_reference(model, images, reference_logits, name)
    example = model.preprocessing.normalize(images[:2].to(model.device))
    shipped = convert(model.module, name, example)
    logits = predict_logits(replace(model, module=shipped), images)
    if name == "channels_last":
        reference_logits = predict_logits(model, images, memory_format=torch.contiguous_format)
    return compare_logits(reference_logits, logits)


def _same_input(a: LoadedModel, b: LoadedModel) -> bool:
    pa, pb = a.preprocessing, b.preprocessing
    close = all(abs(x - y) <= 1e-9 for x, y in zip(pa.mean + pa.std, pb.mean + pb.std))
    return pa.geometry == pb.geometry and pa.channels == pb.channels and close


def check_against_reference(model: LoadedModel, images: torch.Tensor, logits: torch.Tensor, name: str) -> LogitComparison:
    """An ONNX ``model`` (its ``logits`` on ``images``) against the torch model named by its ``?reference=SPEC``, on
    the same images, each normalized by its own preprocessing: the deployed file and its source must agree image by
    image. Only the ``onnxruntime`` form applies (the others are torch conversions: :class:`Unsupported`); a
    preprocessing that differs from the reference's fails, naming both (the file would be fed other pixels)."""
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
                             "the file's metadata (visionaudit.preprocessing) or its spec's options to the reference's")
    expected = predict_logits(reference, images)
    if expected.shape != logits.shape:
        raise AssertionError(f"{model.id} returns {logits.shape[1]} logits per image, its reference {reference.id} "
                             f"{expected.shape[1]}: the reference is not the model the file was exported from")
    return compare_logits(expected, logits)
