"""Adam and AdamW (torch.optim.Adam / AdamW): the same fused update, AdamW with the weight decay
applied to the parameter (p *= 1 - lr * weight_decay) instead of added to the gradient."""

from __future__ import annotations

from .. import _core
from ..tensor import no_grad
from .optimizer import (Optimizer, _check_float, _scalar_tensor, _tensor_value,
                        _zeros_like_param)
from .sgd import _check_unsupported

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2 (v = max(v_max, v) with amsgrad);
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False):
        name = type(self).__name__
        for arg, v in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay)):
            _check_float(v, name, arg)
        betas = tuple(betas)
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), but got {betas}")
        for i, b in enumerate(betas):
            _check_float(b, name, f"betas[{i}]")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _check_unsupported(name, capturable=capturable, differentiable=differentiable,
                           fused=fused)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)

    def step(self, closure=None):
        """One update of every parameter that has a .grad; returns closure()'s loss if given."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                beta1, beta2 = (float(b) for b in group["betas"])
                amsgrad = bool(group["amsgrad"])
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = _scalar_tensor(0.0)
                        state["exp_avg"] = _zeros_like_param(p)
                        state["exp_avg_sq"] = _zeros_like_param(p)
                        if amsgrad:
                            state["max_exp_avg_sq"] = _zeros_like_param(p)
                    if amsgrad and "max_exp_avg_sq" not in state:
                        state["max_exp_avg_sq"] = _zeros_like_param(p)
                    # float32 like torch's step tensor (exact for any count below 2**24).
                    step = _tensor_value(state["step"]) + 1.0
                    state["step"] = _scalar_tensor(step)
                    vmax = state["max_exp_avg_sq"]._c if amsgrad else None
                    self._update_in_place(p, lambda c, p=p, state=state, vmax=vmax, step=step:
                                          _core.adam_step(
                        c, p.grad._c, state["exp_avg"]._c, state["exp_avg_sq"]._c, vmax,
                        step=step, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                        eps=float(group["eps"]), weight_decay=float(group["weight_decay"]),
                        amsgrad=amsgrad, maximize=bool(group["maximize"]),
                        decoupled_weight_decay=bool(group["decoupled_weight_decay"])))
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
