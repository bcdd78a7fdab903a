"""A shard's partial report (--audit-shard I/N) holds only its share of the images: `compare`, `html --baseline`
and `--audit-baseline` refuse it on either side (exit 4, naming the merge), as a sharded run refuses a baseline."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.synthetic_runs import varied_runs
from visionaudit import exit_codes
from visionaudit.cli import main
from visionaudit.report.compare import compare_reports

MERGE_FIRST = "merge the shards first (python -m visionaudit merge PART.json ... -o REPORT.json), then compare"


def test_compare_refuses_a_shards_part_on_either_side(tmp_path, capsys):
    """rep40: `compare part-1.json part-1.json` (the same shard of two releases) compared half the images and, its
    baseline accepted, made a pass; a part against a whole report was refused only as "images differ", with
    --baseline-unpaired offered as the fix."""
    whole, parts = varied_runs(3)
    paths = {}
    for name, report in (("whole", whole), ("part-1", parts[0]), ("part-2", parts[1])):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(report))
    # What the refusal guards against: the comparison itself judges a part as readily as a whole run.
    assert compare_reports(parts[0], parts[0], accept_incomplete=True)["verdict"] == "pass"
    for old, new, role, part in (("part-1", "part-1", "old report", "part-1"), ("whole", "part-2", "new report", "part-2"),
                                 ("part-2", "whole", "old report", "part-2")):
        argv = ["compare", "--accept-incomplete-baseline", "--baseline-unpaired", str(paths[old]), str(paths[new])]
        assert main(argv) == exit_codes.USAGE, (old, new)
        err = capsys.readouterr().err
        index = part.split("-")[1]
        assert f"{role} {paths[part]} is the partial report of shard {index}/2 (--audit-shard)" in err, err
        assert MERGE_FIRST in err
    assert main(["html", str(paths["part-1"]), "--baseline", str(paths["whole"]), "-o", str(tmp_path / "p.html")]) == (
        exit_codes.USAGE)
    assert f"report {paths['part-1']} is the partial report of shard 1/2" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists()
    assert main(["html", str(paths["part-1"]), "-o", str(tmp_path / "p.html")]) == exit_codes.PASS  # a part's own page
    assert main(["compare", "--accept-incomplete-baseline", str(paths["whole"]), str(paths["whole"])]) == exit_codes.PASS


@pytest.mark.slow
def test_the_baseline_gate_refuses_a_shards_part_at_startup(tmp_path, shared_data):
    from tests.audit_runs import audit

    part = tmp_path / "part-2.json"
    part.write_text(json.dumps(varied_runs(3)[1][1]))
    proc, data = audit(tmp_path, shared_data, "gate", "-k", "test_clean_top1", f"--audit-baseline={part}")
    assert proc.returncode == exit_codes.USAGE, proc.stderr[-2000:]
    assert f"baseline report {part} is the partial report of shard 2/2 (--audit-shard)" in proc.stderr, proc.stderr[-2000:]
    assert data is not None and data["error"] and "partial report of shard 2/2" in data["error"]


def test_a_one_of_one_part_is_refused_saying_it_holds_every_image(tmp_path, capsys):
    """rep40 review F2: the report of --audit-shard 1/1 holds every image (its verdicts are the run's), yet compare said
    "it holds only that shard's images" and its page "its verdicts judge only this shard's images"."""
    from visionaudit.html.page import render

    whole = varied_runs(3)[0]
    part = {**whole, "run": {**whole["run"], "shard": {"index": 1, "count": 1}}}
    path, other = tmp_path / "part.json", tmp_path / "whole.json"
    path.write_text(json.dumps(part))
    other.write_text(json.dumps(whole))
    assert main(["compare", "--accept-incomplete-baseline", str(other), str(path)]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert (f"new report {path} is the report of --audit-shard 1/1: it holds every image, but in a shard's part form, "
            "which is never compared with a baseline; merge it (python -m visionaudit merge PART.json -o REPORT.json), "
            "then compare the merged report") in err, err
    assert "only that shard's images" not in err
    page = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render(part))))
    assert ("Shard 1/1: this is the report of --audit-shard 1/1: it holds every image, so its verdicts are the run's; "
            "merge it (python -m visionaudit merge) to compare it with a baseline.") in page, page[:3000]
    assert "judge only this shard's images" not in page


def test_the_startup_refusal_of_a_one_of_one_shard_with_a_baseline_says_it_holds_every_image():
    """rep40 review F2: `--audit-shard 1/1 --audit-baseline` said "a shard holds only some of the images"."""
    from plugins.settings import _shard

    options = {"audit_shard": "1/1", "audit_baseline": "old.json"}

    class Config:
        def getoption(self, name, default=None):
            return options.get(name, default)

    with pytest.raises(pytest.UsageError) as refused:
        _shard(Config())
    said = str(refused.value)
    assert ("--audit-shard 1/1 with --audit-baseline: a shard's report is never compared with a baseline (1/1 holds every "
            "image, but in a part's form). Run without a baseline, merge it (python -m visionaudit merge PART.json -o "
            "REPORT.json), then compare the merged report: python -m visionaudit compare BASELINE.json REPORT.json") == said
    options["audit_shard"] = "2/3"
    with pytest.raises(pytest.UsageError) as refused:
        _shard(Config())
    assert ("(it holds only some of the images). Run without a baseline, merge the shards first (python -m visionaudit "
            "merge PART.json ... -o REPORT.json), then compare") in str(refused.value), str(refused.value)
