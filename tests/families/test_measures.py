"""The measurements the audits call (they compute nothing inline): top-k, logit comparison, 16-way
accuracy, folded-model equivalence, deployment forms; and the random-init control fixture."""

from __future__ import annotations

import pytest
import torch
import torchvision

from visionaudit.families.conversion import check_equivalence
from visionaudit.families.deployment import Unsupported, check_form
from visionaudit.families.shape_bias import category_hits
from visionaudit.models.inference import compare_logits
from visionaudit.models.loading import load_model
from visionaudit.models.topk import top1_accuracy, topk_accuracy


def test_topk_by_hand():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.06], [0.2, 0.3, 0.5], [0.5, 0.2, 0.3]])
    labels = torch.tensor([2, 0, 1, 1])
    # top-1: only row 1 is right. top-2: rows 0 {1, 2}, 1 and 2 {2, 1} are right, row 3 {0, 2} is not.
    assert top1_accuracy(logits, labels) == 0.25
    assert topk_accuracy(logits, labels, 2) == 0.75
    assert topk_accuracy(logits, labels, 3) == 1.0
    with pytest.raises(ValueError, match="no labelled images"):
        top1_accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_shares_are_exact_fractions_not_float32_means():
    """7 right of 60 is stored as 7/60 (0.11666666666666667), not a float32 mean's 0.11666667461395264; the same for
    the logit comparison's top-1 agreement (16 of 60)."""
    labels = torch.zeros(60, dtype=torch.long)
    logits = torch.zeros(60, 3)
    logits[:7, 0] = 1.0  # rows 0-6 pick class 0, the label; the rest pick class 1
    logits[7:, 1] = 1.0
    assert top1_accuracy(logits, labels) == 7 / 60 and topk_accuracy(logits, labels, 1) == 7 / 60
    other = logits.clone()
    other[16:, :] = torch.tensor([0.0, 0.0, 1.0])  # 16 rows keep their top-1, 44 move to class 2
    assert compare_logits(logits, other).top1_agreement == 16 / 60


def test_compare_logits_closed_form():
    ref = torch.tensor([[1.0, -4.0, 2.0], [0.0, 3.0, 1.0]])
    cand = ref + torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.0, 2.5]])  # row 2: 3.5 overtakes 3
    c = compare_logits(ref, cand)
    assert c.max_abs_diff == 2.5 and c.max_rel_diff == pytest.approx(2.5 / 4.0) and c.top1_agreement == 0.5
    assert c.reference_spread == pytest.approx(float(ref.std(dim=0).max()))
    assert compare_logits(ref[:1], ref[:1]).reference_spread == 0.0  # one image: no spread to measure
    with pytest.raises(ValueError, match="differ in shape"):
        compare_logits(ref, cand[:, :2])


def test_category_hits():
    assert category_hits(["cat", "dog", "cat", "car"], ["cat", "cat", "cat", "car"]) == 3
    with pytest.raises(ValueError, match="2 decisions for 1 images"):
        category_hits(["cat", "dog"], ["cat"])


def _tiny_model():
    return load_model("tests.tiny_models:tiny?size=32", "cpu")


def test_check_equivalence_is_exact_where_the_naive_fold_is_not():
    model = _tiny_model()
    rgb = torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    gray = check_equivalence(model, rgb, "rgb_to_gray")
    assert gray.logits.max_rel_diff < 1e-5 and gray.logits.top1_agreement == 1.0 and gray.n_images == 6
    assert gray.naive_max_abs_diff > 100 * gray.logits.max_abs_diff  # ImageNet mean/std differ per channel
    back = check_equivalence(model, rgb, "gray_to_rgb")
    assert back.logits.max_rel_diff < 1e-5 and back.naive_max_abs_diff is None
    with pytest.raises(ValueError, match="unknown direction"):
        check_equivalence(model, rgb, "rgb_to_hsv")


def test_check_form_compares_with_the_reference_and_refuses_what_does_not_apply():
    model = _tiny_model()
    images = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    from visionaudit.models.inference import predict_logits

    reference = predict_logits(model, images)
    assert check_form(model, images, reference, "torchscript").max_abs_diff < 1e-5
    wrong = check_form(model, images, reference + 1.0, "torchscript")  # a reference it cannot match
    assert wrong.max_abs_diff == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(Unsupported, match="CUDA"):
        check_form(model, images, reference, "fp16_cuda")


