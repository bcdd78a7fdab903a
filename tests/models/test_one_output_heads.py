"""Heads of one output known before the model loads: a state dict's (``--arch`` and its weights' shapes) and a Hugging
Face folder's (its config.json). What the load would refuse is refused at startup (exit 4) with the load's message
(visionaudit/models/heads.py, ``classes.check_before_load``); a Hugging Face regression head is said to be one."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision  # noqa: F401  (imported once, at module level: a second import registers its ops twice)

from tests.hub_models import tiny_vit
from visionaudit.errors import ModelOutputError
from visionaudit.models.classes import check_before_load, outputs_before_load
from visionaudit.models.loading import load_model
from visionaudit.models.specs import parse_spec

ARCH = "torchvision:mobilenet_v3_small"


@pytest.fixture(scope="module")
def one_output_checkpoint(tmp_path_factory):
    """mobilenet_v3_small with its 1,000-class head cut to one output, as a binary classifier fine-tuned so."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small()
    net.classifier[3] = torch.nn.Linear(net.classifier[3].in_features, 1)
    path = tmp_path_factory.mktemp("ckpt") / "binary.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _refusals(spec: str, arch: str | None = None, classes: str | None = None) -> tuple[str, str]:
    """The startup check's refusal and the load's, both ModelOutputError."""
    with pytest.raises(ModelOutputError) as startup:
        check_before_load(parse_spec(spec, arch), classes)
    with pytest.raises(ModelOutputError) as load:
        load_model(spec, "cpu", arch=arch, classes=classes)
    return str(startup.value), str(load.value)


@pytest.mark.parametrize("given", [None, ["a", "b", "c"]])
def test_a_state_dicts_one_output_head_is_refused_at_startup_as_at_load(one_output_checkpoint, tmp_path, given):
    # Its head was known from its weights' shapes, but the run stopped only as the model loaded (exit 1, not 4).
    classes = None
    if given is not None:
        (tmp_path / "classes.json").write_text(json.dumps(given))
        classes = str(tmp_path / "classes.json")
    assert outputs_before_load(parse_spec(str(one_output_checkpoint), ARCH)) == 1
    startup, load = _refusals(str(one_output_checkpoint), ARCH, classes)
    assert startup == load and "has one output" in startup and "class file of two names" in startup
    assert ("none were given" if given is None else "names 3 classes") in startup


def test_a_state_dicts_one_output_head_with_two_names_passes_the_startup_check(one_output_checkpoint, tmp_path):
    (tmp_path / "classes.txt").write_text("no cat\ncat\n")
    check_before_load(parse_spec(str(one_output_checkpoint), ARCH), str(tmp_path / "classes.txt"))  # no refusal
    assert outputs_before_load(parse_spec(str(one_output_checkpoint), "torchvision:resnet18")) is None  # not its arch


@pytest.mark.parametrize("problem_type", [None, "regression"])
def test_an_hf_regression_head_is_said_to_be_one(tmp_path, problem_type):
    # It was refused as a sigmoid's logit lacking two class names: a regression head is no binary classifier.
    folder = tiny_vit(tmp_path / "vit", classes=("LABEL_0",))
    if problem_type:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "problem_type": problem_type}))
    startup, load = _refusals(f"hf:{folder}")
    assert startup == load and "is a regression head" in startup and "cannot audit it as" in startup
    assert ('problem_type "regression"' if problem_type else "num_labels 1 and no problem_type") in startup
    assert "sigmoid" not in startup if problem_type else "name its two classes" in startup


def test_an_hf_one_output_head_said_to_be_a_binary_classifier_is_audited_as_two_classes(tmp_path):
    folder = tiny_vit(tmp_path / "vit", classes=("LABEL_0",))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "problem_type": "multi_label_classification"}))
    startup, load = _refusals(f"hf:{folder}")  # no names: the one-output message, not the regression one
    assert startup == load and "has one output" in startup and "regression" not in startup
    (tmp_path / "classes.txt").write_text("no cat\ncat\n")
    model = load_model(f"hf:{folder}", "cpu", classes=str(tmp_path / "classes.txt"))
    assert model.num_classes == 2 and model.label_space.names == ("no cat", "cat")
