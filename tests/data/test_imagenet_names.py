"""The shipped ImageNet-1k names (visionaudit/resources/imagenet_names.txt, read without importing torch) are
torchvision's, in class-index order."""

from torchvision.models import ResNet50_Weights

from visionaudit.data.label_space import imagenet_names


def test_the_shipped_names_are_torchvisions_in_order():
    assert list(imagenet_names()) == list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
