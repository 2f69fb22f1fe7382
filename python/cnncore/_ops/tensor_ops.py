"""Tensor arithmetic, reductions and shape ops, with autograd; and the Tensor methods/operators.

Every function takes torch's argument names, order and defaults. The math runs in the C++ core
(``_core.binary``, ``_core.sum``, ...); Python only checks arguments and wires the backward.

Dtypes follow torch where it matters: float32 op float32 -> float32; an int64 tensor with a float
operand is promoted to float32; int64 with int64 (or an int) stays int64 (computed with numpy, never
differentiable); ``/`` always gives float32.

Comparisons (``==``, ``<``, ``.eq()``, ``.gt()``, ...) return a float32 tensor of 1.0 / 0.0 that
also works as a boolean mask: ``x[x > 0]``, ``(pred == y).sum()``, ``(pred == y).float().mean()``.

Indexing: ints, slices, None and Ellipsis give views sharing memory (as torch); integer arrays,
int64 tensors and boolean masks give copies; the backward scatters (``np.add.at``) into zeros.
``//`` and ``%`` follow numpy (= torch's floor_divide / remainder) and are not differentiable.

Importing this module installs the methods and operators on ``cnncore.Tensor`` (plain assignment).
"""

from __future__ import annotations

import builtins
import collections
import numbers

import numpy as np

from .. import _core
from ..tensor import Tensor, _record, float32, int64
from ._args import as_tensor, check_float, check_int, host_numpy, on_device

__all__ = [
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "square",
    "maximum", "minimum", "clamp", "sum", "mean", "max", "min", "argmax", "argmin",
    "eq", "ne", "lt", "le", "gt", "ge",
    "reshape", "view", "flatten", "permute", "transpose", "unsqueeze", "squeeze", "expand",
    "cat", "concat", "stack", "narrow", "split", "chunk", "where", "var", "std",
    "sort", "argsort", "topk",
]

_py_max, _py_min, _py_any, _py_all = builtins.max, builtins.min, builtins.any, builtins.all
_py_sum = builtins.sum
_builtin_sum = builtins.sum


class DimError(IndexError, ValueError):
    """A dim out of range: an IndexError as in torch, and a ValueError as cnncore's rule says."""


class _Mask(Tensor):
    """The float32 1.0 / 0.0 result of a comparison; indexing treats it as a boolean mask."""

    __slots__ = ()


# ---- argument helpers ----------------------------------------------------------------------------
def _operand(v, op: str, arg: str):
    """Tensor as is; a Python/numpy number -> float or int; an array or list -> Tensor; else
    TypeError."""
    if isinstance(v, Tensor):
        return v
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, np.ndarray):
        return as_tensor(v, op, arg) if v.ndim else _operand(v.item(), op, arg)
    if isinstance(v, (list, tuple)):
        return as_tensor(np.asarray(v), op, arg)
    raise TypeError(f"{op}: {arg} must be a Tensor, a number or an array, but got "
                    f"{type(v).__name__}")


def _c_array(value, dtype) -> np.ndarray:
    """A C-contiguous copy with the given dtype; unlike np.ascontiguousarray, 0-d stays 0-d."""
    return np.array(value, dtype=dtype, order="C")


def _float_core(t: Tensor):
    """The float32 _core tensor of t (int64 promoted: a copy, never differentiable)."""
    if t.dtype == float32:
        return t._c
    return _core.from_numpy(t._c.numpy().astype(np.float32))


def wrap_dim(dim, ndim: int, op: str, arg: str = "dim", extra: int = 0) -> int:
    """dim in [-(ndim+extra), ndim+extra-1] (0-d counts as 1-d, as in torch) -> non-negative."""
    d = check_int(dim, op, arg)
    n = _py_max(ndim + extra, 1)
    if not -n <= d < n:
        raise DimError(f"{op}: {arg} must be in [{-n}, {n - 1}], but got {d}")
    return d + n if d < 0 else d


def _dims_arg(dim, ndim: int, op: str):
    """None / int / sequence of ints -> list of non-negative dims (None -> [] meaning all)."""
    if dim is None:
        return []
    if isinstance(dim, (tuple, list)):
        ds = [wrap_dim(d, ndim, op) for d in dim]
        if len(set(ds)) != len(ds):
            raise ValueError(f"{op}: dim {tuple(dim)} names a dimension more than once")
        return ds if ds else []
    return [wrap_dim(dim, ndim, op)]


def _shape_args(shape, op: str, arg: str = "shape") -> list:
    """reshape(2, 3) / reshape((2, 3)) / reshape([2, 3]) -> [2, 3], ints only."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if isinstance(s, Tensor) and s.numel() == 1 and s.dtype == int64:
            s = s.item()
        out.append(check_int(s, op, arg))
    return out


def _sum_to(g, shape):
    """Reduces a broadcast gradient to an input's shape."""
    return g if tuple(g.shape) == tuple(shape) else _core.sum_to_shape(g, list(shape))


def _as_core_error(fn, op: str, *args):
    """Runs a _core.Tensor method and renames its op in the error message (view -> reshape)."""
    try:
        return fn(*args)
    except ValueError as e:
        msg = str(e)
        if not msg.startswith(op + ":"):
            msg = f"{op}: " + msg.split(": ", 1)[-1]
        raise ValueError(msg) from None


# ---- elementwise binary --------------------------------------------------------------------------
_NP_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
}
_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")


def _int_binary(op: str, a, b) -> Tensor:
    """int64 (tensor or int) with int64: numpy, no autograd, as torch's integer arithmetic."""
    x = a._c.numpy() if isinstance(a, Tensor) else np.int64(a)
    y = b._c.numpy() if isinstance(b, Tensor) else np.int64(b)
    try:
        np.broadcast_shapes(np.shape(x), np.shape(y))
    except ValueError:
        raise ValueError(f"{op}: shapes {tuple(np.shape(x))} and {tuple(np.shape(y))} cannot "
                         "be broadcast") from None
    if op == "pow" and np.any(np.asarray(y) < 0):
        raise ValueError(f"{op}: integers to negative integer powers are not allowed")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = _NP_BINARY[op](x, y)
    if op in _COMPARE:
        return _Mask._wrap(_core.from_numpy(_c_array(r, dtype=np.float32)))
    dt = np.float32 if op == "div" else np.int64
    return Tensor._wrap(_core.from_numpy(_c_array(r, dtype=dt)))


