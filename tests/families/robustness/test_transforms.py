"""The transform kernels: exact where a closed form exists, reproducible where they draw."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from visionaudit.families.robustness import classes_affected, evaluate_transform
from visionaudit.families.robustness.transforms import TRANSFORMS, get
from visionaudit.models.loading import load_model

torch.manual_seed(0)
IMAGES = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8)
IDX = [f"n01440764/img{k}.JPEG" for k in range(8)]  # sample ids seed the draws


def test_flips_are_exact():
    assert torch.equal(get("horizontal_flip")(IMAGES, IDX, 0, 1.0), IMAGES.flip(-1))
    assert torch.equal(get("vertical_flip")(IMAGES, IDX, 0, 1.0), IMAGES.flip(-2))


def test_brightness_scales_and_clamps():
    img = torch.tensor([100, 200, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    out = get("brightness")(img, IDX[:1], 0, 1.0)
    assert out[0, :, 0, 0].tolist() == [150, 255, 0]


def test_histogram_equalization_matches_pil():
    out = get("histogram_equalization")(IMAGES[:2], IDX[:2], 0, 1.0)
    for k in range(2):
        ref = ImageOps.equalize(Image.fromarray(IMAGES[k].permute(1, 2, 0).numpy()))
        assert torch.equal(out[k], torch.from_numpy(np.array(ref)).permute(2, 0, 1))


def test_translation_is_a_pure_shift_in_one_of_four_directions():
    out = get("translation")(IMAGES, IDX, 3, 1.0)
    s = 8  # 20 % of 40
    for k in range(8):
        img, got = IMAGES[k], out[k]
        candidates = []
        for dx, dy in ((s, 0), (-s, 0), (0, s), (0, -s)):
            shifted = torch.zeros_like(img)
            src = img[:, max(0, -dy): 40 - max(0, dy), max(0, -dx): 40 - max(0, dx)]
            shifted[:, max(0, dy): 40 - max(0, -dy), max(0, dx): 40 - max(0, -dx)] = src
            candidates.append(torch.equal(shifted, got))
        assert sum(candidates) == 1, k


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_per_image_draws_do_not_depend_on_the_batch(name):
    whole = get(name)(IMAGES, IDX, 7, 1.0)
    one_by_one = torch.cat([get(name)(IMAGES[k : k + 1], IDX[k : k + 1], 7, 1.0) for k in range(8)])
    assert whole.dtype == torch.uint8 and whole.shape == IMAGES.shape
    assert torch.equal(whole, one_by_one)


@pytest.mark.parametrize("name", ["rotation", "translation", "perspective"])
def test_draws_follow_the_sample_id_not_the_position(name):
    """Protocol 2: an image keeps its draw when it moves (another subset, shard or order)."""
    order = [5, 2, 7, 0, 3, 1, 6, 4]
    whole = get(name)(IMAGES, IDX, 7, 1.0)
    moved = get(name)(IMAGES[order], [IDX[k] for k in order], 7, 1.0)
    assert torch.equal(moved, whole[order])
    by_position = get(name)(IMAGES[order], IDX, 7, 1.0)  # the same images under other ids draw otherwise
    assert not torch.equal(by_position, whole[order])


def test_seeds_change_the_draws():
    a = get("rotation")(IMAGES, IDX, 0, 1.0)
    b = get("rotation")(IMAGES, IDX, 1, 1.0)
    assert torch.equal(a, get("rotation")(IMAGES, IDX, 0, 1.0)) and not torch.equal(a, b)


def test_zero_severity_perspective_is_identity():
    assert torch.equal(get("perspective")(IMAGES, IDX, 0, 0.0), IMAGES)


def test_unknown_transform():
    with pytest.raises(ValueError, match="unknown transform 'blur'"):
        get("blur")


def red_images():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    images[:20, 0], images[20:, 0] = 200, 100  # red 0.78: class 1; red 0.39: class 0
    return images, torch.tensor([1] * 20 + [0] * 20)


def test_evaluate_transform_closed_form():
    model = load_model("tests.tiny_models:red_threshold?mean=0,0,0&std=1,1,1&size=8&imagenet=false", "cpu")
    images, labels = red_images()
    clean = model.module(model.preprocessing.normalize(images)).detach()
    flip = evaluate_transform(model, images, labels, clean, "horizontal_flip")
    assert (flip.clean_top1, flip.top1, flip.drop, flip.flip_rate, flip.p_value) == (1.0, 1.0, 0.0, 0.0, 1.0)
    # Brightness x1.5 lifts red 100 -> 150 (0.59 > 0.5): the 20 class-0 images all become class 1.
    bright = evaluate_transform(model, images, labels, clean, "brightness")
    assert (bright.top1, bright.drop, bright.flip_rate, bright.discordant) == (0.5, 0.5, 0.5, (20, 0))
    assert bright.p_value == pytest.approx(2 * 0.5**20)
    assert bright.classwise_clean[:2] == [1.0, 1.0] and bright.classwise_transformed[:2] == [0.0, 1.0]
    assert bright.drop_ci[0] <= 0.5 <= bright.drop_ci[1]


def test_classes_affected():
    clean = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    after = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    assert classes_affected(clean, after) == {"classes_affected": 1, "classes": [0], "models": 3, "classes_tested": 3,
                                              "alpha": 0.05}
    with pytest.raises(ValueError, match="at least two models"):
        classes_affected(clean[:1], after[:1])


def test_classes_affected_counts_uncorrected_p_and_says_how_many_chance_gives():
    """Stop-33 review, doubt 3: with no effect at all about alpha x classes cross p < alpha. Two models, one image
    per class, right with the same chance 0.8 before and after: a class counts only when both models are right
    before and wrong after or the reverse ([1, 1] vs [0, 0]: no spread, p = 0), chance 2 x 0.8^2 x 0.2^2 = 0.0512
    per class; the count is reported as such, with the classes tested and the chance expectation."""
    from visionaudit.families.robustness import _affected_text

    rng = np.random.default_rng(0)
    clean, after = (rng.random((2, 1000)) < 0.8).astype(float), (rng.random((2, 1000)) < 0.8).astype(float)
    result = classes_affected(clean.tolist(), after.tolist())
    by_hand = int(sum(1 for k in range(1000) if len(set(clean[:, k])) == 1 and len(set(after[:, k])) == 1
                      and clean[0, k] != after[0, k]))
    assert result["classes_affected"] == by_hand and result["classes_tested"] == 1000 and result["alpha"] == 0.05
    assert abs(by_hand - 51.2) < 4 * math.sqrt(1000 * 0.0512 * (1 - 0.0512))  # chance's count, within 4 sd
    text = _affected_text(result)
    assert text == (f"{by_hand} of 1000 classes differ at p < 0.05 (the study's per-class t-test, uncorrected for the "
                    "classes tested, about 50 expected by chance alone)")
    # A report written before classes_tested was recorded: said without the count it lacks
    assert _affected_text({"classes_affected": 3, "classes": [1, 2, 3], "models": 2}) == (
        "3 classes differ at p < 0.05 (the study's per-class t-test, uncorrected for the classes tested)")
