"""The core of the ``--audit-samples`` floor note (visionaudit/families/sample_floor.py): which families' gates an
``--audit-samples`` subset or their own cap leaves not judged, read from each family's descriptor
(``counts_labelled``: what it counts, capped by which bound, unless which option), and the note's fixes. The note
as a real run says it: tests/plugins/test_sample_floor.py."""

from __future__ import annotations

from visionaudit.families import registry
from visionaudit.families.registry import CountsLabelled, Family, register_family
from visionaudit.families.sample_floor import (
    below_floor,
    capped_below_floor,
    floor_note,
    sample_floor_note,
)

MODEL = "tv:resnet18"


def _meta(*families: str, **extra) -> dict:
    return {f"audits/test_{f}.py::t[{i}]": {"audit": f, "model": MODEL, **extra} for i, f in enumerate(families)}


def _bounds(minimums: dict[str, int]):
    """A family's bounds as the config gives them: here, min_images (50 unless ``minimums`` says otherwise) and an
    ``images`` cap of 0 (all of them)."""
    return lambda family, model: {"min_images": minimums.get(family, 50), "images": 0}


def test_the_families_whose_gate_counts_the_labelled_images_say_so_in_their_descriptors():
    counting = {name for name, fam in registry.families().items() if fam.counts_labelled}
    # shape_bias counts its stimuli, channel_bias and conversion no images against a floor; the baseline's comparisons
    # of the labelled images pair this run's (its shape-bias ones the stimuli: below, by the test's data)
    assert {"accuracy", "robustness", "corruption", "deployment", "baseline"} <= counting
    assert not counting & {"shape_bias", "channel_bias", "conversion"}


