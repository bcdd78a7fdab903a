"""The core of the ``--audit-samples`` floor note (visionaudit/families/sample_floor.py): which families' gates an
``--audit-samples`` subset leaves not judged, read from each family's descriptor (``counts_labelled``), and the
note's fixes. The note as a real run says it: tests/plugins/test_sample_floor.py."""

from __future__ import annotations

from visionaudit.families import registry
from visionaudit.families.registry import Family, register_family
from visionaudit.families.sample_floor import below_floor, floor_note, sample_floor_note

MODEL = "tv:resnet18"


def _meta(*families: str, **extra) -> dict:
    return {f"audits/test_{f}.py::t[{i}]": {"audit": f, "model": MODEL, **extra} for i, f in enumerate(families)}


def _bounds(minimums: dict[str, int]):
    """A family's bounds as the config gives them: here, only min_images (50 unless ``minimums`` says otherwise)."""
    return lambda family, model: {"min_images": minimums.get(family, 50)}


def test_the_families_whose_gate_counts_the_labelled_images_say_so_in_their_descriptors():
    counting = {name for name, fam in registry.families().items() if fam.counts_labelled}
    # shape_bias counts its stimuli, baseline its paired images, channel_bias and conversion no images against a floor
    assert {"accuracy", "robustness", "corruption"} <= counting
    assert not counting & {"shape_bias", "channel_bias", "conversion", "baseline"}


def test_below_floor_reads_the_descriptor_not_a_list(monkeypatch):
    """A family registered outside the suite that counts the labelled images is in the note; one that does not is not."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_family(Family(name="toy_counting", gates="x", key_metric="s", higher_is_better=True, thresholds={},
                           counts_labelled=True))
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
    assert sample_floor_note(20, 20, meta, bounds, shard=True) is None  # a shard judges its share
    assert sample_floor_note(None, 20, meta, bounds) is None  # no --audit-samples: the set is that small
    assert sample_floor_note(30, 20, meta, bounds) is None  # fewer than asked: said already
    # corruption on an ImageNet-C folder scores the folder's images, not the labelled subset
    assert below_floor(meta, 20, bounds, own_images=("corruption",)) == {"accuracy": 50}
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
