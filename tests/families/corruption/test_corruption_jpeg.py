"""The JPEG round trip's codecs (visionaudit/families/corruption/jpeg.py) against PIL's, which stored ImageNet-C, on
real images; the codec named in the protocol, and the baseline gate refusing to pair runs of different codecs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.families import corruption as C
from visionaudit.families.baseline.corruptions import protocol_difference, protocol_of
from visionaudit.models.loading import load_model


def pil_round_trip(images: torch.Tensor) -> torch.Tensor:
    """ImageNet-C's own step: PIL's save(quality=85, optimize=True), decoded by PIL."""
    out = []
    for image in images.cpu():
        buf = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=85, optimize=True)
        out.append(torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1))
    return torch.stack(out)


def difference(ours: torch.Tensor, pil: torch.Tensor) -> dict[str, float]:
    diff = (ours.cpu().int() - pil.int()).abs()
    return {"max_abs_diff": int(diff.max()), "mean_abs_diff": float(diff.float().mean()),
            "within_one_grey_level": float((diff <= 1).float().mean()), "equal": float((diff == 0).float().mean())}


@pytest.fixture(scope="module")
def fifty(shared_data):
    return load_images(labelled_images(shared_data / "imagenet-sample").stratified_subset(48, 0), C.PROTOCOL_GEOMETRY)


@pytest.mark.slow
def test_libjpeg_on_the_cpu_gives_pils_pixels(fifty):
    """The default codec is the protocol's: PIL's pixels exactly, on 48 real images."""
    ours = C.jpeg_round_trip(fifty)
    assert ours.shape == fifty.shape and not torch.equal(ours, fifty)  # it did something
    measured = difference(ours, pil_round_trip(fifty))
    print(f"libjpeg (CPU) vs PIL on {len(fifty)} images: {measured}")
    assert measured["max_abs_diff"] == 0, measured


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_nvjpeg_on_the_gpu_against_pils_pixels(fifty):
    """nvJPEG's round trip measured against PIL's (max abs difference, share of values within one grey level): the
    numbers are printed to be recorded (docs/corruption.md). Bounds a JPEG of the same image at quality 85 must
    keep, whatever the codec's chroma subsampling and inverse DCT; the codec is not the default, so it moves no
    number a default run reports."""
    on_gpu = fifty.cuda()
    ours = C.jpeg_round_trip(on_gpu, codec=C.CUDA_CODEC)
    assert ours.device.type == "cuda" and ours.shape == fifty.shape and ours.dtype == torch.uint8
    pil = pil_round_trip(fifty)
    measured = difference(ours, pil)
    print(f"nvjpeg (CUDA) vs PIL on {len(fifty)} images: {measured}; "
          f"original vs PIL: {difference(fifty, pil)}; nvjpeg vs original: {difference(ours, fifty)}")
    assert measured["mean_abs_diff"] < 4 and measured["within_one_grey_level"] > 0.5, measured
    # its own pixels are the same from one call to the next and in a thread (threads ahead of the device)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        again = pool.submit(C.jpeg_round_trip, on_gpu, C.JPEG_QUALITY, C.CUDA_CODEC).result()
    assert torch.equal(again, ours)


def test_the_codec_follows_the_setting_and_the_device():
    assert C.codec_for(torch.device("cpu"), False) == C.codec_for(torch.device("cpu"), True) == "libjpeg"
    assert C.codec_for(torch.device("cuda"), False) == "libjpeg"
    assert C.codec_for(torch.device("cuda:1"), True) == "nvjpeg"
    with pytest.raises(ValueError, match="nvjpeg codec runs on a CUDA device; the batch is on cpu"):
        C.jpeg_round_trip(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), codec="nvjpeg")
    with pytest.raises(ValueError, match="unknown JPEG codec 'pil'"):
        C.jpeg_round_trip(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), codec="pil")


def test_the_protocol_names_the_codec_and_the_baseline_gate_pairs_only_the_same():
    model = load_model("tests.tiny_models:tiny")
    images = torch.zeros(2, 3, 224, 224, dtype=torch.uint8)
    run = C.CorruptionRun(model, images, torch.zeros(2, dtype=torch.long), ["a", "b"], jpeg_on_device=True)
    assert run.codec == "libjpeg"  # a CPU model: the CPU's codec, and the record says so
    assert run.describe(True)["jpeg_codec"] == "libjpeg" and run.describe(False)["jpeg_codec"] is None

    def side(jpeg: bool, codec: str | None) -> dict:
        described = C.describe_feed(model, jpeg, codec) if codec else C.describe_feed(model, jpeg)
        return protocol_of({"source": "kernels", "protocol": described})

    before_codecs = side(True, None)
    before_codecs.pop("jpeg_codec")  # a report from before the codec was recorded: libjpeg, the only one then
    libjpeg, nvjpeg = side(True, "libjpeg"), side(True, "nvjpeg")
    assert protocol_difference(before_codecs, libjpeg) is None and protocol_difference(libjpeg, libjpeg) is None
    for old, new, said in [(before_codecs, nvjpeg, "jpeg_codec 'libjpeg' in the baseline, 'nvjpeg' here"),
                           (nvjpeg, libjpeg, "jpeg_codec 'nvjpeg' in the baseline, 'libjpeg' here")]:
        reason = protocol_difference(old, new)
        assert reason is not None and said in reason and "jpeg_on_device" in reason, reason
    # no round trip on either side: no codec to compare
    assert protocol_difference(side(False, None), side(False, "nvjpeg")) is None
