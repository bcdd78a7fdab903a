"""A model's classes: from its weights, timm's configuration, a Hugging Face config.id2label, or a class file;
checked against its outputs (visionaudit/models/classes.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torchvision

from tests.tiny_models import TinyNet
from visionaudit.data.label_space import LabelSpace, imagenet_names, read_classes_file
from visionaudit.errors import ConfigError, SpecError
from visionaudit.models.classes import (
    ClassCountMismatch,
    check_before_load,
    imagenet_hint,
    is_imagenet1k,
    known_before_load,
    spaces_known_before_load,
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


def classic_imagenet_labels() -> list[str]:
    """A Hugging Face ImageNet id2label as the configs write it (the classic imagenet1000_clsidx_to_labels): every
    other name with its synonyms / Latin name after a comma, and the classic spellings where torchvision renamed a
    duplicate (134 "crane", 639 "maillot, tank suit") or kept only the first lemma."""
    names = [f"{n}, {n.split()[-1]}us latinus" if i % 2 else n for i, n in enumerate(imagenet_names())]
    names[134], names[639] = "crane", "maillot, tank suit"
    names[0], names[1] = "tench, Tinca tinca", "goldfish, Carassius auratus"
    return names


def hf_imagenet():
    torch.manual_seed(0)
    return HFStandIn({str(i): n for i, n in enumerate(classic_imagenet_labels())})


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


ID2LABEL_FIX = (r"holds a JSON object, not a list: give the names as a JSON list in output order, or one name per line "
                r"\(for an id2label mapping, its names in index order\)")


# Stop 43: a JSON object (an id2label mapping, as Hugging Face configs hold) was read as lines of names ('{', '"0":
# "cat",', ...): a class count or unmatched folder refusal that said the class file was incomplete.
@pytest.mark.parametrize("content, problem", [(None, "cannot be read"), ("\n\n", "holds no names"),
                                              ('["a", 1]', "strings only"), ("a\nb\na\n", "more than once"),
                                              (json.dumps({str(i): n for i, n in enumerate(TEN)}), ID2LABEL_FIX),
                                              (json.dumps({str(i): n for i, n in enumerate(TEN)}, indent=2), ID2LABEL_FIX)])
def test_bad_class_files_are_named(tmp_path, content, problem):
    path = tmp_path / "classes.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        load_model("tests.tiny_models:ten_classes", "cpu", classes=str(path))


def test_a_byte_order_mark_is_not_part_of_the_first_class(tmp_path):
    """Windows Notepad saves UTF-8 with a byte-order mark (EF BB BF) and CRLF line ends."""
    text, listed = tmp_path / "classes.txt", tmp_path / "classes.json"
    text.write_bytes(b"\xef\xbb\xbfbird\r\ndog\r\ncaf\xc3\xa9\r\n")
    listed.write_bytes(b'\xef\xbb\xbf["bird", "dog", "caf\xc3\xa9"]')
    assert read_classes_file(text) == read_classes_file(listed) == ("bird", "dog", "caf\u00e9")


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


def test_the_startup_checks_read_the_models_whose_classes_are_known_before_load(ten_file, tmp_path):
    """One loop for label_check and shape_bias/map_check: (spec id, label space) of each model known before it loads,
    in order; a model known only once loaded and one whose classes file is unreadable are left to its loading."""
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    models = ["tests.tiny_models:ten_classes", f"tests.tiny_models:ten_classes?classes={ten_file}",
              f"tests.tiny_models:ten_classes?classes={empty}", "efficientnet_lite0"]
    known = list(spaces_known_before_load(models))
    assert [model for model, _ in known] == [canonical_spec(models[1]), "efficientnet_lite0"]
    assert known[0][1].names == tuple(TEN) and known[1][1].imagenet1k
    with pytest.raises(ConfigError):  # what the loop leaves to the model's loading
        known_before_load(parse_spec(models[2]))
    assert [model for model, _ in spaces_known_before_load(models[:1], str(ten_file))] == []  # a factory: once loaded


def test_label_space_matches_loosely_and_by_index():
    space = LabelSpace(tuple(["Golden Retriever", "tabby-cat", "ship"]), "test")
    assert [space.index(n) for n in ("golden_retriever", "TabbyCat", "ship", "2", "3", "goldfish")] == [0, 1, 2, None, None, None]
    # A number is an output index only where the data says so (a CSV manifest's label), never a folder's name.
    assert [space.index(n, numeric=True) for n in ("2", "3")] == [2, None]
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


def test_hugging_face_imagenet_id2label_is_imagenet1k():
    """Review of issues 23/24: an HF ImageNet model's "tench, Tinca tinca" names lost ImageNet-1k (and its audits)."""
    loaded = load_model("tests.models.test_classes:hf_imagenet", "cpu")
    assert loaded.label_space.imagenet1k and loaded.imagenet_classes
    assert loaded.label_space.ids == tuple(timm_imagenet_wnids()) and "id2label" in loaded.label_space.source
    assert loaded.label_space.label(0) == "tench (n01440764)"
    assert is_imagenet1k(timm_imagenet_wnids())  # WNIDs as names
    # Not ImageNet-1k: 1,000 names of which a few dozen differ, or the right names out of order.
    names = classic_imagenet_labels()
    off = names[:]
    for i in range(0, 1000, 50):
        off[i] = f"class {i}"
    assert not is_imagenet1k(off)
    assert not is_imagenet1k(names[1:] + names[:1]) and not is_imagenet1k(names[:999])


