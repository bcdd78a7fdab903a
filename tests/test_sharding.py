"""--audit-shard I/N and `visionaudit merge`: shards partition the images, and the merged report equals the
unsharded run's, metric by metric (real audits, a tiny model, real data; merges of hand-made per-image data). The
corruption family's shards: tests/test_sharding_corruption.py; a 10-class model's: tests/test_sharding_ten_classes.py."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.audit_runs import TINY, audit
from tests.once import built_once, run_audit, save_process
from tests.sharded_runs import (
    differences,
    load_runs,
    merge_cli,
    shard_names,
    without_timings,
)
from tests.synthetic_runs import synthetic_run, varied_runs
from visionaudit.data.image_sets import labelled_images
from visionaudit.data.shards import Shard, parse_shard, select, shard_of

# The split families (accuracy, robustness, shape bias) and two that run whole in shard 1.
SELECTION = "test_clean_top1 or test_transform or test_shape_bias or test_shape_only or test_weight_shares or bf16_cpu"



@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=60, unique=True), st.integers(1, 5))
def test_shards_partition_the_images_whatever_else_is_in_the_set(ids, count):
    shards = [{i for i in ids if shard_of(i, count) == k} for k in range(1, count + 1)]
    assert sorted(i for s in shards for i in s) == sorted(ids)  # each image in exactly one shard


@pytest.mark.slow
def test_shards_of_the_real_labelled_sample_are_balanced_and_named_as_the_whole(shared_data):
    whole = labelled_images(shared_data / "imagenet-sample")
    parts = [select(whole, Shard(k, 3)) for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == len(whole) == 1000
    assert set().union(*(p.sample_ids for p in parts)) == set(whole.sample_ids)
    assert all(280 < len(p) < 390 for p in parts), [len(p) for p in parts]  # 333 each, binomial sd ~15
    assert all(p.name == whole.name for p in parts) and len({p.key for p in parts}) == 3
    subset = whole.stratified_subset(300, 0)
    assert set(select(subset, Shard(2, 3)).sample_ids) == set(subset.sample_ids) & set(parts[1].sample_ids)


@pytest.mark.parametrize("text, error", [("3/2", "between 1 and N"), ("0/2", "between 1 and N"), ("1-2", "I/N"), ("a/b", "I/N")])
def test_a_bad_shard_is_refused_naming_the_form(text, error):
    with pytest.raises(ValueError, match=error):
        parse_shard(text)


@pytest.fixture(scope="session")
def runs(shared_data, request):
    """The unsharded run and its 2 and 3 shards, on 60 images per set; made once per session and shared by the
    xdist workers (tests/once.py), which this module's tests are spread over."""
    args = ("-k", SELECTION, "--audit-samples", "60")
    names = shard_names(2, 3)

    def build(folder):
        for name, extra in names.values():  # without the logit cache, as the module-scoped fixture ran them
            proc = run_audit(request, folder, shared_data, name, *args, *extra, model=TINY, logit_cache=False)
            save_process(folder / f"{name}.process.json", proc)

    tmp = built_once(request, "shards", build)
    return tmp, load_runs(tmp, names)


@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 3])
def test_merged_shards_equal_the_unsharded_run(runs, count):
    tmp, out = runs
    parts = [str(tmp / f"part{i}of{count}.json") for i in range(count, 0, -1)]  # any order
    proc = merge_cli(*parts, "-o", str(tmp / f"merged{count}.json"))
    whole = out["whole"][1]
    assert proc.returncode == whole["run"]["exit_status"] == 1, proc.stdout + proc.stderr  # the tiny model fails gates
    merged = json.loads((tmp / f"merged{count}.json").read_text())
    assert differences(without_timings(whole), without_timings(merged)) == []
    # Not vacuous: the shards judged fewer images, and the merge re-judged the statistics on all of them.
    split = [e for e in whole["audits"] if e["audit"] in ("accuracy", "robustness", "shape_bias")]
    assert len(split) == 13 and all(e["outcome"] in ("passed", "failed") for e in split if e["audit"] != "robustness")
    # The tiny model gets no image right, so its transform gates are not judged (min_correct_images, stop-33 review), in the
    # whole run and in the merge alike; the synthetic merges above re-judge robustness on varied data.
    robustness = [e for e in split if e["audit"] == "robustness"]
    assert len(robustness) == 9 and all(e["outcome"] == "not_judged" and "0 images right on the clean pass" in e["message"]
                                        for e in robustness), [(e["nodeid"], e["outcome"], e["message"]) for e in robustness]
    # the shape-bias entry's error consistency with the observers is among what the merge recomputed (issue 26)
    (sb,) = [e for e in split if "::test_shape_bias[" in e["nodeid"]]
    assert sb["metrics"]["error_consistency_detail"]["n_trials"] == 60 and len(sb["tables"]["error_consistency"]) == 9
    part = out[f"1/{count}"][1]
    assert all(e["outcome"] == "not_judged" for e in part["audits"] if e["audit"] in ("accuracy", "robustness", "shape_bias"))
    assert merged["samples"]["labelled"]["ids"] == whole["samples"]["labelled"]["ids"]
    assert "shard_data" not in json.dumps(merged) and merged["run"]["shard"] is None


