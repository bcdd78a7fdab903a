"""`visionaudit compare` between two releases whose models changed: renamed (paired by the `[baseline.pairs]` table of its
--config, as a run pairs them) or gone from the new report (named, never dropped without a word)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tests.audit_runs import TINY, audit
from tests.report.test_verdict import SAMPLES, entry
from visionaudit.config import load_config
from visionaudit.families.baseline.pairing import baseline_only
from visionaudit.families.outcomes import encode_bits
from visionaudit.html import sections
from visionaudit.report.compare import Unpairable, compare_reports, render


def release(*models: str) -> dict:
    """A passing report of these models (each a named tiny model), each with its clean per-image outcomes."""
    bits = np.arange(40) % 3 > 0
    audits = [entry(f"audits/test_accuracy.py::test_clean_top1[{m}]", "accuracy", "passed", model=m,
                    outcomes={"set": "labelled", "condition": "clean", **encode_bits(bits)}) for m in models]
    return {"schema_version": 3, "verdict": "pass", "run": {"seed": 0, "samples": 40},
            "models": {m: {"loaded": True, "spec": TINY, "name": m} for m in models}, "samples": copy.deepcopy(SAMPLES),
            "audits": audits}


def test_compare_pairs_renamed_models_by_the_config_files_baseline_pairs(tmp_path):
    """A sharded CI compares the merged report with compare, not in a run: the [baseline.pairs] table of the
    audit.toml given to --config pairs its renamed models as a run's does (it was read, checked, and then ignored:
    compare refused the pair, exit 4, offering only --model/--baseline-as, one model at a time)."""
    config = tmp_path / "audit.toml"
    config.write_text(f'[baseline.pairs]\n"{TINY}?name=a-v2" = "a-v1"\n"{TINY}?name=b-v2" = "b-v1"\n')
    comparison = compare_reports(release("a-v1", "b-v1"), release("a-v2", "b-v2"), config=load_config(config))
    assert {m: per["baseline_model"] for m, per in comparison["models"].items()} == {"a-v2": "a-v1", "b-v2": "b-v1"}
    assert comparison["models"]["b-v2"]["results"]["clean_top1"].verdict == "unchanged"
    assert comparison["verdict"] == "pass", comparison["verdict_reason"]


def test_a_renamed_model_that_did_not_load_is_not_said_again_as_one_new_lacks(tmp_path):
    """review42_base F1: NEW's b-v2 did not load; OLD's b-v1, which the table pairs with it, was said as well as "has no
    model of NEW paired with it ... pair them" (false: the table pairs them), beside the not-loaded reason."""
    config = tmp_path / "audit.toml"
    config.write_text(f'[baseline.pairs]\n"{TINY}?name=a-v2" = "a-v1"\n"{TINY}?name=b-v2" = "b-v1"\n')
    new = release("a-v2", "b-v2")
    new["models"]["b-v2"] = {"loaded": False, "error": "RuntimeError: weights", "spec": TINY, "name": "b-v2"}
    new["audits"] = new["audits"][:1]
    comparison = compare_reports(release("a-v1", "b-v1"), new, config=load_config(config))
    assert comparison["not_loaded"] == {"b-v2": "RuntimeError: weights"} and comparison["baseline_only"] == []
    assert "has no model of NEW" not in render(comparison) and comparison["verdict"] == "incomplete"
    # A model of OLD the table pairs with none of NEW's is still said.
    gone = compare_reports(release("a-v1", "b-v1", "c-v1"), new, config=load_config(config))
    assert gone["baseline_only"] == ["c-v1"]


def test_a_baseline_model_the_new_report_lacks_is_named_not_dropped_without_a_word():
    old, new = release("a", "b"), release("a")
    comparison = compare_reports(old, new)
    assert comparison["baseline_only"] == ["b"]
    assert ("OLD's model b has no model of NEW paired with it: not compared (a release without it, or NEW holds it "
            "under another id: pair them)") in render(comparison).splitlines()
    assert json.loads(render(comparison, "json"))["baseline_only"] == ["b"]
    assert comparison["verdict"] == "pass"  # a release may drop a model: said, and a passes on what it compared
    # Every model paired, or the user picked one with --model/--baseline-as: nothing to say.
    assert compare_reports(old, release("a", "b"))["baseline_only"] == []
    assert compare_reports(old, new, pairs={"a": "a"})["baseline_only"] == []
    # NEW holds b but it did not load: said as that (not_loaded), not again as a model NEW lacks.
    broken = release("a", "b")
    broken["models"]["b"] = {"loaded": False, "error": "RuntimeError: weights"}
    broken["audits"] = broken["audits"][:1]
    said = compare_reports(old, broken)
    assert said["not_loaded"] == {"b": "RuntimeError: weights"} and said["baseline_only"] == []


