"""Stop 39: a timm model is fed what timm's own eval transform feeds it. Its ``crop_mode`` was ignored: a ``squash``
model (ConvNeXt's in22k fine-tunes at 384, NFNets) was fed the short side resized and centre-cropped instead of the
whole image warped; ``crop_pct`` above 1 (VOLO at 448) was refused as "resize size 389 must be at least the crop size
448"; ``border`` and a non-square input were fed something else. The ``?resize=`` refusal's fix named ImageNet's 0.875
resize whatever the model's own; ``?size=`` alone keeps the suite's 0.875 rule (review 39: its own issue)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision  # noqa: F401  (here, once: a second import inside a test registers a torch op twice)
from PIL import Image

from visionaudit.errors import SpecError
from visionaudit.models.preprocessing_before_load import (
    check_resize,
    check_timm_input,
    known_preprocessing,
)
from visionaudit.models.specs import parse_spec

timm = pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
from timm.data import create_transform, resolve_data_config  # noqa: E402
from timm.models import get_pretrained_cfg  # noqa: E402


def _timm_eval_transform(name: str, **args):
    """The reference: timm's own eval transform for ``name``'s registered configuration, uint8 out (no normalization)."""
    config = resolve_data_config(args, pretrained_cfg=get_pretrained_cfg(name).to_dict())
    return create_transform(**config, use_prefetcher=True)


def _built(name: str):
    """The load's preprocessing (random init, on the meta device: nothing allocated)."""
    from visionaudit.models.loading import _build_timm

    with torch.device("meta"):
        return _build_timm(name, None, pretrained=False).preprocessing


# One per geometry timm's eval transform makes (transforms_imagenet_eval), from timm's registry: squash at crop_pct 1
# (the whole image, nothing cut) and at 0.9 (warped to 213, centre 192); center at 0.95; center at 1.15 (padded).
@pytest.mark.slow
@pytest.mark.parametrize("name, crop_mode", [("convnext_tiny.fb_in22k_ft_in1k_384", "squash"),
                                             ("dm_nfnet_f0.dm_in1k", "squash"),
                                             ("resnet50.a1_in1k", "center"),
                                             ("volo_d4_448.sail_in1k", "center")])
def test_the_suites_decode_is_timms_eval_transform_on_real_images(shared_data: Path, name, crop_mode):
    """Every 25th sample image (its aspect ratios vary) and all the grayscale ones, against timm's own transform of
    the PIL image made RGB: measured identical (0 values differ) for all four; allowed: one grey level on under 0.1 %
    of the values. The load's preprocessing is the startup check's."""
    from visionaudit.data.decoding import decode_image

    assert get_pretrained_cfg(name).crop_mode == crop_mode  # what the case stands for, as timm registers it
    pre = _built(name)
    assert pre == known_preprocessing(parse_spec(f"timm:{name}:none"))
    assert pre.keep_aspect == (crop_mode == "center") and f"crop_mode {crop_mode}" in pre.source
    paths = sorted((shared_data / "imagenet-sample").iterdir())
    gray = [p for p in paths if Image.open(p).mode == "L"]
    images = paths[::25] + gray
    assert gray and len({Image.open(p).size for p in images}) > 5  # grayscale images and several shapes
    reference = _timm_eval_transform(name)
    differ = total = 0
    for path in images:
        with Image.open(path) as img:
            expected = torch.as_tensor(np.asarray(reference(img.convert("RGB"))))
        got = decode_image(path, pre.geometry)
        assert got.shape == expected.shape, path
        diff = (got.int() - expected.int()).abs()
        assert diff.max() <= 1, f"{path.name}: {diff.max()} grey levels apart, {(diff > 0).sum()} values"
        differ, total = differ + int((diff > 0).sum()), total + diff.numel()
    assert differ <= total / 1000, f"{differ} of {total} values differ"


