"""The deployment family: the forms a model ships in give the logits of the model as loaded. Its descriptor and
assessor; the conversions to each form and their comparison are in visionaudit/families/deployment_forms.py, imported
where a model is converted (the descriptor is read on the xdist controller, which never imports torch).
"""

from __future__ import annotations

from typing import Any, Mapping

from visionaudit.families import thresholds as f
from visionaudit.families.assessment import Deferred, NotApplicable, require_count
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import Family, register_family

DEPLOYMENTS = ("torchscript", "torch_export", "onnxruntime", "bf16_cpu", "fp16_cuda", "channels_last")


class Unsupported(Exception):
    """This deployment form does not apply here; the message says why."""


def assess_form(record: AuditRecord, measured: Deferred, thresholds: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    """The form's largest logit difference and top-1 agreement, within its own bounds (``context["deployment"]``).
    ``measured.measure()`` exports and compares (deployment_forms.check_form), raising :class:`Unsupported` where the
    form does not apply here."""
    form = context["deployment"]
    require_count(record, thresholds, measured.n_images, "labelled images")
    try:
        result = measured.measure()
    except Unsupported as e:
        raise NotApplicable(f"{context['model']} {form}: {e}") from None
    record.metric("n_images", measured.n_images)
    record.metric("max_rel_diff", result.max_rel_diff)
    ok = record.check_max("max_abs_diff", result.max_abs_diff, "max_abs_diff", thresholds.entry("max_abs_diff", form))
    ok &= record.check_min("top1_agreement", result.top1_agreement, "min_top1_agreement", thresholds.entry("min_top1_agreement", form))
    if not ok:
        raise AssertionError(f"{context['model']} as {form}: logits differ by up to {result.max_abs_diff:.3g}, "
                             f"top-1 agreement {result.top1_agreement:.3f} on {measured.n_images} real images")


FAMILY = register_family(Family(
    name="deployment",
    gates="the forms a model ships in (TorchScript, torch.export, ONNX Runtime, bf16 on CPU, fp16 on CUDA, "
          "channels_last) give the logits of the model as loaded, on real images",
    key_metric="max_abs_diff",
    higher_is_better=False,
    assessors={"form": assess_form},
    metrics=("max_rel_diff", "top1_agreement", "n_images"),
    thresholds={
        "images": f.count("real images (a stratified subset) each form is compared on", default=64),
        "min_images": f.min_images(default=16),
        "max_abs_diff": f.per_name(DEPLOYMENTS, f.nonnegative(), "per form: largest |logit difference|",
                                   default={"torchscript": 1e-4, "torch_export": 1e-4, "onnxruntime": 1e-3, "channels_last": 1e-3,
                                            "bf16_cpu": 1.5, "fp16_cuda": 0.5}),
        "min_top1_agreement": f.per_name(DEPLOYMENTS, f.fraction(), "per form: share of images with the same top-1",
                                         default={"torchscript": 0.99, "torch_export": 0.99, "onnxruntime": 0.99, "channels_last": 0.99,
                                                  "bf16_cpu": 0.9, "fp16_cuda": 0.95}),
    },
    html_section="visionaudit.html.sections:conversion_and_deployment",  # one section with conversion
))
