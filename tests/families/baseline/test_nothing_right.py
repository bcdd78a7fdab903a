"""A baseline comparison where neither release got any image right is not judged (stop-33 review, A2): 0 vs 0 is
"unchanged" by every test (McNemar on no discordant pair, p = 1), yet no image could be lost, so it passed on nothing.
Hand-built per-image right/wrong, compared as a run and `visionaudit compare` compare them."""

from __future__ import annotations

import numpy as np
import pytest

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.data.imagenet16 import categories
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


# -- every kind the guard covers (stop-33 review R2, R3): balanced accuracy, the shape-only accuracies, each corruption
# condition and the corruption summary. Each case drops to "unchanged" 0 against 0 when its kind leaves the guard.

CATEGORIES = list(categories())
STIMULI = tuple(f"{c}/{c}{k}.png" for c in CATEGORIES for k in range(10))  # 160 shape-only stimuli, 10 per category
CONDITIONS = [(c, s) for c in ("gaussian_noise", "fog") for s in (1, 2, 3)]


def _every_kind(old_right: int, new_right: int, corruption_right: dict | None = None) -> dict:
    """Both sides with clean (and its classes), edges, filled silhouettes and six corruption conditions: ``*_right``
    images right on each side (the first ones), ``corruption_right`` (condition -> (old, new)) overriding a
    condition's counts. A shape-only decision is wrong by naming the next category."""
    old, new = ModelOutcomes("m", corruption_summary="mce"), ModelOutcomes("m", corruption_summary="mce")
    labelled = SampleSet("labelled", "s", IDS, "f", None, 0)
    corruption = SampleSet("corruption", "c", IDS, "f", None, 0)
    for side, k, i in ((old, old_right, 0), (new, new_right, 1)):
        right = np.arange(N) < k
        side.add(labelled, "clean", right)
        side.add_classes(labelled, [image.split("_")[0] for image in IDS])
        for role in ("edges", "filled-silhouettes"):
            truth = [s.split("/")[0] for s in STIMULI]
            wrong = [CATEGORIES[(CATEGORIES.index(t) + 1) % len(CATEGORIES)] for t in truth]
            decisions = np.array([t if j < k else w for j, (t, w) in enumerate(zip(truth, wrong))], dtype=object)
            side.add(SampleSet(role, role[0], STIMULI, "g", None, 0), role, decisions)
        for c, s in CONDITIONS:
            n = (corruption_right or {}).get(f"{c}-{s}", (old_right, new_right))[i]
            side.add(corruption, f"{c}-{s}", np.arange(N) < n)
    return compare_model(old, new, settings_from(DEFAULTS))


GUARDED = ["balanced_accuracy", "edges_accuracy", "silhouettes_accuracy",
           *(f"corruption_{c}_{s}" for c, s in CONDITIONS), "mce"]


def test_zero_against_zero_is_not_compared_for_every_guarded_kind():
    results = _every_kind(0, 0)
    for name in GUARDED:
        r = results[name]
        assert (r.verdict, r.missing_side) == ("not_compared", "candidate"), (name, r.verdict, r.reason)
        assert r.reason.startswith("neither release got an image"), (name, r.reason)
    assert results["edges_accuracy"].reason.startswith(f"neither release got an image of edges right (0 of {len(STIMULI)}")
    assert results["corruption_fog_2"].reason.startswith(f"neither release got an image of fog-2 right (0 of {N} in the "
                                                         f"baseline, 0 of {N} here)")
    assert results["mce"].reason.startswith(f"neither release got an image right under any of the 6 conditions the mCE "
                                            f"averages (0 of {N} in each")
    record = AuditRecord("baseline", "m", params={"comparison": "mce"})
    with pytest.raises(NotJudged, match="not compared with m: neither release got an image right under any"):
        assess_comparison(record, BaselineComparison(results["mce"], "m", True), DEFAULTS, {"model": "m", "comparison": "mce"})


def test_one_image_right_on_either_side_is_judged_for_every_guarded_kind():
    for old_right, new_right in ((1, 0), (0, 1)):
        results = _every_kind(old_right, new_right)
        for name in GUARDED:
            r = results[name]
            assert r.verdict != "not_compared", (name, old_right, new_right, r.reason)
            assert r.p_value is not None and 0 < r.p_value <= 1, (name, r.p_value)


def test_the_summary_is_judged_when_one_of_its_conditions_had_an_image_right():
    """Five conditions all wrong on both sides are each not compared; the one where the baseline got 3 images right
    (lost here) is judged, and so is the mCE over all six: it moved (the 0-vs-0 conditions add no change)."""
    results = _every_kind(0, 0, {"fog-3": (3, 0)})
    assert results["corruption_fog_3"].verdict != "not_compared"
    assert results["corruption_fog_3"].delta == pytest.approx(3 / N)
    assert all(results[f"corruption_{c}_{s}"].verdict == "not_compared" for c, s in CONDITIONS if (c, s) != ("fog", 3))
    mce = results["mce"]
    assert mce.verdict != "not_compared" and mce.delta > 0, (mce.verdict, mce.reason)
    assert mce.test.startswith("sign-flip test on the 3 images whose weighted error changed")