def test_a_squash_model_is_fed_timms_pixels_and_said_so_in_the_report(tmp_path):
    """The quick loop's check of the squash decode (the slow test above runs the sample images): five images written
    here, of several aspect ratios, one grayscale, one smaller than the input, against timm's own eval transform of
    dm_nfnet_f0 (squash, crop_pct 0.9: warped to 213 x 213, centre 192): the same pixels. The report's entry says
    the warp and its source the crop_mode, with no key beyond the usual schema's."""
    from visionaudit.data.decoding import decode_image

    name = "dm_nfnet_f0.dm_in1k"
    assert get_pretrained_cfg(name).crop_mode == "squash"
    rng = np.random.default_rng(39)
    paths = []
    for k, (w, h, mode) in enumerate([(300, 200, "RGB"), (150, 400, "RGB"), (256, 256, "L"), (500, 333, "RGB"),
                                      (97, 64, "RGB")]):
        ramp = np.add.outer(np.linspace(0, 200, h), np.linspace(0, 55, w))  # smooth, with noise on top
        values = ramp[..., None] + rng.integers(0, 40, (h, w, 3 if mode == "RGB" else 1))
        Image.fromarray(values.clip(0, 255).astype(np.uint8).squeeze(-1) if mode == "L" else
                        values.clip(0, 255).astype(np.uint8), mode).save(tmp_path / f"{k}.png")
        paths.append(tmp_path / f"{k}.png")
    pre, reference = _built(name), _timm_eval_transform(name)
    for path in paths:
        with Image.open(path) as img:
            expected = torch.as_tensor(np.asarray(reference(img.convert("RGB"))))
        got = decode_image(path, pre.geometry)
        assert got.shape == expected.shape == (3, 192, 192) and torch.equal(got, expected), path.name
    said = pre.to_dict()
    assert said["keep_aspect"] is False and "crop_pct" not in said and (said["crop_size"], said["resize_size"]) == (192, 213)
    assert said["source"].startswith(f"timm {name} data config, crop_mode squash and crop_pct 0.9: the whole image"), said


@pytest.mark.parametrize("name, said", [
    ("deepseek_vit_412m.deepseek_v4_1_flash", "asks for crop_mode 'border' (the longest side scaled to floor(size / "
                                              "crop_pct), then padded with its mean colour to size x size), an input "
                                              "the suite does not make"),
    ("vit_base_patch16_sapiens2.fb", "asks for a 1024 x 768 input (height x width, not square), and the suite feeds "
                                     "square images only"),
])
def test_an_input_the_suite_does_not_make_is_refused_at_startup_in_the_loads_words(tmp_path, name, said):
    """Fed a centre crop before (border), or a square of its width (1024 x 768): now refused before any weights are
    fetched, naming what timm feeds it, in the load's words."""
    assert get_pretrained_cfg(name).crop_mode == "border" or get_pretrained_cfg(name).input_size[1:] == (1024, 768)
    with pytest.raises(SpecError) as at_load:
        _built(name)
    assert str(at_load.value).startswith(f"timm {name} data config {said}"), str(at_load.value)
    (tmp_path / "w.pth").write_bytes(b"")
    for spec in (f"timm:{name}", f"timm:{name}:none", f"{tmp_path / 'w.pth'}?arch=timm:{name}"):
        with pytest.raises(SpecError) as at_startup:
            check_timm_input(parse_spec(spec))
        assert str(at_startup.value) == f"--model {spec}: {at_load.value}"
    check_timm_input(parse_spec("timm:convnext_tiny.fb_in22k_ft_in1k_384"))  # squash: made, so it passes


# Review 39 R1/R2: ?size=N alone keeps the suite's one rule, floor(N / 0.875), for every kind (timm's own rule,
# floor(N / crop_pct), differs); N for a warp with no crop. The expected numbers are that rule's, computed by hand.
@pytest.mark.parametrize("spec, crop, resize, keep_aspect", [
    ("timm:resnet50.a1_in1k:none?size=288", 288, 329, True),  # crop_pct 0.95: timm's own would be 303
    ("timm:dm_nfnet_f0.dm_in1k:none?size=256", 256, 292, False),  # squash at 0.9: warped to 292, centre 256
    ("timm:convnext_tiny.fb_in22k_ft_in1k_384:none?size=320", 320, 320, False),  # squash at 1: a warp with no crop
    ("timm:volo_d4_448.sail_in1k:none?size=448", 448, 512, True),  # crop_pct 1.15: no longer padded
    ("torchvision:resnet50:IMAGENET1K_V2?size=176", 176, 201, True),  # 232 / 224 weights: 201, not 182
    ("efficientnet_lite1?size=224", 224, 256, True),  # lite's own TF rule (N + 32) is 256 too
    ("efficientnet_lite2?size=224", 224, 256, True),
])
def test_size_alone_keeps_the_0875_rule_for_every_model_kind(spec, crop, resize, keep_aspect):
    parsed = parse_spec(spec)
    pre = known_preprocessing(parsed).with_overrides(parsed.options)
    assert (pre.crop_size, pre.resize_size, pre.keep_aspect, pre.crop_pct) == (crop, resize, keep_aspect, None)


