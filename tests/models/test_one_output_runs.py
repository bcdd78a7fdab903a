"""A one-output model (a binary classifier's logit, read through a sigmoid) in a real audit run: audited as two
classes, logits [0, z], its accuracy judged on its two named classes, and the run's notes say so."""

from __future__ import annotations

import pytest

from tests.audit_runs import audit

pytestmark = pytest.mark.slow  # the real images


def test_a_one_output_model_is_audited_as_two_named_classes_and_the_run_says_so(shared_data, tmp_path):
    chosen = sorted((shared_data / "imagenet-sample").iterdir())[::50][:4]
    for c, name in enumerate(["no cat", "cat"]):  # class folders named as the class file's two names
        (tmp_path / "images" / name).mkdir(parents=True)
        for src in chosen[2 * c:2 * c + 2]:
            (tmp_path / "images" / name / src.name).symlink_to(src)
    (tmp_path / "classes.txt").write_text("no cat\ncat\n")
    spec = f"tests.tiny_models:one_logit?classes={tmp_path / 'classes.txt'}"
    proc, data = audit(tmp_path, shared_data, "one", "-n", "0", f"--audit-images={tmp_path / 'images'}", "-k",
                       "test_clean_top1", model=spec)
    assert data is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    notes = [n for n in data["run"]["notes"] if "has one output z" in n]
    assert len(notes) == 1 and "audited as two classes, 'no cat' and 'cat', logits [0, z]" in notes[0], data["run"]
    ran = [e for e in data["audits"] if e["audit"] == "accuracy"]
    assert ran and all(e["outcome"] != "error" for e in ran), ran
    (model,) = data["models"].values()
    assert model["num_classes"] == 2 and model["classes"]["names"] == ["no cat", "cat"], model