def _intlike(v) -> bool:
    return isinstance(v, int) or (isinstance(v, Tensor) and v.dtype == int64)


def _binary(op: str, input, other, alpha=1):
    a, b = _operand(input, op, "input"), _operand(other, op, "other")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: at least one of input and other must be a Tensor, but got "
                        f"{type(input).__name__} and {type(other).__name__}")
    if alpha != 1:
        if op not in ("add", "sub"):
            raise TypeError(f"{op}: alpha is only accepted by add and sub")
        b = b * check_float(alpha, op, "alpha") if isinstance(b, Tensor) else b * alpha
    if _intlike(a) and _intlike(b):
        return _int_binary(op, a, b)
    if not isinstance(b, Tensor):
        return _binary_scalar(op, a, float(b), False)
    if not isinstance(a, Tensor):
        return _binary_scalar(op, b, float(a), True)
    return _binary_tensors(op, a, b)


def _binary_tensors(op: str, a: Tensor, b: Tensor) -> Tensor:
    ac, bc = _float_core(a), _float_core(b)
    y = _core.binary(op, ac, bc)
    if op in _COMPARE:
        return _Mask._wrap(y)

    def backward(g, needs):
        ga = gb = None
        if op == "add":
            ga, gb = (g if needs[0] else None), (g if needs[1] else None)
        elif op == "sub":
            ga = g if needs[0] else None
            gb = _core.unary("neg", g) if needs[1] else None
        elif op == "mul":
            ga = _core.mul(g, bc) if needs[0] else None
            gb = _core.mul(g, ac) if needs[1] else None
        elif op == "div":
            ga = _core.div(g, bc) if needs[0] else None
            if needs[1]:  # d(a/b)/db = -y / b
                gb = _core.unary("neg", _core.div(_core.mul(g, y), bc))
        elif op == "pow":
            if needs[0]:
                bm1 = _core.binary_scalar("sub", bc, 1.0)
                ga = _core.mul(g, _core.mul(bc, _core.binary("pow", ac, bm1)))
            if needs[1]:
                gb = _core.mul(g, _core.mul(y, _core.unary("log", ac)))
                gb = _zero_where_base_zero(gb, ac, bc)
        else:  # maximum / minimum: ties split the gradient, as torch does
            pick = "gt" if op == "maximum" else "lt"
            wa = _core.add(_core.binary(pick, ac, bc),
                           _core.binary_scalar("mul", _core.binary("eq", ac, bc), 0.5))
            ga = _core.mul(g, wa) if needs[0] else None
            gb = _core.mul(g, _core.binary_scalar("sub", wa, 1.0, True)) if needs[1] else None
        return (None if ga is None else _sum_to(ga, a.shape),
                None if gb is None else _sum_to(gb, b.shape))

    return _record(y, (a, b), backward, f"{op.capitalize()}Backward")


def _zero_where_base_zero(gb, ac, bc):
    """torch's pow gives the exponent no gradient where the base is 0 (log(0) would be -inf)."""
    base = host_numpy(ac)
    if not np.any(base == 0):
        return gb
    arr = np.array(host_numpy(gb), copy=True)
    arr[np.broadcast_to(base == 0, arr.shape)] = 0.0
    return on_device(arr, gb.device)


def _binary_scalar(op: str, x: Tensor, s: float, scalar_first: bool) -> Tensor:
    xc = _float_core(x)
    y = _core.binary_scalar(op, xc, s, scalar_first)
    if op in _COMPARE:
        return _Mask._wrap(y)

    def backward(g, needs):
        if op == "add":
            return (g,)
        if op == "sub":
            return (_core.unary("neg", g) if scalar_first else g,)
        if op == "mul":
            return (_core.binary_scalar("mul", g, s),)
        if op == "div":
            if not scalar_first:
                return (_core.binary_scalar("div", g, s),)
            return (_core.unary("neg", _core.div(_core.mul(g, y), xc)),)  # d(s/x) = -y/x
        if op == "pow":
            if scalar_first:  # d(s**x) = y ln s
                return (_core.binary_scalar("mul", _core.mul(g, y), float(np.log(np.float32(s)))),)
            if s == 0.0:
                return (_core.binary_scalar("mul", g, 0.0),)
            if s == 1.0:
                return (g,)
            if s == 2.0:
                return (_core.binary_scalar("mul", _core.mul(g, xc), 2.0),)
            d = _core.binary_scalar("mul", _core.binary_scalar("pow", xc, s - 1.0), s)
            return (_core.mul(g, d),)
        # maximum/minimum with a scalar (clamp): the gradient flows where x is kept
        keep = _core.binary_scalar("ge" if op == "maximum" else "le", xc, s)
        return (_core.mul(g, keep),)

    return _record(y, (x,), backward, f"{op.capitalize()}Backward")


def add(input, other, *, alpha=1):
    """input + alpha * other, with broadcasting."""
    return _binary("add", input, other, alpha)


def sub(input, other, *, alpha=1):
    """input - alpha * other, with broadcasting."""
    return _binary("sub", input, other, alpha)


def mul(input, other):
    return _binary("mul", input, other)


def div(input, other, *, rounding_mode=None):
    """True division; rounding_mode 'trunc' or 'floor' as in torch (no gradient through it)."""
    if rounding_mode is None:
        return _binary("div", input, other)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', but got "
                         f"{rounding_mode!r}")
    q = _binary("div", input, other)
    arr = q.detach().numpy()
    r = np.trunc(arr) if rounding_mode == "trunc" else np.floor(arr)
    ints = all(not isinstance(v, Tensor) and isinstance(v, numbers.Integral) or
               isinstance(v, Tensor) and v.dtype == int64 for v in (input, other))
    return Tensor._wrap(_core.from_numpy(_c_array(r, np.int64 if ints else np.float32)))


def pow(input, exponent):
    """input ** exponent; either may be a number."""
    return _binary("pow", input, exponent)


def maximum(input, other):
    return _binary("maximum", input, other)


def minimum(input, other):
    return _binary("minimum", input, other)


def eq(input, other):
    return _binary("eq", input, other)


def ne(input, other):
    return _binary("ne", input, other)


def lt(input, other):
    return _binary("lt", input, other)


def le(input, other):
    return _binary("le", input, other)