@pytest.mark.slow
def test_only_split_audits_run_in_later_shards(runs):
    _, out = runs
    families = lambda data: {e["audit"] for e in data["audits"]}  # noqa: E731
    assert families(out["1/3"][1]) == families(out["whole"][1]) >= {"channel_bias", "deployment"}
    assert families(out["2/3"][1]) == families(out["3/3"][1]) == {"accuracy", "robustness", "shape_bias"}
    assert "shard 2/3" in out["2/3"][0].stdout


@pytest.mark.slow
def test_parts_that_do_not_belong_together_are_refused_naming_each_difference(runs):
    tmp, _ = runs
    part = lambda i, n: json.loads((tmp / f"part{i}of{n}.json").read_text())  # noqa: E731

    def write(name: str, data: dict) -> str:
        (tmp / name).write_text(json.dumps(data))
        return str(tmp / name)

    cases = {
        "missing": ([str(tmp / "part1of3.json"), str(tmp / "part2of3.json")], "3/3 missing"),
        "twice": ([str(tmp / "part1of2.json"), str(tmp / "part1of2.json")], "given twice"),
        "mixed counts": ([str(tmp / "part1of2.json"), str(tmp / "part2of3.json")], "split the images differently"),
        "unsharded": ([str(tmp / "whole.json"), str(tmp / "part1of2.json")], "not a partial report"),
    }
    other_seed = part(2, 2)
    other_seed["run"]["seed"] = 7
    cases["seed"] = ([str(tmp / "part1of2.json"), write("seed.json", other_seed)], "seed (--audit-seed) differs")
    other_weights = part(2, 2)
    other_weights["models"]["tests.tiny_models:tiny"]["sha256"] = "f" * 64
    cases["weights"] = ([str(tmp / "part1of2.json"), write("weights.json", other_weights)], "has other weights")
    other_bound = part(2, 2)
    next(e for e in other_bound["audits"] if "shard_data" in e)["shard_data"]["thresholds"]["min_images"] = 1
    cases["thresholds"] = ([str(tmp / "part1of2.json"), write("bound.json", other_bound)], "different thresholds")
    for name, (paths, message) in cases.items():
        proc = merge_cli(*paths, "-o", str(tmp / "refused.json"))
        assert proc.returncode == 4 and message in proc.stderr, (name, proc.stderr)
    assert not (tmp / "refused.json").exists()


@pytest.mark.slow
def test_a_shard_is_never_compared_with_a_baseline(shared_data, tmp_path):
    baseline = tmp_path / "old.json"
    baseline.write_text("{}")
    proc, data = audit(tmp_path, shared_data, "refused", "--audit-shard", "1/2", "--audit-baseline", str(baseline))
    assert proc.returncode == 4
    assert "python -m visionaudit compare BASELINE.json REPORT.json" in proc.stdout + proc.stderr
    assert data is not None and "--audit-shard 1/2 with --audit-baseline" in data["error"]


