"""benchmarks/corruptions.py's ``--ahead`` table: its ratio column (the run itself needs a real model and data)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("corruptions_benchmark", ROOT / "benchmarks" / "corruptions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ratio_column_survives_an_ahead_pass_of_no_time():
    ratio_cell = _benchmark().ratio_cell
    assert ratio_cell(3.0, 1.5) == f"{2.0:16.2f}" and len(ratio_cell(3.0, 1.5)) == 16
    assert ratio_cell(3.0, 0.0) == " " * 15 + "-"  # a mode not timed (too few images): a dash, as its cells, not a crash
