"""A team's 10-class model on its own labelled images, end to end (issue 24, items 1 and 2; issue 23, item 3):
classes from a file or the spec, class-name folders or a CSV manifest, and the refusals (exit 4) for names that
match no class, a class list of the wrong length, a stray folder among WNID folders; notes said once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.terminal_text import said_once
from visionaudit.version import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
TEN = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

AUDIT = """
import json
import os
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_labels(model, labelled_images, evaluate, record):
    ev = evaluate(model, labelled_images)
    record.metric("n", len(ev.labels))
    with open(f"labels-{os.getpid()}.json", "w") as f:
        json.dump(dict(zip(ev.image_set.sample_ids, ev.labels.tolist())), f)
"""

RUN = ("-p", "no:cacheprovider", "--device", "cpu", "--audit-json=report.json")
TEN_CLASSES = "tests.tiny_models:ten_classes?classes=classes.txt"  # the ten names of classes.txt (the team fixture)


@pytest.fixture
def team(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_audit=AUDIT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    (suite.path / "classes.txt").write_text("\n".join(TEN) + "\n")
    (suite.path / "data").mkdir()
    return suite


def _images(root: Path, folders: dict[str, int], suffix: str = ".jpg") -> None:
    for k, (folder, n) in enumerate(folders.items()):  # each folder's own colour: no image under two labels
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (12, 12), (20 * i, k % 256, 60 + k // 256)).save(root / folder / f"{i}{suffix}")


def _labels(p: pytest.Pytester) -> dict[str, int]:
    out: dict[str, int] = {}
    for path in p.path.glob("labels-*.json"):
        out.update(json.loads(path.read_text()))
    return out


def _report(p: pytest.Pytester) -> dict:
    return json.loads((p.path / "report.json").read_text())


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def _refused(team: pytest.Pytester, *args: str) -> str:
    """The output of a run (its images under --audit-data data) that must stop at a usage error, exit 4."""
    result = team.runpytest_subprocess(*args, "--audit-data", "data", *RUN)
    output = _output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    return output


def _one_message(output: str, text: str) -> bool:
    """A startup error is one message, said once: in the summary's verdict line (its first line there, the
    problems indented under it), not again by pytest (``ERROR: ...`` for a usage error, ``! _pytest.outcomes.Exit: ...``
    for pytest.exit): a second line holding the text, or pytest's exit line, fails."""
    lines = [line for line in output.splitlines() if text in line]
    return len(lines) == 1 and lines[0].startswith(("verdict:", "  ")) and "_pytest.outcomes.Exit" not in output


def test_ten_classes_from_a_file_then_from_a_csv_manifest(team):
    # Class-name folders (as people spell them) with --audit-classes: each image labelled by its folder's class.
    _images(team.path / "team", {"airplane": 2, "Automobile": 1, "ship": 2, "TRUCK": 1})
    result = team.runpytest_subprocess("--model", "tests.tiny_models:ten_classes", "--audit-classes", "classes.txt",
                                       "--audit-images", "team", "--audit-data", "data", *RUN)
    assert result.ret == 0, _output(result)
    expected = {f"{folder}/{i}.jpg": TEN.index(folder.lower()) for folder, n in
                {"airplane": 2, "Automobile": 1, "ship": 2, "TRUCK": 1}.items() for i in range(n)}
    assert _labels(team) == expected
    entry = _report(team)["models"]["tests.tiny_models:ten_classes"]
    assert entry["classes"]["names"] == TEN and entry["classes"]["source"] == "--audit-classes classes.txt"
    assert entry["classes"]["count"] == 10 and not entry["imagenet_classes"] and _report(team)["schema_version"] == SCHEMA_VERSION

    # The same model named by its spec's ?classes=, its images listed by a CSV manifest (names and indices).
    for path in team.path.glob("labels-*.json"):
        path.unlink()
    _images(team.path / "flat", {".": 0})
    for i, label in enumerate(["dog", "7", "Frog", "0"]):
        Image.new("RGB", (12, 12), (i, 0, 0)).save(team.path / "flat" / f"img{i}.png")
    (team.path / "flat" / "labels.csv").write_text("path,label\n" + "".join(
        f"img{i}.png,{label}\n" for i, label in enumerate(["dog", "7", "Frog", "0"])))
    spec = TEN_CLASSES
    result = team.runpytest_subprocess("--model", spec, "--audit-images", "flat/labels.csv", "--audit-data", "data", *RUN)
    assert result.ret == 0, _output(result)
    assert _labels(team) == {"img0.png": 5, "img1.png": 7, "img2.png": 6, "img3.png": 0}
    assert _report(team)["models"][spec]["classes"]["source"] == "?classes= classes.txt"


