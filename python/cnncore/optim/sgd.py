"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay
(torch.optim.SGD)."""

from __future__ import annotations

from .. import _core
from ..tensor import no_grad
from .optimizer import Optimizer, _check_float, _zeros_like_param

__all__ = ["SGD"]


def _check_unsupported(cls: str, **flags) -> None:
    for name, value in flags.items():
        if value not in (None, False):
            raise ValueError(f"{cls}: {name}={value!r} is not supported by cnncore (CPU, one fused "
                             "update per tensor); leave it at its default")


class SGD(Optimizer):
    """buf = momentum * buf + (1 - dampening) * g; p -= lr * (g + momentum * buf if nesterov
    else buf), with g = grad + weight_decay * p (negated first when maximize)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None):
        for name, v in (("lr", lr), ("momentum", momentum), ("dampening", dampening),
                        ("weight_decay", weight_decay)):
            _check_float(v, "SGD", name)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_unsupported("SGD", differentiable=differentiable, fused=fused)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    def step(self, closure=None):
        """One update of every parameter that has a .grad; returns closure()'s loss if given."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                momentum = float(group["momentum"])
                lr, dampening = float(group["lr"]), float(group["dampening"])
                weight_decay = float(group["weight_decay"])
                nesterov, maximize = bool(group["nesterov"]), bool(group["maximize"])
                for p in group["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    first = buf is None
                    if momentum != 0 and first:
                        buf = _zeros_like_param(p)
                    bc = None if momentum == 0 else buf._c
                    c = p._c
                    if c.is_contiguous():  # the usual case, without a closure per parameter
                        _core.sgd_step(c, grad._c, bc, lr, momentum, dampening, weight_decay,
                                       nesterov, maximize, first)
                    else:
                        self._update_in_place(p, lambda c, g=grad._c, bc=bc, first=first:
                                              _core.sgd_step(c, g, bc, lr, momentum, dampening,
                                                             weight_decay, nesterov, maximize,
                                                             first))
                    if momentum != 0:
                        state["momentum_buffer"] = buf
        return loss
