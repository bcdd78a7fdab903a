"""A synthetic ImageNet-C folder laid out as the download is (``<wnid>/<file>`` per condition), for
tests.tiny_models' ``red_threshold`` model, whose answers on it can be counted by hand; and the [audits.corruption]
sections the end-to-end runs use (on a tiny model: CONFIG; on such a folder: FOLDER_CONFIG)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

BRIGHT, DARK = (235, 30, 30), (25, 30, 30)  # red_threshold: class 1 (n01443537) when red is bright, else class 0
FILES = {"n01440764": ["a.JPEG", "b.JPEG", "c.JPEG"], "n01443537": ["d.JPEG", "e.JPEG"]}


def write_folder(root: Path, colours: dict[str, tuple[int, int, int]], size: int = 224) -> None:
    """One image per name in FILES under ``root``, of one colour each (``colours[name]``)."""
    for wnid, names in FILES.items():
        (root / wnid).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.new("RGB", (size, size), colours[name]).save(root / wnid / name, quality=85)


CONFIG = """
[audits.corruption]
max_mce = {max_mce}
max_error = 1.0
max_error_by_corruption = {{ contrast = 0.999 }}
corruptions = ["brightness", "contrast"]
extras = []
severities = [1, 5]
jpeg_round_trip = true
images = 40
alpha = 0.05
bootstrap_resamples = 200
min_images = 10
"""

FOLDER_CONFIG = CONFIG.replace('corruptions = ["brightness", "contrast"]', 'corruptions = ["fog", "snow"]').replace(
    "severities = [1, 5]", "severities = [1, 2]").replace("min_images = 10", "min_images = 5").replace(
    "max_error_by_corruption = { contrast = 0.999 }", "max_error_by_corruption = {}")


ROOT = Path(__file__).resolve().parents[3]


def run_folder_audit(tmp_path: Path, *args: str, imagenet_c: bool = True) -> subprocess.CompletedProcess:
    """``pytest audits/test_corruption.py`` on the tiny 1k model as a user runs it: tmp_path's ``val/`` as the labelled
    images, its ``c/`` as --audit-imagenet-c (unless ``imagenet_c`` is False), FOLDER_CONFIG as its audit.toml; a model
    load leaves tmp_path/loads.log (VISIONAUDIT_TEST_LOAD_LOG), so a test can tell a startup refusal from a later one."""
    config = tmp_path / "audit.toml"
    config.write_text(FOLDER_CONFIG.format(max_mce=1000.0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["VISIONAUDIT_TEST_LOAD_LOG"] = str(tmp_path / "loads.log")
    folder = [f"--audit-imagenet-c={tmp_path / 'c'}"] if imagenet_c else []
    return subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "-p", "no:cacheprovider", "--model",
                           "tests.tiny_models:red_threshold_1k", f"--audit-data={tmp_path}", f"--audit-images={tmp_path / 'val'}",
                           *folder, f"--audit-config={config}", "--device", "cpu", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