def test_below_floor_reads_the_descriptor_not_a_list(monkeypatch):
    """A family registered outside the suite that counts the labelled images is in the note; one that does not is not."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_family(Family(name="toy_counting", gates="x", key_metric="s", higher_is_better=True, thresholds={},
                           counts_labelled=CountsLabelled()))
    register_family(Family(name="toy_stimuli", gates="x", key_metric="s", higher_is_better=True, thresholds={}))
    floors = below_floor(_meta("toy_stimuli", "toy_counting", "accuracy"), 20, _bounds({"toy_counting": 30}))
    assert floors == {"accuracy": 50, "toy_counting": 30}  # in the registry's order: built-ins first


def test_below_floor_takes_each_familys_largest_minimum_over_its_models():
    meta = {"a": {"audit": "accuracy", "model": "m1"}, "b": {"audit": "accuracy", "model": "m2"},
            "c": {"audit": "robustness", "model": "m1"}}
    by_model = {"m1": 30, "m2": 70}
    floors = below_floor(meta, 40, lambda family, model: {"min_images": by_model[model]})
    assert floors == {"accuracy": 70}  # robustness's 30 is met by 40 images


def test_no_note_where_the_count_is_not_certain_or_not_chosen():
    meta, bounds = _meta("accuracy", "corruption"), _bounds({})
    assert sample_floor_note(20, 20, meta, bounds) is not None
    assert sample_floor_note(20, 20, meta, bounds, shard=True) is None  # both split by image: a shard judges its share
    assert sample_floor_note(None, 20, meta, bounds) is None  # no --audit-samples: the set is that small
    assert sample_floor_note(30, 20, meta, bounds) is None  # fewer than asked: said already
    # corruption on an ImageNet-C folder scores the folder's images, not the labelled subset
    imagenet_c = lambda name: "/data/imagenet-c" if name == "imagenet_c" else None  # noqa: E731
    assert below_floor(meta, 20, bounds, imagenet_c) == {"accuracy": 50}
    assert below_floor(meta, 20, bounds) == {"accuracy": 50, "corruption": 50}
    assert below_floor(_meta("accuracy", control=True), 20, bounds) == {}  # a control test judges no gate
    assert below_floor(meta, 50, bounds) == {}  # at the floor: judged


def test_the_note_names_the_gates_and_the_fixes():
    note = floor_note(20, {"accuracy": 50, "robustness": 60})
    assert note.startswith("--audit-samples 20 is below min_images (accuracy 50, robustness 60; audit.toml): "
                           "the accuracy, robustness gates will not be judged")
    assert "use --audit-samples 60 or more" in note and '-m "not accuracy and not robustness"' in note


def test_the_note_names_each_familys_table():
    note = floor_note(20, {"accuracy": 50, "robustness": 60, "deployment": 16})
    assert "lower min_images in audit.toml ([audits.accuracy] min_images, [audits.robustness] min_images, " \
           "[audits.deployment] min_images)" in note


def test_the_deployment_gate_counts_the_labelled_images_too():
    """Its forms are compared on a subset of the run's labelled images (its ``images``, 64, caps it): with fewer than
    its min_images (16) in the run, the subset is as small and the gate is not judged (hunt 35 F4 left it out)."""
    assert registry.get_family("deployment").counts_labelled
    defaults = lambda family, model: registry.get_family(family).defaults  # noqa: E731 (the families' own defaults)
    assert below_floor(_meta("deployment", "accuracy"), 10, defaults) == {"accuracy": 50, "deployment": 16}
    assert below_floor(_meta("deployment", "accuracy"), 16, defaults) == {"accuracy": 50}


def _deployment_bounds(**changed):
    """Deployment's own defaults (images 64, min_images 16) with ``changed``; accuracy's defaults."""
    return lambda family, model: {**registry.get_family(family).defaults, **(changed if family == "deployment" else {})}


def test_deployments_own_images_caps_what_it_counts():
    """Its gate counts min(images, N) (a stratified subset of the N): images = 8 < min_images 16 is never judged,
    whatever --audit-samples, and the fix named is [audits.deployment] images, not --audit-samples (review36 F1)."""
    meta = _meta("deployment", "accuracy")
    assert capped_below_floor(meta, _deployment_bounds(images=8)) == {"deployment": ("images", 8, 16)}
    note = sample_floor_note(60, 60, meta, _deployment_bounds(images=8))  # accuracy's 50 met: only deployment's cap
    assert note is not None and "[audits.deployment] images = 8 is below its min_images (16)" in note
    assert "raise [audits.deployment] images to 16 or more" in note and "--audit-samples 16" not in note
    note = sample_floor_note(20, 20, meta, _deployment_bounds(images=8))  # and accuracy's floor, its own fix
    assert "[audits.deployment] images = 8" in note and "(accuracy 50; audit.toml): the accuracy gate" in note
    assert "deployment 16" not in note  # not offered --audit-samples as its fix
    assert sample_floor_note(None, 500, meta, _deployment_bounds(images=8)) is not None  # without --audit-samples too
    assert below_floor(meta, 20, _deployment_bounds(images=16)) == {"accuracy": 50}  # the cap at the floor: judged
    assert below_floor(meta, 12, _deployment_bounds(images=30)) == {"accuracy": 50, "deployment": 16}


def test_corruptions_images_zero_counts_them_all_and_its_cap_counts():
    bounds = lambda images: (lambda family, model: {"min_images": 50, "images": images})  # noqa: E731
    assert capped_below_floor(_meta("corruption"), bounds(0)) == {}  # 0: all N
    assert below_floor(_meta("corruption"), 60, bounds(0)) == {}
    assert capped_below_floor(_meta("corruption"), bounds(30)) == {"corruption": ("images", 30, 50)}
    # on an ImageNet-C folder it scores the folder's images: its cap on the labelled ones says nothing
    assert capped_below_floor(_meta("corruption"), bounds(30), lambda name: name == "imagenet_c") == {}


def test_in_a_shard_a_family_that_runs_whole_is_still_counted():
    """Deployment does not split its images: it runs whole in shard 1 on all N (review36 F2)."""
    meta = _meta("deployment", "accuracy")
    assert below_floor(meta, 10, _deployment_bounds(), shard=True) == {"deployment": 16}
    note = sample_floor_note(10, 10, meta, _deployment_bounds(), shard=True)
    assert note is not None and "the deployment gate will not be judged" in note and "accuracy" not in note


def test_the_baselines_comparisons_of_the_labelled_images_count_them():
    """Its clean, robustness and corruption comparisons pair this run's labelled images against its own min_images
    (20); its shape-bias comparisons count stimuli (review36 F5)."""
    bounds = lambda family, model: registry.get_family(family).defaults  # noqa: E731
    labelled = {"t[clean_top1]": {"audit": "baseline", "model": MODEL, "data": ["labelled"]}}
    stimuli = {"t[shape_bias]": {"audit": "baseline", "model": MODEL, "data": ["cue-conflict"]}}
    assert below_floor(labelled, 10, bounds) == {"baseline": 20}
    assert below_floor(stimuli, 10, bounds) == {}


def test_one_models_cap_below_the_floor_does_not_hide_another_models_subset_below_it():
    """Two models of the deployment family: one with images = 8 (never judged: the cap is its fix), one with the
    default 64 on a subset of 12 (--audit-samples is its fix): both are said (review36 layout2 G1)."""
    meta = {"audits/test_deployment.py::t[a]": {"audit": "deployment", "model": "a"},
            "audits/test_deployment.py::t[b]": {"audit": "deployment", "model": "b"}}
    defaults = registry.get_family("deployment").defaults
    bounds = lambda family, model: {**defaults, "images": 8 if model == "a" else 64}  # noqa: E731
    assert capped_below_floor(meta, bounds) == {"deployment": ("images", 8, 16)}
    assert below_floor(meta, 12, bounds) == {"deployment": 16}
    note = sample_floor_note(12, 12, meta, bounds)
    assert "--audit-samples 16 or more" in note
    # a's cap is its own table's, not [audits.deployment]'s (cfg45): the note names it, and the gate as a's and b's only
    assert note.startswith("a's own [models] table's deployment images = 8 is below its min_images (16) (audit.toml): the "
                           "deployment (of a only) gate will never be judged"), note
    assert "the deployment (of b only) gate will not be judged" in note and "([audits.deployment] min_images)" in note


def test_a_descriptor_with_a_counts_labelled_not_of_its_shape_is_refused_when_made():
    """True (not a CountsLabelled) or a cap that is none of its thresholds: refused naming it, not an AttributeError at
    a run's startup or a warning never given (review36 layout2 G2)."""
    import pytest

    with pytest.raises(ValueError, match="counts_labelled must be a visionaudit.CountsLabelled or None, not True"):
        Family(name="toy_bool", gates="x", key_metric="s", higher_is_better=True, thresholds={}, counts_labelled=True)
    with pytest.raises(ValueError, match="cap 'imgaes' is not one of its thresholds"):
        Family(name="toy_typo", gates="x", key_metric="s", higher_is_better=True, thresholds={},
               counts_labelled=CountsLabelled(cap="imgaes"))


