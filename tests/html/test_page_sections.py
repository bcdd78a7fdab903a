"""The page's sections as the family descriptors name them (a family without its own section, one whose section
fails, conversion and deployment together), and for models of their own label space (issue 24): the per-class
tables, no mCE, the error consistency figure; and what stopped a --maxfail run."""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.html.fixture_reports import MODELS, TWO, entry
from visionaudit.html import figure_data
from visionaudit.html.page import render

# -- sections named by the family descriptors ----------------------------------------------------------

@pytest.fixture
def registry(monkeypatch):
    """The family registry, restored after the test: families registered in it do not outlive the test."""
    from visionaudit.families import registry

    registry.families()  # the built-in families loaded first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


def _toy_entry(model: str, test: str, outcome: str, metrics: dict, message: str | None = None, audit: str = "toy") -> dict:
    return {"nodeid": f"audits/test_{audit}.py::{test}[{model}]", "audit": audit, "model": model, "params": {},
            "outcome": outcome,
            "duration": 0.1, "metrics": metrics, "thresholds": {}, "tables": {}, "message": message, "worker": None}


def _section(html: str, sid: str) -> str:
    assert html.count(f'<section id="{sid}">') == 1, sid
    return html.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def test_a_family_without_a_section_gets_the_generic_one(registry):
    from visionaudit import Family, register_family

    register_family(Family(name="toy", gates="a toy score per model", key_metric="score", higher_is_better=True, thresholds={}))
    report = json.loads(json.dumps(TWO))
    report["audits"] += [
        _toy_entry(MODELS[1], "test_score", "failed", {"score": 0.3, "other": 1},
                   "AssertionError: score 0.3 is below min_score 0.5"),
        _toy_entry(MODELS[0], "test_score", "passed", {"score": 0.8125}),
        _toy_entry(MODELS[0], "test_unmeasured", "error", {}, "RuntimeError: planted"),
    ]
    html = render(report)
    section = _section(html, "toy")
    assert "<h2>toy</h2>" in section and "<p>a toy score per model. Key metric: score (higher is better).</p>" in section
    rows = re.findall(r"<tr>((?:<td>.*?</td>)+)</tr>", section)
    assert [re.findall(r"<td>(.*?)</td>", r) for r in rows] == [
        [MODELS[0], f"test_score[{MODELS[0]}]", "0.8125", "passed", ""],
        [MODELS[0], f"test_unmeasured[{MODELS[0]}]", "-", "error", "RuntimeError: planted"],
        [MODELS[1], f"test_score[{MODELS[1]}]", "0.3", "failed", "AssertionError: score 0.3 is below min_score 0.5"],
    ]  # by model, then test; no score recorded: "-"
    assert re.findall(r'<th scope="col">(.*?)</th>', section) == ["model", "test", "score", "outcome", "message"]
    # after the built-in families' sections, in the registry's order
    ids = re.findall(r'<section id="([a-z_]+)">', html)
    assert ids == ["verdicts", "accuracy", "shape_bias", "channel_bias", "robustness", "conversion", "toy", "problems"]
    assert '<section id="toy">' not in render(TWO)  # a family the report does not hold has no section


def test_a_family_no_installed_package_registers_is_described_by_the_report():
    """A report from a run with a family's package, rendered where that package is missing."""
    report = json.loads(json.dumps(TWO))
    report["families"]["elsewhere"] = {"key_metric": "error_rate", "higher_is_better": False, "gates": "an error rate",
                                       "directions": {"error_rate": False}}
    report["audits"].append(_toy_entry(MODELS[0], "test_rate", "passed", {"error_rate": 0.125}, audit="elsewhere"))
    section = _section(render(report), "elsewhere")
    assert "<p>an error rate. Key metric: error_rate (lower is better).</p>" in section
    assert f"<td>{MODELS[0]}</td><td>test_rate[{MODELS[0]}]</td><td>0.125</td><td>passed</td>" in section