def test_baseline_only_leaves_out_controls_and_models_the_baseline_never_loaded():
    old = release("a", "b", "c")
    old["models"]["c"]["loaded"] = False
    control = copy.deepcopy(old["audits"][0])
    old["audits"].append({**control, "model": "resnet18 (random init)", "control": True})
    old["models"]["resnet18 (random init)"] = {"loaded": True, "spec": "resnet18"}  # a control has its entry, as a release's
    assert baseline_only(old, {"a": "a"}) == ["b"]


def test_audit_samples_above_every_sets_size_takes_them_whole_and_the_reports_pair():
    """--audit-samples 500 on a 40-image set scores all 40 (the run says so): the same images as a run without it, yet
    compare and the gate refused the pair (exit 4) saying this run scored "a subset of 500 images per set"."""
    whole, capped = release("a"), release("a")
    whole["run"]["samples"] = whole["samples"]["labelled"]["subset"] = None
    capped["run"]["samples"] = capped["samples"]["labelled"]["subset"] = 500
    for old, new in ((whole, capped), (capped, whole)):
        comparison = compare_reports(old, new)
        assert comparison["paired"] and comparison["models"]["a"]["results"]["clean_top1"].verdict == "unchanged"
    # A real subset (other images) is still refused, naming the subset.
    subset = release("a")
    subset["run"]["samples"] = 20
    subset["samples"]["labelled"] = {**subset["samples"]["labelled"], "name": "s[20 of 40, seed 0]", "n": 20, "subset": 20,
                                     "fingerprint": "f20", "ids": subset["samples"]["labelled"]["ids"][:20]}
    subset["audits"][0]["outcomes"] = {"set": "labelled", "condition": "clean", **encode_bits(np.ones(20, bool))}
    with pytest.raises(Unpairable, match="subset: the baseline scored the whole sets, this run a subset of 20 images"):
        compare_reports(whole, subset)

@pytest.mark.slow
def test_the_run_names_a_baseline_model_it_has_no_model_for(tmp_path, shared_data):
    """--audit-baseline: a release the previous report held and this run does not audit is said in run.notes and on the
    terminal (it was left out without a word), as compare says it."""
    proc, first = audit(tmp_path, shared_data, "first", "-k", "test_clean_top1", "--audit-samples", "20")
    assert first is not None, proc.stderr[-2000:]
    first["models"]["gone"] = {**first["models"][TINY], "name": "gone"}
    old = tmp_path / "old.json"
    old.write_text(json.dumps(first))
    proc, data = audit(tmp_path, shared_data, "second", "-k", "test_clean_top1 or baseline", "--audit-samples", "20",
                       f"--audit-baseline={old}")
    assert data is not None, proc.stderr[-2000:]
    said = (f"the baseline {old}'s model gone has no model of this run paired with it: not compared (a release without it, "
            "or this run holds it under another id: pair them)")
    assert said in data["run"]["notes"] and f"note: {said}" in proc.stdout, proc.stdout[-3000:]
    # The model it holds is compared as before.
    assert any(e["audit"] == "baseline" and e["model"] == TINY for e in data["audits"])


def test_the_html_pages_baseline_section_names_a_baseline_model_not_compared():
    """review42_base F5: `html REPORT --baseline PREV` showed the comparisons of the models it paired and nothing of
    PREV's model the report has no model for (compare says it, a run says it in run.notes)."""
    new = release("a")
    section = sections.baseline(sections.SectionInputs(new, comparison=compare_reports(release("a", "b"), new)))
    assert ("the baseline's model b has no model of this report paired with it: not compared (a release without it, or "
            "this report holds it under another id: pair them)") in section["text"]
    assert "has no model of" not in sections.baseline(sections.SectionInputs(new, comparison=compare_reports(new, new)))["text"]
