"""Issue 25: hub models' spec forms (``hf:FOLDER``, ``hf:ORG/NAME``, timm's pretrained tags) and their canonical ids, and
the image processor's rule read into the suite's preprocessing, by hand."""

from __future__ import annotations

import pytest
import torch

from visionaudit.errors import CheckpointError, SpecError
from visionaudit.models.hf import from_image_processor
from visionaudit.models.hub import check_available
from visionaudit.models.loading import parse_spec
from visionaudit.models.specs import canonical_spec

# --- spec forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, canonical", [
    ("hf:google/vit-base-patch16-224", "hf:google/vit-base-patch16-224"),
    ("hf:google/vit-base-patch16-224@main", "hf:google/vit-base-patch16-224"),  # main is the default revision
    ("hf:google/vit-base-patch16-224@v1.0?size=224", "hf:google/vit-base-patch16-224@v1.0?size=224"),
    ("hf:./models/x/../vit", "hf:./models/vit"),  # a folder that reads like ORG/NAME keeps its ./
    ("hf:/abs/folder/", "hf:/abs/folder"),
    ("timm:resnet18", "timm:resnet18"),  # as main writes it: a baseline naming it still pairs (the tag is in architecture)
    ("timm:resnet18.a1_in1k", "timm:resnet18.a1_in1k"),
    ("w.pt?arch=timm:resnet18", "w.pt?arch=timm:resnet18"),  # as an architecture too
    ("timm:resnet18:none", "timm:resnet18:none"),
])
def test_canonical_forms_of_hub_specs(spec, canonical):
    assert canonical_spec(spec) == canonical
    assert canonical_spec(canonical) == canonical