# Review 39 R2/R3: the fix names what the model is fed without ?resize=, each from outside the code: timm's own
# transform (Resize of 235 for resnet50.a1_in1k at 224, crop_pct 0.95), torchvision's published transforms (256 / 224;
# 232 / 224 for IMAGENET1K_V2), EfficientNet-Lite's TF rule (a resize of size + 32: 272 for lite1's 240).
@pytest.mark.parametrize("spec, crop, fix", [
    ("timm:resnet50.a1_in1k:none?resize=200", 224, "(without it this model is fed size=224, resize=235)"),
    ("torchvision:resnet18?resize=200", 224, "(without it this model is fed size=224, resize=256)"),
    ("torchvision:resnet50:IMAGENET1K_V2?resize=200", 224, "(without it this model is fed size=224, resize=232)"),
    ("efficientnet_lite1?resize=200", 240, "(without it this model is fed size=240, resize=272)"),
])
def test_the_resize_refusals_fix_names_the_models_own_size_and_resize(spec, crop, fix):
    assert _timm_eval_transform("resnet50.a1_in1k").transforms[0].size == 235  # the first case's number, timm's
    with pytest.raises(SpecError) as refused:
        check_resize(parse_spec(spec))
    assert f"Give ?resize= at least {crop} {fix}, leave ?resize= out" in str(refused.value), str(refused.value)
    assert "0.875" not in str(refused.value)


def test_a_resize_below_the_crop_of_a_model_fed_padded_is_refused_in_true_words():
    """VOLO at 448 (crop_pct 1.15) is fed its own resize 389 padded to 448 (timm's transform: Resize 389, then the
    centre crop pads); a ?resize=420 is not padded, and the refusal says so, not that 420 "does not fit"."""
    name = "volo_d4_448.sail_in1k"
    assert _timm_eval_transform(name).transforms[0].size == 389
    spec = f"timm:{name}:none?resize=420"
    with pytest.raises(SpecError) as refused:
        check_resize(parse_spec(spec))
    message = str(refused.value)
    assert message.startswith(f"--model {spec}: ?resize=420 is below the crop size 448 this model is fed (timm {name}")
    assert "does not fit" not in message and "pads an image resized below the crop only where the model's own " \
        "configuration asks it (timm's crop_pct 1.15), not for a ?resize= given" in message, message
    assert "leave ?resize= out (without it this model is fed size=448, resize=389, padded with black to 448)" in message


def test_the_load_refuses_an_input_the_suite_does_not_make_before_fetching_weights(monkeypatch):
    """Review 39 R6: the load (as `visionaudit shape-bias` runs it, with no startup check) fetched a 412M-parameter
    encoder and built it before refusing it; now it refuses first. The refusal's fix names what applies: every tag of
    deepseek_vit_412m is border, and its weights have no classifier head (num_classes 0 in timm's registry)."""
    from visionaudit.models import hub
    from visionaudit.models.loading import _build_timm

    name = "deepseek_vit_412m.deepseek_v4_1_flash"
    assert get_pretrained_cfg(name).num_classes == 0
    assert {get_pretrained_cfg(t).crop_mode for t in timm.list_pretrained("deepseek_vit_412m*")} == {"border"}

    def no_fetch(*args, **kwargs):
        raise AssertionError("weights fetched for a model the suite refuses")

    monkeypatch.setattr(hub, "timm_weights", no_fetch)
    monkeypatch.setattr(timm, "create_model", no_fetch)
    with pytest.raises(SpecError) as refused:
        _build_timm(name, None, pretrained=True)
    message = str(refused.value)
    assert message.startswith(f"timm {name} data config asks for crop_mode 'border'"), message
    assert message.endswith("its pretrained weights are a feature encoder's (num_classes 0 in its configuration), "
                            "with no classifier head to audit: audit another model") and "tag" not in message, message