def gt(input, other):
    return _binary("gt", input, other)


def ge(input, other):
    return _binary("ge", input, other)


def clamp(input, min=None, max=None):
    """Limits input to [min, max]; min/max numbers or tensors. The gradient flows where
    min <= input <= max."""
    x = as_tensor(input, "clamp", "input")
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    if x.dtype == int64 and all(v is None or (isinstance(v, numbers.Integral) and not
                                              isinstance(v, bool)) for v in (min, max)):
        return Tensor._wrap(_core.from_numpy(np.array(np.clip(x._c.numpy(), min, max),
                                                      dtype=np.int64, order="C")))
    y = x
    if min is not None:
        lo = min if isinstance(min, Tensor) else check_float(min, "clamp", "min")
        y = _binary("maximum", y, lo)
    if max is not None:
        hi = max if isinstance(max, Tensor) else check_float(max, "clamp", "max")
        y = _binary("minimum", y, hi)
    return y


# ---- elementwise unary ---------------------------------------------------------------------------
_NP_INT_UNARY = {"neg": np.negative, "abs": np.abs, "square": np.square}


def _unary(op: str, input) -> Tensor:
    x = as_tensor(input, op, "input")
    if x.dtype == int64 and op in _NP_INT_UNARY:  # stays int64, as in torch
        r = _NP_INT_UNARY[op](x._c.numpy())
        return Tensor._wrap(_core.from_numpy(np.array(r, dtype=np.int64, order="C")))
    xc = _float_core(x)
    y = _core.unary(op, xc)

    def backward(g, needs):
        if op == "neg":
            return (_core.unary("neg", g),)
        if op == "exp":
            return (_core.mul(g, y),)
        if op == "log":
            return (_core.div(g, xc),)
        if op == "sqrt":
            return (_core.binary_scalar("mul", _core.div(g, y), 0.5),)
        if op == "abs":
            return (_core.mul(g, _core.unary("sign", xc)),)
        if op == "square":
            return (_core.binary_scalar("mul", _core.mul(g, xc), 2.0),)
        raise RuntimeError(f"{op}: no gradient")

    return _record(y, (x,), backward, f"{op.capitalize()}Backward")


def neg(input):
    return _unary("neg", input)


def exp(input):
    return _unary("exp", input)


def log(input):
    return _unary("log", input)


def sqrt(input):
    return _unary("sqrt", input)


def abs(input):
    return _unary("abs", input)


def square(input):
    return _unary("square", input)


# ---- reductions ----------------------------------------------------------------------------------
def _reduce(op: str, input, dim, keepdim) -> Tensor:
    x = as_tensor(input, op, "input")
    dims = _dims_arg(dim, x.ndim, op)
    if not isinstance(keepdim, (bool, np.bool_)):
        raise TypeError(f"{op}: keepdim must be a bool, but got {type(keepdim).__name__}")
    if x.dtype == int64:
        if op == "mean":
            raise TypeError("mean: input must be float32 (an integer mean has no exact type), "
                            "but got int64; use .float() first")
        arr = x._c.numpy()
        r = arr.sum(axis=tuple(dims) if dims else None, keepdims=bool(keepdim)) if arr.ndim else arr
        return Tensor._wrap(_core.from_numpy(_c_array(r, dtype=np.int64)))
    fn = _core.sum if op == "sum" else _core.mean
    y = fn(x._c, dims, bool(keepdim))
    shape = tuple(x.shape)
    red = set(dims) if dims else set(range(len(shape)))
    keep_shape = [1 if i in red else s for i, s in enumerate(shape)]
    count = 1
    for i in red:
        count *= shape[i] if i < len(shape) else 1

    def backward(g, needs):
        if op == "mean":
            g = _core.binary_scalar("mul", g, 1.0 / count) if count else g
        return (g.reshape(keep_shape).expand(list(shape)).contiguous(),)

    return _record(y, (x,), backward, "SumBackward" if op == "sum" else "MeanBackward")


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over dim (an int, a tuple of ints, or None for all)."""
    _check_dtype_kw(dtype, "sum")
    return _reduce("sum", input, dim, keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over dim (an int, a tuple of ints, or None for all)."""
    _check_dtype_kw(dtype, "mean")
    return _reduce("mean", input, dim, keepdim)


def _check_dtype_kw(dtype, op):
    if dtype is not None and np.dtype(dtype) != float32:
        raise TypeError(f"{op}: dtype must be None or float32, but got {dtype}")


_max_result = collections.namedtuple("max", ["values", "indices"])
_min_result = collections.namedtuple("min", ["values", "indices"])


def _max_min(op: str, input, dim, keepdim):
    x = as_tensor(input, op, "input")
    if isinstance(dim, (Tensor, np.ndarray)):
        return (maximum if op == "max" else minimum)(x, dim)
    if x.numel() == 0 and (dim is None or x.ndim == 0 or x.shape[wrap_dim(dim, x.ndim, op)] == 0):
        raise ValueError(f"{op}: expected a non-empty input to reduce over, but got shape "
                         f"{tuple(x.shape)}")
    if x.dtype == int64:
        arr = x._c.numpy()
        f = np.max if op == "max" else np.min
        af = np.argmax if op == "max" else np.argmin
        if dim is None:
            return Tensor._wrap(_core.from_numpy(_c_array(f(arr), dtype=np.int64)))
        d = wrap_dim(dim, x.ndim, op)
        if arr.ndim == 0:
            v, i = arr.copy(), np.zeros((), np.int64)
        else:
            v, i = f(arr, axis=d, keepdims=bool(keepdim)), af(arr, axis=d, keepdims=bool(keepdim))
        res = _max_result if op == "max" else _min_result
        return res(Tensor._wrap(_core.from_numpy(_c_array(v, np.int64))),
                   Tensor._wrap(_core.from_numpy(_c_array(i, np.int64))))
    # min is max of the negation; the C++ kernel has only max.
    src = x._c if op == "max" else _core.unary("neg", x._c)
    shape = tuple(x.shape)
    if dim is None:
        vals, idx = _core.max_dim(src.reshape([-1]), 0, False)
        v = vals if op == "max" else _core.unary("neg", vals)

        def backward_all(g, needs):
            # torch spreads the gradient evenly over tied maxima
            mask = _core.binary("eq", x._c, v)
            n = float(host_numpy(_core.sum(mask, [], False)))
            return (_core.mul(mask, _core.binary_scalar("div", g, n)),)

        return _record(v, (x,), backward_all, f"{op.capitalize()}Backward")
    d = wrap_dim(dim, x.ndim, op)
    vals, idx = _core.max_dim(src, d, bool(keepdim))
    if op == "min":
        vals = _core.unary("neg", vals)

    def backward(g, needs):
        out = np.zeros(shape, dtype=np.float32)
        if out.ndim == 0:
            return (g.reshape([]).contiguous(),)
        gh, ih = host_numpy(g), host_numpy(idx)
        gi = gh if keepdim else np.expand_dims(gh, d)
        ii = ih if keepdim else np.expand_dims(ih, d)
        np.put_along_axis(out, ii, gi, axis=d)
        return (on_device(out, g.device),)

    values = _record(vals, (x,), backward, f"{op.capitalize()}Backward")
    res = _max_result if op == "max" else _min_result
    return res(values, Tensor._wrap(idx))