def test_a_family_names_its_own_section_and_a_failing_one_costs_only_itself(registry, monkeypatch):
    from visionaudit import Family, register_family

    def own(page):
        scores = [e["metrics"]["score"] for e in page.report["audits"] if e["audit"] == "toy"]
        return {"title": "Toy scores", "text": f"mean score {sum(scores) / len(scores)}"}

    def broken(page):
        raise RuntimeError("planted section failure")

    register_family(Family(name="toy", gates="x", key_metric="score", higher_is_better=True, thresholds={}, html_section=own))
    register_family(Family(name="toy_by_path", gates="x", key_metric="score", higher_is_better=True, thresholds={},
                           html_section=f"{__name__}:_toy_builder"))
    register_family(Family(name="toy_broken", gates="x", key_metric="score", higher_is_better=True, thresholds={},
                           html_section=broken))
    monkeypatch.setattr(sys.modules[__name__], "_toy_builder", lambda page: {"id": "by_path", "title": "Named by its path"},
                        raising=False)
    report = json.loads(json.dumps(TWO))
    report["audits"] += [_toy_entry(MODELS[0], "test_score", "passed", {"score": 0.25}),
                         _toy_entry(MODELS[1], "test_score", "passed", {"score": 0.75})]
    html = render(report)
    assert "<h2>Toy scores</h2>\n<p>mean score 0.5</p>" in _section(html, "toy")  # its id defaults to the family's name
    assert "<h2>Named by its path</h2>" in _section(html, "by_path")
    assert "section not drawn (RuntimeError: planted section failure)" in _section(html, "toy_broken")
    assert all(f'<section id="{s}">' in html for s in ("accuracy", "shape_bias", "channel_bias", "robustness", "conversion",
                                                       "problems"))


def test_conversion_and_deployment_share_one_section():
    """The two families name one builder: one section, with both families' rows."""
    section = _section(render(TWO), "conversion")
    assert "<td>conversion</td>" in section and "<td>deployment</td>" in section
    assert '<section id="deployment">' not in render(TWO)


# -- a model of its own label space (issue 24) ----------------------------------------------------------

def _own_classes_report(n_classes: int) -> dict:
    """TWO with its first model's accuracy entry as a model of ``n_classes`` named classes would write it: class
    ``k`` has k + 1 images, k of them right (accuracy k / (k + 1), so the worst is class 0)."""
    report = json.loads(json.dumps(TWO))
    e = entry(report, f"test_clean_top1[{MODELS[0]}]")
    per = {f"class {k} name": {"index": k, "n_images": k + 1, "correct": k, "accuracy": k / (k + 1)} for k in range(n_classes)}
    e["tables"]["per_class"] = per
    e["metrics"].update(balanced_accuracy=sum(c["accuracy"] for c in per.values()) / n_classes,
                        lowest_class={"class": "class 0 name", **per["class 0 name"]})
    e["metrics"].pop("top5")  # five classes or fewer record no top-5
    return report


def _rows(table_html: str) -> list[list[str]]:
    return [re.findall(r"<td>(.*?)</td>", row) for row in table_html.split("<tr>")[2:]]


def test_the_per_class_table_names_every_class_worst_first():
    html = render(_own_classes_report(4))
    section = _section(html, "accuracy")
    assert f"<h3>{MODELS[0]}: accuracy per class</h3>" in section
    table = section.split('<table class="per-class">', 1)[1].split("</table>", 1)[0]
    rows = _rows(table)
    # by hand: accuracies 0, 1/2, 2/3, 3/4, worst first, each class by its name with its output index
    assert rows == [["class 0 name", "0", "1", "0", "0"], ["class 1 name", "1", "2", "1", "0.5"],
                    ["class 2 name", "2", "3", "2", "0.6667"], ["class 3 name", "3", "4", "3", "0.75"]]
    assert "all 4 classes with images" in section
    main = _rows(section.split("<table>", 1)[1].split("</table>", 1)[0])
    mine = next(r for r in main if r[0] == MODELS[0])
    assert mine[2] == "- (5 classes or fewer)" and mine[3] == "0.4792" and mine[4] == "class 0 name 0 (0/1)"


def test_a_large_label_space_shows_its_worst_classes():
    section = _section(render(_own_classes_report(120)), "accuracy")
    rows = _rows(section.split('<table class="per-class">', 1)[1].split("</table>", 1)[0])
    assert len(rows) == 50 and rows[0][0] == "class 0 name" and rows[-1][0] == "class 49 name"
    assert "the 50 worst of 120 classes with images" in section