def test_imagenet_flag_applies_to_the_label_space():
    """?imagenet= decides the label space itself, so that imagenet_classes and classes.imagenet1k agree."""
    plain = load_model("torchvision:resnet18:none?imagenet=false", "cpu")
    assert not plain.imagenet_classes and not plain.label_space.imagenet1k and plain.label_space.ids is None
    assert not plain.to_dict()["classes"]["imagenet1k"]
    hf = load_model("tests.models.test_classes:hf_imagenet?imagenet=false", "cpu")
    assert not hf.imagenet_classes and not hf.label_space.imagenet1k and len(hf.label_space) == 1000
    before = known_before_load(parse_spec("torchvision:resnet18:IMAGENET1K_V1?imagenet=false"))
    assert before is not None and not before.imagenet1k
    forced = load_model("tests.tiny_models:tiny?imagenet=true", "cpu")
    assert forced.imagenet_classes and forced.label_space.imagenet1k
    # ?imagenet=true on a model without 1,000 outputs: refused, naming both numbers (exit 4 as a ConfigError).
    with pytest.raises(ClassCountMismatch) as refused:
        load_model("tests.tiny_models:ten_classes?imagenet=true", "cpu")
    assert "10 outputs" in str(refused.value) and "1,000" in str(refused.value) and "?imagenet=true" in str(refused.value)
    with pytest.raises(SpecError, match="neither true nor false"):  # from the spec alone, before it loads
        load_model("tests.tiny_models:tiny?imagenet=maybe", "cpu")


def test_the_imagenet_hint_is_given_for_1000_classes_that_are_not_imagenet():
    assert "?imagenet=true" in imagenet_hint(LabelSpace(tuple(f"c{i}" for i in range(1000)), "test"))
    assert imagenet_hint(LabelSpace(tuple(TEN), "test")) == ""
    assert imagenet_hint(known_before_load(parse_spec("efficientnet_lite0"))) == ""


def test_timm_classes_are_known_before_load_from_the_pretrained_configuration(ten_file, monkeypatch):
    """Issue 24, item 3: the label space a timm model gets when it loads, from timm's pretrained configuration alone
    (in the package: no model built, no weights, no network)."""
    import timm
    from timm.data import ImageNetInfo

    def no_build(*args, **kwargs):
        raise AssertionError("a timm model was built")

    monkeypatch.setattr(timm, "create_model", no_build)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in ("timm:resnet18", "timm:resnet18.a1_in1k", "timm:resnet18:none"):
        space = known_before_load(parse_spec(spec))
        assert space.imagenet1k and space.ids == tuple(timm_imagenet_wnids()), spec
    big = known_before_load(parse_spec("timm:vit_tiny_patch16_224.augreg_in21k"))
    assert len(big) == 21843 and big.ids == tuple(ImageNetInfo("imagenet-21k-goog").label_names()) and not big.imagenet1k
    assert known_before_load(parse_spec("timm:convnext_tiny.fb_in22k")).ids == tuple(ImageNetInfo("imagenet-22k").label_names())
    # ?classes= and ?imagenet=false as for every model; a name timm does not know: said where it loads.
    assert known_before_load(parse_spec(f"timm:resnet18?classes={ten_file}")).names == tuple(TEN)
    assert not known_before_load(parse_spec("timm:resnet18?imagenet=false")).imagenet1k
    assert known_before_load(parse_spec("timm:no_such_net_xyz")) is None
    # A class file whose length is not the configuration's outputs: refused before the model loads.
    with pytest.raises(ClassCountMismatch, match="has 1000 outputs, but its class list"):
        check_before_load(parse_spec(f"timm:resnet18?classes={ten_file}"))