@pytest.mark.slow
def test_a_shard_the_selection_left_no_test_writes_a_part_that_the_merge_joins(shared_data, tmp_path):
    """-k keeping only a test that runs whole in shard 1 leaves shard 2 none: it writes a part that says it ran nothing
    (exit 1, its verdict's, not pytest's 5, which the CI recipe reads as a real error), and the merge of both parts is
    the unsharded run's report. Parts that all ran nothing merge into no pass."""
    args = ("-k", "test_weight_shares", "--audit-samples", "60")
    whole_proc, whole = audit(tmp_path, shared_data, "whole", *args)
    for i in (1, 2):
        proc, part = audit(tmp_path, shared_data, f"part{i}", *args, "--audit-shard", f"{i}/2")
        assert part is not None and proc.returncode == (0 if i == 1 else 1), proc.stdout + proc.stderr
    assert part["audits"] == [] and part["verdict"] == "incomplete" and part["run"]["shard"] == {"index": 2, "count": 2}
    assert "shard 2/2 ran no test: -k test_weight_shares left it none" in part["verdict_reason"]
    assert "shard 2/2 ran no test" in proc.stdout and f"report: {tmp_path / 'part2.json'}" in proc.stdout
    merged = merge_cli(str(tmp_path / "part2.json"), str(tmp_path / "part1.json"), "-o", str(tmp_path / "merged.json"))
    assert merged.returncode == whole_proc.returncode == 0, merged.stdout + merged.stderr
    assert differences(without_timings(whole), without_timings(json.loads((tmp_path / "merged.json").read_text()))) == []
    for i in (1, 2):
        proc, part = audit(tmp_path, shared_data, f"none{i}", "-k", "no_such_test", "--audit-shard", f"{i}/2")
        assert part is not None and part["audits"] == [] and proc.returncode == 1, proc.stdout + proc.stderr
    nothing = merge_cli(str(tmp_path / "none1.json"), str(tmp_path / "none2.json"), "-o", str(tmp_path / "nothing.json"))
    assert nothing.returncode == 1 and "verdict: INCOMPLETE (no test ran)" in nothing.stdout, nothing.stdout + nothing.stderr
    assert "none of the 2 merged parts ran a test: -k no_such_test left them none" in nothing.stdout, nothing.stdout
    assert json.loads((tmp_path / "nothing.json").read_text())["verdict"] == "incomplete"


@pytest.mark.slow
def test_a_shard_pytest_refused_writes_no_part(shared_data, tmp_path):
    """Only a shard the selection left no test (pytest's exit 5) writes a part saying so: one pytest itself refused (a
    test path that does not exist, exit 4) writes none, as the same run without --audit-shard, rather than a part saying
    the selection left it none."""
    proc, part = audit(tmp_path, shared_data, "refused", "audits/test_no_such_file.py", "--audit-shard", "2/2")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR and "test_no_such_file.py" in proc.stdout + proc.stderr
    assert part is None, part


def test_known_shards_of_known_ids():
    """The assignment is sha256 of the id, first 8 bytes big-endian, mod N, plus 1: fixed, so reports made
    on other machines and Python versions agree."""
    import hashlib

    for sample_id in ("n01440764_tench.JPEG", "cat/cat1-elephant2.png", "a"):
        expected = int(hashlib.sha256(sample_id.encode()).hexdigest()[:16], 16) % 7 + 1
        assert shard_of(sample_id, 7) == expected
    # Outside Python: printf a | sha256sum | cut -c1-16, then "ibase=16; X % 3" | bc, plus 1.
    assert [shard_of(i, 3) for i in ("a", "b", "c", "d")] == [2, 2, 3, 3]


@pytest.mark.parametrize("families", [("accuracy", "robustness"), ("robustness",)])
def test_merge_of_varied_per_image_data_equals_the_whole_judgement(families):
    """Random, varied right/wrong, changed predictions and labels (the tiny model of the runs above is
    always wrong, so those cannot tell a scrambled merge from a right one); parts out of order."""
    import numpy as np

    from visionaudit.report.merge import merge_reports

    rng = np.random.default_rng(3)
    n = 400
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    labels = rng.integers(0, 50, n)
    clean = rng.random(n) < 0.8
    per_transform = {t: (clean & (rng.random(n) < p), rng.random(n) < 0.3) for t, p in (("rotation", 0.7), ("zoom", 0.95))}
    top1 = {t: rng.integers(0, 50, n) for t in (None, "rotation", "zoom")}  # each image's top-1 (schema 6)

    def arrays_of(transform):
        if transform is None:
            return {"correct": clean, "top5": clean | (labels % 3 == 0), "top1": top1[None]}
        after, changed = per_transform[transform]
        return {"clean": clean, "labels": labels, "correct@1": after, "changed@1": changed | (after != clean),
                "top1": top1[transform]}

    whole = synthetic_run(None, arrays_of, ids, families)
    parts = [synthetic_run(Shard(k, 3), arrays_of, ids, families) for k in (3, 1, 2)]
    merged = merge_reports(parts, ["p3", "p1", "p2"])
    for entry in whole["audits"]:
        assert entry["outcome"] in ("passed", "failed")
    strip = lambda r: [{k: e[k] for k in ("nodeid", "outcome", "metrics", "tables", "message", "outcomes")}  # noqa: E731
                       for e in r["audits"]]
    assert strip(merged) == strip(whole)
    assert merged["aggregates"] == whole["aggregates"]  # Holm over the two transforms
    assert merged["samples"] == whole["samples"]  # also when no assessor but robustness's named the set
    from visionaudit.families.outcomes import decode_labels
    for entry in merged["audits"]:  # the top-1 carried through the parts, in the whole set's order
        assert decode_labels(entry["outcomes"]["top1"]).tolist() == top1[entry["params"].get("transform")].tolist()
    assert all(e["outcome"] == "not_judged" or e["metrics"]["n_images"] < n for p in parts for e in p["audits"]
               if "n_images" in e["metrics"])


