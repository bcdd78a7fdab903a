"""Every list cut short for a person says how many it leaves out in one wording, ``..., and N more``
(visionaudit.formatting.first_few): not "(+N more)", not a bare "...", not a silent cut. Counted by hand here; the
shape-bias lists have their own tests (tests/families/shape_bias/test_cut_lists.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionaudit.errors import CheckpointError, ConfigError, DataError, SpecError
from visionaudit.formatting import first_few, fmt_values

LETTERS = [chr(ord("a") + i) for i in range(12)]  # a .. l


def test_first_few_counts_what_it_leaves_out_of_a_stored_part():
    assert first_few(LETTERS[:3], 5, ", ") == "a, b, c"
    assert first_few(LETTERS, 10, ", ") == "a, b, c, d, e, f, g, h, i, j, and 2 more"
    # a report keeps the first 20 sample ids and the count: the count is the total's, not the stored part's
    assert first_few(LETTERS[:5], 3, ", ", total=1_500) == "a, b, c, and 1,497 more"
    assert first_few(LETTERS[:3], 5, ", ", total=40) == "a, b, c, and 37 more"


def test_several_values_that_are_not_numbers_show_the_first_and_how_many_more():
    assert fmt_values([[0.33, 0.34, 0.33], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]) == "[0.33, 0.34, 0.33] and 2 more"
    assert fmt_values([0.5, 0.25]) == "0.25..0.5" and fmt_values(["PASS", "PASS", "FAIL"]) == "2 PASS, 1 FAIL"  # not cut


def test_classes_taken_wholesale_beyond_the_first_three_are_counted():
    from visionaudit.families.accuracy import wholesale_confusions

    # five swaps, ten classes taken: class 2k's 3 images all predicted 2k + 1 and 2k + 1's all predicted 2k
    labels = np.repeat(np.arange(10), 3)
    top1 = labels + np.where(labels % 2 == 0, 1, -1)
    said = wholesale_confusions(labels, top1, LETTERS[:10])
    assert said == ("a's images are mostly predicted b (3/3), b's images are mostly predicted a (3/3), "
                    "c's images are mostly predicted d (3/3), and 7 more"), said


def test_a_checkpoint_that_does_not_fit_counts_the_keys_it_does_not_name(tmp_path):
    from visionaudit.models.checkpoints import apply_state_dict, load_state_dict

    module = torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(4)])  # 8 keys, none in the checkpoint
    with pytest.raises(CheckpointError) as refused:
        apply_state_dict(module, {}, "w.pth", "mine")
    assert "  8 missing from the checkpoint: 0.weight; 0.bias; 1.weight; 1.bias; 2.weight; and 3 more\n" in str(refused.value)
    path = tmp_path / "no_tensors.pth"
    torch.save({name: 1 for name in LETTERS[:8]}, path)
    with pytest.raises(CheckpointError, match=r"a dict with keys 'a', 'b', 'c', 'd', 'e', 'f', and 2 more, after"):
        load_state_dict(path)


def test_a_class_file_naming_classes_twice_counts_them(tmp_path):
    from visionaudit.data.label_space import read_classes_file

    path = tmp_path / "classes.txt"
    path.write_text("\n".join(LETTERS[:7] * 2) + "\n")
    with pytest.raises(ConfigError,
                       match=r"names 7 class\(es\) more than once: 'a', 'b', 'c', 'd', 'e', and 2 more; each class once"):
        read_classes_file(path)


def test_a_folder_that_is_not_imagenet_c_counts_what_it_holds(tmp_path):
    from visionaudit.families.corruption.imagenet_c import check_root

    for name in LETTERS[:7]:
        (tmp_path / name).mkdir()
    with pytest.raises(DataError, match=r"it holds a, b, c, d, e, and 2 more\. ImageNet-C's"):
        check_root(tmp_path)


def test_timms_tags_beyond_twenty_are_counted(monkeypatch):
    import timm

    from visionaudit.models.hub import timm_pretrained_cfg

    monkeypatch.setattr(timm, "list_pretrained", lambda pattern: [f"test_efficientnet.t{k:02d}" for k in range(23)])
    with pytest.raises(SpecError) as refused:
        timm_pretrained_cfg("test_efficientnet.nope", "timm:test_efficientnet.nope")
    assert "known: test_efficientnet.t00, " in str(refused.value)
    assert "test_efficientnet.t19, and 3 more" in str(refused.value) and "t20" not in str(refused.value), str(refused.value)


def _worse(count: int) -> list[dict]:
    return [{"class": f"class{k}", "baseline": 0.9, "candidate": 0.5, "delta": -0.4, "n": 10, "discordant": [4, 0],
             "p_value_holm": 0.01} for k in range(count)]


def test_the_baseline_summary_counts_the_classes_it_does_not_name():
    from visionaudit.families.baseline.summary import _change_text

    assert _change_text({"per_class": {"compared": 30, "worse": _worse(7)}}) == (
        "7 of 30 classes significantly worse: class0 0.9 -> 0.5, class1 0.9 -> 0.5, class2 0.9 -> 0.5, "
        "class3 0.9 -> 0.5, class4 0.9 -> 0.5, and 2 more")
    better = [f"class{k}" for k in range(8)]
    assert _change_text({"per_class": {"compared": 30, "worse": [], "better": better}}) == (
        "8 of 30 classes significantly better: class0, class1, class2, class3, class4, and 3 more")  # was cut silently


def test_the_comparison_table_and_the_page_count_the_worse_classes_they_do_not_name():
    from visionaudit.families.baseline.statistics import Result
    from visionaudit.html.sections import _classes_against_baseline
    from visionaudit.report.compare import _row

    result = Result("per_class_top1", "top1", True, 0.9, 0.5, -0.4, (-0.5, -0.3), 1e-3, 1e-3, test="McNemar",
                    verdict="regression", per_class={"shown": "class0", "worse": _worse(12)})
    said = _row(result)[-1]
    assert said.endswith("class9 0.9 -> 0.5, and 2 more") and "class10" not in said, said  # was cut silently
    text, tables = _classes_against_baseline([{"model": "m", "comparison": "per_class_top1", "baseline_model": "old",
                                               "per_class": {"compared": 30, "worse": _worse(12)}}])
    assert "class9 0.9 -> 0.5, and 2 more" in text[0] and ", ..." not in text[0], text
    assert len(tables[0]["rows"]) == 12  # the page's table below the sentence names them all


def test_the_classes_too_few_to_compare_are_counted_beyond_the_first_five():
    from visionaudit.families.baseline.statistics import Result, per_class_change

    classes = [f"class{k}" for k in range(7) for _ in range(2)]  # 7 classes of 2 paired images, below min 5
    same = np.ones(len(classes), dtype=bool)
    result = per_class_change(Result("per_class_top1", "top1", True), classes, same, same, 5)
    assert result.reason.endswith("7 classes not compared, class0 (2), class1 (2), class2 (2), class3 (2), class4 (2), "
                                  "and 2 more"), result.reason


def test_the_benchmark_conditions_left_out_of_a_paired_mce_are_counted():
    from types import SimpleNamespace

    from visionaudit.families.baseline.corruptions import summary_keys
    from visionaudit.families.corruption.imagenet_c import BENCHMARK

    side = SimpleNamespace(role="corruption")
    old = {(c, 1): side for c in BENCHMARK}
    new = {**old, **{(c, 2): side for c in BENCHMARK[:10]}}  # ten conditions only the candidate scored
    keys, said = summary_keys(old, new)
    assert len(keys) == 15 and said.endswith(", and 2 more"), said
    assert said.split("left out, not scored by both or not at every severity: ")[1].count(", ") == 8  # 8 named


def test_the_classes_that_differ_across_models_are_counted_beyond_the_first_five():
    from visionaudit.families.robustness import FAMILY

    result = {"classes_affected": 7, "classes": list(range(7)), "alpha": 0.05, "classes_tested": 100, "models": 2}
    lines = FAMILY.summary_lines({"audits": [], "aggregates": {"robustness": {"across_models": {"rotation": result}}}})
    assert lines == ["robustness across 2 models, rotation: 7 of 100 classes differ at p < 0.05 (the study's per-class "
                     "t-test, uncorrected for the classes tested, about 5 expected by chance alone): 0, 1, 2, 3, 4, "
                     "and 2 more"], lines


def test_a_regression_counts_the_lost_images_beyond_the_first_five():
    """The report keeps the first 20 lost ids and their count: the message counts from the count, not the 20."""
    from tests.families.baseline.test_nothing_right import DEFAULTS, _sides
    from visionaudit.families.baseline import BaselineComparison, assess_comparison
    from visionaudit.families.records import AuditRecord

    r = _sides(40, 0)["top1_rotation"]  # 40 images right in the baseline, none here: 40 lost
    assert r.verdict == "regression" and r.lost_count == 40 and len(r.lost) == 20
    with pytest.raises(AssertionError) as failed:
        assess_comparison(AuditRecord("baseline", "m"), BaselineComparison(r, "m", True), DEFAULTS,
                          {"model": "m", "comparison": "top1_rotation"})
    assert f"; 40 images went from right to wrong: {', '.join(r.lost[:5])}, and 35 more" in str(failed.value), str(failed.value)
