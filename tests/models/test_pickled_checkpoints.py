"""Checkpoints that hold pickled objects, as training scripts write them (a class of the script run as __main__,
torch.save(model), a model inside a dict), through the real command line: ``convert-checkpoint`` says what a class
it cannot find is and how to make it found (exit 4, no traceback), takes a pickled model's state_dict(), and a
run refuses such a checkpoint at startup without unpickling it (hunt 34, finding 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.audit_runs import audit
from tests.conftest import ROOT
from visionaudit.cli import main as cli_main

TRAIN = """
import sys
from pathlib import Path

import torch
import torchvision


class Config:  # a training script's own object, saved beside the weights
    lr = 0.1


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


class Evil:  # what unpickling it does: create a file
    def __reduce__(self):
        return (Path.touch, (Path("PWNED"),))


if __name__ == "__main__":  # --import train imports this file: it must not save again
    torch.manual_seed(0)
    net, r18 = Net(), torchvision.models.resnet18()
    torch.save(net.state_dict(), "net_reference.pth")  # the weights, plainly: what a conversion must give back
    torch.save(r18.state_dict(), "r18_reference.pth")
    torch.save({"state_dict": r18.state_dict(), "epoch": 3, "config": Config()}, "with_config.pth")
    torch.save({"state_dict": r18.state_dict(), "payload": Evil()}, "evil.pth")
    torch.save(net, "whole_net.pth")  # torch.save(model), the model's class in __main__
    torch.save(r18, "whole_r18.pth")  # torch.save(model), an importable class
    torch.save({"model": net, "epoch": 3}, "wrapped_net.pth")
    legacy = {"_use_new_zipfile_serialization": False}  # the pre-1.6 format: pickles one after another, not a zip
    torch.save(r18.state_dict(), "r18_legacy.pth", **legacy)
    torch.save({"state_dict": r18.state_dict(), "epoch": 3, "config": Config()}, "with_config_legacy.pth", **legacy)
    torch.save({"state_dict": r18.state_dict(), "payload": Evil()}, "evil_legacy.pth", **legacy)
    torch.save(net, "whole_net_legacy.pth", **legacy)
    torch.save(r18, "whole_r18_legacy.pth", **legacy)
"""


def _run(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _convert(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return _run(cwd, "-m", "visionaudit", "convert-checkpoint", *args, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder where train.py, run as a script (python train.py), saved its checkpoints."""
    folder = tmp_path_factory.mktemp("training")
    (folder / "train.py").write_text(TRAIN)
    done = _run(folder, "train.py")
    assert done.returncode == 0, done.stderr
    return folder


