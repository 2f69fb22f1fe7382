"""Optimizers and learning-rate schedules with torch.optim's names, signatures and state_dict
format; the update math runs in C++ (one fused pass per parameter tensor).

Schedulers (cnncore.optim.lr_scheduler): StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
OneCycleLR, ReduceLROnPlateau, LinearLR, ConstantLR, LambdaLR, SequentialLR, ChainedScheduler."""

from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "LBFGS", "lr_scheduler"]