def max(input, dim=None, keepdim=False):
    """The maximum of all elements (dim None), or (values, indices) along dim, or the
    elementwise maximum when dim is a Tensor (torch.max(a, b))."""
    return _max_min("max", input, dim, keepdim)


def min(input, dim=None, keepdim=False):
    """As max, for the minimum."""
    return _max_min("min", input, dim, keepdim)


def _arg(op: str, input, dim, keepdim) -> Tensor:
    x = as_tensor(input, op, "input")
    if x.numel() == 0:
        raise ValueError(f"{op}: expected a non-empty input, but got shape {tuple(x.shape)}")
    if x.dtype == int64:
        arr = x._c.numpy()
        f = np.argmax if op == "argmax" else np.argmin
        if dim is None:
            r = np.asarray(f(arr))
        else:
            d = wrap_dim(dim, x.ndim, op)
            r = f(arr, axis=d, keepdims=bool(keepdim)) if arr.ndim else np.zeros((), np.int64)
        return Tensor._wrap(_core.from_numpy(_c_array(r, np.int64)))
    src = x._c if op == "argmax" else _core.unary("neg", x._c)
    if dim is None:
        r = _core.argmax(src.reshape([-1]), 0, False)
        if keepdim:
            r = r.reshape([1] * x.ndim)
        return Tensor._wrap(r)
    return Tensor._wrap(_core.argmax(src, wrap_dim(dim, x.ndim, op), bool(keepdim)))


