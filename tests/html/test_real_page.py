"""Issue 26's page as people see it: a real run's report (lite0 on 100 images: clean top-1, one transform, two
corruptions at two severities) and the ImageNet-mean/std candidate gated against it, rendered with the data root
and opened in a real browser with the network off: every figure drawn, the corruption figures, the gallery's
thumbnails loaded with the class names each side put first."""

from __future__ import annotations

import pytest

from tests.browser import visit
from visionaudit.families.outcomes import decode, decode_labels
from visionaudit.html.page import write_html
from visionaudit.html.thumbnails import ImageSource

pytestmark = pytest.mark.slow  # two runs of the real audits (the session's, tests/conftest.py)

LITE0 = "efficientnet_lite0"


@pytest.fixture(scope="module")
def runs(lite0_gate_runs):
    """The session's lite0 report and the ImageNet-mean/std candidate gated against it (tests/conftest.py)."""
    tmp, base, wrong, _ = lite0_gate_runs
    return tmp, base, wrong


def _metrics(report, part):
    (e,) = [e for e in report["audits"] if part in e["nodeid"]]
    return e


def test_the_lost_images_are_the_reports_and_named_by_each_sides_top1(runs):
    """lost_examples against the two reports' own per-image bits and top-1 indices, named by the model's classes."""
    _, base, wrong = runs
    names = base["models"][LITE0]["classes"]
    label = lambda i: f"{names['names'][i]} ({names['ids'][i]})"  # noqa: E731  as LabelSpace.label names ImageNet-1k
    ids = base["samples"]["labelled"]["ids"]
    assert wrong["samples"]["labelled"]["ids"] == ids
    for condition, part in (("clean", "test_clean_top1["), ("rotation", "-rotation]")):  # not the baseline's -top1_rotation]
        old, new = _metrics(base, part)["outcomes"], _metrics(wrong, part)["outcomes"]
        right_old, right_new = decode(old), decode(new)
        lost = [k for k in range(len(ids)) if right_old[k] and not right_new[k]][:24]
        comparison = _metrics(wrong, f"-{'clean_top1' if condition == 'clean' else 'top1_rotation'}]")["metrics"]
        examples = comparison["lost_examples"]
        assert [e["id"] for e in examples] == [ids[k] for k in lost] and lost, condition
        top_old, top_new = decode_labels(old["top1"]), decode_labels(new["top1"])
        assert [(e["baseline_top1"], e["candidate_top1"]) for e in examples] == [(label(top_old[k]),
                                                                                  label(top_new[k])) for k in lost]
        assert all(e["condition"] == condition and e["set"] == "labelled" for e in examples)
        assert all(e["baseline_top1"] != e["candidate_top1"] for e in examples)  # right before, wrong now: other classes


def test_the_real_page_draws_every_figure_and_the_gallery_in_a_browser(runs, shared_data, browser):
    tmp, _, wrong = runs
    page = write_html(tmp / "wrong.html", wrong, images=ImageSource(shared_data))
    seen = visit(page, screenshot=tmp / "real_page.png")
    assert [c for c in seen.console if c["level"] in ("SEVERE", "WARNING")] == []
    assert all(u == page.resolve().as_uri() or u.startswith("data:") for u in seen.requests), seen.requests
    assert {"accuracy", "robustness", "corruption", "baseline"} <= set(seen.sections)
    drawn = [f for f in seen.figures if "lost" not in f["label"] and f["label"]]
    assert drawn and all(f["drawn"] and f["width"] > 100 and f["height"] > 50 for f in drawn), drawn
    labels = [f["label"] for f in drawn]
    assert "top-1 error against severity per corruption with 95 % intervals" in labels
    assert "corruption error per corruption against AlexNet = 100" in labels
    assert all(i["loaded"] and i["width"] > 0 for i in seen.images), seen.images
    gallery = [i for i in seen.images if " under " in i["alt"]]
    lost = sum(len(e["metrics"].get("lost_examples") or []) for e in wrong["audits"] if e["audit"] == "baseline")
    assert len(gallery) == min(24, lost) and all(i["shown"] >= 90 for i in gallery)
    first = next(e for e in wrong["audits"] if e["audit"] == "baseline" and e["metrics"].get("lost_examples"))
    example = first["metrics"]["lost_examples"][0]
    assert f"was: {example['baseline_top1']}" in seen.text and f"now: {example['candidate_top1']}" in seen.text
    assert "error consistency" in seen.text and (tmp / "real_page.png").stat().st_size > 50_000
