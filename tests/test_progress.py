"""Progress lines: a phase that ends by itself says "done", one stopped midway says where it stopped."""

from __future__ import annotations

import pytest

from visionaudit import progress


@pytest.fixture
def events():
    seen: list[dict] = []
    progress.subscribe(seen.append)
    yield seen
    progress.unsubscribe(seen.append)


def test_a_finished_pass_says_done(events):
    with progress.phase("forward", "m", "rotation", total=4) as p:
        p.advance(4)
    end = events[-1]
    assert end["event"] == "end" and "stopped" not in end
    assert progress.describe(end).startswith("m: forward passes rotation 4/4") and ", done in " in progress.describe(end)


def test_an_interrupted_pass_says_where_it_stopped_not_done(events):
    """stop-33 review N2: a pass interrupted at 40/64 printed "done"."""
    with pytest.raises(KeyboardInterrupt), progress.phase("forward", "m", "rotation", total=64) as p:
        p.advance(40)
        raise KeyboardInterrupt
    line = progress.describe(events[-1])
    assert line.startswith("m: forward passes rotation stopped at 40/64") and "done" not in line


def test_a_stopped_load_says_stopped(events):
    with pytest.raises(RuntimeError), progress.phase("load", "m", "on cpu"):
        raise RuntimeError("timeout")
    line = progress.describe(events[-1])
    assert line.startswith("m: loading on cpu, stopped after ") and "done" not in line


def test_every_forward_pass_of_the_suite_names_itself():
    """Each ``predict_logits`` call of the suite's own code (not the tests') gives ``what``, the pass its progress lines
    name; the run below sees only the passes its audits reach."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    unnamed = []
    for path in sorted(p for d in ("visionaudit", "fixtures", "plugins", "audits") for p in (root / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "predict_logits":
                if not any(k.arg == "what" for k in node.keywords):
                    unnamed.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not unnamed, unnamed


@pytest.mark.slow
def test_every_progress_line_of_a_run_names_its_model_and_pass(shared_data, tmp_path):
    """fixsmall: the channel ablation's, the deployment forms' and the conversion's passes printed
    "tests.tiny_models:tiny: forward passes 8/12, ...", naming no pass. A real run, each pass's update printed
    (tests/progress_every_batch.py), every line read."""
    import re

    from tests.audit_runs import TINY, audit

    proc, _ = audit(tmp_path, shared_data, "run", "-n", "0", "--audit-samples", "20", "-p", "tests.progress_every_batch",
                    "-k", "(channel_bias or deployment or conversion or robustness or shape) and not zoo and not control")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("visionaudit ") and ": forward passes" in line]
    shape = re.compile(rf"visionaudit {re.escape(TINY)}: forward passes (?P<what>.+?) (stopped at )?\d+/\d+")
    unnamed = [line for line in lines if not (m := shape.match(line)) or re.fullmatch(r"[\d/, ]*", m["what"])]
    assert lines and not unnamed, "\n".join(unnamed[:20]) or proc.stdout[-3000:]
    named = {shape.match(line)["what"] for line in lines}
    for expected in ("channel ablation: channel 0 replaced by its mean", "deployment form torchscript",
                     "conversion rgb_to_gray: folded to 1 channel", "rotation", "clean cue-conflict[20 of 1280, seed 0]"):
        assert expected in named, (expected, sorted(named))
