"""What docs/models.md and docs/config.md promise at startup (stop-33 review, defects 3 and 5, doubt D2): a factory typo in
--model or in an ONNX file's ?reference= stops the run with exit 4 naming it, before any model loads; a per-model
audit.toml table applies to the run's model whatever the spelling of its ?classes= path, and one whose ?classes=
file is not there is a warning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
try:  # imported once, here: pytester drops what a test imports, and onnx's extension cannot be imported twice
    import onnx
    import onnxruntime  # noqa: F401
except ImportError:  # the deploy extra
    onnx = None
# Likewise torchvision, whose import registers a torch op library (_inductor_test) that cannot be registered twice: the
# in-process loads below import it (timm too).
import torchvision  # noqa: E402, F401

try:
    import timm  # noqa: F401
except ImportError:  # the timm extra
    pass

AUDIT = """
import json
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_bounds(model, thresholds):
    with open("bounds.json", "w") as f:
        json.dump({"model": model.id, "min_top1": thresholds["min_top1"]}, f)
"""
RUN = ("-p", "no:cacheprovider", "--device", "cpu")


@pytest.fixture
def team(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_audit=AUDIT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("VISIONAUDIT_TEST_LOAD_LOG", str(suite.path / "loads.log"))
    return suite


def _onnx(path: Path) -> Path:
    if onnx is None:
        pytest.skip("in the deploy extra: pip install 'visionaudit[deploy]'")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save_model

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), dtype=np.float32), "W")
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"]), helper.make_node("GlobalAveragePool", ["y"], ["p"]),
             helper.make_node("Flatten", ["p"], ["logits"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, str(path))
    return path


@pytest.mark.parametrize("case", ["model", "model-xdist", "reference", "reference-module", "arch"])
def test_a_factory_typo_stops_the_run_at_startup_naming_it(team, case):
    workers = ["-n", "2"] if case.endswith("xdist") else []
    module = f"tests.tiny_models ({ROOT / 'tests' / 'tiny_models.py'})"
    no_callable = f"{module} has no callable tinny (did you mean tests.tiny_models:tiny?)"
    if case.startswith("model"):
        spec, expected = "tests.tiny_models:tinny", f"--model tests.tiny_models:tinny: {no_callable}"
    elif case == "arch":
        (team.path / "w.pth").write_bytes(b"")
        spec = f"{team.path}/w.pth?arch=tests.tiny_models:tinny"
        expected = f"--model {spec}: its architecture tests.tiny_models:tinny (--arch, or ?arch= in the spec): {no_callable}"
    else:
        path = _onnx(team.path / "m.onnx")
        factory = "tests.tiny_models:tinny" if case == "reference" else "tests.tiny_modles:tiny"
        spec = f"{path}?reference={factory}"
        expected = (f"--model {spec}: its ?reference={factory} (the torch model the ONNX file was exported from) is refused: "
                    + (no_callable if case == "reference" else "cannot import tests.tiny_modles for the factory "
                       "tests.tiny_modles:tiny (no module named 'tests.tiny_modles' on the import path)"))
    result = team.runpytest_subprocess("--model", spec, *RUN, *workers)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert expected in output, output[-3000:]
    assert "Traceback" not in output
    assert not (team.path / "loads.log").exists()  # no model loaded
    assert not (team.path / "bounds.json").exists()


@pytest.mark.parametrize("spec, crop", [("tests.tiny_models:tiny?resize=100", 224),
                                        ("torchvision:resnet18:none?resize=200", 224)])
def test_a_resize_below_the_models_known_crop_stops_the_run_at_startup(team, spec, crop):
    """Stop 37: found only as the model loaded, each test erroring with "resize size 100 must be at least the crop size
    224 (> 0)". The crops: the suite's default for a factory, torchvision's published ResNet-18 transforms."""
    result = team.runpytest_subprocess("--model", spec, *RUN)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    resize = spec.rpartition("=")[2]
    assert f"--model {spec}: ?resize={resize} is below the crop size {crop} this model is fed" in output, output[-3000:]
    assert f"Give ?resize= at least {crop}" in output and "Traceback" not in output
    assert not (team.path / "loads.log").exists() and not (team.path / "bounds.json").exists()  # no model loaded


