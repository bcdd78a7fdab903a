"""Deployment forms on a small model: each one agrees with the original, or says why it cannot."""

from __future__ import annotations

import dataclasses
import tempfile

import pytest
import torch
from torch import nn

from visionaudit.families.deployment import DEPLOYMENTS, Unsupported, convert


def small() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10)).eval()


# The ONNX and torch.export exports take seconds each: the full run's (slow), not the quick loop's.
@pytest.mark.parametrize("name", [pytest.param(d, marks=pytest.mark.slow(data=False)) if d in ("onnxruntime", "torch_export")
                                  else d for d in DEPLOYMENTS if d != "fp16_cuda"])
def test_forms_agree_with_the_original(name):
    model = small()
    x = torch.randn(5, 3, 16, 16)
    if name == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
    shipped = convert(model, name, x[:2])
    with torch.no_grad():
        expected, got = model(x), shipped(x)  # a batch size other than the example's
    tolerance = 0.1 if name == "bf16_cpu" else 1e-4
    assert got.shape == expected.shape and (got.float() - expected).abs().max() < tolerance
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the original is untouched


def test_fp16_needs_cuda():
    with pytest.raises(Unsupported, match="fp16 inference is audited on CUDA; this run's device is cpu"):
        convert(small(), "fp16_cuda", torch.randn(1, 3, 8, 8))


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on values: torch.export cannot capture it
            return x.mean((2, 3))
        return -x.mean((2, 3))


def test_unexportable_model_is_unsupported_with_the_reason():
    with pytest.raises(Unsupported, match="torch.export failed"):
        convert(DataDependent(), "torch_export", torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown deployment 'tensorrt'"):
        convert(small(), "tensorrt", torch.randn(1, 3, 8, 8))


def test_onnx_export_leaves_no_files_behind(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shipped = convert(small(), "onnxruntime", torch.randn(2, 3, 16, 16))
    assert list(tmp_path.iterdir()) == []
    assert shipped(torch.randn(3, 3, 16, 16)).shape == (3, 10)  # the session outlives the file


def test_a_hugging_face_classifier_is_traced_for_its_logits():
    """transformers' classifiers return a ModelOutput (a dict), which torch.jit.trace refuses: the form traces the
    logits tensor, and gives the model's own ``.logits`` for another batch size than the traced one."""
    transformers = pytest.importorskip("transformers", reason="in the hf extra: pip install 'visionaudit[hf]'")
    torch.manual_seed(0)
    config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3)
    model = transformers.ResNetForImageClassification(config).eval()
    x = torch.randn(5, 3, 40, 40)
    shipped = convert(model, "torchscript", x[:2])
    assert isinstance(shipped, torch.jit.ScriptModule)
    with torch.no_grad():
        expected, got = model(pixel_values=x).logits, shipped(x)
    assert isinstance(got, torch.Tensor) and got.shape == (5, 3) and (got - expected).abs().max() < 1e-4


class Scores(nn.Module):
    def forward(self, x):
        return {"scores": x.mean((2, 3))}  # a plain dict: no logits to take, so no trace


def test_an_untraceable_model_is_unsupported_naming_its_class():
    with pytest.raises(Unsupported, match="torch.jit.trace of Scores failed: .*dict"):
        convert(Scores(), "torchscript", torch.randn(2, 3, 8, 8))


@dataclasses.dataclass
class LogitsAndFeatures:
    logits: torch.Tensor
    features: torch.Tensor


class ReturnsADataclass(nn.Module):
    """A team's model returning its own dataclass (logits and features), which torch.export knows no pytree of."""

    def __init__(self) -> None:
        super().__init__()
        self.net = small()

    def forward(self, x):
        return LogitsAndFeatures(self.net(x), x.mean((2, 3)))


@pytest.mark.parametrize("name", [pytest.param(d, marks=pytest.mark.slow(data=False)) for d in ("torch_export", "onnxruntime")])
def test_a_model_returning_a_dataclass_is_exported_for_its_logits(name):
    # Both forms were skipped ("torch.export failed: ... not a known type"): exported as TorchScript is, its logits.
    if name == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
    model, x = ReturnsADataclass().eval(), torch.randn(5, 3, 16, 16)
    shipped = convert(model, name, x[:2])
    with torch.no_grad():
        expected, got = model(x).logits, shipped(x)
    assert isinstance(got, torch.Tensor) and got.shape == (5, 10) and (got - expected).abs().max() < 1e-4


def test_an_exporters_colour_codes_are_left_out_of_the_reason():
    from visionaudit.families.deployment import _reason

    assert _reason(RuntimeError("Failed to export. \x1b[96mThis is step 1/3\x1b[0m of exporting")) == (
        "RuntimeError: Failed to export. This is step 1/3 of exporting")
