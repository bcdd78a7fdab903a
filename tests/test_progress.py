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
