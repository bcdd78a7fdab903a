"""Runs of a model given a name (``--model 'SPEC?name=NAME'``): the name is its id wherever people read it (test ids,
the report's rows and models section, the terminal summary, the HTML page) with the spec recorded beside it; the logit
cache goes by the spec; the baseline pairs by the name; two models of one id and a bad name stop the run (exit 4).
Parsing, the config's lookup and the pairing's messages are tested without runs in tests/models/test_model_names.py."""

from __future__ import annotations

import json
import re

import pytest

from tests.audit_runs import TINY, audit
from tests.browser import visit
from tests.sharded_runs import merge_cli

NAMED = f"{TINY}?name=tiny-v1"


def _summary(stdout: str) -> list[str]:
    """The terminal summary's table rows (after its header line)."""
    section = stdout.split("visionaudit summary", 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("model "))
    return [line for line in section[start + 1:] if line.strip() and not line.startswith(("verdict:", "report:", "html:"))][:1]


@pytest.mark.slow
def test_a_named_model_is_its_name_everywhere_and_its_spec_is_kept(shared_data, tmp_path, browser):
    page = tmp_path / "named.html"
    proc, data = audit(tmp_path, shared_data, "named", "-k", "test_clean_top1", "--audit-samples", "50", f"--audit-html={page}",
                       model=NAMED)
    assert proc.returncode == 1 and data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]  # the tiny model fails min_top1
    [entry] = data["audits"]
    assert entry["nodeid"] == "audits/test_accuracy.py::test_clean_top1[tiny-v1]" and entry["model"] == "tiny-v1"
    assert entry["message"].startswith("AssertionError: tiny-v1: clean top-1 0.000")
    assert list(data["models"]) == ["tiny-v1"]
    model = data["models"]["tiny-v1"]
    assert (model["spec"], model["name"], model["spec_as_given"]) == (TINY, "tiny-v1", NAMED)
    [row] = _summary(proc.stdout)
    assert re.match(r"tiny-v1 +accuracy +clean_top1=0 ", row), row
    assert "FAILED audits/test_accuracy.py::test_clean_top1[tiny-v1]" in proc.stdout
    seen = visit(page)
    assert f"tiny-v1\nspec {TINY}" in seen.text or f"tiny-v1 spec {TINY}" in seen.text, seen.text[:2000]


@pytest.mark.slow
def test_the_baseline_pairs_by_name_and_a_renamed_model_reads_its_specs_cached_logits(shared_data, tmp_path):
    """The previous release (tiny, named tiny-v1); this run: another model named tiny-v1 (paired by the name), and tiny
    again under another name (paired by [baseline.pairs], its clean logits read from the cache the release's run filled)."""
    cache = tmp_path / "cache"
    proc, old = audit(tmp_path, shared_data, "release", "-k", "test_clean_top1", "--audit-samples", "20",
                      f"--audit-cache={cache}", model=NAMED)
    assert old is not None and list(old["models"]) == ["tiny-v1"], proc.stdout[-3000:] + proc.stderr[-3000:]
    config = tmp_path / "audit.toml"
    config.write_text(f'[baseline.pairs]\n"{TINY}" = "tiny-v1"\n')  # this run's tiny-v2, by its spec
    baseline = ["-m", "baseline", "-k", "clean_top1", "--audit-samples", "20", f"--audit-cache={cache}",
                f"--audit-baseline={tmp_path / 'release.json'}", "--audit-accept-incomplete-baseline"]
    proc, new = audit(tmp_path, shared_data, "next", *baseline, f"--audit-config={config}", "--model", f"{TINY}?name=tiny-v2",
                      model="tests.tiny_models:tiny_other?name=tiny-v1")
    assert new is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    compared = {(e["model"], e["params"]["comparison"]): e for e in new["audits"]}
    assert set(compared) == {("tiny-v1", "clean_top1"), ("tiny-v2", "clean_top1")}
    assert {e["metrics"]["baseline_model"] for e in compared.values()} == {"tiny-v1"}
    assert new["models"]["tiny-v1"]["spec"] == "tests.tiny_models:tiny_other" and new["models"]["tiny-v2"]["spec"] == TINY
    assert re.search(r"tiny-v2: clean imagenet-sample\[20 of 1000, seed 0\]: 20 logits read from .*, forward pass skipped",
                     proc.stdout), proc.stdout[-3000:]

    # The release's spec, unnamed here: not paired with tiny-v1 by its spec, and said why (exit 4, before any model loads).
    proc, refused = audit(tmp_path, shared_data, "unnamed", *baseline, model=TINY)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = f"{TINY}: the baseline has no model {TINY}, but has this spec ({TINY}) as tiny-v1: name it the same (?name=tiny-v1)"
    assert said in proc.stderr and refused is not None and said in refused["error"]


