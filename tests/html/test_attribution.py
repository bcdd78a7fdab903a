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
    # The same ImageNet files in a team's class folders (lite0 made a 16-class model, tests/test_any_classifier.py)
    team = _images(tmp_path / "team16", [f"bird/{ids[0]}", f"boat/{ids[1]}", f"boat/{ids[2]}"])
    report = copy.deepcopy(TWO)
    report["samples"]["labelled"]["ids"] = [f"bird/{ids[0]}", f"boat/{ids[1]}", f"boat/{ids[2]}"]
    assert IMAGENET in _robustness(render(report, strips=transform_strips(report, tmp_path, str(team))))


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
