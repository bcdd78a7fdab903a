"""The small reports the page's tests start from (tests/report_fixtures): two tiny models, and one against a
baseline."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "report_fixtures"
TWO = json.loads((FIXTURES / "report_two_models.json").read_text())
AGAINST = json.loads((FIXTURES / "report_against_baseline.json").read_text())
MODELS = ("tests.tiny_models:tiny", "tests.tiny_models:tiny_other")


def entry(report: dict, nodeid_part: str) -> dict:
    (e,) = [e for e in report["audits"] if nodeid_part in e["nodeid"]]
    return e