def test_unmatched_folders_stop_the_run_before_any_model_loads(team):
    _images(team.path / "team", {"airplane": 1, "cats": 1, "trucks": 1})
    output = _refused(team, "--model", TEN_CLASSES, "--audit-images", "team")
    assert _one_message(output, "'cats' (closest class: 'cat'); 'trucks' (closest class: 'truck')"), output
    assert "loading" not in output and not _labels(team)  # on the controller, before any model loads
    report = _report(team)
    assert report["verdict"] != "pass" and "'cats' (closest class: 'cat')" in report["error"]


def _failed_load(team: pytest.Pytester, message: str, *args: str) -> tuple[str, dict]:
    """A run of tests.tiny_models:ten_classes (its images under --audit-data data) whose classes are refused as it
    loads: that model's failed load (hunt 35, F5), its tests' error, exit 1, not a stop of the run (no run error), with
    ``message`` said on the terminal, in the model's error and in the verdict's reason. Returns the output and the
    model's entry."""
    model = "tests.tiny_models:ten_classes"
    result = team.runpytest_subprocess("--model", model, *args, "--audit-data", "data", *RUN)
    output = _output(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert message in output and not _labels(team), output
    report = _report(team)
    assert report["run"]["exit_status"] == 1 and report["error"] is None, report["error"]
    entry = report["models"][model]
    assert entry["loaded"] is False and message in entry["error"], entry
    assert (report["verdict_reason"].startswith(f"{model} did not load: ")
            and message in report["verdict_reason"]), report["verdict_reason"]
    return output, entry


def test_unmatched_folders_of_a_model_known_only_once_loaded(team):
    # A factory may carry its own names, so --audit-classes is known to apply only once it loads: checked then.
    _images(team.path / "team", {"airplane": 1, "cats": 1})
    _failed_load(team, "'cats' (closest class: 'cat')", "--audit-classes", "classes.txt", "--audit-images", "team")
    assert _report(team)["verdict_reason"].startswith("tests.tiny_models:ten_classes did not load: (DataError) ")


CORRUPTION_ONLY = """
import pytest

pytestmark = pytest.mark.audit("corruption")

def test_corrupted(model, corrupted, record):
    record.metric("n", 1)
"""


def test_unmatched_folders_of_a_model_known_only_once_loaded_in_a_corruption_only_run(team):
    """review35c: the corruption tests read the labelled images too, but the check at load looked only for the
    labelled_images fixture: each corruption test errored on a bare refusal and the model was reported loaded."""
    team.makepyfile(test_corruption_only=CORRUPTION_ONLY)
    _images(team.path / "team", {"airplane": 1, "cats": 1})
    _failed_load(team, "'cats' (closest class: 'cat')", "test_corruption_only.py", "--audit-classes", "classes.txt",
                 "--audit-images", "team")
    assert _report(team)["verdict_reason"].startswith("tests.tiny_models:ten_classes did not load: (DataError) ")


def test_a_refusal_found_at_load_is_that_models_error_under_x_and_names_imagenet_true(team):
    """Review of issues 23/24, then hunt 35 (F5): with -x, a model whose classes do not match the images (found as it
    loads) is that model's failed load, exit 1, its identity kept; for a 1,000-output model whose names are not
    ImageNet-1k's, the fix ?imagenet=true is named."""
    (team.path / "thousand.txt").write_text("".join(f"class{i}\n" for i in range(1000)))
    _images(team.path / "team", {"n01440764": 1, "n01443537": 1})
    result = team.runpytest_subprocess("--model", "tests.tiny_models:tiny", "--audit-classes", "thousand.txt", "-x",
                                       "--audit-images", "team", "--audit-data", "data", *RUN)
    output = _output(result)
    # Found as it loads (hunt 35, F5): that model's failed load, exit 1 (-x stops after its error), not exit 4.
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    report = _report(team)
    assert report["run"]["exit_status"] == 1 and report["error"] is None
    assert not _labels(team)
    entry = report["models"]["tests.tiny_models:tiny"]  # it loaded before its classes were refused: its identity kept
    assert entry["loaded"] is False and entry["num_classes"] == 1000 and len(entry["sha256"]) == 64, entry
    assert "'n01440764'" in entry["error"] and "?imagenet=true" in entry["error"]
    # Known before the model loads (?classes=): refused at startup, with the same hint.
    _refused(team, "--model", "tests.tiny_models:tiny?classes=thousand.txt", "-x", "--audit-images", "team")
    assert "?imagenet=true" in _report(team)["error"]


def test_class_count_mismatch_found_at_load_is_that_models_error_under_xdist(team):
    (team.path / "nine.txt").write_text("\n".join(TEN[:9]))
    _images(team.path / "team", {"airplane": 2, "ship": 2})
    # as a checkpoint that does not fit --arch
    message = "has 10 outputs, but its class list (--audit-classes nine.txt) names 9 classes"
    _, entry = _failed_load(team, message, "--audit-classes", "nine.txt", "--audit-images", "team", "-n", "2")
    assert entry["error"].startswith("ClassCountMismatch: ")


def test_images_of_three_of_ten_classes_and_a_subset_larger_than_the_set_are_said_once(team):
    _images(team.path / "team", {"bird": 2, "deer": 1, "horse": 1}, suffix=".PNG")
    result = team.runpytest_subprocess("--model", TEN_CLASSES, "--audit-images", "team", "--audit-data", "data",
                                       "--audit-samples", "5000", *RUN)
    output = _output(result)
    assert result.ret == 0, output
    uncovered = ("the labelled images team (4 images) cover 3 of the 10 classes of tests.tiny_models:ten_classes?"
                 "classes=classes.txt; 7 class(es) have no images: airplane, automobile, cat, dog, frog, ship, truck")
    larger = "--audit-samples 5,000 is more than the 4 images of team: all 4 are used"
    assert said_once(output, uncovered) and said_once(output, larger), output
    assert _report(team)["run"]["notes"] == [larger, uncovered]
    assert len(_labels(team)) == 4


def test_folders_among_wnid_folders_stop_the_run(team):
    # issue 23, item 3: one was dropped without a word (21 images, n_images 20, PASS). Each stray folder is named, with
    # the closest class where there is one, in one message: one run shows both (a name and a mistyped WNID).
    _images(team.path / "team", {"n01440764": 2, "n01443537": 2, "cats": 1, "n0144O764": 1})
    output = _refused(team, "--model", "torchvision:resnet18:none", "--audit-images", "team")
    assert _one_message(output, "2 class name(s) of the images in team match no class"), output
    assert "'cats'" in output and "'n0144O764' (closest class: 'tench (n01440764)')" in output, output


def test_a_timm_models_unmatched_folders_stop_the_run_at_startup(team):
    """Issue 24, item 3: timm's classes come from its pretrained configuration on the controller, so a folder
    that matches none of them stops the run before any model loads, as for torchvision (no weights, no network)."""
    _images(team.path / "team", {"n01440764": 1, "tench_fish": 1})
    # Random weights: a pretrained spec would first need its weights in the Hugging Face cache (checked at startup
    # too, models/hub.py); the classes come from the same pretrained configuration either way.
    output = _refused(team, "--model", "timm:resnet18:none", "--audit-images", "team")
    assert _one_message(output, "'tench_fish' (closest class:"), output
    assert "loading" not in output and not _labels(team)  # before any model loads
    assert "'tench_fish'" in _report(team)["error"]


@pytest.mark.slow(data=False)
def test_unnamed_outputs_known_before_load_stop_the_run_at_startup(team):
    """Stop 40 (ft40): a Hugging Face folder whose config.json holds transformers' placeholder names (LABEL_0, ...)
    and a timm checkpoint with a replaced 10-class head name no classes, but their outputs are known on the
    controller (config.json's id2label, the checkpoint's head): their classes are the output indices then as at
    load. Class-name folders were found only as the model loaded (its tests' error, exit 1), not at startup."""
    timm = pytest.importorskip("timm")
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import save_file

    _images(team.path / "team", {"airplane": 1, "cat": 1})
    config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], num_labels=10)
    transformers.ResNetForImageClassification(config).save_pretrained(team.path / "hf10")
    assert json.loads((team.path / "hf10" / "config.json").read_text())["id2label"]["0"] == "LABEL_0"
    save_file(timm.create_model("resnet18", num_classes=10).state_dict(), str(team.path / "r18_10.safetensors"))
    for model in ("hf:./hf10?size=32&resize=36&interpolation=bilinear&mean=0.5,0.5,0.5&std=0.5,0.5,0.5",
                  "timm:resnet18:r18_10.safetensors"):
        output = _refused(team, "--model", model, "--audit-images", "team")
        assert _one_message(output, "2 class name(s) of the images in team match no class of the model (10 classes, "
                                    "from output indices"), output
        assert "loading" not in output and not _labels(team)  # before any model loads
    # Named with --audit-classes, the same folders are its classes' (checked at startup too): the run passes.
    (team.path / "classes.txt").write_text("\n".join(TEN) + "\n")
    result = team.runpytest_subprocess("--model", "timm:resnet18:r18_10.safetensors", "--audit-classes", "classes.txt",
                                       "--audit-images", "team", "--audit-data", "data", *RUN)
    assert result.ret == 0, _output(result)
    assert _labels(team) == {"airplane/0.jpg": 0, "cat/0.jpg": 3}


