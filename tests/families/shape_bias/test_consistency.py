"""The shape-bias family's error consistency with observers, on synthetic decisions (no data needed): what the
assessor records, that trial order (a shard's merge) does not change it, and a model image no observer saw."""

from __future__ import annotations

import json
import random

import pytest

from visionaudit.data.fingerprint import SampleSet
from visionaudit.data.imagenet16 import categories
from visionaudit.families.assessment import PerImage
from visionaudit.families.records import AuditRecord
from visionaudit.families.registry import get_family
from visionaudit.families.shape_bias import assess_shape_bias
from visionaudit.families.shape_bias.consistency import observer_consistency
from visionaudit.files import to_jsonable


def _stimuli(n=160, seed=0):
    rng = random.Random(seed)
    cats = list(categories())
    names, shapes, textures = [], [], []
    for k in range(n):
        s, t = cats[k % 16], rng.choice(cats)
        names.append(f"{s}{k}-{t}1.png")
        shapes.append(s)
        textures.append(t)
    return names, shapes, textures


def _decider(shapes, p, rng):
    return [s if rng.random() < p else rng.choice([c for c in categories() if c != s]) for s in shapes]


def _observers(names, shapes, seed=1):
    rng = random.Random(seed)
    order = sorted(range(len(names)), key=lambda i: names[i])
    subjects = {f"subject-0{k}": _decider([shapes[i] for i in order], q, rng) for k, q in ((2, 0.8), (3, 0.7), (4, 0.85))}
    subjects["subject-03"][0] = None  # an "na": wrong, as in model-vs-human
    return {"images": [names[i] for i in order], "subjects": subjects, "missing": ["subject-01"], "note": "n"}


def _plain_kappa(a, b):
    p1, p2 = sum(a) / len(a), sum(b) / len(b)
    obs = sum(x == y for x, y in zip(a, b)) / len(a)
    exp = p1 * p2 + (1 - p1) * (1 - p2)
    return (obs - exp) / (1 - exp)


def test_kappas_are_on_shape_correctness_over_every_trial_and_independent_of_order():
    names, shapes, _ = _stimuli()
    observers = _observers(names, shapes)
    model = _decider(shapes, 0.5, random.Random(9))
    ids = [f"{s}/{n}" for s, n in zip(shapes, names)]
    found = observer_consistency(ids, model, shapes, observers, resamples=100)
    by_name = dict(zip(names, zip(model, shapes)))
    right_model = [by_name[n][0] == by_name[n][1] for n in observers["images"]]
    for s, responses in observers["subjects"].items():
        right = [r == by_name[n][1] for r, n in zip(responses, observers["images"])]
        assert found["per_observer"][s]["kappa"] == pytest.approx(_plain_kappa(right_model, right))
    # the same trials in another order (a merge of shards) give the same numbers, intervals included
    perm = list(range(len(ids)))
    random.Random(3).shuffle(perm)
    again = observer_consistency([ids[i] for i in perm], [model[i] for i in perm], [shapes[i] for i in perm], observers,
                                 resamples=100)
    assert again == found
    assert found["detail"]["n_trials"] == 160 and found["detail"]["observers_missing"] == ["subject-01"]


def test_a_model_image_no_observer_saw_is_counted_not_paired():
    names, shapes, _ = _stimuli()
    observers = _observers(names, shapes)
    ids = [f"{s}/{n}" for s, n in zip(shapes, names)] + ["cat/cat99-dog9.png"]
    found = observer_consistency(ids, list(shapes) + ["cat"], list(shapes) + ["cat"], observers, resamples=0)
    assert found["detail"]["n_trials"] == 160 and found["detail"]["unmatched"] == ["cat99-dog9.png"]


def _assess(observers):
    names, shapes, textures = _stimuli()
    ids = tuple(f"{s}/{n}" for s, n in zip(shapes, names))
    record = AuditRecord(audit="shape_bias", model="m", params={})
    measured = PerImage(SampleSet("cue-conflict", "cue-conflict", ids, "f", None, 0),
                        {"decisions": _decider(shapes, 0.6, random.Random(4)), "categories": shapes, "textures": textures})
    context = {"model": "m", "stimulus_geometry": {"mode": "native"}, "aggregation": "mean"}
    if observers:
        context["observers"] = observers(names, shapes)
    try:
        assess_shape_bias(record, measured, get_family("shape_bias").defaults, context)
    except AssertionError:
        pass  # synthetic decisions: the gate's verdict is not what this test is about
    return record.to_dict()


