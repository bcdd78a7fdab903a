"""The torchvision architectures audited with random weights: controls for channel bias and the
conversion audits' coverage of real model shapes (first conv at any depth, subclasses, patch embeddings)."""

CONTROL_ZOO = (
    "alexnet", "vgg11_bn", "resnet18", "resnet50", "densenet121", "googlenet", "inception_v3",
    "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5", "squeezenet1_1",
    "efficientnet_b0", "regnet_y_400mf", "convnext_tiny", "vit_b_16", "swin_t", "maxvit_t",
)
CONTROL_GROUP = "random-init controls"  # the report's `control` of their entries: one summary row per family


def control_spec(arch: str) -> str:
    """The control's model spec, already canonical (a test keeps it so): the controller names a control that never
    ran by it without importing torchvision to canonicalize it."""
    return f"torchvision:{arch}:none"


def nondegenerate(model, seed: int = 0):
    """Give zero-initialized weight matrices (ViT's head, for one) small random values, in place.

    A random-init control whose logits are all zero would make every equivalence check pass vacuously.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.02)
    return model


def calibrate_batchnorm(model, inputs):
    """Set every BatchNorm's running statistics from ``inputs`` (normalized model inputs), in place.

    Random-init networks keep BatchNorm's default statistics (mean 0, var 1), so activations can vanish
    or explode with depth: GoogLeNet's logits come out identical for every image, Inception-v3's reach
    1e5. One pass with cumulative averaging gives each control a sane scale. Only the BatchNorm layers
    are put in training mode: dropout and stochastic depth stay off, so the statistics are those of the
    network as it is evaluated, and no random draw (global RNG) enters them.
    """
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration pass
    model.eval()
    for bn in bns:
        bn.train()
    with torch.no_grad():
        model(inputs)
    return model.eval()
