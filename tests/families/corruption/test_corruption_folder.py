"""A downloaded ImageNet-C folder, synthetic (tests.families.corruption.imagenet_c_folders): scored as it is and
counted by hand, in shards, and its root checked, at startup too."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.families.corruption.imagenet_c_folders import BRIGHT, DARK, write_folder
from visionaudit.data.image_sets import labelled_images, load_images
from visionaudit.errors import DataError
from visionaudit.families import corruption as C
from visionaudit.families.corruption.folder import FolderRun
from visionaudit.families.corruption.imagenet_c import check_root, summarize
from visionaudit.families.image_check import RunImages, check_image_sets
from visionaudit.models.loading import load_model
from visionaudit.preprocessing import whole_image

ROOT = Path(__file__).resolve().parents[3]


def test_imagenet_c_folder_is_scored_as_it_is(tmp_path):
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}  # all right
    write_folder(tmp_path / "val", clean, size=300)
    # fog 1: c (class 0) bright -> wrong; e (class 1) dark -> wrong: 2 of 5, both right on clean
    write_folder(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})
    # fog 2: everything wrong
    write_folder(tmp_path / "c" / "fog" / "2",
                 {"a.JPEG": BRIGHT, "b.JPEG": BRIGHT, "c.JPEG": BRIGHT, "d.JPEG": DARK, "e.JPEG": DARK})
    write_folder(tmp_path / "c" / "snow" / "1", clean)
    (tmp_path / "c" / "snow" / "1" / "n01443537" / "e.JPEG").unlink()  # a condition with other images
    model = load_model("tests.tiny_models:red_threshold")
    labelled = labelled_images(tmp_path / "val")
    run = FolderRun(model, tmp_path / "c", labelled, load_images(labelled, C.PROTOCOL_GEOMETRY))
    assert run.ids == ("n01440764/a.JPEG", "n01440764/b.JPEG", "n01440764/c.JPEG", "n01443537/d.JPEG", "n01443537/e.JPEG")
    one, two = run.condition("fog", 1), run.condition("fog", 2)
    assert one.error == pytest.approx(2 / 5) and one.clean_error == 0.0 and one.discordant == (2, 0)
    assert one.p_value == pytest.approx(0.5)  # two discordant pairs, both one way: 2 * (1/2)^2
    assert two.error == 1.0 and two.discordant == (5, 0) and two.p_value == pytest.approx(2 / 32)
    # the top-1 per image (red_threshold: class 1 when bright), which names what a later release lost
    assert one.predicted.tolist() == [0, 0, 1, 1, 0] and two.predicted.tolist() == [1, 1, 1, 0, 0]
    s = summarize({"fog": {1: one.error, 2: two.error}}, 0.0)
    assert s.ce["fog"] == pytest.approx(100 * 1.4 / (0.67474 + 0.7605))
    with pytest.raises(C.Unavailable, match="fog/3 is not in the ImageNet-C folder"):
        run.condition("fog", 3)
    with pytest.raises(DataError, match="holds other images than the other ImageNet-C conditions"):
        run.condition("snow", 1)
    # labelled images that are not ImageNet-C's originals: no clean reference, said so
    other = labelled_images(tmp_path / "c" / "fog" / "1")
    elsewhere = FolderRun(model, tmp_path / "c", other.select([0, 1]), load_images(other.select([0, 1]), C.PROTOCOL_GEOMETRY))
    assert "3 of the 5 ImageNet-C images have no original" in elsewhere.describe()["clean"]  # known before scoring
    r = elsewhere.condition("fog", 1)
    assert r.error == pytest.approx(2 / 5) and math.isnan(r.p_value) and math.isnan(r.clean_error)
    assert "3 of the 5 ImageNet-C images have no original" in elsewhere.describe()["clean"]


def test_an_imagenet_c_folder_in_shards_scores_each_shards_share_of_the_whole_choice(tmp_path):
    """Issue 26: the folder's images are named once (samples.imagenet-c); a shard scores its share of the images chosen
    from the whole folder, its sample set says where they sit, and its bits are the whole run's at those places."""
    from visionaudit.data.fingerprint import data_fingerprint
    from visionaudit.data.shards import Shard, shard_of

    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=300)
    write_folder(tmp_path / "c" / "fog" / "1", {**clean, "c.JPEG": BRIGHT, "e.JPEG": DARK})  # c and e wrong
    model = load_model("tests.tiny_models:red_threshold")
    labelled = labelled_images(tmp_path / "val")
    images = load_images(labelled, C.PROTOCOL_GEOMETRY)
    whole = FolderRun(model, tmp_path / "c", labelled, images)
    named = whole.sample_set()
    assert named.role == "imagenet-c" and named.ids == whole.ids and named.shard is None
    assert named.fingerprint == data_fingerprint(labelled_images(tmp_path / "c" / "fog" / "1"))  # the files' bytes
    expected = {"n01440764/a.JPEG": True, "n01440764/b.JPEG": True, "n01440764/c.JPEG": False, "n01443537/d.JPEG": True,
                "n01443537/e.JPEG": False}
    assert dict(zip(whole.ids, whole.condition("fog", 1).correct.tolist())) == expected
    seen = []
    for k in (1, 2):
        part = FolderRun(model, tmp_path / "c", labelled, images, shard=Shard(k, 2))
        mine = [i for i in whole.ids if shard_of(i, 2) == k]
        assert part.ids == tuple(mine) and part.whole_ids == whole.ids
        section = part.sample_set().shard
        assert section["whole"] == {"n": 5, "fingerprint": named.fingerprint}
        assert [whole.ids[q] for q in section["positions"]] == mine
        r = part.condition("fog", 1)
        assert r.correct.tolist() == [expected[i] for i in mine] and r.n_images == len(mine)
        assert part.clean() is not None and part.clean().all()
        seen += mine
    assert sorted(seen) == sorted(whole.ids) and 0 < len(mine) < 5  # both shards hold images (ids fixed above)


