"""The torchvision architectures audited with random weights: controls for channel bias and the
conversion audits' coverage of real model shapes (first conv at any depth, subclasses, patch embeddings)."""

CONTROL_ZOO = (
    "alexnet", "vgg11_bn", "resnet18", "resnet50", "densenet121", "googlenet", "inception_v3",
    "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5", "squeezenet1_1",
    "efficientnet_b0", "regnet_y_400mf", "convnext_tiny", "vit_b_16", "swin_t", "maxvit_t",
)