def test_corruption_of_an_own_label_space_model_says_no_mce():
    report = json.loads(json.dumps(TWO))
    report["audits"] = [e for e in report["audits"] if e["audit"] != "corruption"] + [{
        "nodeid": f"audits/test_corruption.py::test_mce[{MODELS[0]}]", "audit": "corruption", "model": MODELS[0],
        "params": {}, "outcome": "passed", "duration": 0.1, "message": None, "worker": None, "outcomes": None,
        "thresholds": {"max_mean_error": 0.9}, "tables": {"errors": {"fog": {"1": 0.2, "2": 0.4}}},
        "metrics": {"alexnet_normalized": False, "mean_error": 0.3, "mean_rise": 0.2, "clean_error": 0.1,
                    "mean_error_ci": [0.25, 0.35], "n_images": 10, "subset": None}}]
    section = _section(render(report), "corruption")
    assert "mean error 0.3 [0.25, 0.35], mean rise over its clean error 0.2 (clean 0.1" in section
    assert "<td>fog</td><td>0.3</td><td>0.2</td><td>0.2, 0.4</td>" in section  # mean over severities, its rise by hand
    assert "mCE" not in section.replace("no mCE", "")


def _with_error_consistency(report: dict) -> dict:
    """The fixture report with each shape-bias entry's error consistency (schema 5), numbers made up for the page."""
    import copy

    report = copy.deepcopy(report)
    for k, model in enumerate(MODELS):
        e = entry(report, f"test_shape_bias[{model}]")
        e["tables"]["error_consistency"] = {
            "subject-02": {"kappa": 0.2 + 0.1 * k, "kappa_ci": [0.1 + 0.1 * k, 0.3 + 0.1 * k]},
            "subject-03": {"kappa": None, "kappa_ci": None, "reason": "kappa is undefined"}}
        e["tables"]["observers_error_consistency"] = {"subject-02 / subject-03": 0.31}
        e["metrics"].update({"human_error_consistency": 0.2 + 0.1 * k, "human_error_consistency_ci": [0.1, 0.4],
                             "observers_error_consistency": 0.31, "error_consistency_detail": {"n_trials": 1280}})
    return report


def test_error_consistency_figure_data_is_the_reports_and_the_page_draws_it():
    report = _with_error_consistency(TWO)
    d = figure_data.error_consistency(report)
    assert d["observers"] == ["subject-02", "subject-03"] and d["n_trials"] == 1280 and d["observers_mean"] == 0.31
    assert d["pairwise"] == {"subject-02": [0.31], "subject-03": [0.31]}
    for k, model in enumerate(MODELS):
        assert d["models"][model]["mean"] == pytest.approx(0.2 + 0.1 * k)
        assert d["models"][model]["per_observer"]["subject-02"] == {"kappa": pytest.approx(0.2 + 0.1 * k),
                                                                    "ci": pytest.approx([0.1 + 0.1 * k, 0.3 + 0.1 * k])}
        assert d["models"][model]["per_observer"]["subject-03"]["kappa"] is None  # undefined: drawn as nothing
    html = render(report)
    assert 'aria-label="error consistency (kappa) of each model with each human observer' in html
    assert "Error consistency with the human observers on the cue-conflict stimuli (1280 trials" in html
    assert "Observers&#39; mean pairwise kappa 0.31" in html or "Observers' mean pairwise kappa 0.31" in html
    # a report without it (schema 4, or no observers) draws no such figure and keeps the rest
    assert figure_data.error_consistency(TWO)["models"] == {}
    assert "error consistency (kappa) of each model" not in render(TWO)