def test_imagenet_c_root_is_checked(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        check_root(tmp_path / "nowhere")
    (tmp_path / "blur").mkdir()
    with pytest.raises(DataError, match="holds no ImageNet-C corruption folder.*it holds blur"):
        check_root(tmp_path)
    assert whole_image(224).crop is False  # the files are fed uncropped


def test_a_wrong_imagenet_c_folder_stops_the_run_at_startup(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "--collect-only", "-q", "-p",
                           "no:cacheprovider",
                           f"--audit-imagenet-c={tmp_path / 'nowhere'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4 and "ImageNet-C folder" in proc.stderr and "does not exist" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.slow(data=False)
def test_condition_folders_of_other_images_stop_the_run_at_startup_naming_each(tmp_path):
    """Stop 42's notes: a condition folder holding other images than the reference folder (fog/1, the first configured
    condition) was found only as its test scored it, once a model had loaded. Now at startup, exit 4, one message naming
    every such folder, also when -k collects only one of them; a run that scores none of them goes on."""

    from tests.families.corruption.imagenet_c_folders import run_folder_audit
    from tests.terminal_text import said_once

    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=64)
    for name in ("fog/1", "fog/2", "snow/1", "snow/2"):
        write_folder(tmp_path / "c" / name, clean, size=64)
    (tmp_path / "c" / "snow" / "2" / "n01443537" / "e.JPEG").unlink()  # a partly extracted condition
    gone = tmp_path / "c" / "fog" / "2" / "n01440764" / "b.JPEG"
    gone.rename(gone.with_name("z.JPEG"))  # another image in the place of one

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_folder_audit(tmp_path, *args)

    reference, fog2, snow2 = (tmp_path / "c" / c for c in ("fog/1", "fog/2", "snow/2"))
    for args, named in (([], (fog2, snow2)), (["-k", "snow-2"], (snow2,))):
        proc = run(*args)
        output = proc.stdout + proc.stderr
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, (args, output[-3000:])
        said = f"{len(named)} ImageNet-C condition folder(s) of --audit-imagenet-c hold other images than {reference}"
        assert said_once(output, said) and "Traceback" not in output, (args, output[-3000:])
        assert f"{snow2} (lacks 1, e.g. n01443537/e.JPEG)" in output, (args, output[-3000:])
        assert (f"{fog2} (lacks 1, e.g. n01440764/b.JPEG, holds another 1, e.g. n01440764/z.JPEG)" in output) == (fog2 in named)
        assert "download or extract" in output
        assert not (tmp_path / "loads.log").exists()  # before any model loaded
    proc = run("-k", "snow-1")  # the mismatched folders are not scored: nothing to refuse
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.slow(data=False)
def test_a_misspelled_corruption_folder_is_named_with_the_corruption_it_is_near(tmp_path):
    """Stop 42's notes: a folder gausian_noise/ beside fog/ was read by no test, and gaussian_noise's tests said only
    that it is not in the folder; alone, the refusal listed it with no hint. Both name the corruption it is near."""
    for name in ("fog/1", "gausian_noise/1", "notes"):
        (tmp_path / "c" / name).mkdir(parents=True)
    with pytest.raises(DataError, match=r"named like no ImageNet-C corruption.*gausian_noise: did you mean gaussian_noise\?"):
        check_root(tmp_path / "c")
    (tmp_path / "c" / "fog" / "1").rmdir()
    with pytest.raises(DataError, match=r"gausian_noise: did you mean gaussian_noise\?"):
        check_root(tmp_path / "c")
    (tmp_path / "c" / "Frost").mkdir()
    with pytest.raises(DataError, match=r"Frost: did you mean frost\?; .*gausian_noise: did you mean gaussian_noise\?"):
        check_root(tmp_path / "c")  # one message naming every such folder
    (tmp_path / "c" / "Frost").rename(tmp_path / "c" / "frost")
    (tmp_path / "c" / "gaussian_noise" / "1").mkdir(parents=True)  # the corruption is there: a copy beside it is let be
    assert check_root(tmp_path / "c") == tmp_path / "c"
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "--collect-only", "-q", "-p",
                           "no:cacheprovider", f"--audit-imagenet-c={tmp_path / 'c'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (tmp_path / "c" / "gaussian_noise" / "1").rename(tmp_path / "c" / "shot_nois")
    proc = subprocess.run([sys.executable, "-m", "pytest", "audits/test_corruption.py", "--collect-only", "-q", "-p",
                           "no:cacheprovider", f"--audit-imagenet-c={tmp_path / 'c'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 4 and "shot_nois: did you mean shot_noise?" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_a_reference_folder_that_cannot_be_listed_is_one_problem_not_a_traceback(tmp_path):
    """The startup check lists the reference folder (fog/1, the first configured condition) to compare the scored
    conditions with: where it holds no image, the check says so once, naming it as the reference when no test scores
    it (-k snow-2) and as its own condition's problem when one does, rather than raising (an INTERNALERROR)."""
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    for name in ("fog/2", "snow/2"):
        write_folder(tmp_path / "c" / name, clean, size=32)
    (tmp_path / "c" / "fog" / "1").mkdir()  # extracted as an empty folder
    run = RunImages(str(tmp_path), None, None, 0, (), None, str(tmp_path / "c"))
    configured = [(c, s) for c in ("fog", "snow") for s in (1, 2)]
    only_snow = check_image_sets(run, (), [("snow", 2)], reference_conditions=configured)
    assert len(only_snow.problems) == 1, only_snow.problems
    assert only_snow.problems[0].startswith(f"{tmp_path / 'c' / 'fog' / '1'}, the ImageNet-C condition folder every "
                                            "condition the run scores is paired with image by image, cannot be listed: "
                                            "no images under"), only_snow.problems
    every = check_image_sets(run, (), configured[:1] + configured[2:], reference_conditions=configured)
    assert len(every.problems) == 1 and every.problems[0].startswith(f"no images under {tmp_path / 'c' / 'fog' / '1'}")


def test_a_reference_folder_that_lacks_an_image_is_named_as_the_one_to_extract_again_too(tmp_path):
    """fog/1, the reference, lacks an image the others hold: every other folder "holds another", and the message
    also names the reference as the folder to extract again where it is the one that differs."""
    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    for name in ("fog/1", "fog/2", "snow/1"):
        write_folder(tmp_path / "c" / name, clean, size=32)
    (tmp_path / "c" / "fog" / "1" / "n01440764" / "a.JPEG").unlink()
    run = RunImages(str(tmp_path), None, None, 0, (), None, str(tmp_path / "c"))
    conditions = [("fog", 1), ("fog", 2), ("snow", 1)]
    problems = check_image_sets(run, (), conditions, reference_conditions=conditions).problems
    assert len(problems) == 1 and problems[0].startswith("2 ImageNet-C condition folder(s)"), problems
    assert f"{tmp_path / 'c' / 'fog' / '2'} (holds another 1, e.g. n01440764/a.JPEG)" in problems[0]
    assert f"download or extract them again, or {tmp_path / 'c' / 'fog' / '1'} where it is the one that differs" in problems[0]