@pytest.mark.parametrize("resize", [150, 160])
def test_a_resize_below_a_timm_crop_stops_the_run_at_startup_in_the_loads_words(team, tmp_path, monkeypatch, resize):
    """Stop 38: a timm model's crop was known only once it was built, so the run started and each test errored as the
    model loaded. Its crop is now read at startup from timm's registry of pretrained configurations: 160 for
    test_efficientnet.r160_in1k (the resolution its tag names), its weights in a Hugging Face cache written here. At
    the crop, the run starts and the model loads."""
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    from tests.hub_models import TIMM_TAG, timm_random_weights
    from visionaudit.errors import SpecError
    from visionaudit.models.loading import load_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing downloaded: the cache written here is all there is
    timm_random_weights(tmp_path / "hf" / "hub", TIMM_TAG)
    spec = f"timm:{TIMM_TAG}?resize={resize}"
    result = team.runpytest_subprocess("--model", spec, *RUN)
    output = _output(result)
    if resize >= 160:  # at the crop: the startup check lets it by, the model loads and the test runs
        assert result.ret == pytest.ExitCode.OK, output[-3000:]
        assert json.loads((team.path / "bounds.json").read_text())["model"] == spec
        return
    with pytest.raises(SpecError) as at_load:  # what the load says of it, where the startup check is not run
        load_model(spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert str(at_load.value).startswith(f"--model {spec}: ?resize=150 is below the crop size 160 this model is fed")
    assert "Give ?resize= at least 160" in str(at_load.value)
    assert str(at_load.value) in output, output[-3000:]  # the same words at startup
    assert "Traceback" not in output and not (team.path / "bounds.json").exists()  # no test ran


def test_a_timm_model_fed_an_input_the_suite_does_not_make_stops_the_run_at_startup(team, tmp_path, monkeypatch):
    """Stop 39: timm's registry gives deepseek_vit_412m's tag crop_mode 'border' (the longest side scaled, padded with
    the mean colour), which the suite fed as a centre crop. Refused before its weights are looked for (none here)."""
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = "timm:deepseek_vit_412m.deepseek_v4_1_flash"
    result = team.runpytest_subprocess("--model", spec, *RUN)
    output = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert (f"--model {spec}: timm deepseek_vit_412m.deepseek_v4_1_flash data config asks for crop_mode 'border'"
            in output), output[-3000:]
    assert "not in the cache" not in output and "Traceback" not in output and not (team.path / "loads.log").exists()


@pytest.mark.parametrize("spec", ["torchvision:fcn_resnet50", "torchvision:fcn_resnet50:none"])
def test_a_torchvision_model_that_is_not_an_image_classifier_stops_the_run_at_startup(team, spec):
    """Review 38 finding 2: ``:none`` started, each test erroring as the model loaded (exit 1); with its DEFAULT weights
    the class-names check refused it (exit 4), saying only that ImageNet's names match none of its 21 classes.
    SemanticSegmentation: torchvision's preset transforms for fcn_resnet50's weights."""
    result = team.runpytest_subprocess("--model", spec, *RUN)
    output = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert (f"--model {spec}: torchvision:fcn_resnet50 is not an image classifier (its weights' transforms are "
            "SemanticSegmentation): give an image classification model") in output, output[-3000:]
    assert "match no class" not in output and "Traceback" not in output
    assert not (team.path / "bounds.json").exists()  # no test ran


def test_a_table_applies_whatever_the_spelling_of_its_classes_path_and_a_missing_file_is_a_warning(team):
    (team.path / "team").mkdir()
    (team.path / "team" / "classes.txt").write_text("".join(f"c{i}\n" for i in range(1000)))  # tiny: 1,000 outputs
    team.makefile(".toml", audit='[audits.accuracy]\nmin_top1 = 0.7\n'
                                 '[models."tests.tiny_models:tiny?classes=team/classes.txt".accuracy]\nmin_top1 = 0.99\n'
                                 '[models."tests.tiny_models:tiny?classes=team/clases.txt".accuracy]\nmin_top1 = 0.5\n')
    spec = f"tests.tiny_models:tiny?classes={team.path}/team/classes.txt"  # the same file, by its absolute path
    result = team.runpytest_subprocess("--model", spec, *RUN)
    result.assert_outcomes(passed=1)
    # the table's bound, under the run's own id (reports are keyed as the run spells its model)
    assert json.loads((team.path / "bounds.json").read_text()) == {"model": spec, "min_top1": 0.99}
    result.stdout.fnmatch_lines([('*[[]models."tests.tiny_models:tiny?classes=team/clases.txt"[]] names no model of this run nor '
                                  f'one that exists here; did you mean "{spec}"? Its bounds are not used: its ?classes= file '
                                  f'team/clases.txt is not there, read from the working directory {team.path}*')])
    assert "classes=team/classes.txt\"] names no model" not in result.stdout.str()


# The factory check's leniencies (visionaudit/models/factories.py): where the source cannot say whether the factory is
# there, the run starts and the load decides. Each module below defines its factory only in a way the source does not
# show; refusing it at startup would stop a team's working model with exit 4.
EXTEND_PATH = "from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n"
LENIENT = {
    # a package spread over two folders on the path (pkgutil.extend_path): the submodule is in the second only
    "extend_path": ({"one/fa_spread/__init__.py": EXTEND_PATH, "two/fa_spread/__init__.py": EXTEND_PATH,
                     "two/fa_spread/team.py": "from tests.tiny_models import tiny as build\n"}, "fa_spread.team:build"),
    # a module __getattr__ (PEP 562) answering the factory's name
    "module_getattr": ({"one/fa_lazy.py": "def __getattr__(name):\n    if name == 'build':\n"
                                          "        from tests.tiny_models import tiny\n        return tiny\n"
                                          "    raise AttributeError(name)\n"}, "fa_lazy:build"),
}


@pytest.mark.parametrize("case", sorted(LENIENT))
def test_a_factory_the_source_cannot_show_starts_and_loads(team, monkeypatch, case):
    files, spec = LENIENT[case]
    for name, text in files.items():
        (team.path / name).parent.mkdir(parents=True, exist_ok=True)
        (team.path / name).write_text(text)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(team.path / "one"), str(team.path / "two"), os.environ["PYTHONPATH"]]))
    result = team.runpytest_subprocess("--model", spec, *RUN)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.OK, output[-3000:]  # not refused at startup (exit 4), and the test passed
    result.assert_outcomes(passed=1)
    assert json.loads((team.path / "bounds.json").read_text())["model"] == spec  # the model the factory built loaded
    assert len((team.path / "loads.log").read_text().splitlines()) == 1  # tests.tiny_models.tiny ran