def argmax(input, dim=None, keepdim=False):
    """Index of the maximum (flattened when dim is None); first index on ties; int64."""
    return _arg("argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg("argmin", input, dim, keepdim)


_sort_result = collections.namedtuple("sort", ["values", "indices"])
_topk_result = collections.namedtuple("topk", ["values", "indices"])


def _gather_op(x: Tensor, d: int, order: np.ndarray, name: str):
    """(values, indices) = x gathered along d at `order` (int64 numpy), with a scatter backward."""
    arr = x._c.numpy()
    vals = np.take_along_axis(arr, order, axis=d) if arr.ndim else arr.copy()
    vc = _core.from_numpy(np.array(vals, dtype=arr.dtype, order="C"))
    ic = _core.from_numpy(np.array(order, dtype=np.int64, order="C"))
    if x.dtype != float32:
        return Tensor._wrap(vc), Tensor._wrap(ic)
    shape = arr.shape

    def backward(g, needs):
        out = np.zeros(shape, dtype=np.float32)
        if out.ndim == 0:
            return (g,)
        np.put_along_axis(out, order, g.numpy(), axis=d)
        return (_core.from_numpy(out),)

    return _record(vc, (x,), backward, name), Tensor._wrap(ic)


def _order(x: Tensor, dim, descending: bool, op: str):
    arr = x._c.numpy()
    if arr.ndim == 0:
        wrap_dim(dim, 0, op)
        return 0, np.zeros((), np.int64)
    d = wrap_dim(dim, x.ndim, op)
    # stable, so equal values keep their order; descending sorts the negation (nan last either way
    # in numpy; torch puts nan first when descending)
    key = -arr if descending and arr.dtype == np.float32 else arr
    idx = np.argsort(key, axis=d, kind="stable")
    if descending and arr.dtype != np.float32:
        idx = np.flip(np.argsort(arr, axis=d, kind="stable"), axis=d)
    return d, idx


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim (equal values keep their order)."""
    x = as_tensor(input, "sort", "input")
    d, idx = _order(x, dim, bool(descending), "sort")
    v, i = _gather_op(x, d, idx, "SortBackward")
    return _sort_result(v, i)


def argsort(input, dim=-1, descending=False, stable=False):
    x = as_tensor(input, "argsort", "input")
    _, idx = _order(x, dim, bool(descending), "argsort")
    return Tensor._wrap(_core.from_numpy(np.array(idx, dtype=np.int64, order="C")))


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (or smallest) along dim, best first."""
    x = as_tensor(input, "topk", "input")
    kk = check_int(k, "topk", "k")
    n = x.shape[wrap_dim(dim, x.ndim, "topk")] if x.ndim else 1
    if not 0 <= kk <= n:
        raise ValueError(f"topk: k must be in [0, {n}] (the size of dim {dim}), but got {kk}")
    d, idx = _order(x, dim, bool(largest), "topk")
    if x.ndim:
        idx = np.take(idx, np.arange(kk), axis=d)
    v, i = _gather_op(x, d, idx, "TopkBackward")
    return _topk_result(v, i)


# ---- shape ops -----------------------------------------------------------------------------------
def _view_op(x: Tensor, y_core, name: str) -> Tensor:
    shape = list(x.shape)
    return _record(y_core, (x,), lambda g, needs: (g.reshape(shape),), name)


def reshape(input, shape):
    """The same elements in a new shape (one -1 inferred); a view when the memory allows."""
    x = as_tensor(input, "reshape", "input")
    s = _shape_args((shape,), "reshape")
    return _view_op(x, _as_core_error(x._c.reshape, "reshape", s), "ReshapeBackward")


def view(input, *shape):
    """A view in a new shape; the input must be contiguous (else use reshape)."""
    x = as_tensor(input, "view", "input")
    s = _shape_args(shape, "view")
    return _view_op(x, _as_core_error(x._c.view, "view", s), "ViewBackward")


def flatten(input, start_dim=0, end_dim=-1):
    """Merges dims start_dim..end_dim into one."""
    x = as_tensor(input, "flatten", "input")
    shape = list(x.shape)
    if not shape:
        return _view_op(x, x._c.reshape([1]), "FlattenBackward")
    s = wrap_dim(start_dim, len(shape), "flatten", "start_dim")
    e = wrap_dim(end_dim, len(shape), "flatten", "end_dim")
    if s > e:
        raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    n = 1
    for v in shape[s:e + 1]:
        n *= v
    return _view_op(x, x._c.reshape(shape[:s] + [n] + shape[e + 1:]), "FlattenBackward")


def permute(input, dims):
    """Reorders dims (a view): ``permute(x, (2, 0, 1))``; the method also takes
    ``x.permute(2, 0, 1)``."""
    x = as_tensor(input, "permute", "input")
    ds = _shape_args((dims,), "permute", "dims")
    if len(ds) != x.ndim:
        raise ValueError(f"permute: dims must list {x.ndim} dimensions, but got {len(ds)} "
                         f"({tuple(ds)})")
    ds = [wrap_dim(d, x.ndim, "permute", "dims") for d in ds]
    if len(set(ds)) != len(ds):
        raise ValueError(f"permute: dims must be a permutation, but got {tuple(dims)}")
    inv = [0] * len(ds)
    for i, d in enumerate(ds):
        inv[d] = i
    return _record(x._c.permute(ds), (x,), lambda g, needs: (g.permute(inv),), "PermuteBackward")


def transpose(input, dim0, dim1):
    """Swaps two dims (a view)."""
    x = as_tensor(input, "transpose", "input")
    if x.ndim == 0:
        wrap_dim(dim0, 0, "transpose", "dim0")
        wrap_dim(dim1, 0, "transpose", "dim1")
        return _view_op(x, x._c, "TransposeBackward")
    a = wrap_dim(dim0, x.ndim, "transpose", "dim0")
    b = wrap_dim(dim1, x.ndim, "transpose", "dim1")
    ds = list(range(x.ndim))
    ds[a], ds[b] = ds[b], ds[a]
    return _record(x._c.permute(ds), (x,), lambda g, needs: (g.permute(ds),), "TransposeBackward")


def unsqueeze(input, dim):
    """Inserts a dim of size 1 at dim (in [-ndim-1, ndim])."""
    x = as_tensor(input, "unsqueeze", "input")
    d = wrap_dim(dim, x.ndim, "unsqueeze", extra=1)
    shape = list(x.shape)
    shape.insert(d, 1)
    return _view_op(x, x._c.reshape(shape), "UnsqueezeBackward")


def squeeze(input, dim=None):
    """Removes dims of size 1 (all, or those named by dim: an int or a tuple)."""
    x = as_tensor(input, "squeeze", "input")
    shape = list(x.shape)
    if dim is None:
        new = [s for s in shape if s != 1]
    else:
        ds = set(_dims_arg(dim, x.ndim, "squeeze")) if shape else set()
        new = [s for i, s in enumerate(shape) if not (i in ds and s == 1)]
    return _view_op(x, x._c.reshape(new), "SqueezeBackward")


def expand(input, *sizes):
    """A broadcast view to sizes (-1 keeps a dim); the gradient is summed back."""
    x = as_tensor(input, "expand", "input")
    sz = _shape_args(sizes, "expand", "sizes")
    if len(sz) < x.ndim:
        raise ValueError(f"expand: the number of sizes ({len(sz)}) must be at least the number "
                         f"of dims ({x.ndim}); got sizes {tuple(sz)} for shape {tuple(x.shape)}")
    lead = len(sz) - x.ndim
    out = []
    for i, s in enumerate(sz):
        if s == -1:
            if i < lead:
                raise ValueError(f"expand: -1 is not allowed for a new leading dim, but got "
                                 f"sizes {tuple(sz)}")
            s = x.shape[i - lead]
        elif s < 0:
            raise ValueError(f"expand: sizes must be non-negative or -1, but got {tuple(sz)}")
        out.append(s)
    y = x._c.expand(out)
    shape = list(x.shape)
    return _record(y, (x,), lambda g, needs: (_sum_to(g, shape),), "ExpandBackward")


def _tensor_list(tensors, op: str):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: tensors must be a list or tuple of Tensors, but got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    return [as_tensor(t, op, f"tensors[{i}]") for i, t in enumerate(tensors)]


def cat(tensors, dim=0):
    """Joins tensors along an existing dim."""
    ts = _tensor_list(tensors, "cat")
    d = check_int(dim, "cat", "dim")
    ref = next((t for t in ts if not (t.ndim == 1 and t.numel() == 0)), ts[0])
    if ref.ndim:
        d = wrap_dim(d, ref.ndim, "cat")
    if _py_any(t.dtype != ts[0].dtype for t in ts) and _py_all(t.dtype in (float32, int64)
                                                               for t in ts):
        ts = [t if t.dtype == float32 else Tensor._wrap(_float_core(t)) for t in ts]
    y = _core.cat([t._c for t in ts], d)
    # PyTorch's legacy rule (mirrored in C++): 1-D empty tensors are skipped beside others.
    skipped = [t is not ref and t.ndim == 1 and t.numel() == 0 for t in ts]
    sizes = [0 if skip else t.shape[d] for t, skip in zip(ts, skipped)]

    def backward(g, needs):
        out, start = [], 0
        for n, need, skip in zip(sizes, needs, skipped):
            out.append(g.narrow(d, start, n).contiguous() if need and not skip else None)
            start += n
        return tuple(out)

    return _record(y, tuple(ts), backward, "CatBackward")


concat = cat


def stack(tensors, dim=0):
    """Joins same-shape tensors along a new dim."""
    ts = _tensor_list(tensors, "stack")
    d = wrap_dim(dim, ts[0].ndim, "stack", extra=1)
    y = _core.stack([t._c for t in ts], d)
    shape = list(ts[0].shape)

    def backward(g, needs):
        return tuple(g.narrow(d, i, 1).reshape(shape) if need else None
                     for i, need in enumerate(needs))

    return _record(y, tuple(ts), backward, "StackBackward")


def narrow(input, dim, start, length):
    """The slice [start, start + length) of dim (a view)."""
    x = as_tensor(input, "narrow", "input")
    if x.ndim == 0:
        raise ValueError("narrow: input must have at least one dimension, but got a 0-d tensor")
    d = wrap_dim(dim, x.ndim, "narrow")
    n = x.shape[d]
    st, ln = check_int(start, "narrow", "start"), check_int(length, "narrow", "length")
    if st < 0:
        st += n
    if not (0 <= st <= n and 0 <= ln and st + ln <= n):
        raise ValueError(f"narrow: start ({start}) + length ({length}) must lie within dim {d} "
                         f"of size {n}")
    shape = list(x.shape)

    def backward(g, needs):
        out = np.zeros(shape, dtype=np.float32)
        idx = [slice(None)] * len(shape)
        idx[d] = slice(st, st + ln)
        out[tuple(idx)] = host_numpy(g)
        return (on_device(out, g.device),)

    return _record(x._c.narrow(d, st, ln), (x,), backward, "NarrowBackward")


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of split_size along dim (the last may be smaller), or of the listed sizes."""
    x = as_tensor(tensor, "split", "tensor")
    d = wrap_dim(dim, x.ndim, "split")
    n = x.shape[d] if x.ndim else 1
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [check_int(v, "split", "split_size_or_sections") for v in split_size_or_sections]
        if _py_any(v < 0 for v in sizes) or _builtin_sum(sizes) != n:
            raise ValueError(f"split: sections {tuple(sizes)} must be non-negative and add up "
                             f"to the size of dim {d} ({n})")
    else:
        k = check_int(split_size_or_sections, "split", "split_size_or_sections")
        if k <= 0 and not (k == 0 and n == 0):
            raise ValueError(f"split: split_size must be positive, but got {k}")
        sizes = [_py_min(k, n - i) for i in range(0, n, k)] if n else [0]
    out, start = [], 0
    for v in sizes:
        out.append(narrow(x, d, start, v))
        start += v
    return tuple(out)


def chunk(input, chunks, dim=0):
    """Up to `chunks` pieces of equal size ceil(n / chunks) along dim."""
    x = as_tensor(input, "chunk", "input")
    k = check_int(chunks, "chunk", "chunks")
    if k <= 0:
        raise ValueError(f"chunk: chunks must be positive, but got {k}")
    d = wrap_dim(dim, x.ndim, "chunk")
    n = x.shape[d] if x.ndim else 1
    return split(x, _py_max(1, -(-n // k)), d)


def where(condition, input, other):
    """input where condition is nonzero, else other (all broadcast together)."""
    cond = _operand(condition, "where", "condition")
    a, b = _operand(input, "where", "input"), _operand(other, "where", "other")
    cmask = (cond._c.numpy() if isinstance(cond, Tensor) else np.asarray(cond)) != 0
    an = a._c.numpy() if isinstance(a, Tensor) else np.float32(a)
    bn = b._c.numpy() if isinstance(b, Tensor) else np.float32(b)
    try:
        shape = np.broadcast_shapes(np.shape(cmask), np.shape(an), np.shape(bn))
    except ValueError:
        raise ValueError(f"where: shapes {np.shape(cmask)}, {np.shape(an)} and {np.shape(bn)} "
                         "cannot be broadcast") from None
    ints = _intlike(a) and _intlike(b)
    y = _c_array(np.broadcast_to(np.where(cmask, an, bn), shape),
                             dtype=np.int64 if ints else np.float32)
    ts = tuple(v if isinstance(v, Tensor) else None for v in (a, b))
    if ints:
        return Tensor._wrap(_core.from_numpy(y))
    m = _core.from_numpy(_c_array(np.broadcast_to(cmask, shape), dtype=np.float32))

    def backward(g, needs):
        ga = _sum_to(_core.mul(g, m), a.shape) if needs[0] else None
        gb = _sum_to(_core.mul(g, _core.binary_scalar("sub", m, 1.0, True)), b.shape) \
            if needs[1] else None
        return ga, gb

    return _record(_core.from_numpy(y), ts, backward, "WhereBackward")


def var(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """Variance over dim; correction (default 1, or 0 when unbiased=False) as in torch."""
    x = as_tensor(input, "var", "input")
    corr = (1 if unbiased else 0) if correction is None else check_int(correction, "var",
                                                                       "correction")
    dims = _dims_arg(dim, x.ndim, "var")
    n = 1
    for i in (dims if dims else range(x.ndim)):
        n *= x.shape[i]
    centered = x - mean(x, dim, keepdim=True)
    ss = sum(centered * centered, dim, keepdim)
    return ss / float(n - corr) if n - corr > 0 else ss * float("nan")  # torch: nan, no error


def std(input, dim=None, unbiased=True, keepdim=False, *, correction=None):
    """Standard deviation: sqrt(var)."""
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


# ---- indexing ------------------------------------------------------------------------------------
def _index_key(key):
    """Converts Tensors inside an index to numpy (masks to bool arrays); rejects float indices."""
    def conv(k):
        if isinstance(k, _Mask):
            return k._c.numpy() != 0
        if isinstance(k, Tensor):
            if k.dtype != int64:
                raise IndexError("index: tensors used as indices must be int64 or comparison "
                                 f"masks, but got {k.dtype}")
            return k._c.numpy()
        if isinstance(k, np.ndarray) and k.dtype.kind == "f":
            raise IndexError(f"index: arrays used as indices must be integer or bool, but got "
                             f"{k.dtype}")
        if isinstance(k, float):
            raise IndexError(f"index: only integers, slices, None, Ellipsis and integer or "
                             f"boolean arrays are valid indices, but got {k!r}")
        return k
    if isinstance(key, tuple):
        return tuple(conv(k) for k in key)
    return conv(key)


def _is_basic(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return _py_all(k is None or k is Ellipsis or isinstance(k, (slice, numbers.Integral))
                   for k in keys)


def _basic_view(shape, strides, key, op="index"):
    """The view basic indexing (ints, slices with positive steps, None, ...) makes of a tensor with
    this shape and these strides: (shape, strides, offset in elements), as numpy computes it."""
    keys = key if isinstance(key, tuple) else (key,)
    for k in keys:
        if not (k is None or k is Ellipsis or isinstance(k, slice) or
                (isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)))):
            raise TypeError(f"{op}: a tensor on a CUDA device takes integers, slices, None and ... "
                            f"as indices (lists, arrays, masks and tensors index CPU tensors "
                            f"only), but got {type(k).__name__}")
    if _py_sum(1 for k in keys if k is Ellipsis) > 1:
        raise IndexError(f"{op}: an index can only have a single ellipsis ('...')")
    real = _py_sum(1 for k in keys if k is not None and k is not Ellipsis)
    if real > len(shape):
        raise IndexError(f"{op}: too many indices for tensor of dimension {len(shape)}")
    full = []
    for k in keys:
        if k is Ellipsis:
            full.extend([slice(None)] * (len(shape) - real))
        else:
            full.append(k)
    if not _py_any(k is Ellipsis for k in keys):
        full.extend([slice(None)] * (len(shape) - real))
    out_shape, out_strides, offset, d = [], [], 0, 0
    for k in full:
        if k is None:
            out_shape.append(1)
            out_strides.append(0)
            continue
        n, st = shape[d], strides[d]
        if isinstance(k, slice):
            if k.step is not None and k.step <= 0:
                raise ValueError(f"{op}: step must be greater than zero, but got {k.step}")
            start, stop, step = k.indices(n)
            length = _py_max(0, (stop - start + step - 1) // step)
            offset += start * st if length else 0
            out_shape.append(length)
            out_strides.append(st * step)
        else:
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"{op}: index {i} is out of bounds for dimension {d} with size {n}")
            offset += (i + n if i < 0 else i) * st
        d += 1
    return out_shape, out_strides, offset


def _device_getitem(self, key):
    """Basic indexing of a tensor on a CUDA device: a view sharing its memory, as on the CPU;
    the backward writes the gradient into a zero tensor through the same view."""
    shape = list(self.shape)
    try:
        vshape, vstrides, off = _basic_view(shape, list(self._c.strides), key)
    except IndexError as e:
        raise IndexError(f"{e} (tensor shape {tuple(shape)})") from None
    y = self._c.as_strided(vshape, vstrides, off)
    if self.dtype != float32:
        return Tensor._wrap(y)
    dense = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        dense[i] = dense[i + 1] * shape[i + 1]
    gshape, gstrides, goff = _basic_view(shape, dense, key)

    def backward(g, needs):
        out = _core.zeros(shape, "float32", g.device)
        out.as_strided(gshape, gstrides, goff).copy_(g)
        return (out,)

    return _record(y, (self,), backward, "IndexBackward")


def _getitem(self, key):
    if self._c.device != "cpu" and not isinstance(self, _Mask):
        return _device_getitem(self, key)
    k = _index_key(key)
    src = self._c.numpy()
    basic = _is_basic(k)
    try:
        if basic:
            # A view sharing memory, as torch's basic indexing gives (x[0].fill_(0) writes into x);
            # the trailing Ellipsis keeps a fully indexed element a 0-d array, not a scalar.
            kt = k if isinstance(k, tuple) else (k,)
            arr = src[kt if _py_any(v is Ellipsis for v in kt) else kt + (Ellipsis,)]
        else:
            arr = np.array(src[k], dtype=src.dtype, order="C", copy=True)
    except IndexError as e:
        raise IndexError(f"index: {e} (tensor shape {tuple(self.shape)})") from None
    cls = _Mask if isinstance(self, _Mask) else Tensor
    shape = src.shape

    def backward(g, needs):
        out = np.zeros(shape, dtype=np.float32)
        if basic:
            out[k] = g.numpy()
        else:
            np.add.at(out, k, g.numpy())
        return (_core.from_numpy(out),)

    y = _core.from_numpy(arr if arr.dtype in (float32, int64) else arr.astype(np.float32))
    if self.dtype != float32:
        return Tensor._wrap(y)
    out = _record(y, (self,), backward, "IndexBackward")
    if cls is _Mask and out.grad_fn is None:
        return _Mask._wrap(y)
    return out


def _setitem(self, key, value):
    """In-place assignment (no autograd through it, as for the other in-place helpers)."""
    self._check_inplace("__setitem__")
    if self.grad_fn is not None:
        raise RuntimeError("__setitem__: in-place assignment to a tensor computed by a recorded "
                           "op is not supported; use out-of-place ops or detach() first")
    k = _index_key(key)
    v = value._c.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if self._c.block:
        raise ValueError("__setitem__: the tensor is in the blocked NCHWc layout; assign into "
                         "a strided copy (.contiguous()) instead")
    self._c.numpy()[k] = v  # a view of the memory for every strided tensor


# ---- Tensor methods ------------------------------------------------------------------------------
def _lazy_functional(name):
    def method(self, *args, **kwargs):
        from .. import functional as F
        return getattr(F, name)(self, *args, **kwargs)
    method.__name__ = name
    return method


def _matmul(self, other):
    from . import linalg
    fn = getattr(linalg, "matmul", None)
    if fn is None:
        raise NotImplementedError("matmul: not available in this build yet")
    return fn(self, other)


def _rmatmul(self, other):
    from . import linalg
    fn = getattr(linalg, "matmul", None)
    if fn is None:
        raise NotImplementedError("matmul: not available in this build yet")
    return fn(_operand(other, "matmul", "input"), self)


def _method_reshape(self, *shape):
    return reshape(self, _shape_args(shape, "reshape"))


def _method_permute(self, *dims):
    return permute(self, _shape_args(dims, "permute", "dims"))


def _method_expand(self, *sizes):
    return expand(self, *sizes)


def _method_t(self):
    if self.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, but got {self.ndim}-D "
                         f"(shape {tuple(self.shape)}); use transpose()")
    return transpose(self, 0, 1) if self.ndim == 2 else self


def _method_bool(self):
    return _Mask._wrap(_core.binary_scalar("ne", _float_core(self), 0.0, False))


def _mask_invert(self):
    return _Mask._wrap(_core.binary_scalar("sub", _float_core(self), 1.0, True))


def _mask_and(self, other):
    return _Mask._wrap(_core.binary("mul", _float_core(self), _float_core(_operand(other, "and",
                                                                                    "other"))))


def _mask_or(self, other):
    return _Mask._wrap(_core.binary("maximum", _float_core(self),
                                    _float_core(_operand(other, "or", "other"))))


def _method_any(self):
    return _Mask._wrap(_core.from_numpy(np.asarray(self._c.numpy().any(), dtype=np.float32)))


def _method_all(self):
    return _Mask._wrap(_core.from_numpy(np.asarray(self._c.numpy().all(), dtype=np.float32)))


def _inplace(name, fn):
    def method(self, *args, **kwargs):
        self._check_inplace(name)
        r = fn(self.detach(), *args, **kwargs)
        if tuple(r.shape) != tuple(self.shape):
            raise ValueError(f"{name}: the result shape {tuple(r.shape)} does not match the "
                             f"tensor's shape {tuple(self.shape)}")
        self._c.copy_(r._c if r.dtype == self.dtype else _float_core(r))
        return self
    method.__name__ = name
    return method


def _add_inplace(self, other, *, alpha=1):
    self._check_inplace("add_")
    o = _operand(other, "add_", "other")
    if isinstance(o, Tensor) and self.dtype == float32 and o.dtype == float32 and \
            self._c.is_contiguous():
        _core.add_(self._c, o._c, check_float(alpha, "add_", "alpha"))
        return self
    return _inplace("add_", lambda s, oth, alpha=1: add(s, oth, alpha=alpha))(self, other,
                                                                            alpha=alpha)


def _format(self, spec):
    """f"{loss:.4f}" works on 0-d tensors, as in torch."""
    if self.ndim == 0:
        return format(self.item(), spec)
    return object.__format__(self, spec)


def _np_nograd(op: str, ufunc, a, b) -> Tensor:
    """// and % (numpy semantics, as torch's floor_divide / remainder); not differentiable."""
    x, y = _operand(a, op, "input"), _operand(b, op, "other")
    xa = x._c.numpy() if isinstance(x, Tensor) else x
    ya = y._c.numpy() if isinstance(y, Tensor) else y
    try:
        np.broadcast_shapes(np.shape(xa), np.shape(ya))
    except ValueError:
        raise ValueError(f"{op}: shapes {tuple(np.shape(xa))} and {tuple(np.shape(ya))} cannot "
                         "be broadcast") from None
    ints = _intlike(x) and _intlike(y)
    if ints and np.any(np.asarray(ya) == 0):
        raise ZeroDivisionError(f"{op}: integer division by zero")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ufunc(xa, ya)
    return Tensor._wrap(_core.from_numpy(_c_array(r, np.int64 if ints else np.float32)))


def _install():
    T = Tensor
    rev = lambda op: lambda self, other: _binary(op, other, self)  # noqa: E731
    T.__add__ = lambda self, other: _binary("add", self, other)
    T.__radd__ = rev("add")
    T.__sub__ = lambda self, other: _binary("sub", self, other)
    T.__rsub__ = rev("sub")
    T.__mul__ = lambda self, other: _binary("mul", self, other)
    T.__rmul__ = rev("mul")
    T.__truediv__ = lambda self, other: _binary("div", self, other)
    T.__rtruediv__ = rev("div")
    T.__pow__ = lambda self, other: _binary("pow", self, other)
    T.__rpow__ = rev("pow")
    T.__neg__ = neg
    T.__pos__ = lambda self: self
    T.__abs__ = abs
    T.__matmul__ = _matmul
    T.__rmatmul__ = _rmatmul
    T.__floordiv__ = lambda self, other: _np_nograd("floor_divide", np.floor_divide, self, other)
    T.__rfloordiv__ = lambda self, other: _np_nograd("floor_divide", np.floor_divide, other, self)
    T.__mod__ = lambda self, other: _np_nograd("remainder", np.remainder, self, other)
    T.__rmod__ = lambda self, other: _np_nograd("remainder", np.remainder, other, self)
    T.__format__ = _format
    T.__getitem__ = _getitem
    T.__setitem__ = _setitem

    def cmp(op):
        def method(self, other):
            try:
                o = _operand(other, op, "other")
            except TypeError:
                return NotImplemented
            return _binary(op, self, o)
        return method
    for op, dunder in (("eq", "__eq__"), ("ne", "__ne__"), ("lt", "__lt__"), ("le", "__le__"),
                       ("gt", "__gt__"), ("ge", "__ge__")):
        setattr(T, dunder, cmp(op))
        setattr(T, op, cmp(op))
    T.__hash__ = object.__hash__  # identity, as in torch; == is elementwise

    T.add = lambda self, other, *, alpha=1: add(self, other, alpha=alpha)
    T.sub = lambda self, other, *, alpha=1: sub(self, other, alpha=alpha)
    T.mul = mul
    T.div = div
    T.pow = pow
    T.neg = neg
    T.exp = exp
    T.log = log
    T.sqrt = sqrt
    T.abs = abs
    T.square = square
    T.maximum = maximum
    T.minimum = minimum
    T.clamp = clamp
    T.clip = clamp
    T.sum = sum
    T.mean = mean
    T.max = max
    T.min = min
    T.argmax = argmax
    T.argmin = argmin
    T.reshape = _method_reshape
    T.view = view
    T.view_as = lambda self, other: view(self, *other.shape)
    T.reshape_as = lambda self, other: reshape(self, tuple(other.shape))
    T.flatten = flatten
    T.permute = _method_permute
    T.transpose = transpose
    T.unsqueeze = unsqueeze
    T.squeeze = squeeze
    T.expand = _method_expand
    T.expand_as = lambda self, other: expand(self, *other.shape)
    T.t = _method_t
    T.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))
    T.matmul = _matmul
    T.bool = _method_bool
    T.narrow = narrow
    T.split = split
    T.chunk = chunk
    T.var = var
    T.sort = sort
    T.argsort = argsort
    T.topk = topk
    T.std = std
    T.any = _method_any
    T.all = _method_all
    T.add_ = _add_inplace
    T.sub_ = _inplace("sub_", lambda s, o, *, alpha=1: sub(s, o, alpha=alpha))
    T.mul_ = _inplace("mul_", mul)
    T.div_ = _inplace("div_", div)
    T.clamp_ = _inplace("clamp_", clamp)
    for name in ("relu", "sigmoid", "tanh", "softmax", "log_softmax"):
        setattr(T, name, _lazy_functional(name))
    _Mask.__invert__ = _mask_invert
    _Mask.__and__ = _mask_and
    _Mask.__or__ = _mask_or
    _Mask.__rand__ = _mask_and
    _Mask.__ror__ = _mask_or


_install()