def test_the_note_says_which_gates_tests_will_not_measure():
    """Review of num42, F3: corruption's and deployment's assessors stop at the count, before measuring
    (corruption/judging.py, deployment.py: require_count before measure()), so nothing of theirs reaches the report;
    the note said "though its tests run" of them as of accuracy and robustness, whose tests measure and record."""
    measuring = {name for name, fam in registry.families().items() if fam.counts_labelled and fam.counts_labelled.measures}
    assert {"accuracy", "robustness"} <= measuring and not measuring & {"corruption", "deployment"}
    note = floor_note(20, {"corruption": 50})
    assert "the corruption gate will not be judged (not_judged, verdict incomplete) and its tests will not measure" in note
    assert "though" not in note
    note = floor_note(20, {"accuracy": 50, "corruption": 50, "deployment": 16})
    assert ("the accuracy, corruption, deployment gates will not be judged (not_judged, verdict incomplete), though "
            "accuracy's tests run and record what they measure; corruption's and deployment's tests will not measure "
            "(they stop at the count)") in note
    note = floor_note(20, {"accuracy": 50, "robustness": 60})
    assert "though their tests run and record what they measure;" in note and "will not measure" not in note


def test_a_run_of_several_models_names_those_whose_gate_goes_unjudged_and_the_table_that_sets_their_floor():
    """cfg45: with a model's own table setting min_images, the note said the whole gate would not be judged and named
    [audits.accuracy] min_images as the fix, though the other model's gate was judged and that table was not the cause."""
    meta = {"a": {"audit": "accuracy", "model": "m1"}, "b": {"audit": "accuracy", "model": "m2"}}
    own = {"m2": 100}  # m2's [models."SPEC".accuracy] min_images; [audits.accuracy] (and the model id "") 10
    note = sample_floor_note(20, 20, meta, lambda family, model: {"min_images": own.get(model, 10)})
    assert "the accuracy (of m2 only) gate will not be judged" in note
    assert "lower min_images in audit.toml (m2's own [models] table's accuracy min_images)" in note
    assert "[audits.accuracy]" not in note
    # Below [audits.accuracy]'s floor for one model only (the other's own table lowers it): that table is the fix.
    own = {"m1": 10}
    note = sample_floor_note(20, 20, meta, lambda family, model: {"min_images": own.get(model, 50)})
    assert "the accuracy (of m2 only) gate" in note and "([audits.accuracy] min_images)" in note
    # Every model below: the gate, as before.
    note = sample_floor_note(20, 20, meta, lambda family, model: {"min_images": 50})
    assert "the accuracy gate will not be judged" in note and "([audits.accuracy] min_images)" in note


