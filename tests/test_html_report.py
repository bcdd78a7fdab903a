"""The HTML report: its figures' data against the JSON, the page in a real browser with the network off,
and a failure to render that loses nothing. Starts from small fixture reports (tests/report_fixtures)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from visionaudit import figure_data
from visionaudit.html_report import human_per_category, render, write_html
from visionaudit.imagenet16 import categories
from visionaudit.thumbnails import transform_strips
from visionaudit.transforms import TRANSFORMS

from .browser import chromedriver, visit

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "report_fixtures"
TWO = json.loads((FIXTURES / "report_two_models.json").read_text())
AGAINST = json.loads((FIXTURES / "report_against_baseline.json").read_text())
MODELS = ("tests.tiny_models:tiny", "tests.tiny_models:tiny_other")


def entry(report: dict, nodeid_part: str) -> dict:
    (e,) = [e for e in report["audits"] if nodeid_part in e["nodeid"]]
    return e


# -- the figures' data is the JSON's ------------------------------------------------------------------

def test_shape_bias_figure_data_is_the_reports():
    d = figure_data.shape_bias_by_category(TWO)
    assert set(d["models"]) == set(MODELS) and d["categories"] == list(categories())
    for model in MODELS:
        e = entry(TWO, f"test_shape_bias[{model}]")
        assert d["models"][model]["overall"] == e["metrics"]["shape_bias"]
        for c, row in e["metrics"]["per_category"].items():
            assert d["models"][model]["per_category"][c] == row["shape_bias"]
    assert d["references"]["humans (average)"] == 0.96 and d["references"]["VGG-16"] == 0.092


def test_channel_shares_and_groups_are_the_reports():
    d = figure_data.channel_shares(TWO)
    for model in MODELS:
        assert d["models"][model] == entry(TWO, f"test_weight_shares[{model}]")["metrics"]["shares"]
    assert "torchvision:resnet18:none" not in d["models"]  # a control is a group, not a model
    assert d["groups"]["control (random init)"] == TWO["aggregates"]["channel_bias"]["control (random init)"]["mean"]


def test_robustness_drops_are_the_reports():
    d = figure_data.robustness_drops(TWO)
    for model in MODELS:
        assert set(d["models"][model]) == set(TRANSFORMS)
        e = entry(TWO, f"test_transform[{model}-zoom]")
        assert d["models"][model]["zoom"]["drop"] == e["metrics"]["drop"] and d["models"][model]["zoom"]["ci"] == e["metrics"]["drop_ci"]


def test_max_differences_and_baseline_deltas_are_the_reports():
    rows = figure_data.max_differences(TWO)
    gray = next(r for r in rows if r["model"] == MODELS[0] and r["label"] == "rgb_to_gray")
    assert gray["max_abs_diff"] == entry(TWO, f"test_configured_model[{MODELS[0]}-rgb_to_gray]")["metrics"]["max_abs_diff"]
    deltas = {r["comparison"]: r for r in figure_data.baseline_deltas(AGAINST)}
    shares = entry(AGAINST, "channel_shares")["metrics"]
    assert deltas["channel_shares"]["verdict"] == "regression" and deltas["channel_shares"]["delta"] == shares["delta"]


def test_human_references_are_the_mean_of_the_observers(shared_data):
    """Per category, the mean over the nine observers of shape / (shape + texture), computed here by hand."""
    paths = sorted((shared_data / "texture-vs-shape-raw").glob("*.csv"))
    refs = human_per_category(paths)
    import csv

    per: dict[str, list[float]] = {}
    for path in paths:
        counts: dict[str, list[int]] = {}
        for row in csv.DictReader(path.open()):
            shape = row["category"]
            texture = re.sub(r"\d+$", "", Path(row["imagename"]).stem.rsplit("-", 1)[1])
            if shape == texture:
                continue
            c = counts.setdefault(shape, [0, 0])
            c[0] += row["object_response"] == shape
            c[1] += row["object_response"] == texture
        for cat, (s, t) in counts.items():
            if s + t:
                per.setdefault(cat, []).append(s / (s + t))
    assert refs == pytest.approx({c: sum(v) / len(v) for c, v in per.items()})
    assert 0.9 < sum(refs.values()) / len(refs) <= 1.0  # humans decide by shape


# -- the page -------------------------------------------------------------------------------------------

def test_page_holds_every_section_with_the_reports_numbers():
    html = render(TWO)
    for section in ("verdicts", "accuracy", "shape_bias", "channel_bias", "robustness", "conversion", "problems"):
        assert f'<section id="{section}">' in html, section
    assert "default-src 'none'" in html and "<script" not in html
    assert re.findall(r'(?:src|href)="(?!data:|#)[^"]*"', html) == []  # every image inline, no link out
    sb = entry(TWO, f"test_shape_bias[{MODELS[0]}]")["metrics"]["shape_bias"]
    assert f"{sb:.4g}" in html
    assert html.count('role="img"') >= 4 and 'aria-label="shape bias per category' in html
    failed = [e["nodeid"] for e in TWO["audits"] if e["outcome"] == "failed"]
    assert all(n in html for n in failed) and "a gate failed: the measured value is outside its bound" in html


def test_thumbnails_redraw_the_runs_transforms(shared_data):
    strips = transform_strips(TWO, shared_data)
    assert set(strips) == {"clean", *TRANSFORMS} and all(len(v) == 3 for v in strips.values())
    assert strips["horizontal_flip"] != strips["clean"] and all(u.startswith("data:image/jpeg;base64,") for u in strips["zoom"])
    assert transform_strips(TWO, shared_data / "nowhere") is None


@pytest.fixture
def browser() -> None:
    """Skips without a browser, except in CI (.ci/run sets VISIONAUDIT_REQUIRE_BROWSER), where that fails."""
    if chromedriver() is None:
        message = "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver (.ci/run does)"
        if os.environ.get("VISIONAUDIT_REQUIRE_BROWSER"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def test_the_page_in_a_real_browser_offline(tmp_path, shared_data, browser):
    page = write_html(tmp_path / "report.html", TWO, sorted((shared_data / "texture-vs-shape-raw").glob("*.csv")),
                      transform_strips(TWO, shared_data))
    seen = visit(page, screenshot=tmp_path / "report.png")
    assert [c for c in seen.console if c["level"] in ("SEVERE", "WARNING")] == []
    assert all(u == page.resolve().as_uri() or u.startswith("data:") for u in seen.requests), seen.requests
    assert seen.sections == ["verdicts", "accuracy", "shape_bias", "channel_bias", "robustness", "conversion", "problems"]
    top1 = entry(TWO, f"test_clean_top1[{MODELS[0]}]")["metrics"]["clean_top1"]
    assert f"{top1:.4g}" in seen.text and "FAIL" in seen.text
    assert (tmp_path / "report.png").stat().st_size > 10_000
    phone = visit(page, width=390)
    assert phone.viewport == 390 and phone.width <= 390  # nothing wider than a phone: figures scale, tables scroll in their box


def test_an_external_load_would_be_blocked_and_seen(tmp_path, browser):
    """The check above can fail: a page that tries to load from the network shows it (CSP and the offline network)."""
    page = tmp_path / "leaky.html"
    page.write_text(render(AGAINST).replace("</body>", '<img src="https://example.com/x.png" alt="x"></body>'))
    seen = visit(page)
    assert any("example.com" in c["message"] for c in seen.console)


def test_baseline_section_from_the_cli(tmp_path):
    out = tmp_path / "b.html"
    proc = subprocess.run([sys.executable, "-m", "visionaudit", "html", str(FIXTURES / "report_two_models.json"), "--baseline",
                           str(FIXTURES / "report_two_models.json"), "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert '<section id="baseline">' in html and html.count(">unchanged<") == 2 * 14


def test_a_failing_render_keeps_the_json_and_the_exit_status(tmp_path, shared_data):
    """matplotlib made to fail inside the run: the JSON is written, the exit status is the audits', and
    the terminal says how to render the page later."""
    (tmp_path / "sitecustomize.py").write_text("import visionaudit.figures as f\n"
                                               "def boom(*a, **k):\n    raise RuntimeError('planted figure failure')\n"
                                               "f.channel_bars = boom\n")
    env = {**os.environ, "VISIONAUDIT_DATA": str(shared_data), "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "GITHUB_STEP_SUMMARY"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-k", "test_weight_shares",
                           "--audit-json", str(tmp_path / "r.json"), "--audit-html", str(tmp_path / "r.html")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "pass" and not (tmp_path / "r.html").exists()
    assert "html: not written (RuntimeError: planted figure failure); the JSON report is complete" in proc.stdout


def test_not_a_number_renders_as_na():
    """null in the JSON (a non-finite number) is drawn without an interval and written as n/a."""
    report = json.loads(json.dumps(TWO))
    entry(report, f"test_transform[{MODELS[0]}-zoom]")["metrics"]["drop_ci"] = [None, None]
    assert "<td>[n/a, n/a]</td>" in render(report)
