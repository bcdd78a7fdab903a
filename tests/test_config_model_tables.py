"""audit.toml's per-model tables (``[models."ID"]``) match their model whatever the spelling of its spec and its
paths, say a table that matches no model of the run, and relative paths in the file are read from its folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_config import ROOT, write
from visionaudit.config import load_config
from visionaudit.errors import ConfigError
from visionaudit.families import get_family
from visionaudit.models.specs import canonical_spec


def test_a_model_table_overrides_only_the_names_it_lists(tmp_path):
    cfg = load_config(write(tmp_path, """
[audits.robustness]
max_drop = 0.5
max_drop_by_transform = { vertical_flip = 0.7, horizontal_flip = 0.05 }
[models.efficientnet_lite0.robustness]
max_drop_by_transform = { vertical_flip = 0.8 }
"""))
    lite0 = cfg.thresholds("robustness", "efficientnet_lite0")
    assert lite0.entry("max_drop_by_transform", "vertical_flip", "max_drop") == 0.8
    assert lite0.entry("max_drop_by_transform", "horizontal_flip", "max_drop") == 0.05  # not loosened to max_drop
    assert cfg.thresholds("robustness", "torchvision:resnet50").entry("max_drop_by_transform", "vertical_flip") == 0.7


def test_dash_alias_names_the_model(tmp_path):
    cfg = load_config(write(tmp_path,
                            '[audits.accuracy]\nmin_top1 = 0.7\n[models."efficientnet-lite0".accuracy]\nmin_top1 = 0.85\n'))
    assert cfg.thresholds("accuracy", canonical_spec("efficientnet_lite0"))["min_top1"] == 0.85
    assert cfg.models_not_in(["efficientnet_lite0"]) == []


def test_query_in_another_order_names_the_model(tmp_path):
    cfg = load_config(write(tmp_path, """
[audits.accuracy]
min_top1 = 0.7
[models."efficientnet_lite0?std=0.5,0.5,0.5&mean=0.5,0.5,0.5".accuracy]
min_top1 = 0.6
"""))
    run_model = canonical_spec("efficientnet_lite0?mean=0.5,0.5,0.5&std=0.5,0.5,0.5")
    assert cfg.thresholds("accuracy", run_model)["min_top1"] == 0.6
    assert cfg.thresholds("accuracy", "efficientnet_lite0")["min_top1"] == 0.7


def test_state_dict_table_matches_with_the_runs_arch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # w.pth: the file beside audit.toml, and the run's from the working directory
    cfg = load_config(write(tmp_path, '[models."w.pth".accuracy]\nmin_top1 = 0.6\n'), arch="torchvision:resnet18")
    assert cfg.thresholds("accuracy", canonical_spec("w.pth?arch=torchvision:resnet18"))["min_top1"] == 0.6


@pytest.mark.parametrize(
    "key, message",
    [
        ("resnet50", r"Did you mean torchvision:resnet50\?"),
        ("torchvision:resnet5", r"torchvision has no model 'resnet5'; did you mean torchvision:resnet50\?"),
        ("efficientnet_lite3", r"Did you mean efficientnet_lite[012]\?"),
    ],
)
def test_model_table_for_no_known_model_names_the_closest(tmp_path, key, message):
    path = write(tmp_path, f'[models."{key}".accuracy]\nmin_top1 = 0.5\n')
    with pytest.raises(ConfigError, match=rf'{path}: \[models."{key}"\] does not name a model: .*{message}'):
        load_config(path)


def test_two_spellings_of_one_model_are_refused(tmp_path):
    path = write(tmp_path,
                 '[models."efficientnet-lite0".accuracy]\nmin_top1 = '
                 '0.5\n[models."efficientnet_lite0".accuracy]\nmin_top1 = 0.6\n')
    with pytest.raises(ConfigError, match=r"name the same model \(efficientnet_lite0\); merge them"):
        load_config(path)


def test_table_for_a_model_not_in_the_run_is_reported(tmp_path):
    cfg = load_config(write(tmp_path, '[models."torchvision:resnet50".accuracy]\nmin_top1 = 0.75\n'))
    assert cfg.models_not_in(["efficientnet_lite0"]) == ["torchvision:resnet50"]
    assert cfg.models_not_in(["torchvision:resnet50"]) == []


def test_only_a_table_that_looks_like_a_typo_is_a_warning(tmp_path):
    """Issue 23, item 13: every run of another model warned about the shipped audit.toml's lite0 table."""
    shipped = load_config(ROOT / "audit.toml")
    for run in (["efficientnet_lite1"], ["torchvision:resnet18"], ["tests.tiny_models:tiny"], ["efficientnet_lite0"]):
        assert shipped.mistyped_models(run) == [], run
    (tmp_path / "weights.pth").write_bytes(b"")
    cfg = load_config(write(tmp_path, "".join(f'[models."{key}".accuracy]\nmin_top1 = 0.5\n' for key in (
        "tests.tiny_models:tinny",        # no such factory in a module that exists
        "tests.tiny_modles:tiny",         # no such module
        f"{tmp_path}/weigths.pth",        # no such file
        f"{tmp_path}/weights.pth",        # a file that is there: a model of another run
        "tests.tiny_models:tiny_other",   # a factory that is there: another model
        "torchvision:resnet50",           # checked when read: another model
    ))), arch="torchvision:resnet18")
    assert [m[:2] for m in cfg.mistyped_models(["tests.tiny_models:tiny"])] == [
        ("tests.tiny_models:tinny", "tests.tiny_models:tiny"), ("tests.tiny_modles:tiny", "tests.tiny_models:tiny")]
    near_file = canonical_spec(f"{tmp_path}/weights2.pth", "torchvision:resnet18")
    assert [m[:2] for m in cfg.mistyped_models([near_file])] == [(f"{tmp_path}/weigths.pth", near_file)]


