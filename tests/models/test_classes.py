"""A model's classes: from its weights, timm's configuration, a Hugging Face config.id2label, or a class file;
checked against its outputs (visionaudit/models/classes.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torchvision

from tests.tiny_models import TinyNet
from visionaudit.data.label_space import LabelSpace
from visionaudit.errors import ConfigError, SpecError
from visionaudit.models.classes import (
    ClassCountMismatch,
    known_before_load,
    torchvision_classes,
)
from visionaudit.models.loading import load_model
from visionaudit.models.specs import canonical_spec, parse_spec

TEN = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class HFStandIn(TinyNet):
    """A Hugging Face-like classifier: a module with ``.config.id2label`` (keys as transformers writes them)."""

    def __init__(self, id2label: dict) -> None:
        super().__init__(num_classes=len(id2label))
        self.config = SimpleNamespace(id2label=id2label)


def hf_pets():
    torch.manual_seed(0)
    return HFStandIn({"0": "cat", "1": "dog", "2": "hamster"})


def hf_placeholder():
    torch.manual_seed(0)
    return HFStandIn({i: f"LABEL_{i}" for i in range(3)})


def timm_imagenet_wnids() -> list[str]:
    from timm.data import ImageNetInfo

    return list(ImageNetInfo("imagenet-1k").label_names())  # timm's own WNID list: not the suite's


@pytest.fixture
def ten_file(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(TEN) + "\n\n")
    return path


def test_torchvision_weights_keep_wnids_with_readable_names():
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    space = torchvision_classes(weights, "resnet18")
    assert space.names == tuple(weights.meta["categories"]) and space.ids == tuple(timm_imagenet_wnids())
    assert space.imagenet1k and "IMAGENET1K_V1" in space.source and "categories" in space.source
    assert space.label(0) == "tench (n01440764)"
    # Known on the controller without loading (or downloading) anything.
    before = known_before_load(parse_spec("torchvision:resnet18:IMAGENET1K_V1"))
    assert before == space and before.source == space.source


def test_random_torchvision_and_thousand_outputs_are_imagenet():
    loaded = load_model("torchvision:resnet18:none", "cpu")
    assert loaded.label_space.imagenet1k and loaded.imagenet_classes
    assert loaded.label_space.ids == tuple(timm_imagenet_wnids())
    assert loaded.to_dict()["classes"]["ids"][1] == "n01443537" and loaded.to_dict()["classes"]["count"] == 1000


def test_timm_pretrained_configuration_names_its_subset():
    one_k = load_model("timm:resnet18:none", "cpu")
    assert one_k.label_space.imagenet1k and "timm:resnet18 pretrained configuration (imagenet-1k)" == one_k.label_space.source
    assert one_k.label_space.ids == tuple(timm_imagenet_wnids())
    # A 21k-class configuration: timm's ImageNet-21k WNIDs, one per output, not ImageNet-1k.
    from timm.data import ImageNetInfo

    big = load_model("timm:vit_tiny_patch16_224.augreg_in21k:none", "cpu")
    subset = big.label_space.source.rsplit("(", 1)[1].rstrip(")")
    assert subset.startswith("imagenet-21k") and not big.label_space.imagenet1k
    assert len(big.label_space) == big.num_classes == len(ImageNetInfo(subset).label_names())
    assert big.label_space.ids == tuple(ImageNetInfo(subset).label_names())


def test_hugging_face_id2label_in_output_order():
    loaded = load_model("tests.models.test_classes:hf_pets", "cpu")
    assert loaded.label_space.names == ("cat", "dog", "hamster") and "id2label" in loaded.label_space.source
    assert loaded.to_dict()["classes"] == {"count": 3, "source": loaded.label_space.source, "imagenet1k": False,
                                           "names": ["cat", "dog", "hamster"]}
    # transformers' placeholder names nothing: the output indices, saying how to name them
    placeholder = load_model("tests.models.test_classes:hf_placeholder", "cpu")
    assert placeholder.label_space.names == ("0", "1", "2") and "--audit-classes" in placeholder.label_space.source


def test_class_file_from_the_run_and_from_the_spec(ten_file, tmp_path):
    run = load_model("tests.tiny_models:ten_classes", "cpu", classes=str(ten_file))
    assert run.label_space.names == tuple(TEN) and run.label_space.source == f"--audit-classes {ten_file}"
    assert not run.imagenet_classes
    as_json = tmp_path / "classes.json"
    as_json.write_text(json.dumps(TEN[::-1]))
    spec = load_model(f"tests.tiny_models:ten_classes?classes={as_json}", "cpu", classes=str(ten_file))
    assert spec.label_space.names == tuple(TEN[::-1])  # the model's own ?classes= over the run's file
    # The model's own names come before the run's file, which is for models that carry none.
    own = load_model("tests.models.test_classes:hf_pets", "cpu", classes=str(ten_file))
    assert own.label_space.names == ("cat", "dog", "hamster")


def test_class_count_mismatch_names_both_numbers(tmp_path):
    nine = tmp_path / "nine.txt"
    nine.write_text("\n".join(TEN[:9]))
    with pytest.raises(ClassCountMismatch) as e:
        load_model("tests.tiny_models:ten_classes", "cpu", classes=str(nine))
    assert "10 outputs" in str(e.value) and "names 9 classes" in str(e.value) and str(nine) in str(e.value)
    ten = tmp_path / "ten.txt"
    ten.write_text("\n".join(TEN))
    with pytest.raises(ClassCountMismatch, match="3 outputs.*names 10 classes"):
        load_model(f"tests.models.test_classes:hf_pets?classes={ten}", "cpu")


@pytest.mark.parametrize("content, problem", [(None, "cannot be read"), ("\n\n", "holds no names"),
                                              ('["a", 1]', "strings only"), ("a\nb\na\n", "more than once")])
def test_bad_class_files_are_named(tmp_path, content, problem):
    path = tmp_path / "classes.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        load_model("tests.tiny_models:ten_classes", "cpu", classes=str(path))


def test_classes_option_is_in_the_canonical_spec():
    assert canonical_spec("pkg.mod:f?classes=./lists/../classes.txt&size=32") == "pkg.mod:f?classes=classes.txt&size=32"
    assert canonical_spec("pkg.mod:f?classes=a.txt") != canonical_spec("pkg.mod:f?classes=b.txt")
    with pytest.raises(SpecError, match="needs a file"):
        canonical_spec("pkg.mod:f?classes=")


def test_known_before_load_only_where_it_is_known(ten_file):
    assert known_before_load(parse_spec("efficientnet_lite0")).imagenet1k
    assert known_before_load(parse_spec(f"tests.tiny_models:ten_classes?classes={ten_file}")).names == tuple(TEN)
    # A factory may carry its own names (id2label): the run's file is only known to apply once it loads.
    assert known_before_load(parse_spec("tests.tiny_models:ten_classes"), str(ten_file)) is None
    assert known_before_load(parse_spec("torchvision:resnet18:none"), str(ten_file)).names == tuple(TEN)
    assert known_before_load(parse_spec("torchvision:resnet18:none?imagenet=false")) is None


def test_label_space_matches_loosely_and_by_index():
    space = LabelSpace(tuple(["Golden Retriever", "tabby-cat", "ship"]), "test")
    assert [space.index(n) for n in ("golden_retriever", "TabbyCat", "ship", "2", "3", "goldfish")] == [0, 1, 2, 2, None, None]
    assert space.closest("tabby cats") == "tabby-cat"


def test_a_length_known_to_differ_before_loading_is_refused_then(ten_file):
    from visionaudit.models.classes import check_before_load

    with pytest.raises(ClassCountMismatch, match="torchvision:resnet18:none.* has 1000 outputs.*names 10 classes"):
        check_before_load(parse_spec(f"torchvision:resnet18:none?classes={ten_file}"))
    with pytest.raises(ClassCountMismatch, match="efficientnet_lite0.* has 1000 outputs.*names 10 classes"):
        check_before_load(parse_spec(f"efficientnet_lite0?classes={ten_file}"))
    # The run's file does not apply to weights that name their classes; a factory's outputs are known at load.
    check_before_load(parse_spec("torchvision:resnet18"), str(ten_file))
    check_before_load(parse_spec("tests.tiny_models:ten_classes"), str(ten_file))
