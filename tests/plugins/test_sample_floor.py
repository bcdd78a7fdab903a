"""``--audit-samples`` below a selected family's ``min_images`` (50 by default: accuracy, robustness, corruption),
said at startup, before any test runs, on the terminal and in the report's notes (hunt 35, F4), not found out only
once every test ran; nothing said where the subset meets the floor or a shard makes the count another's."""

from __future__ import annotations

import pytest

from tests.audit_runs import audit

pytestmark = pytest.mark.slow


def _floor_notes(data: dict) -> list[str]:
    return [n for n in data["run"].get("notes", []) if "below min_images" in n]


def test_a_subset_below_min_images_is_said_before_any_test_runs(tmp_path, shared_data):
    proc, data = audit(tmp_path, shared_data, "small", "-n", "0", "-m", "accuracy or robustness", "--audit-samples", "20")
    out = proc.stdout
    warning = next((line for line in out.splitlines() if line.startswith("WARNING: --audit-samples 20 ")), None)
    assert warning is not None, out
    # Before the first test's progress: said at startup, not found out at the end.
    assert out.index(warning) < out.index("audits/test_"), out
    # The two selected families whose default min_images (50, audit.toml's reference) is above 20, and the fixes.
    assert "accuracy 50, robustness 50" in warning and "the accuracy, robustness gates will not be judged" in warning
    assert "--audit-samples 50 or more" in warning and "lower min_images" in warning
    assert '-m "not accuracy and not robustness"' in warning
    assert _floor_notes(data) == [warning.removeprefix("WARNING: ")]
    # What it foretold: the run is incomplete with those gates not judged (exit 1, not a refusal).
    assert proc.returncode == 1 and data["verdict"] == "incomplete", out
    assert {e["audit"] for e in data["audits"] if e["outcome"] == "not_judged"} == {"accuracy", "robustness"}


def test_no_word_where_the_subset_meets_the_floor_or_in_a_shard(tmp_path, shared_data):
    proc, data = audit(tmp_path, shared_data, "enough", "-n", "0", "-k", "test_clean_top1", "--audit-samples", "50")
    assert "below min_images" not in proc.stdout and not _floor_notes(data), proc.stdout
    # In a shard each job judges its share and `visionaudit merge` all of them: the count is not this job's to say.
    proc, data = audit(tmp_path, shared_data, "shard", "-n", "0", "-k", "test_clean_top1", "--audit-samples", "20",
                       "--audit-shard", "1/2")
    assert "below min_images" not in proc.stdout and not _floor_notes(data), proc.stdout
