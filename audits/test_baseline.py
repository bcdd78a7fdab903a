"""The previous release: is this model worse than the one we shipped, image by image?

Run with ``--audit-baseline PREV.json`` (deselected without it). Each test is one compared metric of one
model; all of a model's comparisons are computed together, so each verdict already carries Holm's
correction over them. Judged by ``visionaudit.families.baseline.assess_comparison``: a regression (worse
beyond its tolerance AND significant) fails; a change where only one of the two holds passes with a
warning; an improvement is reported as such.
"""

import pytest

pytestmark = pytest.mark.audit("baseline")


# ``comparison`` is parametrized by fixtures/baseline.py: the fixed comparisons and the corruption conditions
# (configured here, held by the baseline), e.g. test_against_baseline[lite0-corruption_fog_3].
def test_against_baseline(model, comparison, compared_with_baseline, assess, request):
    assess("against_baseline", compared_with_baseline(model, comparison, request), model=model.id,
           comparison=comparison)
