"""Per-image top-1 in the report (issue 26, schema 6): each labelled set's outcomes carry the model's top-1 output
index per image, packed like the labels; the baseline gate names the images a release lost with each side's top-1
class. Checked against hand-made logits and hand-listed losses."""

from __future__ import annotations

import base64
import copy

import numpy as np
import pytest
import torch

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.accuracy import clean_outcomes
from visionaudit.families.assessment import NotJudged, assess
from visionaudit.families.baseline import (
    ModelOutcomes,
    compare_model,
    outcomes_from_report,
    settings_from,
)
from visionaudit.families.corruption import paired
from visionaudit.families.outcomes import decode, decode_labels
from visionaudit.families.records import AuditRecord
from visionaudit.families.robustness import transform_arrays, transform_result

DEFAULTS = load_config(None).thresholds("baseline", "m")
NAMES = ["airplane", "automobile", "bird", "cat"]


def _ids(n):
    return tuple(f"img{k:03d}.jpg" for k in range(n))


def test_the_clean_entry_keeps_each_images_top1_index_packed_as_two_bytes():
    # Row k's largest logit is at a column chosen by hand; the label agrees on rows 0, 2 and 3.
    logits = torch.tensor([[0.1, 3.0, 0.0, 0.2], [2.0, 0.0, 0.1, 0.3], [0.0, 0.0, 0.0, 9.0], [0.5, 0.4, 0.3, 0.2],
                           [0.0, 0.1, 5.0, 0.0]])
    labels = torch.tensor([1, 3, 3, 0, 1])
    sample_set = SampleSet("labelled", "team", _ids(5), "f", None, 0)
    measured = clean_outcomes(sample_set, logits, labels)
    record = AuditRecord("accuracy", "m")
    try:
        assess("accuracy", "clean_top1", record, measured, load_config(None).thresholds("accuracy", "m"),
               {"model": "m", "set_name": "team", "preprocessing": "p", "class_names": NAMES})
    except (AssertionError, NotJudged):
        pass  # five images: too few for the gate; what was measured is kept
    top1 = record.outcomes["top1"]
    assert top1["encoding"] == "uint16" and top1["n"] == 5
    # little-endian uint16 written out here: 1, 0, 3, 0, 2
    assert base64.b64decode(top1["data"]) == bytes([1, 0, 0, 0, 3, 0, 0, 0, 2, 0])
    assert decode_labels(top1).tolist() == [1, 0, 3, 0, 2]
    assert decode(record.outcomes).tolist() == [True, False, True, True, False]


def test_top1_of_another_length_than_the_outcomes_is_refused():
    record = AuditRecord("accuracy", "m")
    with pytest.raises(ValueError, match="4 top1 values for the 5 outcomes of clean"):
        record.outcomes_on(SampleSet("labelled", "team", _ids(5), "f", None, 0), "clean", correct=[1] * 5, top1=[0] * 4)


def test_a_transform_keeps_the_top1_of_severity_1_only_and_a_corruption_condition_its_own():
    before, after = np.array([1, 1, 0, 1], bool), np.array([1, 0, 0, 1], bool)
    labels = np.array([0, 1, 2, 3])
    from dataclasses import replace
    main = replace(transform_result("rotation", 1.0, before, after, before != after, labels, 4), predicted=np.array([0, 2, 1, 3]))
    other = replace(transform_result("rotation", 2.0, before, after, before != after, labels, 4),
                    predicted=np.array([3, 3, 3, 3]))
    arrays = transform_arrays([main, other], before, labels)
    assert arrays["top1"].tolist() == [0, 2, 1, 3]
    condition = paired("fog", 3, after, before, np.array([0, 2, 1, 3]))
    assert condition.predicted.tolist() == [0, 2, 1, 3] and condition.error == 0.5


def _side(name, ids, correct, top1=None):
    side = ModelOutcomes(name)
    labelled = SampleSet("labelled", "team", tuple(ids), "f", None, 0)
    side.add(labelled, "clean", np.asarray(correct, bool))
    if top1 is not None:
        side.add_top1(labelled, "clean", np.asarray(top1, dtype=object))
    return side


