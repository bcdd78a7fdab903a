"""Make the small fixture reports the HTML tests start from (run from the repository root):

    VISIONAUDIT_DATA=../shared/data python tests/report_fixtures/make_reports.py

Two tiny random models on 60 images per set (every family that draws a figure, one random-init control,
failing gates included), and a baseline run of one against the other. Class-wise tables are dropped to
keep the files small; everything else is as the run wrote it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SELECT = ("test_clean_top1 or test_transform or test_weight_shares or test_shape_bias or test_shape_only or test_configured_model"
          " or test_deployment or (test_random_init_control and resnet18)")
COMMON = ["-p", "no:cacheprovider", "--device", "cpu", "--audit-samples", "60", "-q"]


def run(out: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pytest", "audits", *COMMON, f"--audit-json={out}", *args], cwd=ROOT, check=False)


def slim(src: Path, dst: Path) -> None:
    data = json.loads(src.read_text())
    for e in data["audits"]:
        e["tables"] = {k: v for k, v in e["tables"].items() if not k.startswith("classwise")}
        e["duration"] = round(e["duration"], 2)
    dst.write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(tmp / "two.json", "-k", SELECT, "--model", "tests.tiny_models:tiny", "--model", "tests.tiny_models:tiny_other")
        run(tmp / "one.json", "-k", SELECT, "--model", "tests.tiny_models:tiny")
        run(tmp / "against.json", "-m", "baseline", "--model", "tests.tiny_models:red_dominant",
            f"--audit-baseline={tmp / 'one.json'}",
            "--audit-baseline-as", "tests.tiny_models:tiny")
        slim(tmp / "two.json", HERE / "report_two_models.json")
        slim(tmp / "against.json", HERE / "report_against_baseline.json")


if __name__ == "__main__":
    main()
