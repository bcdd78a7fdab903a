"""A model that returns probabilities (found by the load's probe, visionaudit/models/probe.py): every path that reads its
outputs reads the same form (their logarithms), what does not look like probabilities later is refused, not clamped,
the finding can be overridden by ``?outputs=``, and comparisons of two forms of it compare what it returns."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchvision  # noqa: F401  (imported once, at module level: a second import registers its ops twice)
from torch import nn

from tests.tiny_models import TinyNet
from visionaudit.errors import ModelOutputError
from visionaudit.models.inference import predict_logits
from visionaudit.models.loading import load_model

IMAGES = torch.randint(0, 256, (4, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
PROBABILITIES = "tests.tiny_models:probabilities"


class _Log(nn.Module):
    """A module's outputs' logarithms: the log-probabilities a model returning probabilities stands for."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x).log()


class _Sharp(nn.Module):
    """Probabilities of a confident model: every class but one under float16's smallest value (6e-8)."""

    def forward(self, x):
        base = torch.zeros(10, device=x.device)
        base[3] = 30.0
        return torch.softmax(base + 0.01 * x.mean((1, 2, 3))[:, None], 1)


class _Float16Outputs(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x).half().float()  # a float16 form's outputs (fp16_cuda computes its softmax in float16)


def test_outputs_that_stop_being_probabilities_are_refused_not_clamped():
    # Taken for probabilities on the probe's three images, a model's later negative logits were clamped to the smallest
    # float and read as log(1.2e-38) = -87.3 each: every number changed without a word.
    model = replace(load_model(PROBABILITIES, "cpu"), module=TinyNet(num_classes=1000).eval())
    with pytest.raises(ModelOutputError, match=r"read as returning probabilities.*not probabilities.*\?outputs=logits"):
        predict_logits(model, IMAGES)


def test_outputs_logits_overrides_the_finding_and_outputs_probabilities_is_checked():
    as_logits = load_model(PROBABILITIES + "?outputs=logits", "cpu")
    assert as_logits.outputs == "logits" and not any("returns probabilities" in n for n in as_logits.notes)
    with torch.inference_mode():  # read as they are: the module's own outputs
        own = as_logits.module(as_logits.preprocessing.normalize(IMAGES))
    assert torch.allclose(predict_logits(as_logits, IMAGES), own, atol=1e-6)
    assert load_model(PROBABILITIES + "?outputs=probabilities", "cpu").outputs == "probabilities"
    declared = load_model("tests.tiny_models:tiny?outputs=probabilities", "cpu")  # logits: checked as they are read
    with pytest.raises(ModelOutputError, match=r"\?outputs=probabilities.*not probabilities here"):
        predict_logits(declared, IMAGES)


def test_gradient_shares_differentiate_the_logarithms_as_every_other_reading_does():
    # channel_bias's gradient shares differentiated the probabilities themselves: another form than the audits' logits.
    from visionaudit.families.channel_bias import gradient_shares

    model = load_model(PROBABILITIES, "cpu")
    twin = replace(model, module=_Log(model.module), outputs="logits")  # its log-probabilities, returned as logits
    labels = torch.tensor([294, 1, 2, 3])
    assert gradient_shares(model, IMAGES, labels) == pytest.approx(gradient_shares(twin, IMAGES, labels), rel=1e-5)


def test_two_forms_of_a_probability_model_are_compared_in_what_it_returns():
    # A float16 form's probabilities under 6e-8 round to 0, whose logarithm is -87.3 against the reference's -30: a
    # difference of 57 failed fp16_cuda's max_abs_diff (0.5) on classes no decision reads.
    model = replace(load_model(PROBABILITIES, "cpu"), module=_Sharp(), num_classes=10)
    reference = predict_logits(model, IMAGES)
    half = predict_logits(replace(model, module=_Float16Outputs(_Sharp())), IMAGES)
    with torch.inference_mode():
        own = _Sharp()(model.preprocessing.normalize(IMAGES))
    by_hand = float((own - own.half().float()).abs().max())  # the outputs as the model returns them, compared
    from visionaudit.models.inference import compare_outputs

    assert compare_outputs(model, reference, half).max_abs_diff == pytest.approx(by_hand, abs=1e-6) and by_hand < 1e-3


def test_an_onnx_file_of_probabilities_against_a_reference_of_logits_fails_naming_both():
    # A softmax added at export: its logarithms were compared with the reference's logits, differing by each image's
    # log-sum-exp, and the failure said only that they differ.
    from visionaudit.families.deployment import check_against_reference

    model = load_model(PROBABILITIES, "cpu")  # standing for the file: ?reference= is an ONNX file's option
    model = replace(model, spec=replace(model.spec, options={"reference": PROBABILITIES + "?outputs=logits"}))
    with pytest.raises(AssertionError, match=r"returns probabilities, its reference .* logits: export the model as it is"):
        check_against_reference(model, IMAGES, predict_logits(model, IMAGES), "onnxruntime")


def test_outputs_takes_logits_or_probabilities():
    from visionaudit.errors import SpecError
    from visionaudit.models.specs import parse_spec

    assert parse_spec("efficientnet_lite0?outputs=Logits").options["outputs"] == "logits"
    with pytest.raises(SpecError, match=r"\?outputs=softmax is neither logits nor probabilities"):
        parse_spec("efficientnet_lite0?outputs=softmax")


class _NearSimplex(nn.Module):
    """Two logits that are each within [0, 1] and sum to 1.005: a float32 softmax's rows sum to 1 within 1e-6."""

    def forward(self, x):
        a = torch.sigmoid(x.mean((1, 2, 3)))[:, None]
        return torch.cat([a, 1.005 - a], 1)


class _Float16Softmax(nn.Module):
    def forward(self, x):
        return torch.softmax(torch.arange(1000.0, device=x.device) / 200 + x.mean((1, 2, 3))[:, None], 1).half().float()


def test_only_rows_summing_to_one_within_their_precisions_rounding_are_taken_for_probabilities():
    # Rows within 0.01 of 1 were taken for probabilities whatever their precision: a two-class model's float32 logits
    # in [0, 1] summing to 1.005 were read as their logarithms.
    from visionaudit.models.probe import probe_classes

    def found(module: nn.Module) -> bool:
        return probe_classes(module.eval(), 3, 32, torch.device("cpu"), "m")[2]

    assert not found(_NearSimplex())
    assert found(_Float16Softmax())  # float16 values: their rounding over 1,000 classes is allowed