def test_a_merge_of_parts_that_got_nothing_right_is_not_judged_as_the_whole_run_is():
    """Stop-33 review (A2): a transform gate over no image right on the clean pass judges nothing; merge re-judges the parts'
    per-image data through the same assessor, so the merged entries are not judged too, also from parts written
    before the bound existed (their stored thresholds lack min_correct_images: the descriptor's default applies)."""
    import numpy as np

    from visionaudit.report.merge import merge_reports

    rng = np.random.default_rng(5)
    n = 400
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    wrong = np.zeros(n, dtype=bool)

    def arrays_of(transform):
        if transform is None:
            return {"correct": wrong, "top5": wrong, "top1": np.zeros(n, dtype=np.int64)}
        return {"clean": wrong, "labels": rng.integers(0, 50, n), "correct@1": wrong, "changed@1": wrong}

    whole = synthetic_run(None, arrays_of, ids, ("robustness",))
    parts = [synthetic_run(Shard(k, 2), arrays_of, ids, ("robustness",)) for k in (1, 2)]
    for part in parts:
        for entry in part["audits"]:
            del entry["shard_data"]["thresholds"]["min_correct_images"]  # as a part of an older suite
    merged = merge_reports(parts, ["p1", "p2"])
    for report in (whole, merged):
        assert [e["outcome"] for e in report["audits"]] == ["not_judged", "not_judged"]
        assert all(e["message"].startswith("not judged: 0 images right "
                                           "on the clean pass") and "min_correct_images" in e["message"]
                   and e["metrics"]["n_images"] == n for e in report["audits"])
    assert merged["verdict"] == "incomplete"


def test_a_part_without_top1_merges_without_it_rather_than_with_unset_values():
    """A part written before schema 6 holds no per-image top-1: the merged entries then hold none (not the other
    parts' values beside uninitialized ones), and the rest merges as before."""
    import numpy as np

    from visionaudit.report.merge import Unmergeable, merge_reports

    rng = np.random.default_rng(4)
    n = 120
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    labels, clean, top1 = rng.integers(0, 20, n), rng.random(n) < 0.8, rng.integers(0, 20, n)

    def arrays_of(transform):
        if transform is None:
            return {"correct": clean, "top5": clean, "top1": top1}
        return {"clean": clean, "labels": labels, "correct@1": clean, "changed@1": ~clean, "top1": top1}

    parts = [synthetic_run(Shard(k, 2), arrays_of, ids, ("accuracy", "robustness")) for k in (1, 2)]
    whole = merge_reports(parts, ["p1", "p2"])
    assert all("top1" in e["outcomes"] for e in whole["audits"])
    for entry in parts[1]["audits"]:
        entry["shard_data"]["arrays"].pop("top1")
    merged = merge_reports(parts, ["p1", "p2"])
    assert all("top1" not in e["outcomes"] for e in merged["audits"])
    strip = lambda r: [{k: e[k] for k in ("nodeid", "outcome", "metrics")} for e in r["audits"]]  # noqa: E731
    assert strip(merged) == strip(whole)
    # Said, not dropped without a word (review of issue 26, finding 7): one note per entry, naming the part and key.
    notes = [n for n in merged["run"]["notes"] if "left out of the merge" in n]
    assert len(notes) == len(merged["audits"]) and all("p2 lack(s) it" in n and "'top1'" in n for n in notes)
    assert sorted(n.split(": per-image")[0] for n in notes) == sorted(e["nodeid"] for e in merged["audits"])
    assert not any("left out" in n for n in whole["run"]["notes"])
    # Any other per-image array one part lacks: the parts do not belong together, said with the part and the key.
    parts = [synthetic_run(Shard(k, 2), arrays_of, ids, ("accuracy", "robustness")) for k in (1, 2)]
    next(e for e in parts[0]["audits"] if e["audit"] == "accuracy")["shard_data"]["arrays"].pop("top5")
    with pytest.raises(Unmergeable, match=r"p1 lack\(s\) the per-image array 'top5' that the other parts hold"):
        merge_reports(parts, ["p1", "p2"])