def test_control_model_is_todays_draw_and_leaves_the_global_rng_alone(control_model):
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    built = control_model("resnet18")
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(0)  # how the controls were drawn before the fixture existed
    expected = torchvision.models.resnet18(weights=None).state_dict()
    got = built.module.state_dict()
    assert all(torch.equal(got[k].cpu(), v) for k, v in expected.items())
    assert built.id == "torchvision:resnet18:none"


def test_batchnorm_calibration_draws_nothing_from_the_global_rng(control_model):
    """Stochastic depth and dropout stay off while BatchNorm statistics are calibrated, so a control is the
    same model whatever ran before it (efficientnet_b0 has both stochastic depth and BatchNorm)."""
    from visionaudit.models.controls import calibrate_batchnorm

    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    stats = []
    for seed in (1, 2):
        model = control_model("efficientnet_b0")
        torch.manual_seed(seed)
        calibrate_batchnorm(model.module, x)
        stats.append([m.running_mean.clone() for m in model.module.modules() if isinstance(m, torch.nn.BatchNorm2d)])
        assert not model.module.training
    assert all(torch.equal(a, b) for a, b in zip(*stats))


@pytest.mark.slow(data=False)  # three builds and a copy: 8 s on a loaded machine
def test_a_control_is_built_once_and_each_use_gets_the_model_as_built(control_model, monkeypatch):
    """An architecture's control tests (channel bias, then the zoo's two directions, which calibrate theirs in place)
    build it once per process: the second use gets the weights and statistics a fresh build has, not the first's."""
    import fixtures.models
    from visionaudit.models import loading
    from visionaudit.models.controls import calibrate_batchnorm, control_spec

    monkeypatch.setattr(fixtures.models, "_last_control", {}, raising=False)  # whatever an earlier test here built
    builds = []
    build = loading._load
    monkeypatch.setattr(loading, "_load", lambda *a, **k: builds.append(a[0].id) or build(*a, **k))
    arch = "shufflenet_v2_x0_5"  # small, with BatchNorm: the zoo's calibration changes its statistics
    first = control_model(arch)
    calibrate_batchnorm(first.module, torch.rand(2, 3, 64, 64))
    with torch.no_grad():
        next(first.module.parameters()).mul_(2.0)
    second = control_model(arch)
    assert builds == [control_spec(arch)] and second.module is not first.module
    fresh = load_model(control_spec(arch), second.device)  # the reference: a build of its own
    assert second.to_dict() == fresh.to_dict()
    got, want, changed = second.module.state_dict(), fresh.module.state_dict(), first.module.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    # the first use's changes were real (its weights and its BatchNorm statistics), so the equality above means something
    assert not all(torch.equal(changed[k], want[k]) for k in want if k.endswith("running_mean"))
    assert not torch.equal(next(iter(changed.values())), next(iter(want.values())))
    control_model("resnet18")  # another architecture replaces it: one kept, not the zoo's 1.7 GB
    assert list(fixtures.models._last_control) == [(control_spec("resnet18"), str(second.device))]


def test_the_kept_control_goes_once_the_next_test_is_not_its_architectures(monkeypatch):
    """Review 45 F1: the kept control stays only while the worker's next test is one of its architecture's; else it
    would hold its memory (VGG-11: half a gigabyte, on the device) to the worker's end."""
    from types import SimpleNamespace

    import fixtures.models
    from fixtures.models import pytest_runtest_teardown

    def control(arch, **params):
        return SimpleNamespace(callspec=SimpleNamespace(params={"arch": arch, **params}), fixturenames=["control_model"])

    audit = SimpleNamespace(callspec=SimpleNamespace(params={"model": "efficientnet_lite0"}), fixturenames=["model"])
    kept = {("torchvision:resnet18:none", "cpu"): object()}
    for nextitem, stays in ((control("resnet18", direction="rgb_to_gray"), True), (control("alexnet"), False),
                            (audit, False), (None, False), (SimpleNamespace(), False)):
        monkeypatch.setattr(fixtures.models, "_last_control", dict(kept))
        pytest_runtest_teardown(control("resnet18"), nextitem)
        assert (fixtures.models._last_control == kept) is stays, nextitem


def test_control_model_leaves_the_cuda_generators_alone(control_model, monkeypatch):
    def boom(seed):
        raise AssertionError("the control reseeded the CUDA generators")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", boom)
    monkeypatch.setattr(torch.cuda, "manual_seed", boom)
    assert control_model("squeezenet1_1").id == "torchvision:squeezenet1_1:none"
