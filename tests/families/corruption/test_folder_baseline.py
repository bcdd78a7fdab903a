"""The baseline gate's live side on an ImageNet-C folder (``--audit-imagenet-c``) for a model of its own classes
(stop-42 review): the folder's WNID labels are not its outputs, so the run measures none of its corruption conditions
(fixtures/baseline.py), and the comparisons with a baseline that holds them (made with the kernels) are not judged,
saying that the folder does not apply to the model, not the generic "this run did not score fog-1"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.families.corruption.imagenet_c_folders import (
    BRIGHT,
    DARK,
    FOLDER_CONFIG,
    write_folder,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_model_of_its_own_classes_against_its_kernel_baseline_on_a_folder(tmp_path):
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=300)
    write_folder(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})
    write_folder(tmp_path / "c" / "fog" / "2", {**clean, "a.JPEG": BRIGHT})
    (tmp_path / "classes.txt").write_text("n01440764\nn01443537\n")  # red_threshold's two outputs, named by WNID
    config = tmp_path / "audit.toml"
    config.write_text(FOLDER_CONFIG.format(max_mce=1000.0).replace('corruptions = ["fog", "snow"]', 'corruptions = ["fog"]')
                      .replace("images = 40", "images = 0"))
    own = f"tests.tiny_models:red_threshold?classes={tmp_path / 'classes.txt'}&name=own"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    common = ["-p", "no:cacheprovider", "-p", "no:xdist", "--model", own, f"--audit-data={tmp_path}",
              f"--audit-images={tmp_path / 'val'}", f"--audit-config={config}"]
    base = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", *common,
                           f"--audit-json={tmp_path / 'base.json'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert base.returncode == 0, base.stdout[-3000:] + base.stderr[-3000:]  # the kernels: fog-1, fog-2, mean error
    gate = subprocess.run([sys.executable, "-m", "pytest", "audits/test_baseline.py", *common, "-k", "corruption or mean_error",
                           f"--audit-baseline={tmp_path / 'base.json'}", f"--audit-imagenet-c={tmp_path / 'c'}",
                           f"--audit-json={tmp_path / 'gate.json'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    data = json.loads((tmp_path / "gate.json").read_text())
    entries = {e["params"]["comparison"]: e for e in data["audits"] if e["outcome"] != "deselected"}
    assert set(entries) == {"corruption_fog_1", "corruption_fog_2", "mean_error"}, sorted(entries)
    for name, e in entries.items():
        assert e["outcome"] == "not_judged", (name, e["outcome"], e["message"])
        assert "not ImageNet-1k's" in e["message"] and "does not apply to it" in e["message"], (name, e["message"])
        assert "without --audit-imagenet-c" in e["message"], (name, e["message"])
    assert gate.returncode == 1 and data["verdict"] == "incomplete", gate.stdout[-3000:] + gate.stderr[-3000:]
