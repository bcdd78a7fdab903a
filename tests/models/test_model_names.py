"""``?name=NAME``: a model's short id. The name is what people call the model (test ids, rows, messages, baseline
pairing); the canonical spec stays what the model is (audit.toml's tables, the logit cache). Parsing, the config's
lookup and the baseline pairing, without a run (tests/test_named_model_runs.py has the runs)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from visionaudit.config import load_config
from visionaudit.errors import ConfigError, DataError, SpecError
from visionaudit.families.baseline.pairing import model_pairs
from visionaudit.models.model_ids import model_id
from visionaudit.models.model_names import named_spec
from visionaudit.models.specs import canonical_spec, parse_spec

TINY = "tests.tiny_models:tiny"
FIXTURES = Path(__file__).resolve().parents[1] / "report_fixtures"


def test_the_name_is_the_id_and_never_part_of_the_canonical_spec():
    named = parse_spec(f"{TINY}?size=32&name=fraud-v3")
    assert (named.id, named.canonical, named.raw) == ("fraud-v3", f"{TINY}?size=32", f"{TINY}?size=32&name=fraud-v3")
    assert canonical_spec(f"{TINY}?name=fraud-v3&size=32") == canonical_spec(f"{TINY}?size=32") == f"{TINY}?size=32"
    plain = parse_spec(f"{TINY}?size=32")
    assert plain.id == plain.canonical == f"{TINY}?size=32"  # without a name nothing changes
    lite = parse_spec("efficientnet-lite0?name=A.b_c+1-2")
    assert (lite.id, lite.canonical) == ("A.b_c+1-2", "efficientnet_lite0")


@pytest.mark.parametrize("name", ["", "-x", ".x", "a/b", "a:b", "a b", "a[1]", "é", "x" * 65])
def test_a_name_that_breaks_the_rule_is_refused_naming_the_rule(name):
    with pytest.raises(SpecError, match=r"is not a model name; a name is a letter or digit, then up to 63 letters"):
        parse_spec(f"{TINY}?name={name}")


def test_a_name_given_twice_is_refused():
    with pytest.raises(SpecError, match=r"\?name= is given more than once"):
        parse_spec(f"{TINY}?name=a&name=b")


def test_a_named_spec_parses_back_to_the_same_model_and_id():
    for spec in (f"{TINY}?name=v1", f"{TINY}?size=32&name=v1", TINY):
        parsed = parse_spec(spec)
        again = parse_spec(named_spec(parsed.canonical, parsed.id))
        assert (again.id, again.canonical) == (parsed.id, parsed.canonical)


def test_a_models_id_from_a_spec_or_a_bare_name():
    assert model_id(f"{TINY}?name=v1") == "v1" and model_id(f"{TINY}?size=32") == f"{TINY}?size=32"
    assert model_id("fraud-v2") == "fraud-v2"  # a baseline's named model: no spec to parse
    with pytest.raises(SpecError):
        model_id("no such:model:spec?x=1")


def test_a_named_models_bounds_are_its_specs_table(tmp_path):
    (tmp_path / "audit.toml").write_text(f'[models."{TINY}".accuracy]\nmin_top1 = 0.1\n'
                                         f'[baseline.pairs]\n"{TINY}?name=tiny-v2" = "tiny-v1"\n'
                                         '"tests.tiny_models:tiny_other" = "v0"\n')
    config = load_config(tmp_path / "audit.toml").with_names({"tiny-v2": TINY, "other": "tests.tiny_models:tiny_other"})
    assert config.thresholds("accuracy", "tiny-v2")["min_top1"] == 0.1
    assert config.thresholds("accuracy", TINY)["min_top1"] == 0.1
    assert config.thresholds("accuracy", "other")["min_top1"] == 0.7  # the family's default: not this table's model
    # the run's side a spec (its ?name= its id), the baseline's a name as written
    assert config.baseline_pairs == {"tiny-v2": "tiny-v1", "tests.tiny_models:tiny_other": "v0"}
    assert config.models_not_in(["tiny-v2"]) == []


def _baseline() -> dict:
    return json.loads((FIXTURES / "report_two_models.json").read_text())


def _renamed(report: dict, spec: str, name: str) -> dict:
    """``report`` as a run with ``spec?name=NAME`` would have written it: the model keyed and its rows named by NAME."""
    out = copy.deepcopy(report)
    out["models"][name] = {**out["models"].pop(spec), "name": name}
    for entry in out["audits"]:
        if entry.get("model") == spec:
            entry["model"] = name
    return out


def test_an_existing_baseline_report_still_pairs_by_spec():
    report = _baseline()
    assert model_pairs([TINY], report) == {TINY: TINY}
    assert model_pairs([TINY], report, specs={TINY: TINY}) == {TINY: TINY}


def test_a_named_model_pairs_with_the_baseline_model_of_that_name():
    report = _renamed(_baseline(), TINY, "tiny-v1")
    # The new release is another model (another spec) under the release's name: paired by the name.
    assert model_pairs(["tiny-v1"], report, specs={"tiny-v1": "tests.tiny_models:tiny_other"}) == {"tiny-v1": "tiny-v1"}


def test_a_spec_in_the_baseline_under_another_id_is_said_not_paired():
    with pytest.raises(DataError) as unnamed_run:  # the baseline named it, this run does not
        model_pairs([TINY], _renamed(_baseline(), TINY, "tiny-v1"), specs={TINY: TINY})
    assert (f"{TINY}: the baseline has no model {TINY}, but has this spec ({TINY}) as tiny-v1: name it the same "
            "(?name=tiny-v1) or pair the two") in str(unnamed_run.value)
    with pytest.raises(DataError) as named_run:  # this run names it, the baseline did not
        model_pairs(["tiny-v2"], _baseline(), specs={"tiny-v2": TINY})
    assert (f"tiny-v2: the baseline has no model tiny-v2, but has this spec ({TINY}) as {TINY}: leave ?name= out (the "
            "baseline's model has none) or pair the two") in str(named_run.value)


def test_baseline_pairs_keyed_by_a_named_models_spec_apply_to_it():
    assert model_pairs(["tiny-v2"], _baseline(), pairs={TINY: TINY}, specs={"tiny-v2": TINY}) == {"tiny-v2": TINY}


def test_an_audit_toml_table_names_its_model(tmp_path):
    (tmp_path / "audit.toml").write_text(f'[models."{TINY}"]\nname = "tiny-v1"\n[models."{TINY}".accuracy]\nmin_top1 = 0.1\n'
                                         '[models."tests.tiny_models:tiny_other?name=other-v1".accuracy]\nmin_top1 = 0.2\n')
    config = load_config(tmp_path / "audit.toml")
    assert config.name_of(TINY) == "tiny-v1" and config.name_of("tests.tiny_models:tiny_other") == "other-v1"
    assert config.name_of("efficientnet_lite0") == ""
    assert set(config.models) == {TINY, "tests.tiny_models:tiny_other"}  # keyed by what the model is
    assert config.models[TINY] == {"accuracy": {"min_top1": 0.1}}  # the name is no family table
    assert config.with_names({"other-v1": "tests.tiny_models:tiny_other"}).thresholds("accuracy", "other-v1")["min_top1"] == 0.2


@pytest.mark.parametrize("toml, said", [
    (f'[models."{TINY}"]\nname = "a/b"\n', 'name = "a/b" is not a model name; a name is a letter or digit'),
    (f'[models."{TINY}"]\nname = 3\n', "name = 3 is not a model name"),
    (f'[models."{TINY}?name=a"]\nname = "b"\n', "names its model twice, a in the key and name = \"b\"; give one"),
    (f'[models."{TINY}"]\nname = "a"\n[models."tests.tiny_models:tiny_other"]\nname = "a"\n',
     f'[models."{TINY}"] and [models."tests.tiny_models:tiny_other"] both name their model a'),
])
def test_a_bad_name_in_audit_toml_is_refused(tmp_path, toml, said):
    (tmp_path / "audit.toml").write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "audit.toml")
    assert said in str(refused.value) and str(tmp_path / "audit.toml") in str(refused.value)


@pytest.mark.parametrize("toml, said", [
    ('[baseline.pairs]\n"efficientnet_lite0?name=a/b" = "old"\n', '[baseline.pairs] "efficientnet_lite0?name=a/b": ?name=a/b'),
    ('[baseline.pairs]\n"efficientnet_lite0" = "efficientnet_lite0?name=a/b"\n',
     '[baseline.pairs] "efficientnet_lite0?name=a/b": ?name=a/b'),
    ('[models."efficientnet_lite0?name=a/b".accuracy]\nmin_top1 = 0.5\n',
     '[models."efficientnet_lite0?name=a/b"] does not name a model: ?name=a/b is not a model name'),
], ids=["pair-new", "pair-old", "table-key"])
def test_a_bad_name_in_an_audit_toml_spec_is_said_as_written_there_not_as_a_model_option(tmp_path, toml, said):
    """Review 37 F6: these said "--model efficientnet_lite0?name=a/b: ..." (a pair with no file or table named), though
    no --model was given."""
    (tmp_path / "audit.toml").write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "audit.toml")
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'audit.toml'}: {said}") and "--model" not in message, message


def test_a_table_keyed_by_a_name_says_tables_go_by_the_spec(tmp_path):
    """Review 37 F5: ``[models."fraud-v3".accuracy]`` was refused as an unknown spec, not saying that a table is keyed
    by the model's spec (with ``name = "fraud-v3"`` in it to name the model)."""
    (tmp_path / "audit.toml").write_text('[models."fraud-v3".accuracy]\nmin_top1 = 0.5\n')
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "audit.toml")
    assert str(refused.value).endswith('; if "fraud-v3" is a model\'s name: a table is keyed by the model\'s spec, '
                                       '[models."SPEC"], with name = "fraud-v3" in it'), str(refused.value)


def test_a_mistyped_spec_as_a_table_key_is_told_its_spelling_first(tmp_path):
    """Review 37 R0: a typo that also reads as a name gets the spelling fix, the name hint only as a condition."""
    (tmp_path / "audit.toml").write_text('[models."resnet50".accuracy]\nmin_top1 = 0.5\n')
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "audit.toml")
    message = str(refused.value)
    assert "Did you mean torchvision:resnet50?" in message, message
    assert message.index("Did you mean") < message.index('if "resnet50" is a model\'s name'), message