def test_a_config_in_a_subfolder_reads_its_paths_from_there_and_the_command_line_from_here(team):
    """Stop 34: ``--audit-config ci/audit.toml`` read [run]'s and the tables' relative paths from the working directory
    (here: no team/classes.txt, exit 4). They are read from the file's folder; --model's from the working directory."""
    (team.path / "ci" / "team").mkdir(parents=True)
    (team.path / "ci" / "team" / "classes.txt").write_text("".join(f"c{i}\n" for i in range(1000)))  # tiny: 1,000 outputs
    (team.path / "ci" / "audit.toml").write_text('[run]\nmodels = ["tests.tiny_models:tiny?classes=team/classes.txt"]\n'
                                                 '[models."tests.tiny_models:tiny?classes=team/classes.txt".accuracy]\n'
                                                 'min_top1 = 0.99\n')
    spec = "tests.tiny_models:tiny?classes=ci/team/classes.txt"  # the file beside audit.toml, as read from here
    for args in ((), ("--model", spec)):
        result = team.runpytest_subprocess("--audit-config", "ci/audit.toml", *args, *RUN)
        assert result.ret == pytest.ExitCode.OK, _output(result)[-3000:]
        result.assert_outcomes(passed=1)
        assert json.loads((team.path / "bounds.json").read_text()) == {"model": spec, "min_top1": 0.99}  # the table's bound
        (team.path / "bounds.json").unlink()


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("query, collect_only, expected", [
    ("size=abc", True, "?size=abc is refused (not a whole number): size is a whole number of pixels above 0"),
    ("size=0", False, "?size=0 is refused (not above 0)"),
    ("mean=0.5,0.5", True, "?mean=0.5,0.5 is refused (2 values): mean is 1 or 3 comma-separated numbers"),
    ("interpolation=lanczos", False, "?interpolation=lanczos is refused: interpolation is one of nearest, bilinear, bicubic"),
])
def test_a_bad_query_value_stops_the_run_at_startup(team, query, collect_only, expected):
    """hunt34: a value the spec's text shows to be wrong stops the run with exit 4 and its one message, before any model
    loads, --collect-only included (a CI author's dry run of a command line); it used to fail each test (exit 1)."""
    spec = f"tests.tiny_models:tiny?{query}"
    result = team.runpytest_subprocess("--model", spec, *RUN, *(["--collect-only"] if collect_only else []))
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert f"--model {spec}: {expected}" in output, output[-3000:]
    assert "Traceback" not in output
    assert not (team.path / "loads.log").exists() and not (team.path / "bounds.json").exists()  # no model loaded