# The assessor names partial reports have stored since sharding began ("<family>.<test>"), before assessors
# moved onto the family descriptors: a merge must still find each one.
STORED_ASSESSOR_NAMES = {"accuracy.clean_top1": ("accuracy", "clean_top1"), "robustness.transform": ("robustness", "transform"),
                         "shape_bias.cue_conflict": ("shape_bias", "cue_conflict"),
                         "shape_bias.shape_only": ("shape_bias", "shape_only")}


def test_stored_assessor_names_resolve_through_the_family_descriptors():
    from visionaudit.families import get_family
    from visionaudit.families.assessment import find_assessor

    for stored, (family, test) in STORED_ASSESSOR_NAMES.items():
        assert find_assessor(stored) is get_family(family).assessors[test], stored
    with pytest.raises(ValueError, match=r"no assessor named 'accuracy.clean_top5' .*did you mean 'clean_top1'\?"):
        find_assessor("accuracy.clean_top5")


def test_a_partial_report_with_the_stored_assessor_names_merges():
    """Parts whose shard_data names the assessor as older suites wrote it merge into the whole run's judgement."""

    from visionaudit.report.merge import merge_reports

    whole, parts = varied_runs(5)
    for part in parts:
        for entry in part["audits"]:
            old = {"accuracy": "accuracy.clean_top1", "robustness": "robustness.transform"}[entry["audit"]]
            entry["shard_data"]["assessor"] = old  # as an older suite wrote it
    merged = merge_reports(parts, ["p1", "p2"])
    strip = lambda r: [{k: e[k] for k in ("nodeid", "outcome", "metrics", "message", "outcomes")}  # noqa: E731
                       for e in r["audits"]]
    assert strip(merged) == strip(whole) and len(merged["audits"]) == 3


def test_parts_judged_with_other_human_observers_are_refused_naming_both_sets(tmp_path):
    """Shape-bias parts run on data roots with other observers (one without texture-vs-shape-raw, one with two
    observers): the merge would recompute the error consistency over the first part's only; it refuses, exit 4."""
    import numpy as np

    rng = np.random.default_rng(9)
    n = 300
    ids = [f"n{k:08d}_img.JPEG" for k in rng.permutation(10 * n)[:n]]
    clean = rng.random(n) < 0.8
    parts = [synthetic_run(Shard(k, 2), lambda _: {"correct": clean, "top5": clean}, ids, ("accuracy",)) for k in (1, 2)]
    seen = {"images": ["a", "b"], "missing": [], "note": None}
    observers = ({**seen, "subjects": {"subject-02": ["oven", "bear"], "subject-03": ["oven", "oven"]}}, {"absent": "not there"})
    paths = []
    for k, (part, held) in enumerate(zip(parts, observers), 1):
        next(e for e in part["audits"] if "shard_data" in e)["shard_data"]["context"]["observers"] = held
        paths.append(tmp_path / f"part{k}.json")
        paths[-1].write_text(json.dumps(part))
    proc = merge_cli(*map(str, paths), "-o", str(tmp_path / "merged.json"))
    assert proc.returncode == 4 and not (tmp_path / "merged.json").exists(), proc.stderr
    assert "different human observers" in proc.stderr and "subject-02, subject-03" in proc.stderr, proc.stderr
    assert "none (texture-vs-shape-raw absent)" in proc.stderr and str(paths[0]) in proc.stderr and str(paths[1]) in proc.stderr
    # the same observers in both parts merge
    for path, part in zip(paths, parts):
        next(e for e in part["audits"] if "shard_data" in e)["shard_data"]["context"]["observers"] = observers[0]
        path.write_text(json.dumps(part))
    assert merge_cli(*map(str, paths), "-o", str(tmp_path / "merged.json")).returncode in (0, 1)