def test_the_comparison_names_the_lost_images_with_both_top1_classes_up_to_24():
    n = 60
    ids = _ids(n)
    old = np.ones(n, bool)
    new = old.copy()
    lost = [3, 7, 8, 20, 21, 22, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 50, 55]  # 26
    new[lost] = False
    old[5], new[5] = False, True  # one won: not among the lost
    old_top1 = np.array([f"class{k % 4}" for k in range(n)], dtype=object)
    new_top1 = np.array([f"class{(k + 1) % 4}" if k in lost else f"class{k % 4}" for k in range(n)], dtype=object)
    r = compare_model(_side("o", ids, old, old_top1), _side("n", ids, new, new_top1), settings_from(DEFAULTS))["clean_top1"]
    assert r.lost_count == 26 and len(r.lost_examples) == 24  # the first 24, in the set's order
    assert [e["id"] for e in r.lost_examples] == [ids[k] for k in lost[:24]]
    assert r.lost_examples[0] == {"id": "img003.jpg", "set": "labelled", "condition": "clean",
                                  "baseline_top1": "class3", "candidate_top1": "class0"}
    assert r.to_dict()["lost_examples"] == r.lost_examples
    # A baseline without top-1 (schema 5): the same images, its side's class None.
    r5 = compare_model(_side("o", ids, old), _side("n", ids, new, new_top1), settings_from(DEFAULTS))["clean_top1"]
    assert [e["id"] for e in r5.lost_examples] == [ids[k] for k in lost[:24]]
    assert {e["baseline_top1"] for e in r5.lost_examples} == {None} and r5.lost_examples[0]["candidate_top1"] == "class0"
    same = compare_model(_side("o", ids, old, old_top1), _side("n", ids, old, old_top1), settings_from(DEFAULTS))["clean_top1"]
    assert same.lost_examples == []


def _report(correct, top1, classes, schema=6):
    ids = _ids(len(correct))
    sample_set = SampleSet("labelled", "team", ids, "f", None, 0)
    record = AuditRecord("accuracy", "m")
    record.outcomes_on(sample_set, "clean", correct=correct, labels=[0] * len(correct), top1=top1)
    record.table("per_class", {NAMES[0]: {"index": 0, "n_images": len(correct), "correct": 0, "accuracy": 0.0}})
    entry = {"nodeid": "audits/test_accuracy.py::test_clean_top1[m]", "outcome": "passed", **record.to_dict()}
    if schema < 6:
        entry["outcomes"].pop("top1")
    return {"schema_version": schema, "run": {"seed": 0, "samples": None},
            "models": {"m": {"loaded": True, "classes": classes}},
            "samples": {"labelled": sample_set.to_dict()}, "audits": [entry], "verdict": "pass"}


def test_a_report_names_each_images_top1_by_its_model_entrys_classes():
    classes = {"count": 4, "source": "test", "imagenet1k": False, "names": NAMES}
    report = _report([True, True, False, True], [0, 3, 2, 1], classes)
    read = outcomes_from_report(report, "m")
    assert read.top1["clean"].values.tolist() == ["airplane", "cat", "bird", "automobile"]
    wnids = dict(classes, ids=["n1", "n2", "n3", "n4"])  # ImageNet-1k's names carry their WNID, as the run names them
    assert outcomes_from_report(_report([True] * 2, [3, 0], wnids),
                                "m").top1["clean"].values.tolist() == ["cat (n4)", "airplane (n1)"]
    assert outcomes_from_report(_report([True] * 2, [3, 0], None), "m").top1["clean"].values.tolist() == ["3", "0"]
    assert outcomes_from_report(_report([True] * 2, [3, 0], classes, schema=5), "m").top1 == {}
    broken = copy.deepcopy(report)
    broken["audits"][0]["outcomes"]["top1"]["n"] = 3
    with pytest.raises(Exception, match="per-image classes: 8 bytes of 'uint16' for 3 images"):
        outcomes_from_report(broken, "m")
