"""The baseline gate's balanced and per-class accuracy comparisons (issue 24): hand-built paired outcomes checked
against independent computations (scipy's binomial test for McNemar, Holm by hand, a stratified bootstrap written
here, closed forms), the class names in messages, summaries and the page, and baselines of schema 3/4 that
carry no per-image classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from visionaudit.config import load_config
from visionaudit.data.fingerprint import SampleSet
from visionaudit.families.assessment import NotApplicable, NotJudged, PerImage, assess
from visionaudit.families.baseline import (
    BaselineComparison,
    BaselineWarning,
    ModelOutcomes,
    assess_comparison,
    compare_model,
    outcomes_from_report,
    settings_from,
)
from visionaudit.families.baseline.statistics import (
    Result,
    Tolerance,
    balanced_accuracy_change,
    judge,
)
from visionaudit.families.records import AuditRecord

DEFAULTS = load_config(None).thresholds("baseline", "m")


def _holm(p: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values, written out here (not the suite's)."""
    order = sorted(p, key=p.get)
    out, running = {}, 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[k]))
        out[k] = running
    return out


def _stratified_bootstrap(classes, old, new, resamples, seed):
    """Balanced-accuracy changes, each class's image pairs resampled with replacement on their own."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(classes == c) for c in np.unique(classes)]
    out = np.empty(resamples)
    for r in range(resamples):
        out[r] = np.mean([(new[g][i].mean() - old[g][i].mean()) for g in groups
                          for i in [rng.integers(0, g.size, g.size)]])
    return out


def _balanced(classes, correct):
    return np.mean([correct[classes == c].mean() for c in np.unique(classes)])


@pytest.fixture
def unequal():
    """A class of 200 images that gains, one of 20 that loses: top-1 rises, balanced accuracy falls."""
    rng = np.random.default_rng(5)
    classes = np.array(["big"] * 200 + ["small"] * 20, dtype=object)
    old = np.concatenate([rng.random(200) < 0.6, np.ones(20, bool)])
    new = old.copy()
    new[:200] |= rng.random(200) < 0.3  # big: some wrong become right
    new[200:212] = False  # small: 12 of 20 lost
    ids = [f"{c}/{k}.jpg" for k, c in enumerate(classes)]
    return ids, classes, old, new


def test_balanced_accuracy_change_keeps_the_class_weights(unequal):
    ids, classes, old, new = unequal
    r = balanced_accuracy_change(Result("balanced_accuracy", "balanced_accuracy", True, tolerance=Tolerance(0.005)),
                                 ids, classes, old, new, 4000, 0)
    assert r.baseline == pytest.approx(_balanced(classes, old)) and r.candidate == pytest.approx(_balanced(classes, new))
    assert r.delta == pytest.approx(_balanced(classes, new) - _balanced(classes, old)) and r.delta < 0
    assert new.mean() > old.mean()  # pooled top-1 went up: a bootstrap over all images would not keep the weights
    # The interval against a stratified bootstrap written here (another seed), and against the closed form: the
    # variance of a mean of independent class means, each the mean of its paired differences.
    reference = np.percentile(_stratified_bootstrap(classes, old, new, 4000, 123), [2.5, 97.5])
    assert r.ci[0] == pytest.approx(reference[0], abs=0.015) and r.ci[1] == pytest.approx(reference[1], abs=0.015)
    var = sum(np.var(new[classes == c].astype(float) - old[classes == c]) / (classes == c).sum() for c in ("big", "small")) / 4
    assert r.ci[0] == pytest.approx(r.delta - 1.96 * math.sqrt(var), abs=0.02)
    assert r.ci[1] < 0 and r.p_value < 0.01 and r.discordant == (int((old & ~new).sum()), int((~old & new).sum()))
    assert r.classes_lost[0] == ("small", 12)  # by class name


def _sign_flip_by_enumeration(classes, old, new):
    """The sign-flip p written out here: every +/- pattern over the changed images, each weighing
    1/(classes x its class's images), as a fraction of all patterns whose |sum| reaches the observed one."""
    import itertools
    names = np.unique(classes)
    size = {c: (classes == c).sum() for c in names}
    changed = np.flatnonzero(old != new)
    w = np.array([1.0 / (len(names) * size[classes[i]]) for i in changed])
    observed = abs(np.dot(w, new[changed].astype(float) - old[changed]))
    hits = sum(abs(np.dot(w, s)) >= observed - 1e-12 for s in itertools.product((-1.0, 1.0), repeat=len(changed)))
    return hits / 2 ** len(changed)


def test_balanced_accuracy_p_with_one_image_per_class_is_exact_mcnemar():
    """One image per class (ImageNet's sample set): every weight is equal, so the sign-flip p is exact McNemar's
    (scipy's binomial test on the discordant pairs); and there is no interval, said, rather than a degenerate one."""
    rng = np.random.default_rng(3)
    classes = np.array([f"c{k}" for k in range(300)], dtype=object)
    old = rng.random(300) < 0.7
    new = old.copy()
    new[np.flatnonzero(old)[:9]] = False  # 9 lost
    new[np.flatnonzero(~old)[:4]] = True  # 4 won
    ids = [f"{c}/0.jpg" for c in classes]
    r = balanced_accuracy_change(Result("b", "balanced_accuracy", True), ids, classes, old, new, 500, 0)
    assert r.delta == pytest.approx((4 - 9) / 300)
    assert r.p_value == pytest.approx(sps.binomtest(4, 13, 0.5).pvalue)  # 0.267: not the bootstrap's 2/501
    assert r.ci is None and "no interval: 300 of 300 classes have fewer than 5 paired images" in r.test
    # Past the exact limit (30 changed images): Monte Carlo, close to McNemar's.
    new[np.flatnonzero(old)[9:30]] = False
    r = balanced_accuracy_change(Result("b", "balanced_accuracy", True), ids, classes, old, new, 4000, 0)
    assert r.p_value == pytest.approx(sps.binomtest(4, 34, 0.5).pvalue, abs=0.01)
    assert "4000 random sign patterns" in r.test


def test_balanced_accuracy_p_with_unequal_classes_against_enumeration():
    """Classes of 5, 6 and 8 images: the weights differ; the p-value against an enumeration written here, the
    interval from the within-class bootstrap (every class has 5 images), and no change at all gives p = 1."""
    classes = np.array(["a"] * 5 + ["b"] * 6 + ["c"] * 8, dtype=object)
    old = np.array([1, 1, 1, 1, 0] + [1, 1, 1, 0, 0, 1] + [1, 1, 1, 1, 1, 1, 0, 0], bool)
    new = old.copy()
    new[:3] = False  # a: 3 lost
    new[8] = True  # b: 1 won
    new[11:13] = False  # c: 2 lost
    new[17] = True  # c: 1 won
    ids = [f"{c}/{k}.png" for k, c in enumerate(classes)]
    r = balanced_accuracy_change(Result("b", "balanced_accuracy", True), ids, classes, old, new, 2000, 0)
    assert r.p_value == pytest.approx(_sign_flip_by_enumeration(classes, old, new))
    assert r.delta == pytest.approx(_balanced(classes, new) - _balanced(classes, old))
    assert r.ci is not None and r.ci[0] < r.delta < r.ci[1]
    same = balanced_accuracy_change(Result("b", "balanced_accuracy", True), ids, classes, old, old, 2000, 0)
    assert (same.delta, same.p_value) == (0.0, 1.0)


def _side(name, ids, classes, correct):
    side = ModelOutcomes(name)
    labelled = SampleSet("labelled", "team", tuple(ids), "f", None, 0)
    side.add(labelled, "clean", correct)
    side.add_classes(labelled, classes)
    return side


def _four_classes():
    """cat loses 15 of 40, dog 2 lost 1 won, ship wins 6 of 40, frog (5 images) too few to compare."""
    classes = np.array(["cat"] * 40 + ["dog"] * 40 + ["ship"] * 40 + ["frog"] * 5, dtype=object)
    old = np.ones(125, bool)
    old[80:86] = False  # ship: 6 wrong...
    old[40] = False  # dog: one wrong...
    new = old.copy()
    new[:15] = False  # cat: 15 lost
    new[41:43] = False  # dog: 2 lost
    new[40] = True  # ...won back
    new[80:86] = True  # ship: 6 won
    new[120:123] = False  # frog: 3 of 5 lost, not compared
    ids = [f"{c}/{k}.jpg" for k, c in enumerate(classes)]
    return ids, classes, old, new


def test_per_class_mcnemar_holm_and_the_classes_named():
    ids, classes, old, new = _four_classes()
    results = compare_model(_side("old", ids, classes, old), _side("new", ids, classes, new), settings_from(DEFAULTS))
    r = results["per_class_accuracy"]
    raw = {"cat": sps.binomtest(15, 15, 0.5).pvalue, "dog": sps.binomtest(2, 3, 0.5).pvalue,
           "ship": sps.binomtest(0, 6, 0.5).pvalue}
    by_classes = _holm(raw)
    assert r.p_value == pytest.approx(min(by_classes.values())) == pytest.approx(3 * 0.5 ** 14)
    # Holm over the model's comparisons that have a p-value (clean, balanced, per class; the rest are absent).
    model = _holm({k: results[k].p_value for k in ("clean_top1", "balanced_accuracy", "per_class_accuracy")})
    assert r.p_value_holm == pytest.approx(model["per_class_accuracy"])
    assert r.verdict == "regression" and r.per_class["shown"] == "cat"
    (cat,) = r.per_class["worse"]
    assert cat["class"] == "cat" and cat["discordant"] == [15, 0] and cat["delta"] == pytest.approx(-15 / 40)
    assert (cat["p_value"] == pytest.approx(raw["cat"])
            and cat["p_value_holm"] == pytest.approx(max(by_classes["cat"], model["per_class_accuracy"])))
    assert (r.baseline, r.candidate, r.delta) == (1.0, 25 / 40, pytest.approx(-15 / 40))
    assert r.per_class["better"] == []  # ship's 6 wins: Holm p 2 x 2^-5 = 0.0625, not below 0.05
    # Alpha spent once: a class's p is its Holm p over the classes times the comparison's Holm factor (its step
    # among the model's 3 comparisons with a p-value), never below the comparison's Holm p.
    p_model = {k: results[k].p_value for k in ("clean_top1", "balanced_accuracy", "per_class_accuracy")}
    factor = 3 - sorted(p_model.values()).index(p_model["per_class_accuracy"])
    for name in ("dog", "ship"):
        expected = max(min(1.0, factor * by_classes[name]), model["per_class_accuracy"])
        assert r.class_rows[name]["p_value_holm"] == pytest.approx(expected)
    assert r.class_rows["ship"]["p_value_holm"] == pytest.approx(min(1.0, factor * 0.0625)) and factor > 1
    assert r.per_class["not_compared"] == {"count": 1, "classes": {"frog": 5}} and r.per_class["compared"] == 3
    assert "1 of 3 classes compared worse beyond the tolerance 0.05 and significant" in r.reason
    assert "cat 1.000 -> 0.625 (-0.375, 15 lost, 0 won of 40" in r.reason and "dog" not in r.reason.split(";")[0]
    assert "1 classes not compared (fewer than 10 paired images)" in r.reason
    # The gate's failure message names the class.
    record = AuditRecord("baseline", "new")
    with pytest.raises(AssertionError,
                       match=r"new vs old, per_class_accuracy: regression, 1 of 3 classes .*cat 1\.000 -> 0\.625"):
        assess_comparison(record, BaselineComparison(r, "old", True), DEFAULTS,
                          {"model": "new", "comparison": "per_class_accuracy"})
    assert record.metrics["per_class"]["worse"][0]["class"] == "cat"


def test_per_class_warning_within_tolerance_and_unchanged_on_identical_outcomes():
    ids, classes, old, new = _four_classes()
    loose = dict(DEFAULTS, tolerance={**DEFAULTS["tolerance"], "class_accuracy": 0.5})
    r = compare_model(_side("o", ids, classes, old), _side("n", ids, classes, new), settings_from(loose))["per_class_accuracy"]
    assert r.verdict == "warning" and "1 of 3 classes compared significantly worse within the tolerance 0.5: cat" in r.reason
    with pytest.warns(BaselineWarning, match="cat 1.000 -> 0.625"):
        assess_comparison(AuditRecord("baseline", "n"), BaselineComparison(r, "o", True), loose,
                          {"model": "n", "comparison": "c"})
    same = compare_model(_side("o", ids, classes, old), _side("n", ids, classes, old), settings_from(DEFAULTS))
    assert {k: same[k].verdict for k in ("clean_top1", "balanced_accuracy", "per_class_accuracy")} == dict.fromkeys(
        ("clean_top1", "balanced_accuracy", "per_class_accuracy"), "unchanged")
    assert same["per_class_accuracy"].delta == 0.0 and same["per_class_accuracy"].p_value == 1.0


def test_too_few_images_per_class_is_said_with_the_count():
    ids = [f"n{1440764 + k:08d}_x.JPEG" for k in range(60)]  # ImageNet-like: one image per class
    classes = np.array([f"class{k} (n{1440764 + k:08d})" for k in range(60)], dtype=object)
    bits = np.ones(60, bool)
    results = compare_model(_side("o", ids, classes, bits), _side("n", ids, classes, bits), settings_from(DEFAULTS))
    r = results["per_class_accuracy"]
    assert r.verdict == "not_compared" and r.missing_side == "setup"
    assert r.reason.startswith("no class has 10 paired images or more (min_class_images): 60 classes not compared, class0 "
                               "(n01440764) (1)")
    assert results["balanced_accuracy"].verdict == "unchanged"  # balanced accuracy needs no class size
    with pytest.raises(NotApplicable, match="60 classes not compared"):
        assess_comparison(AuditRecord("baseline", "n"), BaselineComparison(r, "o", True), DEFAULTS,
                          {"model": "n", "comparison": "c"})


def _accuracy_report(classes_of_model, labels, correct, schema=5):
    """A saved report as the accuracy audit writes it (its assessor), with or without the per-image labels."""
    ids = [f"{classes_of_model[k]}/{i}.jpg" for i, k in enumerate(labels)]
    sample_set = SampleSet("labelled", "team", tuple(ids), "f", None, 0)
    record = AuditRecord("accuracy", "m")
    thresholds = load_config(None).thresholds("accuracy", "m")
    arrays = {"correct": np.asarray(correct, bool), "labels": np.asarray(labels)}
    try:
        assess("accuracy", "clean_top1", record, PerImage(sample_set, arrays), thresholds,
               {"model": "m", "set_name": "team", "preprocessing": "p", "class_names": classes_of_model})
    except (AssertionError, NotJudged):  # too few images for the gate: what it measured is kept all the same
        pass
    entry = {"nodeid": "audits/test_accuracy.py::test_clean_top1[m]", "outcome": "not_judged", **record.to_dict()}
    if schema < 5:
        entry["outcomes"].pop("labels")
    return {"schema_version": schema, "run": {"seed": 0, "samples": None}, "models": {"m": {"loaded": True}},
            "samples": {"labelled": sample_set.to_dict()}, "audits": [entry], "verdict": "pass"}


def test_a_report_gives_each_images_class_by_name_and_an_old_one_says_it_has_none():
    names = ["airplane", "automobile", "bird"]
    labels = [0, 0, 2, 1, 2, 2]
    report = _accuracy_report(names, labels, [1, 0, 1, 1, 1, 0])
    assert report["audits"][0]["outcomes"]["labels"]["n"] == 6
    read = outcomes_from_report(report, "m")
    assert list(read.classes.values) == [names[k] for k in labels] and read.schema == 5
    old = outcomes_from_report(_accuracy_report(names, labels, [1, 0, 1, 1, 1, 0], schema=4), "m")
    assert old.classes is None and "clean" in old.outcomes
    six = settings_from({**DEFAULTS, "min_images": 6})  # six images: what is read, not the sample's size, is tested here
    results = compare_model(old, read, six)
    assert results["clean_top1"].verdict == "unchanged"  # still compared
    for name in ("balanced_accuracy", "per_class_accuracy"):
        r = results[name]
        assert r.verdict == "not_compared" and r.missing_side == "baseline"
        assert r.reason.startswith("the baseline report's accuracy entry has no per-image classes (outcomes.labels): a run "
                                    "before schema 5, or merged from such parts; run the baseline's accuracy audit")
    # Images that the two runs put in other classes: not the same measurement, said.
    other = _accuracy_report(["airplane", "car", "bird"], labels, [1, 0, 1, 1, 1, 0])
    other["samples"] = report["samples"]
    r = compare_model(outcomes_from_report(other, "m"), read, six)["balanced_accuracy"]
    assert r.verdict == "not_compared" and ("other classes (e.g. automobile/3.jpg: 'car' in the baseline, "
                                            "'automobile' here)") in r.reason


def test_unpaired_reports_do_not_compare_classes():
    ids, classes, old, new = _four_classes()
    s = settings_from(DEFAULTS, paired=False)
    results = compare_model(_side("o", ids, classes, old), _side("n", ids, classes, new), s)
    assert results["clean_top1"].verdict != "not_compared"
    assert "compared only image by image" in results["per_class_accuracy"].reason


def test_summary_and_page_name_the_worse_classes():
    from visionaudit.families.baseline.summary import summary_lines as _summary_lines
    from visionaudit.html.sections import SectionInputs, baseline

    ids, classes, old, new = _four_classes()
    results = compare_model(_side("old", ids, classes, old), _side("new", ids, classes, new), settings_from(DEFAULTS))
    entries = []
    for name, r in results.items():
        record = AuditRecord("baseline", "new", params={"comparison": name})
        try:
            assess_comparison(record, BaselineComparison(r, "old", True), DEFAULTS, {"model": "new", "comparison": name})
        except (AssertionError, NotApplicable):
            pass
        entries.append({"nodeid": f"audits/test_baseline.py::test_against_baseline[new-{name}]", "outcome": "failed",
                        **record.to_dict()})
    report = {"audits": entries, "run": {}}
    lines = _summary_lines(report)
    assert "  per_class_accuracy: 1 of 3 classes significantly worse: cat 1 -> 0.625: regression" in lines, lines
    assert "  per_class_accuracy: 1 classes not compared (fewer than 10 paired images)" in lines
    section = baseline(SectionInputs(report=report))
    assert "new: per_class_accuracy: significantly worse, worst first: cat 1 -> 0.625" in section["text"], section["text"]
    (table,) = section["tables"]
    assert table["rows"][0][:5] == ["cat", "40", "1", "0.625", "-0.3750"] and "classes significantly worse" in table["title"]
    assert any(row[2] == "per_class_accuracy (cat)" for row in section["table"]["rows"])
    # `visionaudit compare`'s table names them too.
    from visionaudit.report.compare import render

    text = render({"paired": True, "problems": [], "models": {"new": {"baseline_model": "old", "results": results}}})
    assert "numbers of class cat; significantly worse: cat 1 -> 0.625" in text and text.endswith(", new: per_class_accuracy")


def test_judge_leaves_a_class_significant_only_when_the_comparison_is():
    """A class's own Holm p below alpha is not enough when the comparison, adjusted with the model's others, is not."""
    ids, classes, old, new = _four_classes()
    s = settings_from(DEFAULTS)
    results = compare_model(_side("o", ids, classes, old), _side("n", ids, classes, new), s)
    r = results["per_class_accuracy"]
    r.p_value_holm = None
    r.verdict = "not_compared"
    extra = {f"x{k}": Result(f"x{k}", "x", True, baseline=0.5, candidate=0.5, delta=0.0, p_value=0.9, tolerance=Tolerance(0.1))
             for k in range(5000)}
    judged = judge({"per_class_accuracy": r, **extra}, 0.05)["per_class_accuracy"]
    assert judged.p_value_holm >= 0.05 and judged.verdict == "unchanged" and judged.per_class["worse"] == []


def test_labels_round_trip_in_two_or_four_bytes():
    import base64

    from visionaudit.errors import DataError
    from visionaudit.families.outcomes import decode_labels, encode_labels

    small = encode_labels([0, 7, 21842, 3])
    assert small["encoding"] == "uint16" and base64.b64decode(small["data"]) == bytes([0, 0, 7, 0, 0x52, 0x55, 3, 0])
    assert decode_labels(small).tolist() == [0, 7, 21842, 3]
    big = encode_labels([70000, 1])
    assert (big["encoding"] == "uint32"
            and base64.b64decode(big["data"]) == (70000).to_bytes(4, "little") + (1).to_bytes(4, "little"))
    assert decode_labels(big).tolist() == [70000, 1]
    with pytest.raises(DataError, match="per-image classes: 4 bytes of 'uint32' for 2 images"):
        decode_labels({**small, "encoding": "uint32", "n": 2, "data": base64.b64encode(b"\0" * 4).decode()})
