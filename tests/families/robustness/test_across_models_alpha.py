"""The study's per-class test across models counts at the configured alpha (stop 42, num42): `[audits.robustness]
alpha` set the McNemar tests and Holm's level, while classes_affected stayed at 0.05. Hand-built class-wise tables,
checked against scipy's t-test."""

from __future__ import annotations

import pytest


def _entry(model: str, after: list[float], alpha: float) -> dict:
    return {"audit": "robustness", "model": model, "params": {"transform": "rotation"}, "thresholds": {"alpha": alpha},
            "metrics": {"p_value": 0.5, "label_space": "two classes"},
            "tables": {"classwise_clean": [1.0, 1.0], "classwise_transformed": after}}


@pytest.mark.parametrize("alphas, expected", [((0.01, 0.01, 0.01), [1]), ((0.05, 0.05, 0.05), [0, 1]),
                                              ((0.05, 0.01, 0.05), [1])])
def test_the_per_class_test_across_models_counts_at_the_configured_alpha(alphas, expected):
    """docs/robustness.md: classes_affected counts the classes with p < `alpha`, the [audits.robustness] key; it
    was 0.05 whatever the key said. By hand (scipy's two-sided t-test): class 0, clean [1, 1, 1] against
    [0, 0.5, 0.5], p = 0.0161; class 1, against [0, 0, 0.5], p = 0.0075."""
    from scipy import stats as sp

    from visionaudit.families.robustness import _aggregate

    assert 0.01 < sp.ttest_ind([1, 1, 1], [0, 0.5, 0.5]).pvalue < 0.05 and sp.ttest_ind([1, 1, 1], [0, 0, 0.5]).pvalue < 0.01
    entries = [_entry("a", [0.0, 0.0], alphas[0]), _entry("b", [0.5, 0.0], alphas[1]), _entry("c", [0.5, 0.5], alphas[2])]
    result = _aggregate(entries)["across_models"]["rotation"]
    assert result["classes"] == expected and result["alpha"] == min(alphas)  # models at several levels: the strictest