@pytest.mark.parametrize("option", ["--audit-images", "--audit-data"])
def test_collect_only_says_that_data_a_test_needs_is_not_there(team, option):
    """hunt34: ``--collect-only`` (a CI author's dry run) exited 0 with --audit-images or --audit-data naming nothing;
    it now looks for the data the collected tests need (nothing fetched or read) and stops as the run would, exit 4."""
    team.makepyfile(test_images="import pytest\npytestmark = pytest.mark.audit('accuracy')\n"
                                "def test_images(model, labelled_images):\n    pass\n")
    missing = team.path / "nowhere"
    result = team.runpytest_subprocess("--model", "tests.tiny_models:tiny", option, str(missing), *RUN, "--collect-only")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    expected = (f"labelled images not found at {missing}: point --audit-images at" if option == "--audit-images" else
                f"data directory {missing} does not exist")
    assert "the collected audits need data that is not there" in output and expected in output, output[-3000:]
    # said once, as a run's refusal is (pytest.UsageError: one ERROR: line), not in pytest.exit's "! ...Exit: !" banner
    assert output.count("the collected audits need data") == 1 and "Exit:" not in output, output[-3000:]
    # a test that reads no data is not stopped by it, as in a run
    only = team.runpytest_subprocess("--model", "tests.tiny_models:tiny", option, str(missing), *RUN, "--collect-only",
                                     "test_audit.py")
    assert only.ret == pytest.ExitCode.OK, (only.stdout.str() + only.stderr.str())[-3000:]


BESIDE_HERE = {  # audit.toml in ci/ naming a file that is beside the working directory, not beside the file
    "table": ('[models."tests.tiny_models:tiny?classes=team/classes.txt".accuracy]\nmin_top1 = 0.99\n',
              ("--model", "tests.tiny_models:tiny?classes=team/classes.txt"),
              '[models."tests.tiny_models:tiny?classes=team/classes.txt"]', "team/classes.txt"),
    "run-models": ('[run]\nmodels = ["tests.tiny_models:tiny?classes=team/classes.txt"]\n', (),
                   '[run] models "tests.tiny_models:tiny?classes=team/classes.txt"', "team/classes.txt"),
    "run-images": ('[run]\nimages = "team"\n', ("--model", "tests.tiny_models:tiny"), '[run] images = "team"', "team"),
}


@pytest.mark.parametrize("case", sorted(BESIDE_HERE))
def test_a_config_path_read_from_the_working_directory_before_stop_34_stops_the_run(team, case):
    """Review 34b, finding 1: before stop 34 a relative path in ``--audit-config ci/audit.toml`` was read from the working
    directory. Read from the file's folder it names nothing, while the old reading names a file: the run used to go on
    with the family's default bound (a 0.99 table silently dropped, warning only), or read the old place. It now
    stops at startup (exit 4) naming the file, the key as written, the rule and the fix (``../team/...``, by hand)."""
    text, args, where, written = BESIDE_HERE[case]
    (team.path / "team").mkdir()
    (team.path / "team" / "classes.txt").write_text("".join(f"c{i}\n" for i in range(1000)))
    (team.path / "ci").mkdir()
    (team.path / "ci" / "audit.toml").write_text(text)
    result = team.runpytest_subprocess("--audit-config", "ci/audit.toml", *args, *RUN)
    output = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert (f'ci/audit.toml: {where}: relative paths in audit.toml are read from its folder ci{os.sep} since stop 34 '
            f'(docs/config.md "Relative paths"); {os.path.join("ci", written)} is not there but {written} is (read from the '
            f'working directory): write "../{written}" (or an absolute path)') in output, output[-3000:]
    assert output.count("relative paths in audit.toml") == 1 and "Traceback" not in output
    assert not (team.path / "bounds.json").exists()  # no test ran


