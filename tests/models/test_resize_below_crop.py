"""Stop 37: a spec's ``?resize=`` below the crop its model is fed was found only as the model loaded, and said as
"resize size 200 must be at least the crop size 224 (> 0)", naming neither the spec nor the fix. Where the crop is
known before the load (visionaudit/models/preprocessing_before_load.py) it is refused at startup; elsewhere the
load says the same. Stop 38: a torchvision model that is not an image classifier, refused there too. The runs that exit
4: tests/plugins/test_startup_checks.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from visionaudit.errors import SpecError
from visionaudit.models.preprocessing_before_load import architecture_of, check_resize
from visionaudit.models.specs import parse_spec


def said(spec: str, resize: int, crop: int) -> str:
    return f"--model {spec}: ?resize={resize} is below the crop size {crop} this model is fed ("


def fix(crop: int) -> str:
    return f"Give ?resize= at least {crop}"


# The crops, from outside the code: torchvision's published ImageNet transforms of ResNet-18 (resize 256, crop 224),
# EfficientNet-Lite2's input size in its release (260), the suite's documented default for a model that tells none
# (224, docs/models.md), and the tiny ViT's image processor below (64 x 64).
@pytest.mark.parametrize("spec, resize, crop", [
    ("torchvision:resnet18?resize=200", 200, 224),
    ("torchvision:resnet18:none?resize=200", 200, 224),  # random init: the default weights' transforms all the same
    ("efficientnet_lite2?resize=250", 250, 260),
    ("tests.tiny_models:tiny?resize=100", 100, 224),
])
def test_a_resize_below_a_crop_known_before_the_load_is_refused_at_startup(spec, resize, crop):
    with pytest.raises(SpecError) as refused:
        check_resize(parse_spec(spec))
    assert str(refused.value).startswith(said(spec, resize, crop)) and fix(crop) in str(refused.value)


def test_a_state_dicts_architecture_and_an_hf_folders_image_processor_give_their_crop(tmp_path):
    pytest.importorskip("transformers", reason="in the hf extra: pip install 'visionaudit[hf]'")
    from tests.hub_models import tiny_vit

    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pth")
    folder = tiny_vit(tmp_path / "vit", size=64)
    for spec, resize, crop in ((f"{tmp_path / 'w.pth'}?arch=torchvision:resnet18&resize=200", 200, 224),
                               (f"hf:{folder}?resize=50", 50, 64)):
        with pytest.raises(SpecError) as refused:
            check_resize(parse_spec(spec))
        assert str(refused.value).startswith(said(spec, resize, crop)) and fix(crop) in str(refused.value)


@pytest.mark.parametrize("spec", [
    "torchvision:resnet18?resize=224",  # at the crop: nothing cut away, and fine
    "efficientnet_lite2?resize=260",
    "tests.tiny_models:tiny?size=64&resize=100",  # the spec gives its crop: the parser compares the two
    "timm:resnet18:none?resize=224",
])
def test_a_resize_at_or_above_the_crop_starts(spec):
    check_resize(parse_spec(spec))


def test_a_resize_below_the_specs_own_size_is_refused_as_the_spec_is_parsed():
    with pytest.raises(SpecError) as refused:
        parse_spec("tests.tiny_models:tiny?resize=100&size=224")
    message = str(refused.value)
    assert message.startswith("--model tests.tiny_models:tiny?resize=100&size=224: ?resize=100 is below size=224")
    assert "at least size" in message


def test_the_load_says_the_same_as_the_startup_check():
    """Where the startup check is not run (load_model called directly), or the crop is known only as the model loads,
    the load refuses the spec in the same words."""
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    from visionaudit.models.loading import load_model

    spec = "timm:resnet18:none?resize=100"  # timm's resnet18: 224 x 224 input (its published default configuration)
    with pytest.raises(SpecError) as at_startup:
        check_resize(parse_spec(spec))
    with pytest.raises(SpecError) as refused:
        load_model(spec)
    assert str(refused.value).startswith(said(spec, 100, 224)) and fix(224) in str(refused.value)
    assert str(refused.value) == str(at_startup.value)


def test_a_state_dicts_architecture_naming_weights_is_fed_its_default_weights_crop_at_startup_as_at_the_load(tmp_path):
    """Review 37 F1: ``?arch=torchvision:vit_b_16:IMAGENET1K_SWAG_E2E_V1`` was checked against those weights' crop
    (384, torchvision's published transforms) while the load builds the architecture with random weights and feeds it
    DEFAULT's (IMAGENET1K_V1: resize 256, crop 224); a ?resize= between the two was refused, exit 4, for a valid spec."""
    from visionaudit.models.loading import build_architecture

    arch = "torchvision:vit_b_16:IMAGENET1K_SWAG_E2E_V1"
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pth")
    check_resize(parse_spec(f"{tmp_path / 'w.pth'}?arch={arch}&resize=256"))
    check_resize(parse_spec(f"{tmp_path / 'w.pth'}?resize=256", arch))  # --arch
    assert build_architecture(arch).preprocessing.crop_size == 224
    assert architecture_of(arch) == ("torchvision", "vit_b_16")  # review 37 R8: what is built names no weights
    with pytest.raises(SpecError) as refused:  # below DEFAULT's crop: still refused, with that crop
        check_resize(parse_spec(f"{tmp_path / 'w.pth'}?arch={arch}&resize=200"))
    assert fix(224) in str(refused.value)


@pytest.mark.parametrize("spec", ["torchvision:fcn_resnet50?resize=300",  # SemanticSegmentation transforms
                                  "torchvision:fasterrcnn_resnet50_fpn?resize=300",  # ObjectDetection
                                  "torchvision:raft_small?resize=300"])  # OpticalFlow
def test_a_torchvision_model_whose_weights_have_no_crop_is_no_resize_checks_to_judge(spec):
    """Review 37 F4: their transforms have no crop_size; the startup check raised AttributeError (pytest's
    INTERNALERROR, exit 3). check_image_classifier refuses such a model (below); the ?resize= check leaves it."""
    check_resize(parse_spec(spec))


@pytest.mark.parametrize("spec, transforms", [
    ("torchvision:fcn_resnet50", "SemanticSegmentation"),  # DEFAULT weights
    ("torchvision:fcn_resnet50:none", "SemanticSegmentation"),  # random init: DEFAULT's metadata says it
    ("torchvision:fcn_resnet50:COCO_WITH_VOC_LABELS_V1?resize=300", "SemanticSegmentation"),  # the weights by name
    ("torchvision:fasterrcnn_resnet50_fpn", "ObjectDetection"),
    ("torchvision:raft_small:none", "OpticalFlow"),
    ("torchvision:r3d_18:none", "VideoClassification"),  # its transforms crop (112), but it takes clips, not images
    ("W.pth?arch=torchvision:fcn_resnet50", "SemanticSegmentation"),  # a state dict's architecture
])
def test_a_torchvision_model_that_is_not_an_image_classifier_is_refused_at_startup(spec, transforms, tmp_path):
    """Review 38 finding 2: refused only as it loaded (``:none``: exit 1), or at startup for its DEFAULT weights by the
    class-names check ("1000 class name(s) ... match no class of the model (21 classes ...)"), never saying why. The
    transform names are torchvision's own presets for these weights."""
    from visionaudit.models.preprocessing_before_load import check_image_classifier

    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pth")
    spec = spec.replace("W.pth", str(tmp_path / "w.pth"))
    name = spec.split("torchvision:")[1].split(":")[0].split("?")[0]
    with pytest.raises(SpecError) as refused:
        check_image_classifier(parse_spec(spec))
    why = ("a video classifier: it takes clips, not images" if transforms == "VideoClassification"
           else f"its weights' transforms are {transforms}")
    arch, give = ("its architecture (?arch= or --arch) ", "architecture") if "?arch=" in spec else ("", "model")
    assert str(refused.value).startswith(f"--model {spec}: {arch}torchvision:{name} is not an image classifier ({why}): "
                                         f"give an image classification {give}"), str(refused.value)
    # The spec named once, where the caller names it itself (an ONNX file's ?reference=)
    with pytest.raises(SpecError) as refused:
        check_image_classifier(parse_spec(spec), who="")
    assert str(refused.value).startswith(f"{arch}torchvision:{name} is not an image classifier"), str(refused.value)


@pytest.mark.parametrize("spec", ["torchvision:resnet18", "torchvision:resnet18:none", "torchvision:vit_b_16:IMAGENET1K_V1",
                                  "W.pth?arch=torchvision:resnet18", "W.pth?arch=timm:resnet18", "efficientnet_lite0",
                                  "tests.tiny_models:tiny", "timm:resnet18:none"])
def test_an_image_classifier_or_a_model_of_another_kind_passes_the_classifier_check(spec, tmp_path):
    from visionaudit.models.preprocessing_before_load import check_image_classifier

    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pth")
    check_image_classifier(parse_spec(spec.replace("W.pth", str(tmp_path / "w.pth"))))


def test_the_classifier_check_imports_torchvision_only_for_a_torchvision_model(tmp_path):
    """The xdist controller runs it for every model: a run of no torchvision model does not import torchvision."""
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pth")
    specs = ("efficientnet_lite0", "tests.tiny_models:tiny", "timm:resnet18:none", f"{tmp_path / 'w.pth'}?arch=timm:resnet18")
    code = ("import sys; from visionaudit.models.preprocessing_before_load import check_image_classifier; "
            "from visionaudit.models.specs import parse_spec; "
            f"[check_image_classifier(parse_spec(s)) for s in {specs!r}]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip() == "[]", out


@pytest.mark.parametrize("spec, transforms", [("torchvision:fcn_resnet50:none", "SemanticSegmentation"),
                                              ("torchvision:fasterrcnn_resnet50_fpn", "ObjectDetection"),
                                              ("torchvision:raft_small", "OpticalFlow"),
                                              ("torchvision:r3d_18:none", "VideoClassification")])
def test_the_load_of_a_torchvision_model_that_is_not_an_image_classifier_says_so(spec, transforms):
    """Review 37 R4: the load said a bare "AttributeError: 'SemanticSegmentation' object has no attribute
    'crop_size'" (and a random-init fcn_resnet50 first fetched its backbone's ImageNet weights). Refused before any
    model is built or fetched. Review 38: r3d_18 loaded and failed its probe on a (1, 3, 112, 112) image, "expected
    input[1, 1, 3, 112, 112]", with a fix (?size=N) that cannot help."""
    from visionaudit.models.loading import load_model

    name = spec.split(":")[1]
    with pytest.raises(SpecError) as refused:
        load_model(spec)
    why = ("a video classifier: it takes clips, not images" if transforms == "VideoClassification"
           else f"its weights' transforms are {transforms}")
    assert str(refused.value).startswith(f"torchvision:{name} is not an image classifier ({why}): give an image "
                                         "classification model"), str(refused.value)


def test_a_bug_reading_a_classifiers_crop_is_not_taken_for_a_model_without_one(monkeypatch):
    """Review 37 R4: the startup check caught every AttributeError and TypeError of the crop's lookup as "not a
    classifier", so a bug there turned the check off for the spec without a word."""
    from visionaudit.models import preprocessing_before_load

    def broken(transforms, source):
        raise AttributeError("a bug in the lookup")

    monkeypatch.setattr(preprocessing_before_load, "from_torchvision_transforms", broken)
    with pytest.raises(AttributeError, match="a bug in the lookup"):
        check_resize(parse_spec("torchvision:resnet18?resize=200"))


def test_a_resize_below_the_crop_in_an_onnx_files_metadata_names_no_spec_option(tmp_path):
    """Review 37 F5: the fix said "Give ?resize= at least N ... leave ?resize= out" of a file's metadata property,
    where no ?resize= was written."""
    pytest.importorskip("onnx", reason="in the onnx extra: pip install 'visionaudit[onnx]'")
    import json

    from tests.models.onnx_graphs import conv_graph, weights

    # its graph takes 8 x 8 inputs (conv_graph's size): the crop
    path = conv_graph(tmp_path / "m.onnx", weights(), props={"visionaudit.preprocessing": json.dumps({"resize": 4})})
    with pytest.raises(SpecError) as refused:
        parse_spec(str(path))
    message = str(refused.value)
    assert "resize 4 is below the crop size 8" in message and "correct the property" in message, message
    assert "?resize=" not in message and "Give resize at least 8" in message, message


# --- timm (stop 38): its models' crop known at startup from timm's registry of pretrained configurations ----------


def test_a_timm_pretrained_tag_in_the_cache_is_refused_at_startup_as_its_load_refuses_it(hub_cache):
    """Stop 38: a timm model's crop was known only once the model was built, so ``timm:NAME?resize=`` below it passed
    the startup check and each test errored as the model loaded. Its crop is timm's pretrained configuration's, which
    ships in timm's registry: the startup check reads it there, without building the model."""
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    from tests.hub_models import TIMM_TAG, timm_random_weights
    from visionaudit.models.hub import check_available
    from visionaudit.models.loading import load_model

    timm_random_weights(hub_cache, TIMM_TAG)  # its weights where huggingface_hub looks for them: the load needs them
    # test_efficientnet's pretrained tag r160: trained and evaluated at 160 x 160 (timm's published configuration)
    for spec in (f"timm:{TIMM_TAG}?resize=150", "timm:test_efficientnet?resize=150"):  # its default tag: the same
        check_available(parse_spec(spec))  # the startup check before it: the files are there
        with pytest.raises(SpecError) as at_startup:
            check_resize(parse_spec(spec))
        assert str(at_startup.value).startswith(said(spec, 150, 160)) and fix(160) in str(at_startup.value)
        with pytest.raises(SpecError) as at_load:
            load_model(spec)
        assert str(at_load.value) == str(at_startup.value)  # one message, whichever says it


@pytest.mark.parametrize("resize", [160, 182])
def test_a_resize_at_or_above_a_timm_crop_passes_the_startup_check_and_loads(hub_cache, resize):
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    from tests.hub_models import TIMM_TAG, timm_random_weights
    from visionaudit.models.loading import load_model

    timm_random_weights(hub_cache, TIMM_TAG)
    spec = f"timm:{TIMM_TAG}?resize={resize}"
    check_resize(parse_spec(spec))
    pre = load_model(spec).preprocessing
    assert (pre.crop_size, pre.resize_size) == (160, resize)


def test_a_state_dict_of_a_timm_architecture_is_refused_at_startup_as_its_load_refuses_it(tmp_path):
    timm = pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    from visionaudit.models.loading import load_model

    torch.save(timm.create_model("test_efficientnet", pretrained=False).state_dict(), tmp_path / "w.pth")
    for spec, arch in ((f"{tmp_path / 'w.pth'}?arch=timm:test_efficientnet&resize=150", None),
                       (f"{tmp_path / 'w.pth'}?resize=150", "timm:test_efficientnet")):  # --arch
        with pytest.raises(SpecError) as at_startup:
            check_resize(parse_spec(spec, arch))
        assert str(at_startup.value).startswith(said(spec, 150, 160)) and fix(160) in str(at_startup.value)
        with pytest.raises(SpecError) as at_load:
            load_model(spec, arch=arch)
        assert str(at_load.value) == str(at_startup.value)
    check_resize(parse_spec(f"{tmp_path / 'w.pth'}?arch=timm:test_efficientnet&resize=160"))


# Architectures whose configurations differ from the usual 224 (the size in their names) and in crop_pct, built on the
# meta device (nothing allocated): the preprocessing the startup check reads is the one the load gives, whole. timm
# 1.0 builds vitamin_xlarge_336 with vitamin_xlarge_256's configuration (its model's pretrained_cfg says 256): the
# registry's, read at startup and at the load, is the one for its name, its weights and its 336-pixel input.
@pytest.mark.parametrize("name, crop", [("vit_base_patch16_384.augreg_in21k_ft_in1k", 384),
                                        ("convnext_tiny.fb_in22k_ft_in1k_384", 384),
                                        ("deit_tiny_patch16_224.fb_in1k", 224),
                                        ("test_vit.r160_in1k", 160),
                                        ("vitamin_xlarge_336.datacomp1b_clip", 336)])
def test_a_timm_models_preprocessing_at_startup_is_the_one_its_load_gives(name, crop):
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    from visionaudit.models.loading import _build_timm
    from visionaudit.models.preprocessing_before_load import known_preprocessing

    before = known_preprocessing(parse_spec(f"timm:{name}:none"))
    with torch.device("meta"):
        built = _build_timm(name, None, pretrained=False)
    assert before is not None and before.crop_size == crop
    assert before.to_dict() == built.preprocessing.to_dict()


@pytest.mark.parametrize("spec", ["timm:resnet18.nope?resize=100",  # a tag timm has not: hub.check_available says it
                                  "timm:resnett18:none?resize=100"])  # a model timm has not: config.py's check says it
def test_a_timm_model_timm_cannot_resolve_is_left_to_the_checks_that_name_it(spec):
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    check_resize(parse_spec(spec))


@pytest.mark.slow(data=False)
def test_without_timm_a_timm_spec_is_left_to_the_load_and_other_specs_never_import_it(monkeypatch):
    """timm is an extra: without it the check leaves the spec to the checks that say "pip install 'visionaudit[timm]'";
    with it, a run of no timm model does not import it (seconds at each start)."""
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError, as where it is not installed
    monkeypatch.setitem(sys.modules, "timm.models", None)
    check_resize(parse_spec("timm:resnet18:none?resize=100"))
    code = ("import sys; from visionaudit.models.preprocessing_before_load import check_resize; "
            "from visionaudit.models.specs import parse_spec; "
            "[check_resize(parse_spec(s)) for s in ('torchvision:resnet18?resize=224', 'efficientnet_lite0?resize=256')]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'timm'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip() == "[]", out