def test_timm_classes_before_load_equal_those_at_load():
    for spec in ("timm:resnet18:none", "timm:vit_tiny_patch16_224.augreg_in21k:none"):
        loaded = load_model(spec, "cpu")
        before = known_before_load(parse_spec(spec))
        assert (before == loaded.label_space and before.ids == loaded.label_space.ids
                and before.source == loaded.label_space.source)


def test_a_huge_named_label_space_is_recorded_by_name_count_and_sha256():
    """Issue 24, item 4: timm's ImageNet-21k (21,843 names) is not written name by name into the model entry; its
    name, count and sha256 are, and readers rebuild the names from them (the robustness summary's class labels)."""
    import hashlib

    import jsonschema
    from timm.data import ImageNetInfo

    from visionaudit.data.label_space import NAMES_IN_FULL, names_of
    from visionaudit.families.robustness import class_labels
    from visionaudit.models.classes import timm_classes_before_load

    big = timm_classes_before_load("vit_tiny_patch16_224.augreg_in21k")
    entry = big.to_dict()
    info = ImageNetInfo("imagenet-21k-goog")
    descriptions = [d.split(",")[0].strip() for d in info.label_descriptions()]
    assert "names" not in entry and "ids" not in entry and entry["names_omitted"] == entry["count"] == 21843 > NAMES_IN_FULL
    assert entry["label_space"] == "imagenet-21k-goog"
    assert entry["sha256"] == hashlib.sha256("\n".join(descriptions).encode()).hexdigest()
    assert len(json.dumps(entry)) < 500
    names, ids = names_of(entry)
    assert list(names) == descriptions and ids == tuple(info.label_names())
    assert LabelSpace.from_dict(entry) == big
    assert names_of({**entry, "sha256": "0" * 64}) is None  # other names than this timm's: not guessed
    report = {"models": {"m": {"classes": entry}}}
    assert class_labels(report, ["m"], [0, 5]) == [f"{descriptions[k]} ({info.label_names()[k]})" for k in (0, 5)]
    assert class_labels({"models": {"m": {"classes": {**entry, "sha256": "0" * 64}}}}, ["m"], [5]) == ["5"]
    # ImageNet-1k stays in full, with its name and sha256 beside; a team's own classes are never omitted.
    one_k = known_before_load(parse_spec("efficientnet_lite0")).to_dict()
    assert len(one_k["names"]) == 1000 and one_k["label_space"] == "imagenet-1k" and "names_omitted" not in one_k
    many = LabelSpace(tuple(f"part{i}" for i in range(3000)), "a class file").to_dict()
    assert len(many["names"]) == 3000 and "label_space" not in many
    for classes in (entry, one_k, many):
        _validate_classes(classes)
    with pytest.raises(jsonschema.ValidationError):
        _validate_classes({k: v for k, v in entry.items() if k != "names_omitted"})  # neither names nor a count of omitted


def _validate_classes(classes: dict) -> None:
    """A model entry's ``classes`` against the report schema's definition of it."""
    import jsonschema

    from visionaudit.families.records import report_schema

    def find(node):
        if isinstance(node, dict):
            props = node.get("properties") or {}
            if isinstance(props.get("classes"), dict) and "imagenet1k" in (props["classes"].get("properties") or {}):
                return props["classes"]
            return next((f for v in node.values() if (f := find(v)) is not None), None)
        if isinstance(node, list):
            return next((f for v in node if (f := find(v)) is not None), None)
        return None

    jsonschema.validate(classes, find(report_schema()["properties"]["models"]))
