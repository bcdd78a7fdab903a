"""Deployment: the forms a model ships in (TorchScript, torch.export, ONNX Runtime, bf16/fp16,
channels_last) give the logits of the model as loaded, on real images. A form that does not apply
here (fp16 without a GPU) or that its exporter refuses is a skip carrying the reason. Judged by
``visionaudit.families.deployment.assess_form`` (its bounds per form; too few images: not judged)."""

import pytest

from visionaudit import Deferred
from visionaudit.families.deployment import (
    DEPLOYMENTS,
    check_form,
)

pytestmark = pytest.mark.audit("deployment")


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_deployment(model, labelled_images, evaluate, audit_seed, assess, thresholds, deployment):
    subset = labelled_images.stratified_subset(thresholds["images"], audit_seed)

    def measure():
        ev = evaluate(model, subset)
        return check_form(model, ev.images, ev.logits, deployment)

    assess("form", Deferred(len(subset), measure), model=model.id, deployment=deployment)