def test_a_table_names_its_model_whatever_the_spelling_of_its_paths(tmp_path, monkeypatch):
    """Stop-33 review, defect 3: a table keyed ?classes=team/classes.txt did not apply to a run spelling the same file by
    its absolute path (the bounds silently the defaults). A key's paths are read from audit.toml's folder (stop 34), the
    run's from the working directory."""
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "classes.txt").write_text("bird\ndog\n")
    (tmp_path / "w.pth").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path := write(tmp_path, """
[audits.accuracy]
min_top1 = 0.7
[models."tests.tiny_models:tiny?classes=team/classes.txt".accuracy]
min_top1 = 0.99
[models."./w.pth?arch=tests.tiny_models:tiny&classes=team/../team/classes.txt".accuracy]
min_top1 = 0.5
"""))
    absolute = canonical_spec(f"tests.tiny_models:tiny?classes={tmp_path}/team/classes.txt")
    bounds = cfg.thresholds("accuracy", absolute)
    assert bounds["min_top1"] == 0.99 and bounds.model_id == absolute  # the run's id is kept, not the table's
    assert cfg.thresholds("accuracy", canonical_spec(f"{tmp_path}/w.pth?classes=team/classes.txt"
                                                     "&arch=tests.tiny_models:tiny"))["min_top1"] == 0.5
    assert cfg.models_not_in([absolute]) == ["./w.pth?arch=tests.tiny_models:tiny&classes=team/../team/classes.txt"]
    assert cfg.mistyped_models([absolute]) == []
    # A run from another working directory (stop 34): the key's path is read from audit.toml's folder, so it still
    # names team/classes.txt beside the file; the run's own relative spelling is read from where it runs, another file.
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    elsewhere = load_config(path)
    assert elsewhere.thresholds("accuracy", absolute)["min_top1"] == 0.99
    assert elsewhere.thresholds("accuracy",
                                canonical_spec("tests.tiny_models:tiny?classes=../team/classes.txt"))["min_top1"] == 0.99
    assert elsewhere.thresholds("accuracy", canonical_spec("tests.tiny_models:tiny?classes=team/classes.txt"))["min_top1"] == 0.7


def test_two_tables_for_the_same_files_are_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, f'[models."tests.tiny_models:tiny?classes=c.txt".accuracy]\nmin_top1 = 0.5\n'
                           f'[models."tests.tiny_models:tiny?classes={tmp_path}/c.txt".accuracy]\nmin_top1 = 0.6\n')
    with pytest.raises(ConfigError, match=rf'\[models."tests.tiny_models:tiny\?classes=c.txt"\] and \[models."tests.tiny_models:'
                                          rf'tiny\?classes={tmp_path}/c.txt"\] name the same model \(the same files: '
                                          r'.*\); merge them'):
        load_config(path)


