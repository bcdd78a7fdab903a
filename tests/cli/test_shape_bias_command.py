"""``python -m visionaudit shape-bias --model``: it says how its pass over the 1,280 stimuli goes, as a run does, and
what is wrong with its data in its own options' words.

docs42: it printed one line and then nothing until the end (over 15 minutes for lite2 on a loaded 2-core machine),
though visionaudit/progress.py says the CLI shows the core's progress."""

from __future__ import annotations

import json

from PIL import Image

from visionaudit import progress
from visionaudit.cli import main as cli_main


def test_shape_bias_of_a_model_prints_its_progress(tmp_path, capsys, monkeypatch):
    for shape, texture in (("cat", "elephant"), ("elephant", "cat"), ("car", "clock"), ("clock", "car")):
        (tmp_path / "cue-conflict" / shape).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (40, 90, 140)).save(tmp_path / "cue-conflict" / shape / f"{shape}1-{texture}2.png")
    listeners = list(progress._listeners)  # this test session's own (plugins/progress.py)
    monkeypatch.setattr(progress, "UPDATE_EVERY", 0.0)  # an update line at every step, however fast the machine
    assert cli_main(["shape-bias", "--model", "tests.tiny_models:tiny", "--data", str(tmp_path), "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["n_conflict"] == 4  # the result stays on stdout, alone
    lines = err.splitlines()
    model = "tests.tiny_models:tiny"
    assert any(line.startswith(f"visionaudit {model}: loading") for line in lines), err
    assert any(line.startswith("visionaudit cue-conflict: decoding at 224") for line in lines), err
    assert any(line.startswith(f"visionaudit {model}: forward passes clean cue-conflict") and "done in" in line
               for line in lines), err
    assert progress._listeners == listeners  # the command's listener goes with it


def test_a_missing_data_root_is_said_before_the_model_loads_naming_the_commands_option(tmp_path, capsys):
    """docs42: the command loaded the model first, then told a user who typed --data to point --audit-data (the
    run's option, which the command does not have) at the data."""
    missing = tmp_path / "none"
    assert cli_main(["shape-bias", "--model", "tests.tiny_models:tiny", "--data", str(missing), "--device", "cpu"]) == 4
    err = capsys.readouterr().err
    assert f"data directory {missing} does not exist" in err and "(--data for python -m visionaudit commands)" in err, err
    assert "loading" not in err, err
