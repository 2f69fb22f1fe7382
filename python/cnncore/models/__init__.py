"""The model zoo: the classic networks of the notes, with torchvision's module structure and
state_dict keys where torchvision has the network, so PyTorch weights load by key."""

from ..detection import TinyYOLO
from ..localization import LocalizationNet
from ..style import style_vgg
from .alexnet import AlexNet, alexnet  # noqa: F401
from .googlenet import BasicConv2d, GoogLeNet, Inception, InceptionAux, InceptionBlock, googlenet  # noqa: F401
from .lenet import LeNet5, lenet5  # noqa: F401
from .mobilenet import (  # noqa: F401
    Conv2dNormActivation, DepthwiseSeparable, InvertedResidual, MobileNetV1, MobileNetV2,
    mobilenet_v1, mobilenet_v2, separable_savings,
)
from .multi_input import MultiInputNet  # noqa: F401
from .resnet import (  # noqa: F401
    BasicBlock, Bottleneck, CifarResNet, ResNet, resnet18, resnet20, resnet32, resnet34, resnet44,
    resnet50, resnet56, resnet101, resnet152,
)
from .siamese import (  # noqa: F401
    ContrastiveLoss, EmbeddingNet, SemiHardTripletLoss, SiameseNet, balanced_batches,
    choose_threshold, contrastive_loss, distance_matrix, embed, episode_accuracies,
    one_shot_accuracy, one_shot_episodes, semi_hard_triplets, verification_pairs,
)
from .unet import DoubleConv, UNet, unet  # noqa: F401
from .vgg import VGG, vgg11, vgg13, vgg16, vgg19  # noqa: F401

_BUILDERS = {
    "lenet5": lenet5, "alexnet": alexnet, "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16,
    "vgg19": vgg19, "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "resnet101": resnet101, "resnet152": resnet152, "resnet20": resnet20, "resnet32": resnet32,
    "resnet44": resnet44, "resnet56": resnet56, "googlenet": googlenet,
    "mobilenet_v1": mobilenet_v1, "mobilenet_v2": mobilenet_v2, "unet": unet,
    # the case-study networks, which live beside their losses and data (detection, ...)
    "tiny_yolo": TinyYOLO, "localization_net": LocalizationNet, "siamese": SiameseNet,
    "style_vgg": style_vgg,
}


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_model(name: str, **kwargs):
    """Builds a zoo model by name (as torchvision.models.get_model)."""
    if name not in _BUILDERS:
        raise ValueError(f"get_model: unknown model '{name}'; available: "
                         f"{', '.join(list_models())}")
    return _BUILDERS[name](**kwargs)
