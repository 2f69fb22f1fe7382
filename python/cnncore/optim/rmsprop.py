"""RMSprop (torch.optim.RMSprop): optional centering, momentum, weight decay."""

from __future__ import annotations

from .. import _core
from ..tensor import no_grad
from .optimizer import (Optimizer, _check_float, _scalar_tensor, _tensor_value,
                        _zeros_like_param)
from .sgd import _check_unsupported

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g^2; avg = sqrt(v - lerp(ga, g, 1 - alpha)^2 if centered else v)
    + eps; p -= lr * g / avg (through a momentum buffer when momentum > 0)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False):
        for name, v in (("lr", lr), ("alpha", alpha), ("eps", eps),
                        ("weight_decay", weight_decay), ("momentum", momentum)):
            _check_float(v, "RMSprop", name)
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_unsupported("RMSprop", capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("maximize", False)

    def step(self, closure=None):
        """One update of every parameter that has a .grad; returns closure()'s loss if given."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                momentum = float(group["momentum"])
                centered = bool(group["centered"])
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _scalar_tensor(0.0)
                        state["square_avg"] = _zeros_like_param(p)
                        if momentum > 0:
                            state["momentum_buffer"] = _zeros_like_param(p)
                        if centered:
                            state["grad_avg"] = _zeros_like_param(p)
                    if momentum > 0 and "momentum_buffer" not in state:
                        state["momentum_buffer"] = _zeros_like_param(p)
                    if centered and "grad_avg" not in state:
                        state["grad_avg"] = _zeros_like_param(p)
                    state["step"] = _scalar_tensor(_tensor_value(state["step"]) + 1.0)
                    buf = state["momentum_buffer"]._c if momentum > 0 else None
                    gavg = state["grad_avg"]._c if centered else None
                    self._update_in_place(p, lambda c, p=p, state=state, buf=buf, gavg=gavg:
                                          _core.rmsprop_step(
                        c, p.grad._c, state["square_avg"]._c, buf, gavg, lr=float(group["lr"]),
                        alpha=float(group["alpha"]), eps=float(group["eps"]),
                        weight_decay=float(group["weight_decay"]), momentum=momentum,
                        centered=centered, maximize=bool(group["maximize"])))
        return loss
