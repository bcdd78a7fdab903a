"""Common corruptions (ImageNet-C): top-1 error under each corruption and severity, and the mCE.

Each condition is scored on the same images as the protocol's clean pass (visionaudit/families/corruption/__init__.py), so it
is paired: exact McNemar against clean, Holm over a model's conditions (in the report, where all meet).
``test_mce`` reads every condition of its model from the same run (the scheduler keeps a model's
corruption tests on one worker) and gates the mCE, normalized by AlexNet's published errors, for an
ImageNet-1k model; for a model of any other label space it gates the mean error and its mean rise over the
model's own clean error instead (AlexNet's errors are ImageNet-1k's: no mCE). On other
images than the ImageNet validation set the mCE is not comparable with published values; the entries and
summary say so. Judged by the family's assessors (visionaudit/families/corruption/judging.py).
"""

import pytest

from visionaudit.families.corruption import check_severities

pytestmark = pytest.mark.audit("corruption")


def test_corruption(model, corrupted, assess, thresholds, corruption, severity):
    if corruption not in [*thresholds["corruptions"],
                          *thresholds["extras"]] or severity not in check_severities(thresholds["severities"]):
        pytest.skip(f"{corruption} at severity {severity} is not configured for {model.id} ([audits.corruption])")
    assess("condition", corrupted.condition_score(corruption, severity, thresholds["jpeg_round_trip"]),
           model=model.id, corruption=corruption, severity=severity, imagenet=model.label_space.imagenet1k)


def test_mce(model, corrupted, assess, thresholds, audit_seed):
    severities = check_severities(thresholds["severities"])
    assess("mce", corrupted.mce_score(thresholds["corruptions"], severities, thresholds["jpeg_round_trip"]),
           model=model.id, seed=audit_seed, imagenet=model.label_space.imagenet1k)