def test_the_assessor_records_the_kappas_beside_the_shape_bias_and_nothing_without_observers():
    d = _assess(_observers)
    m = d["metrics"]
    # the kappas by hand from the same synthetic decisions (_assess's seeds), never from the record's own numbers
    names, shapes, _ = _stimuli()
    observers = _observers(names, shapes)
    shape_of = dict(zip(names, shapes))
    model_of = dict(zip(names, _decider(shapes, 0.6, random.Random(4))))
    right = {s: [r == shape_of[n] for r, n in zip(responses, observers["images"])]  # None ("na"): wrong
             for s, responses in observers["subjects"].items()}
    right_model = [model_of[n] == shape_of[n] for n in observers["images"]]
    expected = {s: _plain_kappa(right_model, r) for s, r in right.items()}
    assert set(d["tables"]["error_consistency"]) == {"subject-02", "subject-03", "subject-04"}
    for s, kappa in expected.items():
        assert d["tables"]["error_consistency"][s]["kappa"] == pytest.approx(kappa, abs=1e-12), s
    assert m["human_error_consistency"] == pytest.approx(sum(expected.values()) / 3, abs=1e-12)
    lo, hi = m["human_error_consistency_ci"]
    assert lo < m["human_error_consistency"] < hi
    by_hand = {f"{a} / {b}": _plain_kappa(right[a], right[b])
               for a, b in (("subject-02", "subject-03"), ("subject-02", "subject-04"), ("subject-03", "subject-04"))}
    assert len(set(by_hand.values())) == 3  # three different numbers: a mixed-up pair would show
    pairs = d["tables"]["observers_error_consistency"]
    assert list(pairs) == list(by_hand) and pairs == pytest.approx(by_hand, abs=1e-12)
    assert m["observers_error_consistency"] == pytest.approx(sum(by_hand.values()) / 3, abs=1e-12)
    json.dumps(to_jsonable(d), allow_nan=False)
    without = _assess(None)
    assert "human_error_consistency" not in without["metrics"] and "error_consistency" not in without["tables"]
    assert without["metrics"]["shape_bias"] == m["shape_bias"]  # the shape bias is the same either way


def test_the_summary_names_each_models_mean_kappa_and_the_observers():
    from visionaudit.families.shape_bias import _summary_lines

    def entry(model, kappa, control=False):
        return {"audit": "shape_bias", "model": model, "control": control,
                "metrics": {"shape_bias": 0.3, "human_error_consistency": kappa, "observers_error_consistency": 0.345}}

    report = {"audits": [entry("a", 0.0758), entry("b", 0.1234), entry("ctl", 0.01, control=True)]}
    assert _summary_lines(report)[1] == ("error consistency with the human observers (mean kappa, Geirhos et al. 2020): "
                                         "a 0.076, b 0.123; the observers with each other 0.345")
    report["audits"] = [{**e, "metrics": {"shape_bias": 0.3}} for e in report["audits"]]  # schema 4: no line
    assert len(_summary_lines(report)) == 1


def test_without_the_observers_the_reason_is_recorded_and_shape_bias_judged_the_same():
    """Absent observers (plugins/data_check.py says so once): the reason and the fix in error_consistency_detail."""
    reason = "the human observers' decisions (texture-vs-shape-raw) are not at /d/texture-vs-shape-raw ..."
    d = _assess(lambda names, shapes: {"absent": reason})
    assert d["metrics"]["error_consistency_detail"] == {"reason": reason}
    assert "human_error_consistency" not in d["metrics"] and "error_consistency" not in d["tables"]
    assert d["metrics"]["shape_bias"] == _assess(None)["metrics"]["shape_bias"]


def test_the_published_references_are_the_texture_vs_shape_readmes_and_the_readme_prints_the_summary_line():
    """The CNN references are the torchvision models' values in github.com/rgeirhos/texture-vs-shape's README
    (typed here from it): standard ResNet-50 21.39 %, SIN model_A 81.37 %, torchvision AlexNet 25.3 %, VGG-16 9.2 %
    (not the paper's Caffe AlexNet 42.9 % / VGG-16 17.2 %). The summary names that source, and README.md shows the
    line the code prints."""
    from pathlib import Path

    from visionaudit.families.shape_bias import REFERENCES, _summary_lines

    readme = {"AlexNet": 0.253, "torchvision ResNet-50": 0.2139, "VGG-16": 0.092,
              "ResNet-50 trained on Stylized-ImageNet": 0.8137}
    assert {k: REFERENCES[k] for k in readme} == {k: round(v, 3) for k, v in readme.items()}
    line = _summary_lines({"audits": [{"audit": "shape_bias", "model": "a", "metrics": {"shape_bias": 0.3}}]})[0]
    assert "texture-vs-shape README, torchvision models" in line and "torchvision ResNet-50 21.4%" in line
    assert line in (Path(__file__).resolve().parents[3] / "README.md").read_text().splitlines()