def _one_message(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 4, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    return done.stderr


@pytest.fixture
def in_process(monkeypatch, capsys):
    """``visionaudit convert-checkpoint ARGS`` run from ``cwd`` in this process (the same entry point, without a
    second torch start-up); what --import imports is forgotten afterwards."""
    monkeypatch.delitem(sys.modules, "train", raising=False)

    def convert(cwd: Path, *args: str) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = cli_main(["convert-checkpoint", *args])
        out, err = capsys.readouterr()
        sys.modules.pop("train", None)
        return subprocess.CompletedProcess(args, code, out, err)

    return convert


def _same_weights(converted: Path, reference: Path) -> None:
    got, want = load_file(str(converted)), torch.load(reference, weights_only=True)
    assert sorted(got) == sorted(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


@pytest.mark.slow(data=False)
def test_a_class_of_the_training_script_is_named_with_the_fix_and_import_converts_it(trained, tmp_path):
    out = tmp_path / "with_config.safetensors"
    message = _one_message(_convert(trained, "with_config.pth", str(out), "--trust-pickle"))
    assert "class Config from module __main__" in message and "--import SCRIPT" in message
    assert "model.state_dict()" in message and not out.exists()
    done = _convert(trained, "with_config.pth", str(out), "--trust-pickle", "--import", "train")
    assert done.returncode == 0, done.stderr
    _same_weights(out, trained / "r18_reference.pth")


@pytest.mark.slow(data=False)
def test_a_class_of_a_module_not_on_the_import_path_is_named_and_found_from_its_folder(trained, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "mymodels.py").write_text(TRAIN)
    saved = _run(code, "-c", "import torch, mymodels; torch.manual_seed(0); torch.save(mymodels.Net(), 'net.pth'); "
                             "torch.save(torch.load('net.pth', weights_only=False).state_dict(), 'reference.pth')")
    assert saved.returncode == 0, saved.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    message = _one_message(_convert(elsewhere, str(code / "net.pth"), "out.safetensors", "--trust-pickle"))
    assert "class Net from module mymodels" in message and "no module mymodels" in message and "PYTHONPATH" in message
    done = _convert(elsewhere, str(code / "net.pth"), "out.safetensors", "--trust-pickle",
                    env={"PYTHONPATH": f"{ROOT}{os.pathsep}{code}"})
    assert done.returncode == 0, done.stderr
    _same_weights(elsewhere / "out.safetensors", code / "reference.pth")


@pytest.mark.parametrize("name, imports, reference", [
    ("whole_net.pth", ["--import", "train"], "net_reference.pth"),
    ("whole_r18.pth", [], "r18_reference.pth"),
    ("wrapped_net.pth", ["--import", "train"], "net_reference.pth"),
])
@pytest.mark.slow(data=False)
def test_a_pickled_model_is_said_to_be_one_and_converts_to_its_state_dict(trained, tmp_path, in_process, name, imports,
                                                                         reference):
    message = _one_message(in_process(trained, name, str(tmp_path / "x.safetensors")))
    assert "holds no tensors" not in message and "pickled model" in message and "--trust-pickle" in message
    if name.startswith("whole"):
        assert "is a whole pickled model (torch.save(model) of a " in message
    done = in_process(trained, name, str(tmp_path / "x.safetensors"), "--trust-pickle", *imports)
    assert done.returncode == 0, done.stderr
    _same_weights(tmp_path / "x.safetensors", trained / reference)


def test_a_destination_in_a_missing_folder_is_refused_before_anything_is_unpickled(trained, tmp_path, in_process):
    dst = tmp_path / "no" / "such" / "x.safetensors"
    message = _one_message(in_process(trained, "evil.pth", str(dst), "--trust-pickle"))
    assert f"the folder {dst.parent} does not exist" in message and "mkdir -p" in message
    assert not (trained / "PWNED").exists() and not dst.parent.exists()


def test_a_missing_source_is_named_as_src(tmp_path, in_process):
    message = _one_message(in_process(tmp_path, "nosuch.pth", "out.safetensors"))
    assert "nosuch.pth does not exist" in message and "SRC" in message and "--model" not in message


def _collect(trained: Path, tmp_path: Path, model: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VISIONAUDIT_DATA": str(tmp_path), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "audits", "-p", "no:cacheprovider", "-n", "0", "-m", "accuracy",
                           "--collect-only", "-q", f"--model={trained / model}", "--arch", "torchvision:resnet18", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name, said", [
    ("with_config.pth", "refuses __main__.Config"),
    ("whole_r18.pth", "is a whole pickled model (torch.save(model) of a torchvision.models.resnet.ResNet)"),
    ("with_config_legacy.pth", "refuses __main__.Config"),  # stop 37: a pre-1.6 file was refused only as it loaded
    ("whole_r18_legacy.pth", "is a whole pickled model (torch.save(model) of a torchvision.models.resnet.ResNet)"),
])
@pytest.mark.slow(data=False)
def test_a_run_refuses_a_pickled_checkpoint_at_startup(trained, tmp_path, name, said):
    done = _collect(trained, tmp_path, name)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert said in done.stdout + done.stderr and "convert-checkpoint" in done.stdout + done.stderr


@pytest.mark.slow(data=False)
def test_a_plain_state_dict_passes_the_startup_check_without_torch(trained, tmp_path):
    # --collect-only looks for the data the accuracy audit needs (plugins/data_check.py): give it a labelled folder, so
    # that what this checks is the pickle scan and not whether data is there.
    (tmp_path / "imgs" / "tench").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "tench" / "a.png")
    done = _collect(trained, tmp_path, "r18_reference.pth", "--audit-images", str(tmp_path / "imgs"))
    assert done.returncode == 0 and "pickled" not in done.stdout + done.stderr, done.stdout[-2000:] + done.stderr[-2000:]
    probe = _run(trained, "-c", "import sys; from visionaudit.models.checkpoints import refuse_pickled; "
                                "refuse_pickled('r18_reference.pth'); print('torch' in sys.modules)")
    assert probe.returncode == 0 and probe.stdout.strip() == "False", probe.stderr  # the xdist controller stays light


