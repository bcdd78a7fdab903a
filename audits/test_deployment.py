"""Deployment: the forms a model ships in (TorchScript, torch.export, ONNX Runtime, bf16/fp16,
channels_last) give the logits of the model as loaded, on real images. A form that does not apply
here (fp16 without a GPU) or that its exporter refuses is a skip carrying the reason."""

import pytest

from visionaudit.families.deployment import DEPLOYMENTS, Unsupported, check_form

pytestmark = pytest.mark.audit("deployment")


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_deployment(model, labelled_images, evaluate, audit_seed, record, thresholds, deployment, judge_count):
    subset = labelled_images.stratified_subset(thresholds["images"], audit_seed)
    judge_count(len(subset), "labelled images")
    ev = evaluate(model, subset)
    try:
        result = check_form(model, ev.images, ev.logits, deployment)
    except Unsupported as e:
        pytest.skip(f"{model.id} {deployment}: {e}")
    record.metric("n_images", len(subset))
    record.metric("max_rel_diff", result.max_rel_diff)
    ok = record.check_max("max_abs_diff", result.max_abs_diff, "max_abs_diff", thresholds.entry("max_abs_diff", deployment))
    ok &= record.check_min("top1_agreement", result.top1_agreement, "min_top1_agreement",
                           thresholds.entry("min_top1_agreement", deployment))
    assert ok, (f"{model.id} as {deployment}: logits differ by up to {result.max_abs_diff:.3g}, "
                f"top-1 agreement {result.top1_agreement:.3f} on {len(subset)} real images")
