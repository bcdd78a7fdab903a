"""The previous release: is this model worse than the one we shipped, image by image?

Run with ``--audit-baseline PREV.json`` (deselected without it). Each test is one compared metric of one
model; all of a model's comparisons are computed together, so each verdict already carries Holm's
correction over them. Judged by ``visionaudit.families.baseline.assess_comparison``: a regression (worse
beyond its tolerance AND significant) fails; a change where only one of the two holds passes with a
warning; an improvement is reported as such.
"""

import pytest

from visionaudit.families.baseline import COMPARED

pytestmark = pytest.mark.audit("baseline")


@pytest.mark.parametrize("comparison", list(COMPARED))
def test_against_baseline(model, comparison, compared_with_baseline, assess, request):
    assess("against_baseline", compared_with_baseline(model, comparison, request), model=model.id,
           comparison=comparison)