def test_an_hf_folder_must_be_a_save_pretrained_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; hf:PATH names a folder written by save_pretrained"):
        parse_spec(f"hf:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json, so it is not a save_pretrained folder"):
        parse_spec(f"hf:{tmp_path / 'empty'}")
    (tmp_path / "empty" / "config.json").write_text("{}")
    spec = parse_spec(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(CheckpointError, match="holds no model.safetensors or pytorch_model.bin"):
        check_available(spec)  # at startup, not in every test


# --- the image processor's rule in the suite's preprocessing --------------------------------------


def test_processor_rules_by_hand():
    vit = from_image_processor({"image_processor_type": "ViTImageProcessor", "size": {"height": 384, "width": 384},
                                "resample": 2, "rescale_factor": 1 / 255, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}, "vit")
    assert (vit.resize_size, vit.crop_size, vit.keep_aspect, vit.interpolation) == (384, 384, False, "bilinear")
    assert vit.geometry.to_dict() == {"size": 384, "interpolation": "bilinear", "crop": False, "crop_offset": "floor"}
    deit = from_image_processor({"image_processor_type": "DeiTImageProcessor", "size": {"height": 256, "width": 256},
                                 "do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "resample": 3}, "deit")
    assert (deit.resize_size, deit.crop_size, deit.keep_aspect, deit.interpolation) == (256, 224, False, "bicubic")
    convnext = from_image_processor({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224},
                                     "crop_pct": 0.875, "resample": 3}, "convnext")
    assert (convnext.resize_size, convnext.crop_size, convnext.keep_aspect) == (256, 224, True)  # int(224 / 0.875)
    big = from_image_processor({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 384},
                                "crop_pct": 0.875, "resample": 3}, "convnext")
    assert (big.resize_size, big.crop_size, big.keep_aspect) == (384, 384, False)  # warped from 384 on
    # A rescale factor of 1 (values in 0..255) folds into mean and std: (x - m) / s = (x / 255 - m / 255) / (s / 255).
    raw = from_image_processor({"image_processor_type": "ViTImageProcessor", "size": {"height": 8, "width": 8},
                                "rescale_factor": 1.0, "image_mean": [127.5] * 3,
                                "image_std": [51.0] * 3}, "raw")
    assert raw.mean == pytest.approx((0.5,) * 3) and raw.std == pytest.approx((0.2,) * 3)
    off = from_image_processor({"image_processor_type": "ViTImageProcessor", "size": {"height": 8, "width": 8},
                                "do_normalize": False}, "off")
    assert (off.mean, off.std) == ((0.0,) * 3, (1.0,) * 3)
    # LeViT: the short side to int(256 / 224 * S) = 256 for S = 224 (LevitImageProcessor.resize), then the crop.
    levit = from_image_processor({"image_processor_type": "LevitImageProcessor", "size": {"shortest_edge": 224},
                                  "do_center_crop": True,
                                  "crop_size": {"height": 224, "width": 224}, "resample": 3}, "levit")
    assert (levit.resize_size, levit.crop_size, levit.keep_aspect, levit.interpolation) == (256, 224, True, "bicubic")
    # PoolFormer: the short side to int(S / crop_pct) = int(224 / 0.9) = 248 (PoolFormerImageProcessor.resize); a square
    # size is read as its side, the aspect kept (not warped as ViT's is).
    for size in ({"shortest_edge": 224}, {"height": 224, "width": 224}):
        pool = from_image_processor({"image_processor_type": "PoolFormerImageProcessorPil", "size": size, "crop_pct": 0.9,
                                     "do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "resample": 3}, "pool")
        assert (pool.resize_size, pool.crop_size, pool.keep_aspect) == (248, 224, True), size
    vit_kind = {"image_processor_type": "ViTImageProcessor"}
    fix = r"\?size=N&resize=N&interpolation=bilinear\|bicubic\|nearest&mean=R,G,B&std=R,G,B"
    for bad, why in [(vit_kind | {"size": {"height": 224, "width": 320}}, "not square"),
                     (vit_kind | {"size": {"longest_edge": 224}}, "caps the longest edge.*" + fix),
                     (vit_kind | {"size": {"shortest_edge": 224, "longest_edge": 1333}, "do_center_crop": True,
                                  "crop_size": {"height": 224, "width": 224}}, "caps the longest edge.*" + fix),
                     (vit_kind | {"size": {"height": 8, "width": 8}, "resample": 1}, "LANCZOS"),
                     ({"image_processor_type": "MobileViTImageProcessor", "size": {"shortest_edge": 288}, "do_center_crop": True,
                       "crop_size": {"height": 256, "width": 256}, "do_flip_channel_order": True},
                       "MobileViTImageProcessor is not one.*" + fix),
                     (vit_kind | {"size": {"height": 8, "width": 8}, "do_flip_channel_order": True},
                      "flips the channels.*" + fix),
                     ({"size": {"height": 8, "width": 8}}, "of no named type.*" + fix),
                     ({"image_processor_type": "PoolFormerImageProcessor", "size": {"height": 224, "width": 224}, "crop_pct": 0.9,
                       "do_center_crop": False}, "without a square crop.*" + fix)]:
        with pytest.raises(SpecError, match=why):
            from_image_processor(bad, "bad")


def test_a_warped_geometry_decodes_as_resize_then_floor_crop(tmp_path):
    """keep_aspect=False: the whole image to resize x resize, then the centre crop at (side - crop) // 2; by hand with PIL."""
    import numpy as np
    from PIL import Image

    from visionaudit.data.decoding import decode_image
    from visionaudit.preprocessing import Geometry

    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)).save(path)
    got = decode_image(path, Geometry(33, 30, "bilinear", crop=False, floor_crop=True))
    expected = np.asarray(Image.open(path).convert("RGB").resize((33, 33), Image.BILINEAR))[1:31, 1:31]  # (33 - 30) // 2 = 1
    assert torch.equal(got, torch.from_numpy(expected.copy()).permute(2, 0, 1))
    rounded = decode_image(path, Geometry(33, 30, "bilinear", crop=False))  # torchvision's round(1.5) = 2
    resized = np.asarray(Image.open(path).convert("RGB").resize((33, 33), Image.BILINEAR))
    assert torch.equal(rounded, torch.from_numpy(resized[2:32, 2:32].copy()).permute(2, 0, 1))
