"""Whose images the page says it shows: a team's own labelled images drawn under the transforms or in the baseline's
gallery were captioned as ImageNet's, under ImageNet's terms, with the cue-conflict stimuli's licence beside them
(stop 40, ft40: the attribution was one constant whatever the images)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
from PIL import Image

from tests.html.fixture_reports import AGAINST, TWO
from visionaudit.html.page import render
from visionaudit.html.thumbnails import ImageSource, transform_strips

IMAGENET = "ImageNet terms of access"
STIMULI = "Geirhos et al. 2019, CC BY 4.0"


def _images(folder: Path, ids: list[str]) -> Path:
    for k, i in enumerate(ids):
        (folder / i).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 40, 3), 40 * k, np.uint8)).save(folder / i)
    return folder


def _robustness(html: str) -> str:
    return re.search(r'<section id="robustness">(.*?)</section>', html, re.S).group(1)


def test_a_teams_own_images_under_the_transforms_are_not_said_to_be_imagenets(tmp_path):
    team = _images(tmp_path / "team", ["airplane/a.png", "truck/b.png", "truck/c.png"])
    report = copy.deepcopy(TWO)
    report["run"]["images"] = str(team)
    report["samples"]["labelled"]["ids"] = ["airplane/a.png", "truck/b.png", "truck/c.png"]
    section = _robustness(render(report, strips=transform_strips(report, tmp_path / "data", str(team))))
    assert section.count("<img") == 3 * 10  # the clean row and the nine transforms: the images are shown
    assert IMAGENET not in section and STIMULI not in section  # no stimulus is shown here either
    assert f"Images: the run&#39;s labelled images ({team})." in section


def test_imagenet_images_under_the_transforms_keep_imagenets_terms(tmp_path):
    ids = TWO["samples"]["labelled"]["ids"][:3]  # imagenet-sample's file names, under the data root
    _images(tmp_path / "imagenet-sample", ids)
    section = _robustness(render(TWO, strips=transform_strips(TWO, tmp_path)))
    assert IMAGENET in section and STIMULI not in section
    # The data root's imagenet-sample folder given as a path is the named set.
    assert IMAGENET in _robustness(render(TWO, strips=transform_strips(TWO, tmp_path, str(tmp_path / "imagenet-sample"))))
    # ImageNet's validation file names in a team's class folders are ImageNet's images, whatever the folders.
    val = ["bird/ILSVRC2012_val_00000001.JPEG", "boat/ILSVRC2012_val_00000002.JPEG", "boat/ilsvrc2012_val_00000003.jpeg"]
    team = _images(tmp_path / "team-val", val)
    report = copy.deepcopy(TWO)
    report["samples"]["labelled"]["ids"] = val
    section = _robustness(render(report, strips=transform_strips(report, tmp_path, str(team))))
    assert IMAGENET in section and "the run&#39;s labelled images" not in section


def test_wnid_folders_and_files_of_a_teams_own_photos_are_not_said_to_be_imagenets(tmp_path):
    """Review 40, F2: WNID class folders and ``<wnid>_<name>`` files are labelling layouts for a team's own photos
    (image_sets.LABELLED_LAYOUTS), not signs of ImageNet's images: they were captioned with ImageNet's terms."""
    for name, ids in (("team-wnid", ["n01440764/IMG_0001.jpg", "n02102040/photo2.png", "n02102040/photo3.png"]),
                      # imagenet-sample's own file names copied into class folders (lite0's 16 classes,
                      # tests/test_any_classifier.py) are ImageNet's, but the names alone do not show it
                      ("team16", [f"bird/{i}" for i in TWO["samples"]["labelled"]["ids"][:3]])):
        team = _images(tmp_path / name, ids)
        report = copy.deepcopy(TWO)
        report["samples"]["labelled"]["ids"] = ids
        section = _robustness(render(report, strips=transform_strips(report, tmp_path / "data", str(team))))
        assert section.count("<img") == 3 * 10
        assert IMAGENET not in section and f"Images: the run&#39;s labelled images ({team})." in section


def test_the_gallery_names_whose_images_it_shows(tmp_path):
    team = _images(tmp_path / "team", ["cat/x0.png", "dog/x1.png"])
    _images(tmp_path / "data" / "cue-conflict", ["cat/cat1-dog2.png"])
    report = copy.deepcopy(AGAINST)
    report["run"]["images"] = str(team)
    lost = [{"id": "cat/x0.png", "set": "labelled", "condition": "rotation", "baseline_top1": "cat", "candidate_top1": "dog"},
            {"id": "dog/x1.png", "set": "labelled", "condition": "clean", "baseline_top1": "dog", "candidate_top1": "cat"}]
    entry = next(e for e in report["audits"] if e["audit"] == "baseline" and e["params"]["comparison"] == "top1_rotation")
    entry["metrics"]["lost_examples"] = lost
    source = ImageSource(tmp_path / "data", str(team))
    gallery = re.search(r'<section id="baseline">(.*?)</section>', render(report, images=source), re.S).group(1)
    assert gallery.count("data:image/jpeg") == 2 and IMAGENET not in gallery and STIMULI not in gallery
    assert f"the run&#39;s labelled images ({team})" in gallery
    entry["metrics"]["lost_examples"] = lost + [{"id": "cat/cat1-dog2.png", "set": "cue-conflict", "condition": "cue-conflict",
                                                 "baseline_top1": "cat", "candidate_top1": "dog"}]
    gallery = re.search(r'<section id="baseline">(.*?)</section>', render(report, images=source), re.S).group(1)
    assert gallery.count("data:image/jpeg") == 3 and STIMULI in gallery and IMAGENET not in gallery
    # Review 40, F3: an ImageNet-C image lost beside the team's brings ImageNet's terms and its authors, and the team's
    # images are still named as the run's (they were said to be ImageNet's).
    report["run"]["imagenet_c"] = str(_images(tmp_path / "imagenet-c", ["fog/3/n01440764/x.JPEG"]))
    entry["metrics"]["lost_examples"] = lost + [{"id": "n01440764/x.JPEG", "set": "imagenet-c", "condition": "fog-3",
                                                 "baseline_top1": "cat", "candidate_top1": "dog"}]
    gallery = re.search(r'<section id="baseline">(.*?)</section>', render(report, images=source), re.S).group(1)
    assert gallery.count("data:image/jpeg") == 3 and f"the run&#39;s labelled images ({team})" in gallery
    assert IMAGENET in gallery and "Hendrycks &amp; Dietterich 2019" in gallery and STIMULI not in gallery
