"""``--audit-samples`` below a selected family's ``min_images`` (50 by default: accuracy, robustness, corruption; 16: deployment),
said at startup, before any test runs, on the terminal and in the report's notes (hunt 35, F4), not found out only
once every test ran; nothing said where the subset meets the floor or a shard makes the count another's."""

from __future__ import annotations

import pytest

from tests.audit_runs import ROOT, audit, run_project

pytestmark = pytest.mark.slow


def _floor_notes(data: dict) -> list[str]:
    return [n for n in data["run"].get("notes", []) if "below min_images" in n]


def _notes_with(data: dict, text: str) -> list[str]:
    return [n for n in data["run"].get("notes", []) if text in n]


def test_a_subset_below_min_images_is_said_before_any_test_runs(tmp_path, shared_data):
    proc, data = audit(tmp_path, shared_data, "small", "-n", "0", "-m", "accuracy or robustness", "--audit-samples", "20")
    out = proc.stdout
    warning = next((line for line in out.splitlines() if line.startswith("WARNING: --audit-samples 20 ")), None)
    assert warning is not None, out
    # Before the first test's progress: said at startup, not found out at the end.
    assert out.index(warning) < out.index("audits/test_"), out
    # The two selected families whose default min_images (50, audit.toml's reference) is above 20, and the fixes.
    assert "accuracy 50, robustness 50" in warning and "the accuracy, robustness gates will not be judged" in warning
    assert "--audit-samples 50 or more" in warning and "lower min_images" in warning
    assert '-m "not accuracy and not robustness"' in warning
    assert _floor_notes(data) == [warning.removeprefix("WARNING: ")]
    # What it foretold: the run is incomplete with those gates not judged (exit 1, not a refusal).
    assert proc.returncode == 1 and data["verdict"] == "incomplete", out
    assert {e["audit"] for e in data["audits"] if e["outcome"] == "not_judged"} == {"accuracy", "robustness"}


def test_no_word_where_the_subset_meets_the_floor_or_in_a_shard(tmp_path, shared_data):
    proc, data = audit(tmp_path, shared_data, "enough", "-n", "0", "-k", "test_clean_top1", "--audit-samples", "50")
    assert "below min_images" not in proc.stdout and not _floor_notes(data), proc.stdout
    # In a shard a family that splits its images judges its share and `visionaudit merge` all of them: the count is
    # not this job's to say.
    proc, data = audit(tmp_path, shared_data, "shard", "-n", "0", "-k", "test_clean_top1", "--audit-samples", "20",
                       "--audit-shard", "1/2")
    assert "below min_images" not in proc.stdout and not _floor_notes(data), proc.stdout


def test_in_a_shard_the_deployment_gate_below_its_floor_is_said(tmp_path, shared_data):
    """Deployment does not split its images: it runs whole in shard 1 on all --audit-samples images, so its count
    there is certain (review36 F2)."""
    proc, data = audit(tmp_path, shared_data, "shard-deploy", "-n", "0", "-k", "test_deployment and channels_last",
                       "--audit-samples", "10", "--audit-shard", "1/2")
    warning = next((line for line in proc.stdout.splitlines() if line.startswith("WARNING: --audit-samples 10 ")), None)
    assert warning is not None, proc.stdout
    assert "(deployment 16; audit.toml): the deployment gate will not be judged" in warning
    assert [e["outcome"] for e in data["audits"]] == ["not_judged"], proc.stdout


def test_deployments_own_images_below_its_floor_names_images_as_the_fix(tmp_path, shared_data):
    """Its gate counts min(images, N): images = 8 under min_images 16 is never judged whatever --audit-samples (20
    here, above 16), so the warning names [audits.deployment] images, not --audit-samples (review36 F1)."""
    config = tmp_path / "audit.toml"
    config.write_text("[audits.deployment]\nimages = 8\n")
    proc, data = audit(tmp_path, shared_data, "capped", "-n", "0", "-k", "test_deployment and channels_last",
                       "--audit-samples", "20", f"--audit-config={config}")
    warning = next((line for line in proc.stdout.splitlines() if "[audits.deployment] images = 8" in line), None)
    assert warning is not None and warning.startswith("WARNING: "), proc.stdout
    assert "is below its min_images (16)" in warning and "raise [audits.deployment] images to 16 or more" in warning
    assert "--audit-samples 16" not in warning
    assert _notes_with(data, "[audits.deployment] images = 8") == [warning.removeprefix("WARNING: ")]
    # What it foretold: the form's test ends not judged on its 8 images.
    assert [e["outcome"] for e in data["audits"]] == ["not_judged"] and data["verdict"] == "incomplete", proc.stdout


