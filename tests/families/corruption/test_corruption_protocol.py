"""The corruption protocol's steps against independent references (PIL): decoded as ImageNet-C was made, fed to a
model by its own rule, an unavailable corruption reported; and the family's settings checked at startup and handed
to the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from visionaudit.config import load_config
from visionaudit.data.decoding import decode_image
from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.errors import ConfigError
from visionaudit.families import corruption as C
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import Geometry

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sample(shared_data):
    return labelled_images(shared_data / "imagenet-sample").stratified_subset(12, 0)


@pytest.mark.slow
def test_protocol_decodes_as_imagenet_c_was_made(sample):
    """Resize 256 (PIL bilinear) and centre crop 224, whatever the model's own preprocessing."""
    path = sample.paths[0]
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        w, h = rgb.size
        scale = 256 / min(w, h)
        resized = rgb.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
        left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
        ref = np.array(resized.crop((left, top, left + 224, top + 224)))
    ours = load_images(sample, C.PROTOCOL_GEOMETRY)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.slow
def test_a_224_model_is_fed_the_images_as_stored_and_another_by_its_own_rule(sample, tmp_path):
    as_stored = load_model("tests.tiny_models:tiny")
    assert C.feed_geometry(as_stored) is None and C.describe_feed(as_stored, True)["feed"] == "as stored (224)"
    big = load_model("tests.tiny_models:tiny?size=240&interpolation=bicubic")
    feed = C.feed_geometry(big)
    assert feed == Geometry(274, 240, "bicubic")  # 240 / 0.875, the model's own crop ratio
    assert C.describe_feed(big, False) == {"decode": {"size": 224, "interpolation": "bilinear", "crop": True, "resize": 256},
                                           "jpeg_round_trip": False, "jpeg_quality": None, "jpeg_codec": None,
                                           "feed": {"resize": 274, "size": 240, "interpolation": "bicubic"}}
    images = load_images(sample, C.PROTOCOL_GEOMETRY)[:3]
    out = C.to_model_input(images, feed)
    assert out.shape == (3, 3, 240, 240) and torch.equal(C.to_model_input(images, None), images)
    for k in range(3):  # reference: the 224 image saved losslessly and decoded by PIL at the model's geometry
        path = tmp_path / f"{k}.png"
        Image.fromarray(images[k].permute(1, 2, 0).numpy()).save(path)
        ref = decode_image(path, feed)
        diff = (out[k].int() - ref.int()).abs()
        assert diff.float().mean() < 1.0 and diff.max() <= 12, (k, diff.float().mean(), diff.max())


@pytest.mark.slow
def test_unavailable_corruption_is_reported_with_its_reason(monkeypatch, sample):
    def kernel_for(name):
        if name == "frost":
            raise C.Unavailable("the frost pictures are not installed")
        return lambda b, ids, seed, severity: 255 - b

    monkeypatch.setattr(C, "kernel_for", kernel_for)
    model = load_model("tests.tiny_models:tiny")
    images = load_images(sample, C.PROTOCOL_GEOMETRY)
    run = C.CorruptionRun(model, images, sample.label_tensor(), sample.sample_ids, 0, jpeg=False)
    with pytest.raises(C.Unavailable, match="frost pictures"):
        run.condition("frost", 1)
    inverted = run.condition("fog", 1)
    logits = model.module(model.preprocessing.normalize(255 - images))
    assert np.array_equal(inverted.correct, (logits.argmax(1) == sample.label_tensor()).numpy())


