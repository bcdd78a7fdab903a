"""Stop 34, images: bad image files are refused at startup (exit 4, one message naming every file and the fix), not
once a model has loaded; images with an EXIF orientation and 16-bit images that hold 10 or 12 bits are said once
(``run.notes`` and the terminal). Real files written here, run through the real startup path in a subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.data.test_image_sets import gray16_png
from tests.terminal_text import said_once

ROOT = Path(__file__).resolve().parents[2]
TEN = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MODEL = "tests.tiny_models:ten_classes?classes=classes.txt"
MODES = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="two-workers")]

AUDIT = """
import os
import pytest

pytestmark = pytest.mark.audit("accuracy")

def test_decodes(model, labelled_images, evaluate, record):
    ev = evaluate(model, labelled_images)
    record.metric("n", len(ev.labels))
    open(f"decoded-{os.getpid()}", "w").write(str(len(ev.labels)))
"""


@pytest.fixture
def team(suite: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    suite.makepyfile(test_audit=AUDIT)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("VISIONAUDIT_TEST_LOAD_LOG", str(suite.path / "loads.log"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (suite.path / "classes.txt").write_text("\n".join(TEN) + "\n")
    (suite.path / "data").mkdir()
    return suite


def _run(team: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str, dict]:
    result = team.runpytest_subprocess("--model", MODEL, "--audit-images", "team", "--audit-data", "data", "--device", "cpu",
                                       "-p", "no:cacheprovider", "--audit-json=report.json", *args)
    return result, result.stdout.str() + result.stderr.str(), json.loads((team.path / "report.json").read_text())


def _good(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 12), (40, 80, 120)).save(path)
    return path


def _at(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _decoded(team: pytest.Pytester) -> bool:
    return any(team.path.glob("decoded-*"))


@pytest.mark.parametrize("mode", MODES)
def test_bad_image_files_stop_the_run_at_startup_all_named_in_one_message(team, mode):
    team_dir = team.path / "team"
    _good(team_dir / "airplane" / "ok.jpg")
    _good(team_dir / "dog" / "ok.png")
    gray16_png(_at(team_dir / "dog" / "full16.png"), [[0, 65535], [30000, 257]])  # 16-bit: a known range, used
    Image.new("F", (8, 8), 0.5).save(_at(team_dir / "airplane" / "float.tif"))
    Image.new("I", (8, 8), 70000).save(_at(team_dir / "cat" / "int32.tif"))
    _at(team_dir / "cat" / "notes.jpg").write_text("not a picture")
    (team_dir / "dog" / "empty.png").write_bytes(b"")
    result, output, report = _run(team, *mode)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    head = "4 of 7 images of team cannot be used; replace or remove them:"
    lines = [line for line in output.splitlines() if head in line]
    assert len(lines) == 1 and "_pytest.outcomes.Exit" not in output and "Traceback" not in output, output[-3000:]
    for name, why in [("airplane/float.tif", "cannot be used: its pixels are 32-bit float values (PIL mode F)"),
                      ("cat/int32.tif", "cannot be used: its pixels are 32-bit integer values (PIL mode I)"),
                      ("cat/notes.jpg", "is unreadable or truncated (UnidentifiedImageError"),
                      ("dog/empty.png", "is unreadable or truncated")]:
        assert said_once(output, f"team/{name} {why}"), (name, output[-3000:])  # the path as --audit-images gives it
        assert f"team/{name} {why}" in report["error"]
    assert output.count("save it as an 8-bit image (8 bits per channel") == 2
    assert report["run"]["exit_status"] == 4 and report["audits"][0]["outcome"] == "not_run"
    assert not (team.path / "loads.log").exists() and not _decoded(team)  # before any model loaded


def test_the_first_ten_bad_files_are_named_then_their_count(team):
    team_dir = team.path / "team"
    _good(team_dir / "bird" / "ok.jpg")
    (team_dir / "cat").mkdir(parents=True)
    for i in range(12):
        (team_dir / "cat" / f"broken{i:02d}.png").write_text("x")
    result, output, report = _run(team)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    assert "12 of 13 images of team cannot be used; replace or remove them:" in report["error"]
    named = [f"broken{i:02d}.png is unreadable" for i in range(12)]
    assert all(n in report["error"] for n in named[:10]) and not any(n in report["error"] for n in named[10:])
    assert report["error"].rstrip().endswith("\n    and 2 more") and "..." not in report["error"]


def test_only_the_images_the_run_selects_are_checked_and_an_unmarked_8_bit_set_says_nothing(team):
    """--audit-samples: the images the tests decode are the subset; a bad file outside it does not stop the run. The
    image checks are quiet when there is nothing to say: the subset, 8-bit images with no EXIF orientation, has no note
    of either (one run for both: the quiet set was a run of its own)."""
    from visionaudit.data.image_sets import labelled_images

    team_dir = team.path / "team"
    for name in TEN[:6]:
        _good(team_dir / name / "a.jpg")
    bad = _at(team_dir / "cat" / "b.jpg")
    bad.write_text("not a picture")
    whole = labelled_images(team_dir)
    n = next(k for k in range(1, len(whole)) if bad not in whole.stratified_subset(k, seed=0).paths)
    result, output, report = _run(team, "--audit-samples", str(n))
    assert result.ret == 0, output[-3000:]
    assert _decoded(team) and report["audits"][0]["metrics"]["n"] == n
    assert not any("EXIF" in note or "16-bit" in note for note in report["run"].get("notes", [])), report["run"]
    result, output, report = _run(team)  # the whole set: the bad file is read, so it stops the run
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "team/cat/b.jpg is unreadable" in report["error"], output[-3000:]


def _oriented(path: Path, orientation: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (24, 16), (200, 30, 30))
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, exif=exif)
    return path


def test_images_with_an_exif_orientation_are_said_once_with_an_example_and_the_fix(team):
    team_dir = team.path / "team"
    _oriented(team_dir / "airplane" / "phone3.jpg", 3)
    _oriented(team_dir / "airplane" / "phone6.jpg", 6)
    _oriented(team_dir / "cat" / "upright.jpg", 1)  # 1 is "as stored": nothing to say
    _oriented(team_dir / "dog" / "scan8.png", 8)  # a PNG's eXIf chunk, before its pixels
    _good(team_dir / "dog" / "plain.png")
    result, output, report = _run(team)
    assert result.ret == 0, output[-3000:]
    note = ("3 of the 5 images of team carry an EXIF orientation tag, which is not applied (as torchvision's "
            "ImageFolder does not apply it): they are audited as stored, not as a viewer shows them, e.g. "
            "team/airplane/phone3.jpg (orientation 3: a viewer shows it turned 180 degrees). To audit them "
            "as people see them, transpose the files on disk first (PIL.ImageOps.exif_transpose, then save)")
    assert said_once(output, note), output[-3000:]
    assert note in report["run"]["notes"]


@pytest.mark.parametrize("mode", MODES)
def test_16_bit_images_that_hold_10_or_12_bits_are_said_once(team, mode):
    team_dir = team.path / "team"
    _good(team_dir / "airplane" / "ok.jpg")
    gray16_png(_at(team_dir / "cat" / "twelve.png"), [[0, 4095], [2048, 100]])  # a 12-bit camera's values
    gray16_png(_at(team_dir / "dog" / "ten.png"), [[0, 1023], [512, 5]])  # a 10-bit one's
    gray16_png(_at(team_dir / "dog" / "wide.png"), [[0, 4096], [4000, 7]])  # 4,096 is past 12 bits: not said
    result, output, report = _run(team, *mode)
    assert result.ret == 0, output[-3000:]
    # 4,095 / 257 = 15.9: 8-bit level 16 at most
    note = ("2 16-bit image(s) hold no value above 4,095, e.g. team/cat/twelve.png (values up to 4,095): "
            "16-bit images are read as 0..65535 and brought to 8 bits (grayscale as round(v / 257), colour as v // 256, "
            "as PIL reads it), so these reach 8-bit level 16 of 255 at most and are audited nearly black.")
    assert said_once(output, note), output[-3000:]
    assert sum(n.startswith(note) for n in report["run"]["notes"]) == 1, report["run"]["notes"]
    assert "v * 65535 // 4095 for 12 bits" in output


@pytest.mark.slow(data=False)
def test_a_bad_file_in_the_imagenet_c_folder_stops_the_run_at_startup(tmp_path):
    """fixsmall: the --audit-imagenet-c folder's files were not header-checked; a bad one stopped its test only once the
    model had loaded. Its selected files are checked as every image set's are, with the same message (exit 4)."""
    import subprocess

    from tests.families.corruption.imagenet_c_folders import (
        BRIGHT,
        DARK,
        run_folder_audit,
        write_folder,
    )

    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=64)
    for severity in (1, 2):
        write_folder(tmp_path / "c" / "fog" / str(severity), clean, size=64)
    bad = tmp_path / "c" / "fog" / "2" / "n01440764" / "b.JPEG"
    bad.write_text("not a picture")

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_folder_audit(tmp_path, *args)

    for args in ([], ["-k", "fog-2"], ["-k", "mce"]):  # the condition's own test, and the mCE, read it
        proc = run(*args)
        output = proc.stdout + proc.stderr
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, (args, output[-3000:])
        assert said_once(output,
                         "1 of 5 images of imagenet-c fog/2 cannot be used; replace or remove them:"), (args, output[-3000:])
        assert f"{bad} is unreadable or truncated (UnidentifiedImageError" in output and "Traceback" not in output
        assert not (tmp_path / "loads.log").exists()  # before any model loaded
    proc = run("-k", "fog-1")  # fog/2 is not read: not checked
    assert proc.returncode == 0 and "imagenet-c fog/2" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_a_bad_labelled_file_stops_a_corruption_only_run_at_startup(tmp_path):
    """The corruption tests read the labelled images through their own fixture, which the startup check did not count
    as reading them: a bad file there stopped the run only once the model had loaded (fixsmall, fixhuntB; stop 35)."""

    from tests.families.corruption.imagenet_c_folders import (
        BRIGHT,
        DARK,
        run_folder_audit,
        write_folder,
    )

    write_folder(tmp_path / "val", {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}, size=64)
    bad = tmp_path / "val" / "n01443537" / "e.JPEG"
    bad.write_text("not a picture")
    for selected in ("fog-1", "mce"):  # the kernels on the labelled images, without --audit-imagenet-c
        proc = run_folder_audit(tmp_path, "-k", selected, imagenet_c=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, (selected, output[-3000:])
        assert said_once(output, "1 of 5 images of val cannot be used; replace or remove them:"), (selected, output[-3000:])
        assert f"{bad} is unreadable or truncated (UnidentifiedImageError" in output and "Traceback" not in output
        assert not (tmp_path / "loads.log").exists()  # before any model loaded


@pytest.mark.slow(data=False)
def test_os_metadata_is_skipped_and_an_image_under_two_labels_is_warned_of_in_the_run_notes(team):
    """Stop 44: Thumbs.db, desktop.ini, ._NAME and a zip's __MACOSX/ stopped the run while .DS_Store was ignored; the
    same bytes under two labels went unnoticed. Both are said, and the run goes on."""
    team_dir = team.path / "team"
    for i, name in enumerate(("airplane/a.png", "cat/b.png", "dog/c.png")):
        Image.new("RGB", (16, 12), (40, 80, 120 + i)).save(_at(team_dir / name))
    (team_dir / "dog" / "a copy.png").write_bytes((team_dir / "airplane" / "a.png").read_bytes())
    (team_dir / "cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (team_dir / "dog" / "desktop.ini").write_bytes(b"[.ShellClassInfo]\r\n")
    (team_dir / "cat" / "._b.png").write_bytes(b"\x00\x05\x16\x07")
    (_at(team_dir / "__MACOSX" / "cat" / "._b.png")).write_bytes(b"\x00\x05\x16\x07")
    result, output, report = _run(team)
    assert result.ret == 0, output[-3000:]
    assert _decoded(team)
    skipped = ("4 operating-system metadata file(s) under team skipped, not images (1 ._NAME (AppleDouble), "
               "1 Thumbs.db, 1 under __MACOSX/, 1 desktop.ini): __MACOSX/ (1 file), cat/._b.png, cat/Thumbs.db, dog/desktop.ini")
    warning = ("1 image(s) of team are under two or more labels (the same bytes): airplane/a.png (airplane) = dog/a copy.png "
               "(dog). An image cannot be top-1 right under both labels, so 1 of its 4 images cannot be right for any "
               "model (clean top-1 at most 0.7500); remove each copy from the class it does not belong to")
    assert skipped in report["run"]["notes"] and warning in report["run"]["notes"], report["run"]["notes"]
    assert f"WARNING: {warning}" in output
