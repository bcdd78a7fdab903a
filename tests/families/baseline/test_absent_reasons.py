"""Why a comparison found nothing in a saved report, said by test: a family may run several tests, and the one a
comparison reads can be absent while the others ran (issue 24 review)."""

from __future__ import annotations

from visionaudit.families.baseline import (
    COMPARED,
    ModelOutcomes,
    outcomes_from_report,
    uncompared,
)


def _report(*entries: tuple[str, str, str]) -> dict:
    return {"samples": {}, "audits": [{"model": "m", "audit": audit, "nodeid": nodeid, "outcome": outcome, "metrics": {}}
                                      for audit, nodeid, outcome in entries]}


def _reason(report: dict, name: str) -> str:
    missing = uncompared.missing(outcomes_from_report(report, "m"), ModelOutcomes("m"), COMPARED[name])
    assert missing is not None and missing[1] == "baseline"
    return missing[0]


def test_a_family_that_ran_without_the_compared_test_names_the_test():
    edges_only = _report(("shape_bias", "audits/test_shape_bias.py::test_shape_only_accuracy[m-edges]", "passed"))
    assert _reason(edges_only, "shape_bias") == ("the baseline has no per-image outcomes for cue-conflict (its cue-conflict "
                                                 "test (test_shape_bias) was not in that run)")
    skipped = _report(("shape_bias", "audits/test_shape_bias.py::test_shape_only_accuracy[m-edges]", "passed"),
                      ("shape_bias", "audits/test_shape_bias.py::test_shape_bias[m]", "skipped"))
    assert _reason(skipped, "shape_bias").endswith("(its cue-conflict test (test_shape_bias) ended 1 skipped)")
    # The family absent altogether: said of the family, as before.
    assert _reason(_report(), "shape_bias").endswith("(its shape_bias audit was not in that run)")