def test_a_missing_model_or_data_path_from_audit_toml_is_told_as_written_there(team):
    """Review 34b, finding 2: a [run] model file or images folder that is not there was told as ``--model <respelled
    spec>`` with "relative paths start at the working directory" (the rule that did not apply), or "point
    --audit-images at": options the user did not give. Now: the file, the value as written, the rule that applied."""
    (team.path / "ci").mkdir()
    (team.path / "ci" / "audit.toml").write_text('[run]\nmodels = ["gone.pth?arch=tests.tiny_models:tiny"]\n')
    result = team.runpytest_subprocess("--audit-config", "ci/audit.toml", *RUN)
    output = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert (f'ci/audit.toml: [run] models "gone.pth?arch=tests.tiny_models:tiny": no such file {os.path.join("ci", "gone.pth")} '
            f'(relative paths in audit.toml are read from its folder ci{os.sep}, docs/config.md '
            '"Relative paths")') in output, output[-3000:]
    assert "--model" not in output and "working directory" not in output
    team.makepyfile(test_images="import pytest\npytestmark = pytest.mark.audit('accuracy')\n"
                                "def test_images(model, labelled_images):\n    pass\n")
    (team.path / "ci" / "audit.toml").write_text('[run]\nimages = "./imgs"\n')
    for collect_only in ((), ("--collect-only",)):
        result = team.runpytest_subprocess("--audit-config", "ci/audit.toml", "--model", "tests.tiny_models:tiny", *RUN,
                                           *collect_only)
        output = _output(result)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
        assert "point [run] images in ci/audit.toml at" in output and "--audit-images" not in output, output[-3000:]
        assert (f'[run] images = "./imgs" comes from ci/audit.toml, whose relative paths are read from its folder ci{os.sep} '
                '(docs/config.md "Relative paths")') in output, output[-3000:]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_truncated_checkpoint_stops_the_run_at_startup(team, workers):
    """Stop 40: it was each test's load error (exit 1); its header shows it before any model loads."""
    from safetensors.torch import save_file

    path = team.path / "r18.safetensors"
    save_file(torchvision.models.resnet18().state_dict(), str(path))
    path.write_bytes(path.read_bytes()[:100_000])
    spec = f"{path}?arch=torchvision:resnet18:none"
    result = team.runpytest_subprocess("--model", spec, *RUN, *workers, "--audit-json", "report.json")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    said = f"--model {spec}: checkpoint {path} is not a readable safetensors file (truncated: its header promises "
    assert said in output and "Traceback" not in output, output[-3000:]
    report = json.loads((team.path / "report.json").read_text())
    assert report["verdict"] == "incomplete" and report["error"].startswith(said) and report["audits"] == []
    assert not (team.path / "bounds.json").exists()


@pytest.mark.parametrize("case", ["missing", "folder", "xdist", "audit.toml"])
def test_a_timm_checkpoint_that_is_not_there_stops_the_run_at_startup(team, case):
    """Stop 40: `--model model.pth` missing stopped the run at startup, `timm:NAME:model.pth` missing was each test's load
    error (exit 1). Review 40 F2: said as the state dict's is (parse_spec), so audit.toml's spec gets its own path rule
    only, not the command line's too."""
    pytest.importorskip("timm", reason="in the timm extra: pip install 'visionaudit[timm]'")
    path = team.path / ("folder" if case == "folder" else "missing.safetensors")
    if case == "folder":
        (path / "model.safetensors").parent.mkdir()
        (path / "model.safetensors").write_bytes(b"")
    spec = f"timm:resnet18:{path}"
    if case == "audit.toml":
        (team.path / "ci").mkdir()
        (team.path / "ci" / "audit.toml").write_text('[run]\nmodels = ["timm:resnet18:missing.safetensors"]\n')
        result = team.runpytest_subprocess("--audit-config", "ci/audit.toml", *RUN)
    else:
        result = team.runpytest_subprocess("--model", spec, *RUN, *(["-n", "2"] if case == "xdist" else []))
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    cwd_rule = f"; check the path (relative paths start at the working directory {team.path})"
    said = {"missing": f"--model {spec}: no such file {path}{cwd_rule}",
            "folder": f"--model {spec}: {path} is a folder; timm:NAME:CHECKPOINT names the checkpoint file: "
                      f"timm:resnet18:{path / 'model.safetensors'}{cwd_rule}",
            "audit.toml": f'ci/audit.toml: [run] models "timm:resnet18:missing.safetensors": no such file '
                          f'{os.path.join("ci", "missing.safetensors")} (relative paths in audit.toml are read from its '
                          f'folder ci{os.sep}, docs/config.md "Relative paths")'}[case.replace("xdist", "missing")]
    assert said in output and "Traceback" not in output, output[-3000:]
    assert "working directory" not in output or case != "audit.toml", output[-3000:]
    assert not (team.path / "bounds.json").exists()