@pytest.mark.slow(data=False)
def test_a_run_stops_at_startup_with_exit_4_and_never_unpickles(trained, tmp_path):
    model = f"{trained / 'evil.pth'}?arch=torchvision:resnet18"
    proc, report = audit(tmp_path, tmp_path, "evil", "-n", "0", "-m", "accuracy", model=model)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert report is not None and report["verdict"] == "incomplete" and report["audits"] == []
    assert "holds pickled Python objects that a safe load refuses" in report["error"] and "convert-checkpoint" in report["error"]
    assert not (ROOT / "PWNED").exists() and not (trained / "PWNED").exists()
    assert report["run"]["exit_status"] == 4


@pytest.mark.parametrize("name, said", [("whole_r18.pth", "a torchvision.models.resnet.ResNet"),
                                        ("whole_net_legacy.pth", "a __main__.Net"), ("evil.pth", None)])
def test_a_pickled_file_without_arch_is_said_to_be_one_not_a_state_dict_that_needs_arch(trained, monkeypatch, name, said):
    """Stop 40: without --arch, a torch.save(model) file was "a state dict, which needs its architecture"; the --arch
    added then got the pickle's refusal. What the file is comes first, read without unpickling it."""
    from visionaudit.errors import CheckpointError
    from visionaudit.models.specs import parse_spec

    monkeypatch.chdir(trained)
    with pytest.raises(CheckpointError) as e:
        parse_spec(name)
    message = str(e.value)
    assert message.startswith(f"--model {name}: checkpoint {name} ") and "convert-checkpoint" in message, message
    assert "needs its architecture" not in message
    assert message.endswith("Once converted it is a state dict: give its architecture, --arch torchvision:NAME (or "
                            f"timm:NAME, or package.module:factory), or write {name.replace('.pth', '.safetensors')}"
                            "?arch=torchvision:NAME."), message  # review 40 F5: not a second refusal after converting
    assert said is None or f"is a whole pickled model (torch.save(model) of {said})" in message
    assert not (trained / "PWNED").exists()


@pytest.mark.parametrize("name", ["with_config_legacy.pth", "evil_legacy.pth", "whole_net_legacy.pth", "whole_r18_legacy.pth"])
def test_a_legacy_file_is_refused_at_startup_as_its_load_refuses_it_without_unpickling(trained, name, monkeypatch):
    """Stop 37: a pre-1.6 ``torch.save`` file (not a zip archive) passed the startup check; its load refused it. Both
    say the same now, read by disassembly alone (Evil's unpickling would create PWNED)."""
    from visionaudit.errors import CheckpointError
    from visionaudit.models.checkpoints import load_state_dict, refuse_pickled

    monkeypatch.chdir(trained)
    with pytest.raises(CheckpointError) as at_startup:
        refuse_pickled(trained / name)
    with pytest.raises(CheckpointError) as at_load:
        load_state_dict(trained / name)
    assert str(at_startup.value) == str(at_load.value) and "convert-checkpoint" in str(at_startup.value)
    if name.startswith("whole_net"):
        assert "is a whole pickled model (torch.save(model) of a __main__.Net)" in str(at_startup.value)
    assert not (trained / "PWNED").exists()


def test_a_legacy_plain_state_dict_passes_the_startup_check_and_loads_its_weights(trained):
    from visionaudit.models.checkpoints import load_state_dict, refuse_pickled

    refuse_pickled(trained / "r18_legacy.pth")  # nothing refused: a safe load reads it
    legacy, reference = load_state_dict(trained / "r18_legacy.pth"), load_state_dict(trained / "r18_reference.pth")
    assert legacy.keys() == reference.keys() and all(torch.equal(legacy[k], reference[k]) for k in reference)
