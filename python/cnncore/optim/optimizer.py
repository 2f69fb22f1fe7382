"""Optimizer base class: parameter groups, per-parameter state, zero_grad and state_dict, as in
torch.optim.Optimizer. The update math of each subclass is one fused C++ pass per parameter
(cnncore._core.sgd_step / adam_step / rmsprop_step), updating the parameter's storage in place so
every module holding it sees the new values."""

from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from itertools import chain

import numpy as np

from .. import _core
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a hyperparameter without a default (torch.optim.optimizer.required)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _as_state_tensor(value) -> Tensor:
    """A fresh cnncore Tensor holding a copy of a state value (cnncore / torch tensor, array)."""
    if isinstance(value, Tensor):
        arr = value.detach().numpy()
    elif type(value).__module__.startswith("torch"):
        arr = value.detach().cpu().numpy()
    else:
        arr = np.asarray(value)
    arr = np.array(arr, dtype=np.float32 if arr.dtype.kind in "fb" else np.int64, copy=True,
                   order="C")
    return Tensor._wrap(_core.from_numpy(arr))


def _zeros_like_param(p: Tensor) -> Tensor:
    """Zeroed optimizer state (or gradient) on the parameter's device."""
    return Tensor._wrap(_core.zeros(list(p.shape), "float32", p.device))


def _scalar_tensor(value: float) -> Tensor:
    """A 0-d float32 Tensor, as torch keeps state['step']."""
    return Tensor._wrap(_core.from_numpy(np.array(value, dtype=np.float32)))


def _tensor_value(t) -> float:
    if isinstance(t, Tensor):
        return float(t.detach().numpy().reshape(-1)[0])
    if type(t).__module__.startswith("torch"):
        return float(t.item())
    return float(t)


def _check_float(value, cls: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{cls}: {name} must be a number, but got {value!r} "
                        f"({type(value).__name__})")
    return value


class Optimizer:
    """Holds param_groups (a list of dicts: 'params' plus hyperparameters) and state (per
    parameter, keyed by the parameter object). Subclasses implement step()."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + type(params).__name__)
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def add_param_group(self, param_group: dict) -> None:
        """Adds a group of parameters (with optional per-group hyperparameters)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            param_group["params"] = list(params)
        # model.named_parameters() gives (name, param) pairs: the names go to 'param_names'.
        names = [p[0] for p in param_group["params"] if isinstance(p, tuple)]
        if names:
            if len(names) != len(param_group["params"]):
                raise ValueError("all optimizer params should be with/without names. Some param "
                                 "names are missing")
            param_group["params"] = [p[1] for p in param_group["params"]]
            param_group["param_names"] = names
        if self.param_groups and ("param_names" in param_group) != (
                "param_names" in self.param_groups[0]):
            raise ValueError("all optimizer param groups should be with/without names.")
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + type(p).__name__)
            if p.dtype != np.float32:
                raise TypeError(f"optimizer can only optimize float32 Tensors, but one of the "
                                f"params is {p.dtype}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's .grad (None, or zeros when set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = _zeros_like_param(p)

    def step(self, closure=None):
        raise NotImplementedError

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is not None:
                yield p

    # ---- state_dict ----
    def state_dict(self) -> dict:
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}, indices
        numbering the parameters across groups in order, as torch. State tensors are references
        (not copies), as torch."""
        index: dict[int, int] = {}
        start = 0
        groups = []
        for group in self.param_groups:
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads a state_dict from this class (or from torch.optim: torch tensors are converted).
        State tensors are copied, so the source dict is not aliased."""
        _check_state_dict(state_dict, self.defaults, type(self).__name__)
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k not in id_map:
                continue
            param = id_map[k]
            entry = {}
            for key, value in v.items():
                if value is None or isinstance(value, (numbers.Number, str)):
                    entry[key] = value
                else:
                    t = _as_state_tensor(value)
                    if key != "step" and tuple(t.shape) != tuple(param.shape):
                        raise ValueError(f"loaded state '{key}' has shape {tuple(t.shape)} but "
                                         f"its parameter has shape {tuple(param.shape)}")
                    entry[key] = t
            state[param] = entry
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            new = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            new_groups.append(new)
        self.state = state
        self.param_groups = new_groups

    # ---- helpers for subclasses ----
    @staticmethod
    def _run_closure(closure):
        if closure is None:
            return None
        from ..tensor import enable_grad
        with enable_grad():
            return closure()

    @staticmethod
    def _update_in_place(p: Tensor, fn) -> None:
        """Runs fn(param_core) on the parameter's own storage; a non-contiguous view is updated
        through a contiguous copy written back, so the storage the model sees always changes.
        A blocked (NCHWc) parameter cannot be written through NCHW indices: it gets the updated
        values re-blocked as new storage on the same Parameter object."""
        c = p._c
        if c.is_contiguous():
            fn(c)
            return
        tmp = c.contiguous()
        fn(tmp)
        if c.block:
            p._c = tmp.to_blocked(c.block)
        else:
            c.copy_(tmp)


def _check_state_dict(sd, defaults, cls: str) -> None:
    """The structure load_state_dict relies on, so a damaged checkpoint is a ValueError here
    rather than a KeyError now or a failure at the next step()."""
    op = f"{cls}.load_state_dict"
    if not isinstance(sd, dict) or not isinstance(sd.get("state"), dict) \
            or not isinstance(sd.get("param_groups"), (list, tuple)):
        got = sorted(map(str, sd)) if isinstance(sd, dict) else type(sd).__name__
        raise ValueError(f"{op}: expected a dict with 'state' (a dict) and 'param_groups' "
                         f"(a list), but got {got}")
    for i, g in enumerate(sd["param_groups"]):
        if not isinstance(g, dict) or not isinstance(g.get("params"), (list, tuple)):
            raise ValueError(f"{op}: param_groups[{i}] must be a dict with a 'params' list")
        missing = sorted(set(defaults) - set(g))
        if missing:
            raise ValueError(f"{op}: param_groups[{i}] lacks {', '.join(missing)}")
    for k, v in sd["state"].items():
        if not isinstance(v, dict):
            raise ValueError(f"{op}: state[{k!r}] must be a dict, but got {type(v).__name__}")
