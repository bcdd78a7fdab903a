"""Issue 26 on the page: the corruption figures (error against severity with intervals, CE against AlexNet = 100) and,
in the baseline section, the gallery of images that went right -> wrong and the error consistency beside each change.
Hand-built reports here; tests/html/test_page.py shows a real run's page in a browser."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from visionaudit.html import figure_data
from visionaudit.html.page import render
from visionaudit.html.thumbnails import ImageSource

ROOT = Path(__file__).resolve().parents[2]
AGAINST = json.loads((ROOT / "tests" / "report_fixtures" / "report_against_baseline.json").read_text())


def _condition(model, corruption, severity, error, ci, **metrics):
    return {"nodeid": f"audits/test_corruption.py::test_corruption[{model}-{corruption}-{severity}]", "audit": "corruption",
            "model": model, "params": {"corruption": corruption, "severity": severity}, "outcome": "passed",
            "metrics": {"error": error, "error_ci": ci, **metrics}, "thresholds": {}, "tables": {}, "message": None}


def _mce(model, ce, errors, **metrics):
    return {"nodeid": f"audits/test_corruption.py::test_mce[{model}]", "audit": "corruption", "model": model, "params": {},
            "outcome": "passed", "metrics": {"mce": 80.0, "mce_ci": [70.0, 90.0], "relative_mce": 90.0, "ce": ce,
                                             "relative_ce": ce, "n_images": 100, "comparable": False, **metrics},
            "thresholds": {}, "tables": {"errors": errors}, "message": None}


def _corruption_report(own_label_space=False):
    report = copy.deepcopy(AGAINST)
    m = "tests.tiny_models:red_dominant"
    extra = {"alexnet_normalized": False} if own_label_space else {}
    report["audits"] = [e for e in report["audits"] if e["audit"] != "baseline"] + [
        _condition(m, "fog", 1, 0.30, [0.22, 0.40], **extra), _condition(m, "fog", 3, 0.50, [0.40, 0.60], **extra),
        _condition(m, "gaussian_noise", 3, 0.70, [0.60, 0.78], **extra),
        _condition(m, "gaussian_noise", 1, 0.40, [0.31, 0.50], **extra)]
    if own_label_space:
        report["audits"].append({**_mce(m, {}, {"fog": {"1": 0.3, "3": 0.5}, "gaussian_noise": {"1": 0.4, "3": 0.7}},
                                        alexnet_normalized=False, mean_error=0.475, mean_error_ci=[0.4, 0.55], mean_rise=0.2,
                                        clean_error=0.275)})
        del report["audits"][-1]["metrics"]["mce"]
    else:
        report["audits"].append(_mce(m, {"fog": 62.5, "gaussian_noise": 131.0},
                                     {"fog": {"1": 0.3, "3": 0.5}, "gaussian_noise": {"1": 0.4, "3": 0.7}}))
    return report


def test_the_corruption_curves_are_the_condition_entries_and_the_ce_the_mce_entrys():
    curves = figure_data.corruption_curves(_corruption_report())
    (model,) = curves["models"].values()
    assert model["errors"] == {"fog": {1: {"error": 0.30, "ci": [0.22, 0.40]}, 3: {"error": 0.50, "ci": [0.40, 0.60]}},
                               "gaussian_noise": {1: {"error": 0.40, "ci": [0.31, 0.50]}, 3: {"error": 0.70, "ci": [0.60, 0.78]}}}
    assert list(model["errors"]["gaussian_noise"]) == [1, 3]  # severities in order, whatever the entries' order
    assert model["ce"] == {"fog": 62.5, "gaussian_noise": 131.0} and model["normalized"] is True


def _section(html, name):
    return re.search(rf'<section id="{name}">(.*?)</section>', html, re.S).group(1)


def test_the_corruption_section_draws_error_against_severity_and_ce_against_alexnet():
    section = _section(render(_corruption_report()), "corruption")
    figures = re.findall(r"<figure role=\"img\" aria-label=\"([^\"]*)\">(.*?)</figure>", section, re.S)
    assert [label for label, _ in figures] == ["top-1 error against severity per corruption with 95 % intervals",
                                               "corruption error per corruption against AlexNet = 100"]
    errors, ce = (body for _, body in figures)
    assert "<svg" in errors and "<svg" in ce
    assert all(t in errors for t in ("fog", "gaussian noise", "severity", "top-1 error"))
    assert "AlexNet = 100" in ce and "gaussian noise" in ce and "No CE" not in section


def test_a_model_of_its_own_label_space_gets_the_error_figure_only_and_is_told_why():
    section = _section(render(_corruption_report(own_label_space=True)), "corruption")
    labels = re.findall(r"<figure role=\"img\" aria-label=\"([^\"]*)\">", section)
    assert labels == ["top-1 error against severity per corruption with 95 % intervals"]
    assert "No CE for tests.tiny_models:red_dominant: a model of its own label space is not normalized by AlexNet" in section


def _lost(prefix, n, condition, set_="labelled"):
    return [{"id": f"{prefix}{k}.png", "set": set_, "condition": condition, "baseline_top1": f"old{k}",
             "candidate_top1": None if k == 1 else f"new{k}"} for k in range(n)]


def test_the_gallery_takes_lost_images_in_turn_from_each_comparison_up_to_24():
    deltas = [{"model": "m", "comparison": "clean_top1", "lost_examples": _lost("a", 20, "clean")},
              {"model": "m", "comparison": "top1_rotation", "lost_examples": _lost("b", 3, "rotation")},
              {"model": "m", "comparison": "shape_bias", "lost_examples": []},
              {"model": "m", "comparison": "top1_zoom", "lost_examples": _lost("a", 20, "zoom")}]
    gallery = figure_data.lost_gallery(deltas)
    assert len(gallery) == 24
    assert [g["id"] + "/" + g["condition"] for g in gallery[:7]] == [
        "a0.png/clean", "b0.png/rotation", "a0.png/zoom", "a1.png/clean", "b1.png/rotation", "a1.png/zoom", "a2.png/clean"]
    assert sum(g["comparison"] == "top1_rotation" for g in gallery) == 3  # a comparison's few all shown
    assert figure_data.lost_gallery([{"model": "m", "comparison": "c", "lost_examples": []}]) == []


def _baseline_report(tmp_path=None):
    report = copy.deepcopy(AGAINST)
    for e in report["audits"]:
        if e["audit"] == "baseline" and e["params"]["comparison"] == "top1_rotation":
            e["metrics"]["lost_examples"] = _lost("img", 3, "rotation")
            e["metrics"]["error_consistency"] = {"observed": 0.9, "expected": 0.8, "kappa": 0.5, "kappa_ci": [0.25, 0.75],
                                                 "n": 60}
        if e["audit"] == "baseline" and e["params"]["comparison"] == "clean_top1":
            e["metrics"]["error_consistency"] = {"observed": 1.0, "expected": 1.0, "kappa": None, "kappa_ci": None, "n": 60}
    return report


def test_without_the_data_root_the_gallery_names_the_images_and_says_why_no_thumbnail():
    section = _section(render(_baseline_report()), "baseline")
    gallery = section.split('<div class="gallery" id="lost-gallery">')[1]
    assert gallery.count('<figure class="lost">') == 3 and "<img" not in gallery
    assert gallery.count("no thumbnail: the page was rendered without the data root (visionaudit html --data "
                         "DIR draws them)") == 3
    assert "img0.png" in gallery and "was: old0" in gallery and "now: new0" in gallery and "rotation" in gallery
    assert "now: not recorded" in gallery  # img1's candidate had no top-1
    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)
    rotation = next(r for r in rows if "<td>top1_rotation</td>" in r)
    clean = next(r for r in rows if "<td>clean_top1</td>" in r)
    assert "<td>0.5 [0.25, 0.75]</td>" in rotation
    assert "<td>- (undefined: observed 1, expected 1)</td>" in clean
    assert "error consistency (kappa, 95% interval)" in section


def test_with_the_data_root_each_lost_image_is_a_thumbnail_with_its_classes(tmp_path):
    images = tmp_path / "imagenet-sample"
    images.mkdir()
    for k in (0, 2):  # img1 is not there: said so, the others drawn
        Image.fromarray(np.full((40, 40, 3), 60 * k, np.uint8)).save(images / f"img{k}.png")
    section = _section(render(_baseline_report(), images=ImageSource(tmp_path)), "baseline")
    thumbs = re.findall(r'<img src="data:image/jpeg;base64,[^"]+" alt="([^"]+)">', section)
    assert thumbs == ["img0.png under rotation", "img2.png under rotation"]
    assert f"no thumbnail: not under {images}" in section and "was: old2" in section and "ImageNet" in section


def test_a_missing_baseline_top1_is_blamed_on_the_schema_only_when_the_baseline_predates_it():
    """A schema-6 baseline also lacks top-1 classes (a merge of mixed-schema parts, a condition that records none):
    the gallery said "a baseline before schema 6" for every one (review of issue 26, finding 6)."""
    report = _baseline_report()
    for e in report["audits"]:
        for ex in e["metrics"].get("lost_examples") or []:
            ex["baseline_top1"] = None
    report["run"]["baseline"] = {"path": "old.json", "verdict": "pass", "accepted": False, "schema_version": 6}
    gallery = _section(render(report), "baseline").split('id="lost-gallery">')[1]
    assert gallery.count("was: not recorded in the baseline report") == 3 and "schema" not in gallery
    report["run"]["baseline"]["schema_version"] = 5
    gallery = _section(render(report), "baseline").split('id="lost-gallery">')[1]
    assert gallery.count("was: not recorded (a baseline of schema 5, before schema 6)") == 3
    del report["run"]["baseline"]  # not known: not blamed on the schema
    gallery = _section(render(report), "baseline").split('id="lost-gallery">')[1]
    assert gallery.count("was: not recorded in the baseline report") == 3
    lost = next(e for e in report["audits"] if e["metrics"].get("lost_examples"))["metrics"]["lost_examples"]
    lost[0]["reason"] = "the ImageNet-C folder run records none"  # an example's own reason, when it gives one
    gallery = _section(render(report), "baseline").split('id="lost-gallery">')[1]
    assert "was: not recorded (the ImageNet-C folder run records none)" in gallery


def test_the_cli_comparison_says_the_baseline_schema_for_the_gallery():
    from visionaudit.html.sections import SectionInputs, _baseline_top1_missing

    assert _baseline_top1_missing(SectionInputs({}, comparison={"baseline_schema": 4})) == \
        "not recorded (a baseline of schema 4, before schema 6)"
    assert _baseline_top1_missing(SectionInputs({}, comparison={"baseline_schema": 6})) == "not recorded in the baseline report"


def test_the_run_records_the_baseline_reports_schema_for_the_page():
    from plugins.baseline import Baseline

    got = Baseline(Path("old.json"), {"schema_version": 5, "verdict": "pass"}, {}).to_dict()
    assert got == {"path": "old.json", "verdict": "pass", "accepted": False, "schema_version": 5}


def test_a_lost_imagenet_c_image_is_drawn_from_the_runs_imagenet_c_folder_under_its_condition(tmp_path):
    """The images of a downloaded ImageNet-C folder (role imagenet-c) were looked for under <data root>/imagenet-c,
    not in the --audit-imagenet-c folder the run recorded, nor in the condition's <corruption>/<severity> folder
    (review of issue 26, finding 8)."""
    folder = tmp_path / "somewhere" / "ImageNet-C"
    for corruption, severity, shade in (("fog", 3, 200), ("fog", 1, 20), ("gaussian_noise", 5, 90)):
        (folder / corruption / str(severity) / "n01440764").mkdir(parents=True)
        Image.fromarray(np.full((224, 224, 3), shade,
                                np.uint8)).save(folder / corruption / str(severity) / "n01440764" / "a.JPEG")
    lost = [{"id": "n01440764/a.JPEG", "set": "imagenet-c", "condition": c, "baseline_top1": "tench",
             "candidate_top1": "goldfish"}
            for c in ("fog-3", "gaussian_noise-5", "snow-2")]  # snow/2 is not in the folder
    report = _baseline_report()
    entry = next(e for e in report["audits"] if e["metrics"].get("lost_examples"))
    entry["metrics"]["lost_examples"] = lost
    report["run"]["imagenet_c"] = str(folder)
    data_root = tmp_path / "data"
    (data_root / "imagenet-c").mkdir(parents=True)  # where it looked: a decoy holding the same id
    (data_root / "imagenet-c" / "n01440764").mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(data_root / "imagenet-c" / "n01440764" / "a.JPEG")
    source = ImageSource(data_root)
    uris, why_not = source.thumbnails(report, lost + [{**lost[0], "condition": "fog"}])
    assert sorted(uris) == [0, 1] and why_not[2] == f"{folder / 'snow' / '2'} is not here"
    assert why_not[3] == "fog is not an ImageNet-C condition (<corruption>-<severity>)"

    def shade(uri):  # the thumbnail's mean grey level: which condition's file it was drawn from
        import base64
        import io
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))).mean()

    assert abs(shade(uris[0]) - 200) < 8 and abs(shade(uris[1]) - 90) < 8  # fog/3's file, gaussian_noise/5's; not the decoy
    # A report before run.imagenet_c: the corruption entries' source names the folder.
    del report["run"]["imagenet_c"]
    report["audits"].append({"nodeid": "audits/test_corruption.py::test_corruption[m-fog-3]", "audit": "corruption",
                             "model": "m", "params": {"corruption": "fog", "severity": 3}, "outcome": "passed",
                             "metrics": {"source": f"ImageNet-C folder {folder}"}, "thresholds": {}, "tables": {}})
    uris, _ = source.thumbnails(report, lost[:1])
    assert abs(shade(uris[0]) - 200) < 8
    report["audits"].pop()
    assert source.thumbnails(report, lost[:1])[1] == {0: "the report does not record its ImageNet-C folder (--audit-imagenet-c)"}
    section = _section(render(report | {"run": {**report["run"], "imagenet_c": str(folder)}}, images=source), "baseline")
    assert re.findall(r'alt="([^"]+)">', section)[:2] == ["n01440764/a.JPEG under fog-3",
                                                          "n01440764/a.JPEG under gaussian_noise-5"]