def test_a_not_judged_shape_bias_entrys_kappas_are_drawn_and_marked():
    """Too few stimuli leave shape bias not judged, but its kappas were recorded: the figure and the table show them,
    marked not judged (the shape-bias figure draws it hollow, as every not-judged value: stop 45). Stop 44:
    the table showed "-" for its shape bias and interval, as decided then; nothing measured is thrown away, so they
    are shown as measured, the row greyed and marked (tests/html/test_page.py checks it in a browser)."""
    report = _with_error_consistency(TWO)
    e = entry(report, f"test_shape_bias[{MODELS[1]}]")
    e["outcome"], e["message"] = "not_judged", "not judged: 20 cue-conflict images with conflicting cues, fewer than 100"
    d = figure_data.error_consistency(report)
    assert d["models"][MODELS[1]]["mean"] == pytest.approx(0.3) and d["models"][MODELS[1]]["not_judged"] is True
    assert d["models"][MODELS[0]]["not_judged"] is False
    assert MODELS[1] not in figure_data.shape_bias_by_category(report)["models"]
    section = _section(render(report), "shape_bias")
    assert f"{MODELS[1]} (not judged): mean kappa 0.3" in section  # the figure's legend
    m = e["metrics"]
    assert (f'<tr class="not-judged"><td>{MODELS[1]} (not judged)</td><td>{m["shape_bias"]:.4g}</td>'
            f'<td>[{m["shape_bias_ci"][0]:.4g}, {m["shape_bias_ci"][1]:.4g}]</td><td>0.3</td>') in section  # the table's row
    assert "error consistency (kappa) of each model" not in render(TWO)


def test_the_page_says_what_stopped_a_maxfail_run_and_whether_a_json_was_kept():
    """stop-33 review N1 and N11: a -x run's page said only "it never started" per test, and a page written without
    --audit-json said "the JSON holds every number"."""
    stopped = json.loads(json.dumps(TWO))
    failed = stopped["audits"][0]["nodeid"]
    stopped["incomplete"] = {**(stopped.get("incomplete") or {}), "interrupted": False,
                             "stopped_by": {"test": failed, "reason": "stopping after 1 failures (-x/--maxfail)"}}
    page = render(stopped, json_kept=False)
    said = re.search(r'<p id="stopped-by">(.*?)</p>', page, re.S)
    assert said and failed in said.group(1) and "stopping after 1 failures (-x/--maxfail)" in said.group(1)
    assert "the JSON holds every number" not in page and "kept no JSON report" in page
    plain = render(TWO)
    assert 'id="stopped-by"' not in plain and "the JSON holds every number" in plain


def test_a_page_against_a_baseline_from_the_cli_says_the_comparisons_verdict():
    """page43: `visionaudit html NEW --baseline OLD` drew the comparisons but not their verdict: over the report's own
    PASS, a comparison that compare calls INCOMPLETE (or FAIL) read as nothing wrong. The baseline here is itself a
    fail, so by the rule (docs/report.md, the verdict) the comparison is no pass unless that is accepted."""
    from visionaudit.report.compare import compare_reports

    assert TWO["verdict"] == "fail"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _section(render(TWO, comparison=compare_reports(TWO, TWO)),
                                                                 "baseline"))).replace("&#39;", "'")
    assert "As visionaudit compare judges it: INCOMPLETE: 0 regression(s); not a pass: " in text, text[:3000]
    assert "the old report has verdict fail, not pass" in text
    assert text.split("Against the baseline", 1)[1].lstrip().startswith("As visionaudit compare judges it: "), text[:500]
    accepted = compare_reports(TWO, TWO, accept_incomplete=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _section(render(TWO, comparison=accepted), "baseline")))
    assert "the old report has verdict fail, not pass; accepted (--accept-incomplete-baseline)" in text, text[:3000]


def test_the_shape_only_accuracies_have_their_columns():
    """stop 43's notes: the shape-bias family's edges and silhouettes accuracies (16-way, Geirhos et al.'s shape-only
    stimuli) were in the JSON only. The shape-bias table gives each model's, beside its shape bias."""
    section = _section(render(TWO), "shape_bias")
    assert "<th scope=\"col\">edges accuracy (16-way)</th><th scope=\"col\">silhouettes accuracy (16-way)</th>" in section
    for model in MODELS:
        edges = entry(TWO, f"test_shape_only_accuracy[{model}-edges]")["metrics"]["edges_accuracy"]
        silhouettes = entry(TWO, f"test_shape_only_accuracy[{model}-silhouettes]")["metrics"]["silhouettes_accuracy"]
        row = section.split(f"<td>{model}</td>", 1)[1].split("</tr>", 1)[0]
        assert row.endswith(f"<td>{edges:.4g}</td><td>{silhouettes:.4g}</td>"), row
