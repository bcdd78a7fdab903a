"""Writing the HTML page from a report imports no torch (stop 34): the xdist controller imports none during a run, and
``--audit-html`` at its end, or ``python -m visionaudit html`` later, needs only the report. torch comes with the
images, when there are transformed images to redraw."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "tests" / "report_fixtures" / "report_two_models.json"

# What --audit-html's plugin does at the end of a run (plugins/html_page.py _write), then the CLI's page, in a fresh
# interpreter (this one has torch already); prints the torch modules imported.
SCRIPT = """
import json, sys
from pathlib import Path

import plugins.html_page  # noqa: F401  (the plugin's own imports)
from visionaudit.cli import main
from visionaudit.html.page import write_html
from visionaudit.html.thumbnails import ImageSource, transform_strips

report_path, root, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
report = json.loads(report_path.read_text())
images = ImageSource(root, None)
write_html(out / "run.html", report, (), transform_strips(report, images.data_root, None), comparison=None, images=images)
assert main(["html", str(report_path), "-o", str(out / "cli.html"), "--data", str(root)]) == 0
print(json.dumps(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
"""


def _torch_imported(report: dict, root: Path, tmp_path: Path) -> list[str]:
    (tmp_path / "report.json").write_text(json.dumps(report))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "report.json"), str(root), str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run.html").stat().st_size > 10_000 and (tmp_path / "cli.html").is_file()  # a page was written
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow(data=False)
def test_a_page_without_images_at_hand_imports_no_torch(tmp_path):
    (tmp_path / "data").mkdir()  # a data root without the report's labelled images
    assert _torch_imported(json.loads(REPORT.read_text()), tmp_path / "data", tmp_path) == []


def test_a_page_with_the_images_but_no_transform_to_redraw_imports_no_torch(tmp_path):
    report = json.loads(REPORT.read_text())
    report["audits"] = [e for e in report["audits"] if e.get("audit") != "robustness"]
    folder = tmp_path / "data" / report["run"]["images"]
    folder.mkdir(parents=True)
    for sample_id in report["samples"]["labelled"]["ids"][:3]:  # there, never decoded: nothing to draw them under
        (folder / sample_id).parent.mkdir(parents=True, exist_ok=True)
        (folder / sample_id).write_bytes(b"not decoded")
    assert _torch_imported(report, tmp_path / "data", tmp_path) == []
