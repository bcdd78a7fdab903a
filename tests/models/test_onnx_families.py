"""The audit families on an ONNX file as the audited model (issue 25, item 3): channel bias from the graph's first
conv initializer, what does not apply to a graph (skips with the reason), and the deployment comparison with its
torch reference. Loading, identity and refusals: test_onnx_model.py."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from visionaudit.errors import ModelOutputError
from visionaudit.families.assessment import NotApplicable
from visionaudit.families.channel_bias import (
    ChannelBias,
    FirstConvUnread,
    assess_weight_shares,
    contribution_shares,
    weight_bias,
)
from visionaudit.families.conversion import check_equivalence
from visionaudit.families.deployment import Unsupported, check_form
from visionaudit.families.records import AuditRecord
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model
from visionaudit.models.onnx_conv import graph_first_conv
from visionaudit.models.onnx_model import read_graph
from visionaudit.preprocessing import Preprocessing

onnx = pytest.importorskip("onnx", reason="in the deploy extra: pip install 'visionaudit[deploy]'")
ort = pytest.importorskip("onnxruntime", reason="in the deploy extra: pip install 'visionaudit[deploy]'")

from tests.models.onnx_graphs import (  # noqa: E402
    GEN,
    IMAGES,
    TINY,
    conv_graph,
    export_tiny,
    hand_shares,
    weights,
)

# -- channel bias from the graph --------------------------------------------------------------------


def test_channel_bias_reads_the_first_conv_initializer(tmp_path):
    w = weights(out=6, seed=1) * np.array([1.0, 2.0, 0.5], dtype=np.float32).reshape(1, 3, 1, 1)
    model = load_model(str(conv_graph(tmp_path / "m.onnx", w)), "cpu")
    result = weight_bias(model)
    assert isinstance(result, ChannelBias) and result.first.input_is_model_input
    assert result.shares == pytest.approx(hand_shares(w), abs=1e-12)
    std = np.array(model.preprocessing.std)
    per = np.abs(w.astype(np.float64)).sum(axis=(0, 2, 3)) / std
    assert result.normalized_shares == pytest.approx(list(per / per.sum()), abs=1e-12)
    assert "stem" in result.first_conv and "weight W" in result.first_conv


def test_elementwise_preprocessing_in_the_graph_is_passed_over(tmp_path):
    """Sub and Div by constants before the Conv: its weights are still read, but its input is not the model's, so
    contribution shares are refused as for a torch model."""
    w = weights(seed=2)
    mean, std = np.full((1, 3, 1, 1), 0.5, np.float32), np.full((1, 3, 1, 1), 0.25, np.float32)
    path = conv_graph(tmp_path / "m.onnx", w, before=[("Sub", [mean], {}), ("Div", [std], {})])
    model = load_model(str(path), "cpu")
    result = weight_bias(model)
    assert result.shares == pytest.approx(hand_shares(w), abs=1e-12) and not result.first.input_is_model_input
    with pytest.raises(ModelOutputError, match="does not receive the model input unchanged"):
        contribution_shares(model, result.first, IMAGES[:, :, :8, :8])


@pytest.mark.parametrize("attrs, pad", [
    ({"pads": [1, 0, 2, 1], "strides": [2, 2]}, None),
    ({"pads": [0, 0, 0, 0]}, [0, 0, 1, 2, 0, 0, 3, 0]),  # a zero Pad node before the Conv, folded in
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, None),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, None),
    ({"pads": [2, 1, 0, 2], "dilations": [2, 2]}, None),
    ({"group": 3, "pads": [1, 1, 1, 1]}, None),
])
def test_the_graph_conv_is_onnx_runtimes_conv(tmp_path, attrs, pad):
    """The Conv2d made from the graph gives ONNX Runtime's output of the same nodes (what contribution shares use)."""
    cin = 1 if attrs.get("group") else 3
    w = weights(out=6, cin=cin, seed=4)
    before = [("Pad", [np.array(pad, dtype=np.int64)], {"mode": "constant"})] if pad else []
    path = conv_graph(tmp_path / "c.onnx", w, before=before, conv_attrs=attrs, size=9, head=False)
    x = torch.randn(2, 3, 9, 9, generator=GEN)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    first = graph_first_conv(read_graph(path))
    with torch.no_grad():
        got = first.module(x)
    assert first.input_is_model_input and tuple(got.shape) == expected.shape
    assert np.abs(got.numpy() - expected).max() < 1e-5


def test_no_readable_first_conv_skips_with_the_reason(tmp_path):
    resize = ("Resize", [None, np.array([1, 1, 2, 2], np.float32)], {})
    model = load_model(str(conv_graph(tmp_path / "r.onnx", weights(), before=[resize], size=4)), "cpu")
    result = weight_bias(model)
    assert isinstance(result, FirstConvUnread) and "its input reaches Resize (resize0) before any convolution" in result.reason
    with pytest.raises(NotApplicable, match="reaches Resize"):
        assess_weight_shares(AuditRecord("channel_bias", model.id), result, {}, {"model": model.id})


# -- what does not apply to a graph, and the reference comparison -----------------------------------


def test_conversion_folds_and_torch_forms_skip_and_the_reference_is_compared(tmp_path):
    path = export_tiny(tmp_path / "tiny.onnx", None, preprocessing=Preprocessing(crop_size=32, resize_size=36))
    reference = f"{TINY}?size=32"  # the torch model as the file was exported: 32 px (its own query inside the spec's)
    model = load_model(f"{path}?reference={reference}", "cpu")
    assert model.id == f"{os.path.normpath(path)}?reference={reference}"
    with pytest.raises(NotApplicable, match="is an ONNX graph"):
        check_equivalence(model, IMAGES, "rgb_to_gray")
    logits = predict_logits(model, IMAGES)
    for form in ("torchscript", "bf16_cpu", "channels_last"):
        with pytest.raises(Unsupported,
                           match=f"the model is an ONNX graph run by ONNX Runtime; {form} is a form of a torch model"):
            check_form(model, IMAGES, logits, form)
    same = check_form(model, IMAGES, logits, "onnxruntime")
    assert same.max_abs_diff < 1e-4 and same.top1_agreement == 1.0
    other = load_model(f"{path}?reference=tests.tiny_models:tiny_other?size=32", "cpu")  # another model: its logits differ
    assert check_form(other, IMAGES, logits, "onnxruntime").max_abs_diff > 1e-2
    plain = load_model(str(path), "cpu")
    with pytest.raises(Unsupported, match=r"no \?reference=SPEC names the torch model"):
        check_form(plain, IMAGES, logits, "onnxruntime")
    wrong = load_model(f"{path}?reference={reference}&mean=0.5,0.5,0.5", "cpu")
    with pytest.raises(AssertionError, match="is fed other input than its reference") as refused:
        check_form(wrong, IMAGES, predict_logits(wrong, IMAGES), "onnxruntime")
    # hunt 35, F1: options after a reference go to the file; the message names the other reading and its %26
    assert "Its spec gives the ONNX file mean: if they were meant for the reference, write %26" in str(refused.value)
    plain_reference = load_model(f"{path}?reference={TINY}&mean=0.5,0.5,0.5", "cpu")  # nothing split off: no %26 advice
    with pytest.raises(AssertionError, match="is fed other input than its reference") as refused:
        check_form(plain_reference, IMAGES, predict_logits(plain_reference, IMAGES), "onnxruntime")
    assert "%26" not in str(refused.value)