def test_a_table_whose_classes_file_is_not_there_is_a_typo_warning(tmp_path, monkeypatch):
    """Stop-33 review, defect 3: a typo in a table's ?classes= path said nothing."""
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "classes.txt").write_text("bird\ndog\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write(tmp_path, '[models."tests.tiny_models:tiny?classes=team/clases.txt".accuracy]\nmin_top1 = 0.5\n'
                                      f'[models."tests.tiny_models:tiny?classes={tmp_path}/team/classes2.txt".accuracy]\n'
                                      'min_top1 = 0.5\n'))
    run = canonical_spec(f"tests.tiny_models:tiny?classes={tmp_path}/team/classes.txt")  # absolute, the keys relative
    assert cfg.mistyped_models([run]) == [
        ("tests.tiny_models:tiny?classes=team/clases.txt", run,
         f"its ?classes= file team/clases.txt is not there, read from the working directory {tmp_path}"),
        (f"tests.tiny_models:tiny?classes={tmp_path}/team/classes2.txt", run,
         f"its ?classes= file {tmp_path}/team/classes2.txt is not there")]
    (tmp_path / "team" / "classes2.txt").write_text("cat\n")  # there: a model of another run, said nothing of
    assert [m[0] for m in cfg.mistyped_models([run])] == ["tests.tiny_models:tiny?classes=team/clases.txt"]
    assert cfg.mistyped_models(["efficientnet_lite0"]) == []  # far from the run's model: another run's table


def test_resolved_spec_reads_every_path_from_the_working_directory(tmp_path, monkeypatch):
    from visionaudit.models.spec_paths import resolved_spec

    monkeypatch.chdir(tmp_path)
    t = str(tmp_path)
    assert resolved_spec("tests.tiny_models:tiny?classes=c.txt&size=8") == f"tests.tiny_models:tiny?classes={t}/c.txt&size=8"
    assert resolved_spec("efficientnet-lite0?classes=./a/../c.txt") == f"efficientnet_lite0?classes={t}/c.txt"
    assert (resolved_spec("m.onnx?reference=w.pth?arch=torchvision:resnet18")
            == f"{t}/m.onnx?reference={t}/w.pth?arch=torchvision:resnet18")
    assert resolved_spec("timm:resnet18:ck/w.safetensors") == f"timm:resnet18:{t}/ck/w.safetensors"
    assert resolved_spec("hf:./vit") == f"hf:{t}/vit"
    assert resolved_spec("hf:org/name@main") == "hf:org/name"  # a hub repo id is no path
    assert resolved_spec("torchvision:resnet18") == "torchvision:resnet18"


