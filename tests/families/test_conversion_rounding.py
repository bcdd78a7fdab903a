"""The conversion gate's max_rel_diff (1e-4) against a model that computes in low precision: the folds are exact in
float32, but such a model rounds their last-bit differences to whole bfloat16 or float16 steps. Its failure says
so (visionaudit/families/rounding.py ``rounding_alone``) rather than reading as the fold's error."""

from __future__ import annotations

import pytest
import torch
import torchvision  # noqa: F401  (imported once, at module level: a second import registers its ops twice)

from visionaudit.families.assessment import Deferred
from visionaudit.families.conversion import assess_configured_model, check_equivalence
from visionaudit.families.records import AuditRecord
from visionaudit.models.inference import low_precision_of
from visionaudit.models.loading import load_model

THRESHOLDS = {"max_abs_diff": 1e-3, "max_rel_diff": 1e-4, "min_top1_agreement": 0.99}


def test_the_low_precision_logits_carry_is_found():
    x = torch.randn(8, 100, generator=torch.Generator().manual_seed(0)) * 5
    assert low_precision_of(x.bfloat16().float()) == "bfloat16"
    assert low_precision_of(x.half().float()) == "float16"  # float16's 11 bits: not all bfloat16 values
    assert low_precision_of(x) is None and low_precision_of(x.half().float() + 1e-4) is None


def test_a_bfloat16_autocast_models_fold_failure_says_it_is_its_own_rounding():
    # It failed as "converted logits differ by up to 0.000488 (0.0021 of the largest logit)": the fold's error, read so.
    model = load_model("tests.tiny_models:bfloat16_autocast", "cpu")
    rgb = torch.randint(0, 256, (4, 3, 224, 224), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    record = AuditRecord("conversion", "m")
    with pytest.raises(AssertionError) as failed:
        assess_configured_model(record, Deferred(4, lambda: check_equivalence(model, rgb, "rgb_to_gray")), THRESHOLDS,
                                {"model": "m"})
    said = str(failed.value)
    assert record.metrics["max_rel_diff"] > THRESHOLDS["max_rel_diff"]
    assert "its logits are all bfloat16 values" in said and "the model's own rounding, not the fold's error" in said
    assert 'max_rel_diff (and max_abs_diff) under [models."m".conversion]' in said


def test_a_float32_models_fold_failure_says_nothing_of_rounding():
    model = load_model("tests.tiny_models:tiny?size=32", "cpu")
    rgb = torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with pytest.raises(AssertionError) as failed:  # a bound no float32 fold meets: below its last bits
        assess_configured_model(AuditRecord("conversion", "m"), Deferred(2, lambda: check_equivalence(model, rgb, "gray_to_rgb")),
                                {**THRESHOLDS, "max_rel_diff": -1.0}, {"model": "m"})
    assert "converted logits differ" in str(failed.value) and "rounding" not in str(failed.value)
