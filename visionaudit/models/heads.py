"""A model's head where it is known before the model loads: a state dict's classifier rows, read from its weights'
shapes against its ``--arch`` built on the meta device (nothing allocated), and the heads of one output the load
would refuse (visionaudit/models/loading.py), refused instead at startup (exit 4) with the same message: a one-output
logit without two class names, and a Hugging Face regression head, which no class names make a classifier."""

from __future__ import annotations

import json
from typing import Any

from visionaudit.errors import ModelOutputError, VisionAuditError
from visionaudit.models.specs import ModelSpec, parse_spec

REGRESSION = "regression"


def state_dict_outputs(spec: ModelSpec) -> int | None:
    """The outputs of a state dict's model (``--arch`` torchvision or timm): the rows of its checkpoint's classifier head
    where it differs from the architecture's own only there (:func:`visionaudit.models.checkpoints.head_rows`), else the
    architecture's; None when that cannot be read without loading it (another architecture, an unreadable file)."""
    from visionaudit.models.checkpoints import head_rows, tensor_shapes

    try:
        arch = parse_spec(spec.options["arch"])  # its kind and name, as the load builds it
    except (KeyError, ValueError, VisionAuditError):  # said where the model loads
        return None
    if arch.kind not in ("torchvision", "timm") or spec.path is None:
        return None
    shapes = tensor_shapes(spec.path)
    if shapes is None:
        return None
    import torch

    try:
        with torch.device("meta"):  # shapes only: no weights drawn or allocated
            if arch.kind == "torchvision":
                import torchvision

                if arch.name not in torchvision.models.list_models(module=torchvision.models):
                    return None
                module, outputs = torchvision.models.get_model(arch.name, weights=None), 1000
            else:
                import timm

                module = timm.create_model(arch.name, pretrained=False)
                outputs = getattr(module, "num_classes", None)
    except Exception:  # noqa: BLE001 (an architecture that will not build here: the load says why)
        return None
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return outputs if own == shapes else head_rows(own, shapes, outputs)


def one_output_error(spec: str, why: str) -> ModelOutputError:
    return ModelOutputError(
        f"model {spec} has one output (a binary classifier's logit z, read through a sigmoid): it is audited as two "
        "classes, logits [0, z] (softmax 1 - sigmoid(z), sigmoid(z)), so name them in a class file of two names, the "
        f"negative one first (?classes=FILE or --audit-classes FILE); {why}")


def hf_problem_type(config: Any) -> str | None:
    """A Hugging Face config's ``problem_type`` (a loaded model's config, or its config.json's dict); None when unset."""
    value = config.get("problem_type") if isinstance(config, dict) else getattr(config, "problem_type", None)
    return value if isinstance(value, str) else None


def hf_config_problem_type(spec: ModelSpec) -> str | None:
    """``problem_type`` in an ``hf:`` model's config.json, on disk before it loads; None when unset or unreadable."""
    from visionaudit.models.hub import hf_config_file

    path = hf_config_file(spec) if spec.kind == "hf" else None
    try:
        return hf_problem_type(json.loads(path.read_text())) if path is not None else None
    except (OSError, ValueError):  # the load says why
        return None


def regression_error(spec: ModelSpec, problem_type: str | None, names_given: bool) -> ModelOutputError | None:
    """A Hugging Face model of one output that is a regression head: ``problem_type`` "regression", or unset (Hugging
    Face then trains one label as regression) with no two class names given to say it is a binary classifier's logit.
    None for any other model."""
    if spec.kind != "hf" or not (problem_type == REGRESSION or (problem_type is None and not names_given)):
        return None
    why = ('its config.json says problem_type "regression"' if problem_type == REGRESSION else
           "its config.json has num_labels 1 and no problem_type, which Hugging Face trains as regression")
    fix = ("audit a classification head (num_labels of 2 or more)" if problem_type == REGRESSION else
           "audit a classification head (num_labels of 2 or more); if its one output is in fact a binary classifier's "
           "logit, read through a sigmoid, name its two classes in a class file, the negative one first (?classes=FILE or "
           "--audit-classes FILE), and it is audited as two classes, logits [0, z]")
    return ModelOutputError(f"model {spec.raw} is a regression head ({why}): its one output is a number, not a class's "
                            f"logit, and the suite audits classifiers, so it cannot audit it as one; {fix}")
