"""Neural-network building blocks with torch.nn's names, arguments and state_dict keys."""

from . import functional, init  # noqa: F401
from .activation import LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, Softmax, Tanh  # noqa: F401
from .container import ModuleDict, ModuleList, Sequential  # noqa: F401
from .conv import Conv2d, ConvTranspose2d  # noqa: F401
from .dropout import Dropout, Dropout2d  # noqa: F401
from .linear import Embedding, Flatten, Identity, Linear  # noqa: F401
from .loss import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss, TripletMarginLoss,
)
from .module import Module, Parameter  # noqa: F401
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d  # noqa: F401
from .upsampling import Upsample, ZeroPad2d  # noqa: F401
