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


def _baseline_rows(conditions=True):
    """16 fixed comparisons of fractional changes, the mCE in its points and 15 x 5 corruption conditions."""
    fixed = [{"model": "m", "comparison": f"top1_t{k}", "delta": -0.01 * (k % 5), "ci": [-0.01 * (k % 5) - 0.02, 0.02],
              "verdict": "unchanged"} for k in range(16)]
    mce = [{"model": "m", "comparison": "mce", "delta": 7.8, "ci": [4.0, 12.2], "verdict": "regression"}]
    grid = [{"model": "m", "comparison": f"corruption_c{c}_{s}", "delta": 0.06 if (c, s) == (2, 3) else 0.001,
             "ci": [0.0, 0.1], "verdict": "regression" if (c, s) == (2, 3) else "unchanged"}
            for c in range(15) for s in range(1, 6)]
    return fixed + mce + (grid if conditions else [])


def test_the_baseline_figure_keeps_the_fixed_comparisons_readable_beside_the_mce_and_the_conditions():
    """The mCE's change is in mCE points and the conditions' in fractions: on one axis with the fixed comparisons
    every interval collapsed onto 0, and 92 rows made the figure 25 inches tall (review of issue 26, finding 4)."""
    import re

    import matplotlib.pyplot as plt

    from visionaudit.html.figures import baseline_figure, baseline_plot

    rows = _baseline_rows()
    fig = baseline_plot(rows)
    fixed = next(ax for ax in fig.axes if any(t.get_text() == "m top1_t0" for t in ax.get_yticklabels()))
    lo, hi = fixed.get_xlim()
    assert -0.2 < lo < -0.04 and 0.02 < hi < 0.2  # the fixed comparisons' scale, not the mCE's 4 .. 12.2
    mce = next(ax for ax in fig.axes if any(t.get_text() == "m mce" for t in ax.get_yticklabels()))
    assert mce is not fixed and mce.get_xlim()[1] >= 12.2 and "mCE" in mce.get_xlabel()
    assert not any("corruption_" in t.get_text() for ax in fig.axes for t in ax.get_yticklabels())  # not 75 bars
    assert fig.get_size_inches()[1] < 12
    plt.close(fig)
    svg = baseline_figure(rows)
    height = float(re.search(r'<svg[^>]*height="([\d.]+)pt"', svg).group(1)) / 72
    assert height < 12  # inches, as drawn (it was 0.26 * 92 + 1 = 25)
    assert "top-1 error change per corruption condition" in svg and "severity" in svg
    assert all(f">c{c}<" in svg for c in range(15)) and ">+6.0<" in svg and svg.count(">+0.1<") == 74  # the grid's cells
    without = baseline_figure(_baseline_rows(conditions=False))
    assert "per corruption condition" not in without and "m top1_t0" in without  # no grid without corruption entries


def test_the_baseline_grid_lists_corruptions_in_the_benchmarks_order():
    """Noise, blur, weather, digital, then the extras, as the corruption family's own figure and table (Hendrycks &
    Dietterich's order, written out here); the grid sorted them alphabetically (review2, finding 8). A name outside
    the benchmark goes last."""
    import random

    import matplotlib.pyplot as plt

    from visionaudit.html.figures import baseline_plot

    order = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
             "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
             "speckle_noise", "gaussian_blur", "spatter", "saturate", "zz_custom"]
    shuffled = random.Random(0).sample(order, len(order))
    rows = [{"model": "m", "comparison": f"corruption_{c}_{s}", "delta": 0.01, "ci": [0.0, 0.02], "verdict": "unchanged"}
            for c in shuffled for s in (1, 3)]
    fig = baseline_plot(rows)
    (grid,) = fig.axes
    assert [t.get_text() for t in grid.get_yticklabels()] == [c.replace("_", " ") for c in order]
    plt.close(fig)


def test_the_differences_figure_colours_only_a_failure_red():
    """review43 F3: every outcome but passed was drawn red, so an interrupted, timed-out or not-judged test with a
    measured difference read as a failure on the figure where the table beside it says what it was."""
    import re

    from visionaudit.html.figures import max_diff_figure

    def colours(outcome):
        row = {"model": "m", "audit": "conversion", "label": "x", "max_abs_diff": 1e-3, "bound": 1e-2, "outcome": outcome}
        return set(re.findall(r"#[0-9a-f]{6}", max_diff_figure([row])))

    for outcome in ("interrupted", "timeout", "not_judged", "crashed"):
        assert "#d04040" not in colours(outcome) and "#40a040" not in colours(outcome), outcome
    assert "#d04040" in colours("failed") and "#d04040" in colours("error") and "#40a040" in colours("passed")


def test_the_corruption_figures_list_corruptions_in_the_tables_order():
    """stop 43's notes: the error figure's panels and the CE figure's rows were alphabetical while the table beside
    them follows the benchmark (noise, blur, weather, digital; Hendrycks & Dietterich's order, written out here)."""
    import random
    import re

    from visionaudit.html.figures import corruption_ce_figure, corruption_error_figure

    order = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
             "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"]
    shuffled = random.Random(1).sample(order, len(order))
    data = {"models": {"m": {"normalized": True, "ce": {c: 50.0 + k for k, c in enumerate(shuffled)},
                             "errors": {c: {s: {"error": 0.3, "ci": [0.2, 0.4]} for s in (1, 2)} for c in shuffled}}}}
    names = [c.replace("_", " ") for c in order]

    def drawn(svg: str) -> list[str]:  # the corruption names as the SVG's text runs them, top to bottom
        texts = [t for t in re.findall(r">([^<>]+)</text>", svg)]
        return [t for t in texts if t in names]

    assert drawn(corruption_error_figure(data)) == names
    ce = drawn(corruption_ce_figure(data))  # y ticks are drawn bottom up: the last first
    assert ce == names[::-1] or ce == names, ce


def test_the_shape_bias_scatter_keeps_its_axes_within_0_and_1():
    """stop 43's notes: the scatter's axes ran below 0 (matplotlib's margins around values near 0): both are
    fractions."""
    import matplotlib.pyplot as plt

    from visionaudit.html import figures

    kept = []
    real = figures._svg
    figures._svg = lambda fig: kept.append((fig.axes[0].get_xlim(), fig.axes[0].get_ylim())) or real(fig)
    try:
        figures.accuracy_scatter([{"model": "a", "clean_top1": 0.0, "shape_bias": 0.0},
                                  {"model": "b", "clean_top1": 0.02, "shape_bias": 1.0}])
    finally:
        figures._svg = real
        plt.close("all")
    (xlim, ylim), = kept
    assert xlim[0] >= 0 and ylim[0] >= 0 and ylim[1] <= 1, (xlim, ylim)