def test_relative_paths_in_the_file_are_read_from_its_folder_not_the_working_directory(tmp_path, monkeypatch):
    """Stop 34: ``pytest audits --audit-config ci/audit.toml``, or a run from a subfolder, read [run]'s relative paths
    from the working directory: the wrong folder. Each is now read from the config file's folder, spelled as read
    from the working directory (here ``../ci/...``: worked out by hand, not by the code under test)."""
    ci = tmp_path / "ci"
    for folder in ("team", "images", "vit", "ck"):
        (ci / folder).mkdir(parents=True)
    (ci / "team" / "classes.txt").write_text("bird\ndog\n")
    (ci / "vit" / "config.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config(Path(os.path.relpath(write(ci, """
[run]
models = ["tests.tiny_models:tiny?classes=team/classes.txt", "w.pth?arch=tests.tiny_models:tiny", "hf:vit",
          "timm:resnet18:ck/w.pth", "m.onnx?reference=timm:resnet18:ck/w.pth", "torchvision:resnet18", "hf:google/vit-base"]
data = "data"
images = "images"
cache = "../cache"
classes = "team/classes.txt"
[models."tests.tiny_models:tiny?classes=team/classes.txt".accuracy]
min_top1 = 0.99
[baseline.pairs]
"w.pth?arch=tests.tiny_models:tiny" = "old.pth?arch=tests.tiny_models:tiny"
"""))))  # --audit-config ../ci/audit.toml
    assert cfg.run["models"] == ["tests.tiny_models:tiny?classes=../ci/team/classes.txt",
                                 "../ci/w.pth?arch=tests.tiny_models:tiny",
                                 "hf:../ci/vit", "timm:resnet18:../ci/ck/w.pth",
                                 "../ci/m.onnx?reference=timm:resnet18:../ci/ck/w.pth",
                                 "torchvision:resnet18", "hf:google/vit-base"]  # names of no file stay as they are
    assert (cfg.run["data"], cfg.run["images"], cfg.run["cache"], cfg.run["classes"]) == (
        "../ci/data", "../ci/images", "../cache", "../ci/team/classes.txt")
    # The table's key names the same file: it applies to the model of [run] and to --model spelling it from here.
    assert cfg.thresholds("accuracy", canonical_spec(cfg.run["models"][0]))["min_top1"] == 0.99
    assert cfg.thresholds("accuracy", canonical_spec("tests.tiny_models:tiny?classes=../ci/team/classes.txt"))["min_top1"] == 0.99
    assert (cfg.thresholds("accuracy", canonical_spec("tests.tiny_models:tiny?classes=team/classes.txt"))["min_top1"]
            == get_family("accuracy").defaults["min_top1"])
    # [baseline.pairs]: NEW is this run's model (read from the folder), OLD the baseline report's id, as written.
    assert cfg.baseline_pairs == {"../ci/w.pth?arch=tests.tiny_models:tiny": "old.pth?arch=tests.tiny_models:tiny"}
    # A name under the data root (no such folder beside the file) and the shipped names are not paths.
    assert load_config(write(ci, '[run]\nimages = "imagenet-sample"\n')).run["images"] == "imagenet-sample"
    assert load_config(write(ci, '[run]\nimages = "imagenette"\n')).run["images"] == "imagenette"
    # The file in the working directory: every path as written, as before.
    monkeypatch.chdir(ci)
    here = load_config(write(ci, '[run]\nmodels = ["./w.pth?arch=tests.tiny_models:tiny"]\n'
                                                                  'images = "images"\nclasses = "team/classes.txt"\n'))
    assert (here.run["models"], here.run["images"], here.run["classes"]) == (["./w.pth?arch=tests.tiny_models:tiny"], "images",
                                                                             "team/classes.txt")


def test_a_config_reached_through_a_symlink_spells_its_paths_as_the_folder_does(tmp_path, monkeypatch):
    """Review 34b, finding 4: "the config in the working directory" was a text comparison, so ``--audit-config
    link/audit.toml`` with ``link -> .`` (a CI workspace, macOS /tmp) respelled every path as ``../link/...``: every
    model id changed, and a baseline made before no longer paired. The folder is now compared as a folder."""
    proj = tmp_path / "proj"
    (proj / "ci" / "team").mkdir(parents=True)
    (proj / "ci" / "team" / "classes.txt").write_text("bird\n")
    (proj / "w.pth").write_bytes(b"")
    (tmp_path / "link").symlink_to(proj, target_is_directory=True)
    write(proj, '[run]\nmodels = ["w.pth?arch=tests.tiny_models:tiny"]\nimages = "ci"\n')
    write(proj / "ci", '[run]\nmodels = ["tests.tiny_models:tiny?classes=team/classes.txt"]\n')
    monkeypatch.chdir(proj)
    for folder in (proj, tmp_path / "link", Path(os.path.relpath(tmp_path / "link"))):
        here = load_config(folder / "audit.toml").run
        assert (here["models"], here["images"]) == (["w.pth?arch=tests.tiny_models:tiny"], "ci"), folder  # as written
        assert load_config(folder / "ci" / "audit.toml").run["models"] == ["tests.tiny_models:tiny?classes=ci/team/classes.txt"]


@pytest.mark.parametrize("text, where, written", [
    ('[run]\ndata = "shared"\n', '[run] data = "shared"', "shared"),
    ('[run]\ncache = "shared/cache"\n', '[run] cache = "shared/cache"', "shared/cache"),
    ('[baseline.pairs]\n"shared/w.pth?arch=tests.tiny_models:tiny" = "old.pth"\n',
     '[baseline.pairs] "shared/w.pth?arch=tests.tiny_models:tiny"', "shared/w.pth"),
])
def test_a_path_only_there_read_from_the_working_directory_is_refused_with_its_fix(tmp_path, monkeypatch, text, where, written):
    """Review 34b, finding 1: the pre-stop-34 reading (from the working directory) of any path of the file is refused, not
    taken nor dropped; the fix is spelled from the file's folder (``../shared``, worked out by hand)."""
    (tmp_path / "shared" / "cache").mkdir(parents=True)
    (tmp_path / "shared" / "w.pth").write_bytes(b"")
    (tmp_path / "ci").mkdir()
    write(tmp_path / "ci", text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        load_config("ci/audit.toml")
    assert str(e.value) == (f'ci/audit.toml: {where}: relative paths in audit.toml are read from its folder ci{os.sep} since '
                            f'stop 34 (docs/config.md "Relative paths"); {os.path.join("ci", written)} is not there but '
                            f'{written} is (read from the working directory): write "../{written}" (or an absolute path)')
