"""The previous release: is this model worse than the one we shipped, image by image?

Run with ``--audit-baseline PREV.json`` (deselected without it). Each test is one compared metric of one
model; all of a model's comparisons are computed together, so each verdict already carries Holm's
correction over them. A regression (worse beyond its tolerance AND significant) fails; a change where
only one of the two holds passes with a warning; an improvement is reported as such.
"""

import warnings

import pytest

from visionaudit.families.baseline import COMPARED, BaselineWarning
from visionaudit.formatting import fmt

pytestmark = pytest.mark.audit("baseline")


@pytest.mark.parametrize("comparison", list(COMPARED))
def test_against_baseline(imagenet_model, comparison, compared_with_baseline, record, request):
    result, old_spec, bounds, paired = compared_with_baseline(imagenet_model, comparison, request)
    record.metric("baseline_model", old_spec)
    record.metric("paired", paired)
    for name, value in result.to_dict().items():
        if name != "name":
            record.metric(name, value)
    record.threshold("alpha", bounds["alpha"])
    if result.tolerance is not None:
        record.threshold("tolerance", result.tolerance.absolute)
        if result.tolerance.relative is not None:
            record.threshold("relative_tolerance", result.tolerance.relative)
    if result.verdict == "not_compared":
        if result.missing_side == "candidate":  # this run could not measure what the gate needs
            record.not_judged = f"not compared with {old_spec}: {result.reason}"
            pytest.skip(f"not judged: {record.not_judged}")
        pytest.skip(f"not compared with {old_spec}: {result.reason}")  # nothing in the baseline to hold it to
    where = f"{imagenet_model.id} vs {old_spec}, {comparison}: {fmt(result.baseline)} -> {fmt(result.candidate)}"
    lost = f"; {result.lost_count} images went from right to wrong (first: {', '.join(result.lost[:5])})" if result.lost_count else ""
    if result.verdict == "warning":
        warnings.warn(BaselineWarning(f"{where}: {result.reason}{lost}"), stacklevel=1)
    assert result.verdict != "regression", f"{where}: regression, {result.reason}{lost}"