def test_a_models_own_cap_below_its_floor_is_told_as_its_tables_and_its_gate_only():
    """cfg45: [models."SPEC".deployment] images = 8 was told as "[audits.deployment] images = 8" (not in the file) and
    "the deployment gate will never be judged", though the other model's was."""
    meta = {"a": {"audit": "deployment", "model": "m1"}, "b": {"audit": "deployment", "model": "m2"}}
    defaults = registry.get_family("deployment").defaults
    note = sample_floor_note(None, 1000, meta, lambda family, model: {**defaults, "images": 8 if model == "m2" else 64})
    assert note.startswith("m2's own [models] table's deployment images = 8 is below its min_images (16) (audit.toml): "
                           "the deployment (of m2 only) gate will never be judged"), note
    assert "raise m2's own [models] table's deployment images to 16 or more" in note and "[audits." not in note


def test_a_models_own_table_that_sets_the_shared_floor_again_is_named_as_the_fix(tmp_path):
    """cfg45 review F3: whose table set min_images was told by value, so a model's own table that sets the same value
    as [audits.accuracy] was left out of the fix, which named only [audits.accuracy] (lowering it changes nothing for
    that model). The keys the model's own table sets decide it (visionaudit.config.Thresholds.own)."""
    from visionaudit.config import load_config

    path = tmp_path / "audit.toml"
    path.write_text('[audits.accuracy]\nmin_images = 100\n\n[models."efficientnet_lite1".accuracy]\nmin_images = 100\n')
    config = load_config(path)
    meta = {"a": {"audit": "accuracy", "model": "efficientnet_lite0"}, "b": {"audit": "accuracy", "model": "efficientnet_lite1"}}
    note = sample_floor_note(20, 20, meta, config.thresholds)
    assert ("lower min_images in audit.toml ([audits.accuracy] min_images, efficientnet_lite1's own [models] table's "
            "accuracy min_images)") in note, note
    assert "the accuracy gate will not be judged" in note  # both models' gates: no "(of ... only)"
