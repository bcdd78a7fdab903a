"""A baseline that holds a model it never loaded (its run stopped first, its load failed, -k left it no test) is refused
saying so, not as a report without the model whose fix is to pair it with another."""

from __future__ import annotations

import copy

import pytest

from tests.synthetic_runs import varied_runs
from visionaudit.errors import DataError
from visionaudit.families.baseline.pairing import model_pairs
from visionaudit.report.compare import compare_reports


def test_a_baseline_model_that_never_loaded_is_named_as_such():
    """rep40: `compare interrupted.json new.json` (the old run stopped before its model loaded) said "the old report has
    no model m. The old report holds no loaded model: pair with --model NEW_SPEC --baseline-as OLD_SPEC"."""
    whole = varied_runs(3)[0]
    old = copy.deepcopy(whole)
    old["models"]["m"] = {"spec": "m", "loaded": False, "error": None}
    with pytest.raises(DataError) as refused:
        compare_reports(old, whole)
    said = str(refused.value)
    assert said == ("m: the old report's m did not load in that run (no test got as far as loading it: that run stopped "
                    "first, or -k/-m left it no test), so it holds nothing of it to compare with; compare with a report "
                    "of a run in which it loaded"), said
    old["models"]["m"]["error"] = "(RuntimeError) weights file missing"
    with pytest.raises(DataError, match=r"m: the baseline's m did not load in that run \(its load error: \(RuntimeError\) "
                                        r"weights file missing\)"):
        model_pairs(["m"], old)
    # A model the baseline does not hold at all is still offered the pairing.
    with pytest.raises(DataError, match="m2: the baseline has no model m2. The baseline holds no loaded model: pair with"):
        model_pairs(["m2"], old)
