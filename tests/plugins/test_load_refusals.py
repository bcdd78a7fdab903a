"""What is found only as a model loads (hunt 35, F5): a class list of another length than its outputs, and a
checkpoint that does not fit its ``?arch=``, follow one rule (README's exit codes): that model's tests error with
the message, the other models' tests still run and judge, exit 1, and the verdict's reason says the model did not
load, with its message, never a regression. (Found before any model loads, a mistake is exit 4: test_labels.py.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.audit_runs import audit
from tests.image_folders import plain_images

pytestmark = pytest.mark.slow

TEN = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The good model's gate always passes: what is checked is that it ran and judged beside the one that did not load.
LENIENT = """[audits.accuracy]
min_images = 1
min_top1 = 0.0
min_top5 = 0.0
min_balanced_accuracy = 0.0
min_class_accuracy = 0.0
"""


def _team(tmp_path):
    (tmp_path / "classes.txt").write_text("\n".join(TEN) + "\n")
    (tmp_path / "nine.txt").write_text("\n".join(TEN[:9]) + "\n")  # one name short: 10 outputs, 9 names
    for name in ("airplane", "ship"):
        plain_images(tmp_path / "images" / name, *(f"{i}.png" for i in range(3)))
    (tmp_path / "audit.toml").write_text(LENIENT)
    torch.save(nn.Linear(3, 3).state_dict(), tmp_path / "w.pth")  # no key of the architecture it is given
    return f"tests.tiny_models:ten_classes?classes={tmp_path / 'classes.txt'}"


@pytest.mark.parametrize("bad, workers, said", [
    ("tests.tiny_models:ten_classes?classes={t}/nine.txt", "2", "has 10 outputs, but its class list"),
    ("{t}/w.pth?arch=tests.tiny_models:ten_classes&classes={t}/classes.txt", "0", "does not match the architecture"),
])
def test_a_model_found_unusable_as_it_loads_fails_its_tests_and_the_others_go_on(tmp_path, shared_data, bad, workers, said):
    good = _team(tmp_path)
    bad = bad.format(t=tmp_path)
    proc, data = audit(tmp_path, shared_data, "run", "-n", workers, "-k", "test_clean_top1", "--model", bad,
                       f"--audit-images={tmp_path / 'images'}", f"--audit-config={tmp_path / 'audit.toml'}", model=good)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # not 4: the good model's work is kept
    assert data is not None and data.get("error") is None, out
    outcomes = {e["model"]: e for e in data["audits"]}
    assert outcomes[good]["outcome"] == "passed", outcomes[good]
    assert outcomes[bad]["outcome"] == "error" and said in outcomes[bad]["message"], outcomes[bad]
    assert data["models"][bad]["loaded"] is False and said in data["models"][bad]["error"]
    # The reason says which model did not load and why, so that CI can tell it from a failed gate.
    assert data["verdict"] == "fail" and data["verdict_reason"].startswith(f"{bad} did not load: "), data["verdict_reason"]
    assert said in data["verdict_reason"], data["verdict_reason"]
    verdict = next(line for line in proc.stdout.splitlines() if line.startswith("verdict: "))
    assert verdict.startswith("verdict: FAIL") and f"{bad} did not load: " in verdict, verdict
    assert "stopped at startup" not in out and "Interrupted" not in out, out
