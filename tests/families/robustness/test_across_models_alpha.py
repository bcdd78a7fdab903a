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


def test_models_at_several_levels_are_said_to_be_counted_at_the_smallest():
    """Review of num42, F2: the report recorded the smallest alpha alone and the summary line said "p < 0.01" with
    nothing saying that another model was judged at 0.05."""
    from visionaudit.families.robustness import _aggregate, _summary_lines

    entries = [_entry("a", [0.0, 0.0], 0.05), _entry("b", [0.5, 0.0], 0.01), _entry("c", [0.5, 0.5], 0.05)]
    report = {"aggregates": {"robustness": _aggregate(entries)}, "audits": [], "models": {}}
    assert report["aggregates"]["robustness"]["across_models"]["rotation"]["alphas"] == [0.01, 0.05]
    (line,) = _summary_lines(report)
    assert "1 of 2 classes differ at p < 0.01 (the smallest of its models' alpha, 0.01, 0.05)" in line, line
    same = _aggregate([_entry(m, after, 0.05) for m, after in (("a", [0.0, 0.0]), ("b", [0.5, 0.0]), ("c", [0.5, 0.5]))])
    assert "alphas" not in same["across_models"]["rotation"]  # one level: nothing more to say


def test_every_transform_entry_carries_its_alpha_to_the_per_class_test():
    """Review of num42, F1: `alpha` reached an entry only through the not_significant check (horizontal flip, once
    judged), so a run without one (`-k rotation`) counted at 0.05 whatever the key said. Entries assessed on rotation
    alone at alpha 0.01, their class-wise tables then set by hand as above (class 0: p = 0.0161, class 1: 0.0075)."""
    import numpy as np

    from visionaudit.config import Thresholds, load_config
    from visionaudit.data.fingerprint import SampleSet
    from visionaudit.families.assessment import PerImage, assess
    from visionaudit.families.records import AuditRecord
    from visionaudit.families.robustness import _aggregate

    n = 60
    clean = np.arange(n) < 40
    arrays = {"clean": clean, "labels": np.arange(n) % 2, "correct@1": clean & (np.arange(n) >= 3), "changed@1": np.arange(n) < 3}
    thresholds = Thresholds("robustness", "m", {**dict(load_config(None).thresholds("robustness", "m")), "alpha": 0.01})
    entries = []
    for model, after in (("a", [0.0, 0.0]), ("b", [0.5, 0.0]), ("c", [0.5, 0.5])):
        record = AuditRecord("robustness", model, params={"transform": "rotation"})
        assess("robustness", "transform", record, PerImage(SampleSet("labelled", "s", tuple(f"{k}.jpg" for k in range(n)),
               "f", None, 0), arrays), thresholds, {"model": model, "model_classes": 2, "transform": "rotation", "seed": 0})
        entry = record.to_dict()
        entry["tables"].update(classwise_clean=[1.0, 1.0], classwise_transformed=after)
        entries.append(entry)
    result = _aggregate(entries)["across_models"]["rotation"]
    assert (result["alpha"], result["classes"]) == (0.01, [1])  # at 0.05 (the default it fell back to): [0, 1]