def _problems(output: str) -> list[str]:
    """The startup message's problems: the lines indented under its first line."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if "cannot read their images" in line)
    return [line.strip() for line in lines[first + 1:] if line.startswith("  ")]


def test_a_manifest_with_a_missing_file_a_repeat_and_an_unknown_label_is_one_message(team):
    """Hunt 34: three runs to see three problems (row problems, then repeats, then labels); now one, exit 4."""
    _images(team.path / "team", {"airplane": 1, "cats": 1})
    (team.path / "team" / "labels.csv").write_text(
        "path,label\nairplane/0.jpg,airplane\ncats/0.jpg,cats\nnope.jpg,airplane\nairplane/0.jpg,airplane\n")
    output = _refused(team, "--model", TEN_CLASSES, "--audit-images", "team/labels.csv")
    rows, labels = _problems(output)
    assert rows.startswith("CSV manifest team/labels.csv: 2 row(s) unusable: line 4: no such file nope.jpg; "
                           "line 5: airplane/0.jpg listed again (first on line 2). Fix"), output
    assert labels.startswith("tests.tiny_models:ten_classes?classes=classes.txt: 1 class name(s) of the images in "), output
    assert "'cats' (closest class: 'cat')" in labels and "loading" not in output and not _labels(team)
    assert _one_message(output, "listed again") and _one_message(output, "'cats' (closest class: 'cat')"), output
    assert "listed again" in _report(team)["error"] and "'cats'" in _report(team)["error"]


def test_class_folders_with_stray_files_and_unknown_names_are_one_message(team):
    """Hunt 34: stray files first, the folder names on the next run; now both, with nested folders, in one."""
    _images(team.path / "team", {"airplane": 1, "cats": 1, "trucks": 1, "ship/sub": 1})
    _images(team.path / "team", {".": 1})  # team/0.jpg: an image beside the class folders
    (team.path / "team" / "airplane" / "notes.txt").write_text("x")
    output = _refused(team, "--model", TEN_CLASSES, "--audit-images", "team", "-n", "2")
    nested, strays, labels = _problems(output)
    assert nested.startswith("1 folder(s) inside the class folders of team: ship/sub/."), output
    assert strays.startswith("2 file(s) of team cannot be used: airplane/notes.txt, 0.jpg."), output
    assert "2 class name(s)" in labels and "'cats' (closest class: 'cat'); 'trucks' (closest class: 'truck')" in labels
    assert "loading" not in output and not _labels(team)


def test_a_manifest_with_a_missing_row_and_an_unreadable_image_is_one_message(team):
    """Review 34c: the row was said on one run, the empty image (its header unreadable) only on the next."""
    _images(team.path / "team", {"airplane": 1})
    (team.path / "team" / "airplane" / "bad.jpg").write_bytes(b"")
    (team.path / "team" / "labels.csv").write_text(
        "path,label\nairplane/0.jpg,airplane\nairplane/bad.jpg,airplane\nnope.jpg,airplane\n")
    output = _refused(team, "--model", TEN_CLASSES, "--audit-images", "team/labels.csv")
    problems = _problems(output)
    assert problems[0].startswith("CSV manifest team/labels.csv: 1 row(s) unusable: line 4: no such file nope.jpg"), output
    assert "1 of 2 images of labels cannot be used" in problems[1] and any("bad.jpg" in p for p in problems[2:]), output
    assert "loading" not in output and not _labels(team)