def test_config_keys_are_checked(tmp_path):
    base = (ROOT / "audit.toml").read_text()
    load_config(ROOT / "audit.toml").thresholds("corruption", "efficientnet_lite0")  # the shipped file is valid
    cases = [
        ("severities = [1, 6]", r"audits.corruption.severities = \[1, 6\] holds 6, out of range"),
        ('extras = ["frost"]', "unknown item 'frost'; allowed: speckle_noise, gaussian_blur, spatter, saturate"),
        ("max_error_by_corruption = { fogg = 0.9 }", "unknown key 'fogg'.*did you mean 'fog'"),
        ('jpeg_round_trip = "yes"', "jpeg_round_trip = 'yes' has the wrong type"),
        ("jpeg_on_device = 1", "jpeg_on_device = 1 has the wrong type"),
        ("images = -1", "audits.corruption.images = -1 is out of range"),
        ("batches_ahead = 9", r"audits.corruption.batches_ahead = 9 is out of range; it must be in \[0, 8\] or 'auto'"),
        ("batches_ahead = -1", r"audits.corruption.batches_ahead = -1 is out of range; it must be in \[0, 8\] or 'auto'"),
        ("batches_ahead = 2.5", r"batches_ahead = 2.5 has the wrong type; it must be int in \[0, 8\] \(or: auto\)"),
        ("batches_ahead = true", r"batches_ahead = True has the wrong type; it must be int in \[0, 8\] \(or: auto\)"),
        ('batches_ahead = "Auto"',
         r"batches_ahead = 'Auto' is neither a whole number in \[0, 8\] nor 'auto'; did you mean 'auto'\?"),
        ('batches_ahead = "many"', r"batches_ahead = 'many' is neither a whole number in \[0, 8\] nor 'auto'$"),
        ('batches_ahead = "2"', r"batches_ahead = '2' is neither a whole number"),
    ]
    for new, message in cases:
        path = tmp_path / "audit.toml"
        path.write_text(f"{base}\n[audits.corruption]\n{new}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    # the switch's accepted values, as the audits read them (the default: auto)
    assert load_config(ROOT / "audit.toml").thresholds("corruption", "efficientnet_lite0")["batches_ahead"] == "auto"
    for value, read in [('"auto"', "auto"), ("0", 0), ("1", 1), ("8", 8)]:
        path = tmp_path / "audit.toml"
        path.write_text(f"{base}\n[audits.corruption]\nbatches_ahead = {value}\n")
        assert load_config(path).thresholds("corruption", "efficientnet_lite0")["batches_ahead"] == read, value
    path.write_text(f'{base}\n[models."torchvision:resnet50".corruption]\nbatches_ahead = 4\n')  # one model's own
    assert [load_config(path).thresholds("corruption", m)["batches_ahead"] for m in ("torchvision:resnet50",
                                                                                     "efficientnet_lite0")] == [4, "auto"]
    path.write_text(f'{base}\n[models."torchvision:resnet50".corruption]\nbatches_ahead = 9\n')
    with pytest.raises(ConfigError, match="batches_ahead = 9 is out of range"):
        load_config(path)
    with pytest.raises(ConfigError, match="whole numbers 1 to 5.*2.5"):
        C.check_severities([1, 2.5])


def test_a_bad_batches_ahead_stops_the_run_at_startup(tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text("[audits.corruption]\nbatches_ahead = 12\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "--collect-only", "-q", "-p",
                           "no:cacheprovider",
                           f"--audit-config={config}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "audits.corruption.batches_ahead = 12 is out of range; it must be in [0, 8] or 'auto'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_batches_ahead_reach_the_run(tmp_path):
    """fixtures/corruption.py hands the model's ``batches_ahead`` to its run (the run cache key leaves it out: it moves
    no pixel), and ``jpeg_on_device`` on a CPU model is said on the run."""
    from types import SimpleNamespace

    from fixtures.corruption import corrupted_run
    from tests.image_folders import plain_images

    labelled = labelled_images(plain_images(tmp_path / "images", "n01440764_0.JPEG", "n01443537_1.JPEG"))
    settings = SimpleNamespace(shard=None, imagenet_c=None, samples=None, seed=0)
    for asked, ahead in [("auto", 1), (0, 0), (5, 5)]:
        thresholds = {"jpeg_round_trip": True, "images": 0, "jpeg_on_device": True, "batches_ahead": asked}
        run = corrupted_run(load_model("tests.tiny_models:tiny"), labelled, thresholds, 0, lambda role, subset: None,
                            settings).run
        assert run.ahead == ahead and run.not_honoured == {
            "jpeg_on_device": "jpeg_on_device is set but the model runs on cpu: the round trip used libjpeg"}, asked