def test_on_an_imagenet_c_folder_corruptions_cap_on_the_labelled_images_says_nothing(tmp_path):
    """With --audit-imagenet-c corruption scores the folder's images (its descriptor's ``unless``): its ``images`` cap
    of the labelled ones, below its min_images here, is no reason for a warning."""
    from tests.families.corruption.imagenet_c_folders import (
        BRIGHT,
        DARK,
        FOLDER_CONFIG,
        write_folder,
    )

    clean = {"a.JPEG": DARK, "b.JPEG": DARK, "c.JPEG": DARK, "d.JPEG": BRIGHT, "e.JPEG": BRIGHT}
    write_folder(tmp_path / "val", clean, size=300)
    write_folder(tmp_path / "c" / "fog" / "1", clean)
    config = tmp_path / "audit.toml"
    config.write_text(FOLDER_CONFIG.format(max_mce=1000.0).replace("images = 40", "images = 2"))  # min_images 5
    proc = run_project(ROOT, "audits/test_corruption.py", "-p", "no:cacheprovider", "-k", "fog and 1", "--model",
                       "tests.tiny_models:red_threshold_1k", f"--audit-data={tmp_path}",
                       f"--audit-images={tmp_path / 'val'}", f"--audit-imagenet-c={tmp_path / 'c'}",
                       f"--audit-config={config}", timeout=600)
    assert proc.returncode == 0 and "passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "min_images" not in proc.stdout, proc.stdout


def test_the_deployment_gate_below_its_floor_is_said_too(tmp_path, shared_data):
    """Deployment compares its forms on a subset of the run's labelled images (its own ``images``, 64, only caps it):
    --audit-samples 10, below its min_images (16), leaves it not judged, so the warning names it as it does accuracy."""
    proc, data = audit(tmp_path, shared_data, "deploy", "-n", "0", "-k", "test_deployment and channels_last",
                       "--audit-samples", "10")
    warning = next((line for line in proc.stdout.splitlines() if line.startswith("WARNING: --audit-samples 10 ")), None)
    assert warning is not None, proc.stdout
    assert "(deployment 16; audit.toml): the deployment gate will not be judged" in warning
    assert "[audits.deployment] min_images" in warning and '-m "not deployment"' in warning
    # What it foretold: the form's test ends not judged on the 10 images, the run incomplete.
    assert [e["outcome"] for e in data["audits"]] == ["not_judged"] and data["verdict"] == "incomplete", proc.stdout


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "two-workers"])
def test_collect_only_warns_as_the_run_would(tmp_path, shared_data, workers):
    """Stop 42's notes: --collect-only (a CI author's dry run of a command line) gave no sample-floor warning; the subset's
    size is known from the labelled set's listing alone, so it warns as the run does, and says nothing where the subset
    meets the floor."""
    proc, _ = audit(tmp_path, shared_data, "dry", *workers, "--collect-only", "-m", "accuracy or robustness",
                    "--audit-samples", "20")
    warning = [line for line in proc.stdout.splitlines() if line.startswith("WARNING: --audit-samples 20 ")]
    assert len(warning) == 1 and proc.returncode == 0, proc.stdout + proc.stderr
    assert "(accuracy 50, robustness 50; audit.toml): the accuracy, robustness gates will not be judged" in warning[0]
    assert '-m "not accuracy and not robustness"' in warning[0]
    proc, _ = audit(tmp_path, shared_data, "enough", *workers, "--collect-only", "-m", "accuracy", "--audit-samples", "50")
    assert proc.returncode == 0 and "min_images" not in proc.stdout, proc.stdout + proc.stderr