@pytest.mark.slow
def test_a_named_models_shards_merge_into_one_model(shared_data, tmp_path):
    parts = []
    for shard in ("1/2", "2/2"):
        name = f"shard{shard[0]}"
        proc, data = audit(tmp_path, shared_data, name, "-k", "test_clean_top1", "--audit-samples", "20", "--audit-shard", shard,
                           model=NAMED)
        assert data is not None and list(data["models"]) == ["tiny-v1"], proc.stdout[-3000:] + proc.stderr[-3000:]
        parts.append(str(tmp_path / f"{name}.json"))
    merged = merge_cli(*parts, "-o", str(tmp_path / "merged.json"))
    assert merged.returncode in (0, 1), merged.stderr
    data = json.loads((tmp_path / "merged.json").read_text())
    assert list(data["models"]) == ["tiny-v1"] and data["models"]["tiny-v1"]["spec"] == TINY
    [entry] = data["audits"]
    assert entry["nodeid"] == "audits/test_accuracy.py::test_clean_top1[tiny-v1]" and entry["model"] == "tiny-v1"
    assert entry["metrics"]["n_images"] == 20 == data["samples"]["labelled"]["n"]  # both shards' images, one model


@pytest.mark.parametrize("models, said", [
    ([f"{TINY}?name=fraud", "tests.tiny_models:tiny_other?name=fraud"],
     "are two models (tests.tiny_models:tiny_other and tests.tiny_models:tiny) with one id, fraud"),
    (["tests.tiny_models:tiny_other", f"{TINY}?name=efficientnet_lite0", "efficientnet_lite0"],
     "are two models (efficientnet_lite0 and tests.tiny_models:tiny) with one id, efficientnet_lite0"),
    ([f"{TINY}?name=fraud/v3"], "?name=fraud/v3 is not a model name; a name is a letter or digit, then up to 63 letters"),
], ids=["two-equal-names", "a-name-that-is-another-models-spec", "bad-name"])
def test_two_models_of_one_id_or_a_bad_name_stop_the_run_at_startup(tmp_path, models, said):
    """Exit 4 before any model loads, with one message; the weight-share audit reads no images: no data is needed."""
    extra = [a for m in models[1:] for a in ("--model", m)]
    proc, data = audit(tmp_path, tmp_path, "refused", *extra, "-k", "test_weight_shares", model=models[0])
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert said in proc.stderr and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert said in data["error"]


@pytest.mark.slow(data=False)
def test_the_same_model_given_twice_is_audited_once_and_said(tmp_path):
    """cfg45: a second --model of a model given already (the same text, or another spelling of its spec) was dropped
    without a word; it is still audited once, and the terminal and run.notes say so."""
    spec, other_spelling = f"{TINY}?size=32&resize=36", f"{TINY}?resize=36&size=32"  # the latter is canonical
    proc, data = audit(tmp_path, tmp_path, "twice", "--model", spec, "--model", other_spelling, "-k", "test_weight_shares",
                       model=spec)
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list(data["models"]) == [other_spelling] and len(data["audits"]) == 1, proc.stdout[-3000:]
    said = [f"--model {spec} is given twice: it is audited once, as {other_spelling}",
            f"--model {other_spelling} is {spec}, given already: it is audited once, as {other_spelling}"]
    assert [n for n in data["run"]["notes"] if "audited once" in n] == said
    assert all(f"note: {n}" in proc.stdout for n in said), proc.stdout[-3000:]


@pytest.mark.slow(data=False)
def test_a_model_named_by_its_audit_toml_table(tmp_path):
    """``name = "..."`` in the model's [models."SPEC"] table names it as ?name= does; a spec naming it otherwise is
    refused (one model, one name). The weight-share audit reads no images: no data is needed."""
    config = tmp_path / "audit.toml"
    config.write_text(f'[models."{TINY}"]\nname = "tiny-v1"\n')
    # beside it, a model named like another's spec but with no ":": a name, not a spec, so no clash
    proc, data = audit(tmp_path, tmp_path, "table", "-k", "test_weight_shares", f"--audit-config={config}",
                       "--model", "tests.tiny_models:tiny_other?name=tests.tiny_models.tiny_other")
    assert data is not None and proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(e["nodeid"] for e in data["audits"]) == [
        "audits/test_channel_bias.py::test_weight_shares[tests.tiny_models.tiny_other]",
        "audits/test_channel_bias.py::test_weight_shares[tiny-v1]"]
    assert {e["model"] for e in data["audits"]} == set(data["models"]) == {"tiny-v1", "tests.tiny_models.tiny_other"}
    assert data["models"]["tiny-v1"]["spec"] == TINY
    assert data["models"]["tests.tiny_models.tiny_other"]["spec"] == "tests.tiny_models:tiny_other"
    assert data["models"]["tiny-v1"]["spec_as_given"] == TINY  # as the user wrote it: the name came from the table
    proc, data = audit(tmp_path, tmp_path, "twice", "-k", "test_weight_shares", f"--audit-config={config}",
                       model=f"{TINY}?name=other")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"--model {TINY}?name=other names the model other, and {config} names it tiny-v1" in proc.stderr
