"""Stop 39: a timm model is fed what timm's own eval transform feeds it. Its ``crop_mode`` was ignored: a ``squash``
model (ConvNeXt's in22k fine-tunes at 384, NFNets) was fed the short side resized and centre-cropped instead of the
whole image warped; ``crop_pct`` above 1 (VOLO at 448) was refused as "resize size 389 must be at least the crop size
448"; ``border`` and a non-square input were fed something else. ``?size=`` alone resized at ImageNet's 0.875 whatever
the model's ratio, and the ``?resize=`` refusal's fix named 0.875 too."""

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


@pytest.mark.parametrize("name, size", [("resnet50.a1_in1k", 288), ("dm_nfnet_f0.dm_in1k", 256),
                                        ("convnext_tiny.fb_in22k_ft_in1k_384", 320)])
def test_size_alone_resizes_at_the_timm_models_own_crop_pct(name, size):
    """timm's own rule for an input size, its transform's Resize: floor(size / crop_pct) (0.95: 303 for 288; 0.9: 284
    for 256; 1.0: 320), not floor(size / 0.875); squashed still for a squash model."""
    spec = parse_spec(f"timm:{name}:none?size={size}")
    pre = known_preprocessing(spec).with_overrides(spec.options)
    resize = _timm_eval_transform(name, input_size=(3, size, size)).transforms[0].size
    assert (pre.crop_size, pre.resize_size) == (size, resize if isinstance(resize, int) else resize[0])
    assert pre.keep_aspect == isinstance(resize, int)  # a scalar: the short side; (h, w): the whole image


def test_size_alone_resizes_at_a_torchvision_models_own_ratio():
    """torchvision's published transforms of ResNet-50's IMAGENET1K_V2 weights: resize 232, crop 224; size 176 alone
    is resized to floor(176 * 232 / 224) = 182 (it was floor(176 / 0.875) = 201)."""
    spec = parse_spec("torchvision:resnet50:IMAGENET1K_V2?size=176")
    pre = known_preprocessing(spec).with_overrides(spec.options)
    assert (pre.crop_size, pre.resize_size) == (176, 182)


@pytest.mark.parametrize("spec, fix", [
    ("timm:resnet50.a1_in1k:none?resize=200", "(resize=235 keeps this model's crop ratio, 0.95)"),  # timm's crop_pct
    ("torchvision:resnet18?resize=200", "(resize=256 keeps this model's crop ratio, 0.875)"),  # 224 of 256
    ("torchvision:resnet50:IMAGENET1K_V2?resize=200", "(resize=232 keeps this model's crop ratio, 0.966)"),
])
def test_the_resize_refusals_fix_names_the_models_own_crop_ratio(spec, fix):
    with pytest.raises(SpecError) as refused:
        check_resize(parse_spec(spec))
    assert f"Give ?resize= at least 224 {fix}, leave ?resize= out" in str(refused.value), str(refused.value)
