"""A baseline comparison where neither release got any image right is not judged (stop-33 review, A2): 0 vs 0 is
"unchanged" by every test (McNemar on no discordant pair, p = 1), yet no image could be lost, so it passed on nothing.
Hand-built per-image right/wrong, compared as a run and `visionaudit compare` compare them."""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import NotJudged
from visionaudit.families.baseline import (
    BaselineComparison,
    ModelOutcomes,
    assess_comparison,
    compare_model,
    settings_from,
)
from visionaudit.families.records import AuditRecord

DEFAULTS = load_config(None).thresholds("baseline", "m")
N = 200
IDS = tuple(f"n{1440764 + k % 10:08d}_{k}.JPEG" for k in range(N))


def _sides(old_right: int, new_right: int, paired: bool = True) -> dict:
    old, new = ModelOutcomes("m"), ModelOutcomes("m")
    labelled = SampleSet("labelled", "s", IDS, "f", None, 0)
    for side, k in ((old, old_right), (new, new_right)):
        right = np.zeros(N, dtype=bool)
        right[:k] = True
        for condition in ("clean", "rotation"):
            side.add(labelled, condition, right)
    return compare_model(old, new, settings_from(DEFAULTS, paired=paired))


@pytest.mark.parametrize("paired", [True, False])
def test_zero_against_zero_is_not_compared_on_the_candidates_side(paired):
    results = _sides(0, 0, paired)
    for name in ("clean_top1", "top1_rotation"):
        r = results[name]
        assert r.verdict == "not_compared" and r.missing_side == "candidate", (name, r.verdict, r.reason)
        assert r.reason.startswith(f"neither release got an image of {'clean' if name == 'clean_top1' else 'rotation'} right "
                                   f"(0 of {N} in the baseline, 0 of {N} here)")
    record = AuditRecord("baseline", "m", params={"comparison": "top1_rotation"})
    with pytest.raises(NotJudged, match="not compared with m: neither release got an image of rotation right"):
        assess_comparison(record, BaselineComparison(results["top1_rotation"], "m", paired), DEFAULTS,
                          {"model": "m", "comparison": "top1_rotation"})


@pytest.mark.parametrize("old_right, new_right, verdicts", [
    (1, 0, {"unchanged", "warning"}),  # one image could be lost, and was: judged (too little to be significant)
    (0, 5, {"improvement", "unchanged"}),  # the baseline had nothing, the candidate gains: judged, a finding
    (40, 0, {"regression"}),  # every right image lost: judged, and it fails
])
def test_one_side_with_an_image_right_is_judged(old_right, new_right, verdicts):
    r = _sides(old_right, new_right)["top1_rotation"]
    assert r.verdict in verdicts, (r.verdict, r.reason)
    assert r.delta == pytest.approx((new_right - old_right) / N)
