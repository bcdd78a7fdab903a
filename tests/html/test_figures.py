"""The figures, drawn from the data a report gives them (no browser: tests/html/test_page.py shows the page)."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from visionaudit.html.figures import REFERENCE_STYLE, shape_bias_figure, styles  # noqa: E402


def test_shape_bias_figure_is_drawn_with_the_published_references_and_the_pages_styles():
    """The page passes its per-model styles and every published reference: the reference lines' own line
    styles once overwrote the models' styles, so the suite's headline figure was never drawn (issue 23, item 8)."""
    data = {"categories": ["airplane", "bear", "cat"],
            "references": {name: 0.1 + 0.1 * k for k, name in enumerate(REFERENCE_STYLE)},
            "models": {"efficientnet_lite0": {"per_category": {"airplane": 0.2, "bear": None, "cat": 0.4}, "overall": 0.24},
                       "resnet18": {"per_category": {"airplane": 0.1, "bear": 0.3, "cat": 0.5}, "overall": 0.3}}}
    svg = shape_bias_figure(data, {"airplane": 0.9, "cat": 1.0}, styles(list(data["models"])))
    assert svg is not None and "<svg" in svg
    assert svg.count("efficientnet_lite0") >= 1 and "humans (average)" in svg  # legend entries: models and references
    assert shape_bias_figure(data) is not None  # without given styles too


def test_log_axis_labels_are_plain_text_not_raw_mathtext():
    """SVG text is kept as text with math parsing off, so the log axis's default labels
    ($\\mathdefault{10^{-10}}$) showed raw in the browser (issue 23, item 8)."""
    from visionaudit.html.figures import max_diff_figure

    rows = [{"model": "efficientnet_lite0", "audit": "conversion", "label": "rgb_to_gray", "max_abs_diff": 9.3e-6,
             "bound": 1e-3, "outcome": "passed"},
            {"model": "efficientnet_lite0", "audit": "deployment", "label": "torchscript", "max_abs_diff": 0.0,
             "bound": 1e-4, "outcome": "passed"},
            {"model": "efficientnet_lite0", "audit": "deployment", "label": "bf16_cpu", "max_abs_diff": 0.42,
             "bound": 1.5, "outcome": "passed"}]
    svg = max_diff_figure(rows)
    assert svg is not None and "<svg" in svg
    assert "mathdefault" not in svg and "$" not in svg
    assert ">1e-10<" in svg and ">1<" in svg  # the plain labels, from the floor (an exact 0) to 1


def test_error_consistency_figure_draws_each_models_kappa_per_observer_and_the_observers_pairs():
    from visionaudit.html.figures import error_consistency_figure

    data = {"observers": ["subject-02", "subject-03", "subject-04"], "observers_mean": 0.33, "n_trials": 1280,
            "pairwise": {"subject-02": [0.3, 0.35], "subject-03": [0.3, 0.34], "subject-04": [0.35, 0.34]},
            "models": {"efficientnet_lite0": {"mean": 0.2, "ci": [0.17, 0.23], "per_observer": {
                "subject-02": {"kappa": 0.21, "ci": [0.15, 0.27]}, "subject-03": {"kappa": None, "ci": None},
                "subject-04": {"kappa": 0.19, "ci": None}}}}}
    svg = error_consistency_figure(data, styles(["efficientnet_lite0"]))
    assert svg is not None and "<svg" in svg
    assert "efficientnet_lite0: mean kappa 0.200" in svg and "observers' mean pairwise kappa: 0.330" in svg
    assert all(s in svg for s in data["observers"]) and "error consistency (Cohen's kappa)" in svg
    assert error_consistency_figure({**data, "models": {}}) is None  # nothing measured: no figure
