"""Small models for tests, importable as ``tests.tiny_models:NAME`` factories."""

from __future__ import annotations

import os

import torch
from torch import nn


def _count_load() -> None:
    # Tests that check "one load per process" read this file.
    path = os.environ.get("VISIONAUDIT_TEST_LOAD_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\n")


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, stride=4)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def tiny() -> nn.Module:
    _count_load()
    torch.manual_seed(0)
    return TinyNet()


def tiny_other() -> nn.Module:
    _count_load()
    torch.manual_seed(1)
    return TinyNet()


def ten_classes() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(num_classes=10)


def gray() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(in_channels=1)


def gray_resnet18() -> nn.Module:
    """A real architecture trained on grayscale would look so: torchvision's resnet18 with a 1-channel first conv."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


class NaNNet(TinyNet):
    def forward(self, x):
        return super().forward(x) * float("nan")


def nan_outputs() -> nn.Module:
    return NaNNet()


def not_a_module():
    return 42


def factory_bug() -> nn.Module:
    """A team's factory that fails with an ordinary exception (not one of visionaudit's)."""
    raise RuntimeError("factory bug: weights file missing")


def red_dominant() -> nn.Module:
    """TinyNet whose first-layer red kernels are scaled up tenfold: a planted dominant channel."""
    net = tiny()
    with torch.no_grad():
        net.conv.weight[:, 0] *= 10
    return net


class RedThreshold(nn.Module):
    """Two classes decided by the mean of the red channel alone: class 1 when red is bright.

    Closed forms: replacing red by its dataset mean breaks it, green and blue do not matter, and the
    gradient reaches only the red input.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))

    def forward(self, x):
        r = self.conv(x).mean((1, 2, 3))
        return torch.stack([-(r - 0.5), r - 0.5], dim=1) * 10


def red_threshold() -> nn.Module:
    return RedThreshold()


class RedThreshold1k(RedThreshold):
    """:class:`RedThreshold` as an ImageNet-1k model: its two logits are classes 0 and 1, the other 998 never win."""

    def forward(self, x):
        two = super().forward(x)
        return torch.cat([two, torch.full((two.shape[0], 998), -1e4, dtype=two.dtype, device=two.device)], dim=1)


def red_threshold_1k() -> nn.Module:
    return RedThreshold1k()


class AffineFirst(nn.Module):
    """A per-channel affine before the first conv (as inception_v3's transform_input does)."""

    def __init__(self) -> None:
        super().__init__()
        self.later = nn.Conv2d(4, 4, 1)  # defined first, runs second
        self.stem = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        x = x * torch.tensor([2.0, 1.0, 0.5]).view(1, 3, 1, 1) + 0.1
        return self.later(self.stem(x)).mean((2, 3))


def affine_first() -> nn.Module:
    return AffineFirst()


class Constant(nn.Module):
    """The same logits for every image: a model whose decisions carry no information."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(1000))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def constant() -> nn.Module:
    return Constant()


class ImageHash(nn.Module):
    """Logits drawn from a hash of the input: a model that looks at every pixel and means nothing. Its decisions are
    random draws independent of the image's cues, fixed for each image (a random-init network's need not be: random
    features respond to texture, so its decisions can follow the texture cue). Not uniform over the 16 categories
    (a category of few ImageNet classes wins the average more often), which leaves chance's 2/16 hits per conflict
    image as it is: each category is as often the shape as the texture. The input is rounded before hashing, so
    that a last-bit difference of another CPU's arithmetic draws the same logits."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        import hashlib

        rows = []
        for image in x.detach().float().cpu():
            rounded = torch.round(image * 1000).to(torch.int32).contiguous().numpy().tobytes()
            seed = int.from_bytes(hashlib.sha256(rounded).digest()[:8], "little") >> 1
            rows.append(torch.randn(1000, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(rows).to(x.device) * self.scale


def image_hash() -> nn.Module:
    return ImageHash()


def fixed_size() -> nn.Module:
    """Takes 32x32 input only (a flattened linear layer), as a ViT with fixed position embeddings takes one size."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 1000))


def slow_load() -> nn.Module:
    """A load that outlasts any short --audit-timeout (a huge checkpoint, a hung download)."""
    import time

    time.sleep(60)
    return tiny()


def segfault_load() -> nn.Module:
    """A load that dies in native code (a broken extension, a bad checkpoint read by C++): its process segfaults."""
    import faulthandler

    faulthandler._sigsegv()  # a real SIGSEGV, which faulthandler reports with this frame before the process dies
    return tiny()


def exit_load() -> nn.Module:
    """A load whose library ends the process outright (os._exit: no exception, no atexit, no faulthandler)."""
    os._exit(7)


class _DiesOnTwoImages(TinyNet):
    def forward(self, x):
        if x.shape[0] == 2:  # the batch-size probe's (visionaudit/models/batching.py PROBE_IMAGES), not the load's 1 and 3
            os._exit(9)
        return super().forward(x)


def probe_crash() -> nn.Module:
    """Loads (load_model's passes of one and three images); the batch-size probe after the load then ends the process,
    as an OOM kill of a large model's probe would: a crash after its load, not in it."""
    torch.manual_seed(0)
    return _DiesOnTwoImages()


def one_logit() -> nn.Module:
    """A binary classifier with one logit, read through a sigmoid: its top-1 is always output 0."""
    torch.manual_seed(0)
    return TinyNet(num_classes=1)


class _DropoutNet(TinyNet):
    def __init__(self) -> None:
        super().__init__(num_classes=3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(self.drop(self.bn(self.conv(x)).mean((2, 3))))


def shipped_in_train_mode() -> nn.Module:
    """Dropout and BatchNorm as a training script leaves them: in training mode."""
    torch.manual_seed(0)
    return _DropoutNet().train()


def half_weights() -> nn.Module:
    """A model handed over in half precision (weights float16), as a factory that calls .half() returns it."""
    torch.manual_seed(0)
    return TinyNet(num_classes=3).half()


def double_weights() -> nn.Module:
    """A model handed over in float64, as a factory that calls .double() returns it."""
    torch.manual_seed(0)
    return TinyNet(num_classes=3).double()


class _Bfloat16Kernels(TinyNet):
    def forward(self, x):
        z = (8.0 * torch.tanh(super().forward(x))).bfloat16()  # logits up to 8, as a trained model's
        if x.shape[0] > 1:  # a batched kernel rounding differently: one bfloat16 step (1/32 at 4..8, 4e-3 of 8)
            z = torch.nextafter(z, torch.full_like(z, float("inf")))
        return z.float()


def bfloat16_kernels() -> nn.Module:
    """Deterministic, computing in bfloat16 and returning float32 logits (as under autocast), its batch of three one
    bfloat16 rounding step from its image alone (GPU kernels chosen by batch size do this)."""
    torch.manual_seed(0)
    return _Bfloat16Kernels(num_classes=3)


class _DictOutput(TinyNet):
    def __init__(self, key: str) -> None:
        super().__init__(num_classes=3)
        self.key = key

    def forward(self, x):
        return {self.key: super().forward(x), "features": self.conv(x).mean((2, 3))}


def dict_logits() -> nn.Module:
    """Returns ``{"logits": ..., "features": ...}``, as a team's own model might (a plain dict, not an HF output)."""
    torch.manual_seed(0)
    return _DictOutput("logits")


def dict_scores() -> nn.Module:
    """Returns ``{"scores": ..., "features": ...}``: no key the suite reads."""
    torch.manual_seed(0)
    return _DictOutput("scores")


class _FeaturesAndLogits(TinyNet):
    def forward(self, x):
        features = self.conv(x).mean((2, 3))
        return features, self.fc(features)


def features_and_logits() -> nn.Module:
    """Returns ``(features, logits)``: its first element, (batch, 4), is not its logits, (batch, 3)."""
    torch.manual_seed(0)
    return _FeaturesAndLogits(num_classes=3)


class _Probabilities(TinyNet):
    def forward(self, x):
        base = torch.zeros(1000, device=x.device)
        base[294] = 10.0  # brown bear: one of the bear category's 4 classes
        return torch.softmax(base + 0.01 * super().forward(x), 1)


def probabilities() -> nn.Module:
    """Returns softmax probabilities, not logits, nearly all on ImageNet's brown bear, whatever the image."""
    torch.manual_seed(0)
    return _Probabilities()


class _Bfloat16Autocast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=4)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2),
                                  nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.fc(self.body(self.conv(x)).mean((2, 3))).float()


def bfloat16_autocast() -> nn.Module:
    """float32 weights, computing under bfloat16 autocast (a team's mixed-precision forward), float32 logits."""
    torch.manual_seed(0)
    return _Bfloat16Autocast()

# The luminance (ITU-R BT.601) of ImageNet's mean and std: what the suite feeds a 1-channel model without ?mean=/?std=.
GRAY_MEAN = 0.299 * 0.485 + 0.587 * 0.456 + 0.114 * 0.406
GRAY_STD = 0.299 * 0.229 + 0.587 * 0.224 + 0.114 * 0.225


def padded_rgb() -> nn.Module:
    """An RGB model whose input is padded with a constant before its first conv (a ConstantPad2d of 0.5), then a
    non-linear head (an error anywhere in the first conv's output shows). Fed with GRAY_MEAN/GRAY_STD in each channel,
    ``padded_gray`` is its exact 1-channel fold."""
    torch.manual_seed(0)
    return nn.Sequential(nn.ConstantPad2d((2, 1, 0, 3), 0.5), nn.Conv2d(3, 4, 3, stride=2), nn.Tanh(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def padded_gray() -> nn.Module:
    """``padded_rgb`` folded to one channel by the suite's rgb_to_gray: the padding module kept before the new conv."""
    from visionaudit.families.conversion import rgb_to_gray
    from visionaudit.preprocessing import Preprocessing

    pre = Preprocessing(crop_size=32, resize_size=32, mean=(GRAY_MEAN,) * 3, std=(GRAY_STD,) * 3)
    return rgb_to_gray(padded_rgb().eval(), pre).model
