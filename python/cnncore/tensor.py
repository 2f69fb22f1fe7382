"""cnncore.Tensor and reverse-mode automatic differentiation.

A Tensor wraps a C++ ``_core.Tensor`` (``._c``) and, when it was produced by an op while gradients
were being recorded, the ``Node`` that computes its inputs' gradients (``.grad_fn``). Every op
records at most one node: the node holds the op's backward function (a closure over the C++
backward kernels and what the forward saved) and the input tensors that need gradients.
``backward()`` orders the nodes reachable from the output topologically, runs each backward once
with the sum of the gradients that reached it, and accumulates leaf gradients into ``.grad``.
The graph is freed afterwards unless ``retain_graph=True``.
"""

from __future__ import annotations

import contextlib
import numbers
import threading
import weakref

import numpy as np

from . import _core

float32 = np.dtype("float32")
int64 = np.dtype("int64")

_DTYPES = {"float32": float32, "int64": int64}

# ---- grad mode ------------------------------------------------------------------------------------
_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    _mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record nothing for autograd."""

    _mode = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside a no_grad block."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``with set_grad_enabled(False): ...`` or a plain call ``set_grad_enabled(False)``."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._prev = is_grad_enabled()
        _set_grad_enabled(self._mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False


# ---- graph ---------------------------------------------------------------------------------------
class Node:
    """One recorded op: ``backward(grad, needs) -> tuple of input grads`` and its inputs."""

    __slots__ = ("backward_fn", "inputs", "needs", "name", "_retained", "__weakref__")

    def __init__(self, backward_fn, inputs, name, needs=None):
        self.backward_fn = backward_fn
        self.inputs = inputs
        self.needs = (tuple([t is not None and t.requires_grad for t in inputs]) if needs is None
                      else needs)
        self.name = name
        self._retained = None  # weakref to the output tensor when retain_grad() was called

    def __repr__(self):
        return f"<{self.name}>"

    def next_functions(self):
        return tuple(
            (t.grad_fn if t is not None else None) for t in self.inputs
        )


def _record(out_core, inputs, backward, name="Backward"):
    """Wraps an op's output and records its backward when any input requires grad."""
    out = Tensor._wrap(out_core)
    if getattr(_state, "grad_enabled", True):  # is_grad_enabled(), inlined: once per op
        needs = tuple([t is not None and t.requires_grad for t in inputs])
        if True in needs:
            out.grad_fn = Node(backward, tuple(inputs), name, needs)
            out.requires_grad = True
    return out


def _accumulate(a, b):
    """a + b for two same-shape _core tensors (gradient accumulation)."""
    if hasattr(_core, "add"):
        return _core.add(a, b)
    return _core.from_numpy(np.require(a.numpy() + b.numpy(), np.float32, "C"))


def _topo_order(root: Node):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t.grad_fn is not None and id(t.grad_fn) not in seen:
                stack.append((t.grad_fn, False))
    order.reverse()  # root first; every node before the nodes it feeds from
    return order


def _run_backward(root: Tensor, grad_core, retain_graph: bool) -> None:
    if root.grad_fn is None:
        root._accumulate_grad(grad_core)
        return
    if root.grad_fn.backward_fn is None:
        raise RuntimeError(
            "backward: trying to backward through the graph a second time (or directly access "
            "saved tensors after they have already been freed); pass retain_graph=True to the "
            "first backward() if you need to")
    order = _topo_order(root.grad_fn)
    pending = {id(root.grad_fn): grad_core}
    for node in order:
        g = pending.pop(id(node), None)
        if g is None:
            continue
        if node._retained is not None:
            t = node._retained()
            if t is not None:
                t._accumulate_grad(g)
        if node.backward_fn is None:
            raise RuntimeError(
                f"backward: the graph through {node.name} was already freed; pass "
                "retain_graph=True to the first backward()")
        inputs, needs = node.inputs, node.needs
        grads = node.backward_fn(g, needs)
        if len(grads) != len(inputs):
            raise RuntimeError(f"{node.name} returned {len(grads)} gradients for "
                               f"{len(inputs)} inputs")
        for t, need, gi in zip(inputs, needs, grads):
            if not need or gi is None:
                continue
            if gi.shape != t._c.shape:  # both tuples
                raise RuntimeError(f"{node.name} returned a gradient of shape {tuple(gi.shape)} "
                                   f"for an input of shape {tuple(t.shape)}")
            if t.grad_fn is None:
                t._accumulate_grad(gi)
            else:
                k = id(t.grad_fn)
                pending[k] = gi if k not in pending else _accumulate(pending[k], gi)
        if not retain_graph:
            node.backward_fn = None
            node.inputs = tuple([None if t is None else _Freed for t in inputs])


class _FreedInput:
    """Stands in for an input after the graph was freed (keeps the tuple's length)."""

    requires_grad = False
    grad_fn = None
    shape = ()


_Freed = _FreedInput()


# ---- conversion ----------------------------------------------------------------------------------
def _to_array(data, dtype=None, op="tensor", arg="data") -> np.ndarray:
    """Any array-like -> a float32 or int64 numpy array (copying only when needed)."""
    if isinstance(data, Tensor):
        arr = data.numpy()
    else:
        if isinstance(data, (str, bytes)):
            raise TypeError(f"{op}: {arg} must be numbers or an array, but got {type(data).__name__}")
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"{op}: {arg} could not be converted to an array ({e})") from None
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (float32, int64):
            raise TypeError(f"{op}: dtype must be cnncore.float32 or cnncore.int64, but got {dtype}")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{op}: {arg} must hold numbers, but got dtype {arr.dtype}")
        return arr.astype(dtype, copy=False)
    kind = arr.dtype.kind
    if kind == "f":
        return arr.astype(float32, copy=False)
    if kind in "iu":
        return arr.astype(int64, copy=False)
    if kind == "b":
        return arr.astype(float32)
    raise TypeError(f"{op}: {arg} must hold numbers, but got dtype {arr.dtype}"
                    + (" (strings or mixed objects)" if kind in "OUS" else ""))


# ---- Tensor --------------------------------------------------------------------------------------
class Tensor:
    """An n-dimensional float32 (or int64) array with reverse-mode autograd."""

    __slots__ = ("_c", "requires_grad", "grad", "grad_fn", "_post_acc_hooks", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our operators: ndarray + Tensor -> Tensor

    def __init__(self, data=None, requires_grad: bool = False):
        if isinstance(data, _core.Tensor):
            self._c = data
        else:
            self._c = _core.from_numpy(np.array(_to_array([] if data is None else data), copy=True))
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, core: _core.Tensor, requires_grad: bool = False) -> Tensor:
        t = cls.__new__(cls)
        t._c = core
        t.requires_grad = requires_grad
        t.grad = None
        t.grad_fn = None
        return t

    # ---- properties ----
    @property
    def shape(self) -> tuple:
        return self._c.shape

    @property
    def ndim(self) -> int:
        return self._c.ndim

    @property
    def dtype(self) -> np.dtype:
        return _DTYPES[self._c.dtype]

    @property
    def device(self) -> str:
        """'cpu' or 'cuda:<index>' (torch's str(tensor.device))."""
        return self._c.device

    @property
    def is_cuda(self) -> bool:
        return self._c.device != "cpu"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> Tensor:
        """The same memory, detached from the graph."""
        return Tensor._wrap(self._c)

    @data.setter
    def data(self, value) -> None:
        other = value if isinstance(value, Tensor) else tensor(value)
        self._c = other._c

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        if not isinstance(dim, numbers.Integral):
            raise TypeError(f"size: dim must be an int, but got {type(dim).__name__}")
        nd = max(self.ndim, 1)
        if not -nd <= dim < nd:
            raise IndexError(f"size: dim must be in [{-nd}, {nd - 1}], but got {dim}")
        return self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self._c.numel()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def is_contiguous(self) -> bool:
        return self._c.is_contiguous()

    # ---- conversion ----
    def numpy(self) -> np.ndarray:
        """A numpy view of the data (zero-copy for strided tensors). Refuses tensors that
        require grad, as PyTorch does: call .detach().numpy()."""
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; use "
                               "tensor.detach().numpy()")
        return self._c.numpy()

    def __array__(self, dtype=None, copy=None):
        arr = self._c.numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python "
                             f"scalar, but this one has shape {self.shape}")
        v = self._host().numpy().reshape(-1)[0]
        return v.item()

    def tolist(self):
        return self._host().numpy().tolist()

    def _host(self):
        """The _core tensor in host memory (a copy when it lives on a GPU)."""
        return self._c if self._c.device == "cpu" else self._c.to("cpu")

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self.numel()} elements "
                               "is ambiguous")
        return bool(self.item())

    def __repr__(self):
        body = np.array2string(self._host().numpy(), separator=", ", precision=4,
                               prefix="tensor(")
        extra = "" if self._c.device == "cpu" else f", device='{self._c.device}'"
        if self.dtype == int64:
            extra += ", dtype=cnncore.int64"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- autograd ----
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype != float32:
            raise TypeError(f"requires_grad_: only float32 tensors can require gradients, but "
                            f"this one is {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: you can only change requires_grad of leaf "
                               "tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        return Tensor._wrap(self._c)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self) -> None:
        if not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a tensor that has "
                               "requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn._retained = weakref.ref(self)

    def _accumulate_grad(self, g_core) -> None:
        if self.grad is None:
            # Own the memory: the incoming gradient may alias a buffer an op still uses.
            self.grad = Tensor._wrap(g_core.clone())
        else:
            self.grad = Tensor._wrap(_accumulate(self.grad._c, g_core))
        for hook in getattr(self, "_post_acc_hooks", ()):
            hook(self)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs each time backward adds a gradient into this leaf's ``.grad`` (once
        per use of the leaf in the graph: the tape accumulates edge by edge). Returns a handle
        whose remove() unregisters it. Data-parallel training starts reducing gradients here."""
        if self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors can have "
                               "post-accumulate-grad hooks")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, but got "
                            f"{type(hook).__name__}")
        try:
            hooks = self._post_acc_hooks
        except AttributeError:
            hooks = self._post_acc_hooks = []
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Computes the gradient of this tensor w.r.t. the graph leaves and adds it to their
        ``.grad``. ``gradient`` is required unless the tensor has one element."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is "
                                      "not supported")
        if not self.requires_grad:
            raise RuntimeError("backward: element 0 of tensors does not require grad and does "
                               "not have a grad_fn")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar "
                                   f"outputs, but this tensor has shape {self.shape}")
            g = _core.full(list(self.shape), 1.0)
            if self._c.device != "cpu":
                g = g.to(self._c.device)
        else:
            g = gradient._c if isinstance(gradient, Tensor) else tensor(gradient)._c
            if tuple(g.shape) != tuple(self.shape):
                raise ValueError(f"backward: gradient has shape {tuple(g.shape)} but the tensor "
                                 f"has shape {self.shape}")
            if g.dtype != "float32":
                raise TypeError(f"backward: gradient must be float32, but got {g.dtype}")
        _run_backward(self, g, bool(retain_graph))

    # ---- in-place helpers used by optimizers and init (no autograd) ----
    def zero_(self) -> Tensor:
        self._check_inplace("zero_")
        self._c.zero_() if self._c.is_contiguous() else self._c.copy_(_core.zeros(list(self.shape)))
        return self

    def fill_(self, value: float) -> Tensor:
        self._check_inplace("fill_")
        self._c.copy_(_core.full(list(self.shape), float(value)))
        return self

    def copy_(self, src) -> Tensor:
        self._check_inplace("copy_")
        s = src if isinstance(src, Tensor) else tensor(src, dtype=self.dtype)
        self._c.copy_(s._c)
        return self

    def _check_inplace(self, op: str) -> None:
        if self.requires_grad and self.grad_fn is None and is_grad_enabled():
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an "
                               "in-place operation; wrap it in cnncore.no_grad()")

    def clone(self) -> Tensor:
        return _record(self._c.clone(), (self,), lambda g, needs: (g,), "CloneBackward")

    def contiguous(self) -> Tensor:
        if self._c.is_contiguous():
            return self
        return _record(self._c.contiguous(), (self,), lambda g, needs: (g,), "CloneBackward")

    def float(self) -> Tensor:
        if self.dtype == float32:
            return self
        return Tensor._wrap(_core.from_numpy(self._c.numpy().astype(np.float32)))

    def long(self) -> Tensor:
        if self.dtype == int64:
            return self
        return Tensor._wrap(_core.from_numpy(self._c.numpy().astype(np.int64)))

    def to(self, *args, **kwargs) -> Tensor:
        """to(device), to(dtype), to(device, dtype), to(other) or to(device=..., dtype=...), as
        in torch. Moving between devices is recorded for autograd (the gradient moves back)."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, (np.dtype, type)):
                if a in (float32, int64):  # other dtypes leave the tensor as it is, as before
                    dtype = a
            else:
                device = a
        t = self
        if dtype is not None and np.dtype(dtype) != t.dtype:
            t = t._to_device("cpu").float() if np.dtype(dtype) == float32 else \
                t._to_device("cpu").long()
            t = t._to_device(self.device)
        if device is not None:
            t = t._to_device(_device_name(device, "to"))
        return t

    def _to_device(self, device: str) -> Tensor:
        here = self._c.device
        if device == here:
            return self
        if device != "cpu":
            _require_cuda(device, "to")
        out = self._c.to(device)
        return _record(out, (self,), lambda g, needs: (g.to(here),), "ToCopyBackward")

    def cpu(self) -> Tensor:
        return self._to_device("cpu")

    def cuda(self, device=None) -> Tensor:
        if device is None:
            name = "cuda"
        elif isinstance(device, numbers.Integral) and not isinstance(device, bool):
            name = f"cuda:{int(device)}"
        else:
            name = device
        return self._to_device(_device_name(name, "cuda"))

    # Object identity is the hash, as in torch (== is elementwise and installed by _ops).
    __hash__ = object.__hash__


class _HookHandle:
    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


# ---- devices -------------------------------------------------------------------------------------
def _device_name(device, op: str) -> str:
    """'cpu' / 'cuda' / 'cuda:N' (or an object whose str() is one, such as torch.device) ->
    the canonical name ('cuda' -> 'cuda:0'); a ValueError naming op for anything else."""
    if device is None:
        return "cpu"
    if isinstance(device, numbers.Integral) and not isinstance(device, bool):
        device = f"cuda:{int(device)}"
    if not isinstance(device, str):
        if type(device).__name__ != "device":
            raise TypeError(f"{op}: device must be a string such as 'cpu' or 'cuda:0', but got "
                            f"{type(device).__name__}")
        device = str(device)
    try:
        return _core.parse_device(device)
    except ValueError as e:
        raise ValueError(f"{op}: {str(e).split(': ', 1)[1]}") from None


def _require_cuda(device: str, op: str) -> None:
    """A RuntimeError saying why `device` cannot be used: not compiled in, or no GPU found."""
    if device == "cpu":
        return
    if not _core.cuda_compiled() or _core.cuda_device_count() == 0:
        raise RuntimeError(f"{op}: cannot use device '{device}': "
                           f"{_core.cuda_unavailable_reason()}")
    index = int(device.split(":")[1])
    if index >= _core.cuda_device_count():
        raise RuntimeError(f"{op}: CUDA device {index} does not exist "
                           f"({_core.cuda_device_count()} present)")


def _on_device(t: Tensor, device, op: str) -> Tensor:
    if device is None:
        return t
    name = _device_name(device, op)
    if name == "cpu":
        return t
    _require_cuda(name, op)
    return Tensor._wrap(t._c.to(name), t.requires_grad)


# ---- creation ------------------------------------------------------------------------------------
def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, numpy arrays, Tensors).
    Floats become float32 and integers int64, as in PyTorch; float64 input is converted."""
    if isinstance(data, Tensor) and data.is_cuda:
        data = data._host().numpy()
    arr = np.array(_to_array(data, dtype), copy=True, order="C")
    t = _on_device(Tensor._wrap(_core.from_numpy(arr)), device, "tensor")
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(array: np.ndarray) -> Tensor:
    """Shares memory with a float32 or int64 numpy array (any strides), as torch.from_numpy."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, but got {type(array).__name__}")
    if array.dtype not in (float32, int64):
        raise TypeError(f"from_numpy: expected a float32 or int64 array, but got {array.dtype}; "
                        "use cnncore.tensor() to convert")
    return Tensor._wrap(_core.from_numpy(array))


def _shape_arg(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise TypeError(f"{op}: sizes must be ints, but got {s!r} ({type(s).__name__})")
        if s < 0:
            raise ValueError(f"{op}: sizes must be non-negative, but got {tuple(size)}")
    return [int(s) for s in size]


def _dtype_arg(dtype, op):
    if dtype is None:
        return "float32"
    d = np.dtype(dtype)
    if d not in (float32, int64):
        raise TypeError(f"{op}: dtype must be cnncore.float32 or cnncore.int64, but got {d}")
    return d.name


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    shape, dt = _shape_arg(size, "zeros"), _dtype_arg(dtype, "zeros")
    name = _device_name(device, "zeros")
    _require_cuda(name, "zeros")
    t = Tensor._wrap(_core.zeros(shape, dt, name))
    return t.requires_grad_(True) if requires_grad else t


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(_shape_arg(size, "ones"), 1.0, dtype=dtype, device=device,
                requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if device is not None:
        t = _on_device(full(size, fill_value, dtype=dtype), device, "full")
        return t.requires_grad_(True) if requires_grad else t
    shape = _shape_arg(tuple(size) if isinstance(size, (tuple, list)) else (size,), "full")
    if _dtype_arg(dtype, "full") == "int64":
        t = Tensor._wrap(_core.from_numpy(np.full(shape, fill_value, dtype=np.int64)))
    else:
        t = Tensor._wrap(_core.full(shape, float(fill_value)))
    return t.requires_grad_(True) if requires_grad else t


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    name = _device_name(device, "empty")
    _require_cuda(name, "empty")
    t = Tensor._wrap(_core.empty(_shape_arg(size, "empty"), _dtype_arg(dtype, "empty"), name))
    return t.requires_grad_(True) if requires_grad else t


def randn(*size, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from cnncore's generator (see manual_seed)."""
    t = Tensor._wrap(_core.randn(_shape_arg(size, "randn")))
    return t.requires_grad_(True) if requires_grad else t


def rand(*size, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from cnncore's generator."""
    t = Tensor._wrap(_core.rand(_shape_arg(size, "rand")))
    return t.requires_grad_(True) if requires_grad else t


def randn_like(t: Tensor) -> Tensor:
    return randn(t.shape)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Values from start (inclusive) to end (exclusive) by step; int64 when all are ints."""
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise TypeError(f"arange: {name} must be a number, but got {type(v).__name__}")
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"arange: {name} must be finite, but got {v}")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    all_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    if dtype is None:
        dtype = int64 if all_int else float32
    arr = np.arange(start, end, step).astype(_dtype_arg(dtype, "arange"))
    t = Tensor._wrap(_core.from_numpy(np.require(arr, requirements="C")))
    return t.requires_grad_(True) if requires_grad else t


def manual_seed(seed: int) -> None:
    """Seeds cnncore's random generator (randn, rand, dropout, init, shuffling)."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: seed must be an int, but got {type(seed).__name__}")
    _core.manual_seed(int(seed) & 0xFFFFFFFFFFFFFFFF)


def get_rng_state() -> tuple:
    return tuple(_core.get_rng_state())


def set_rng_state(state) -> None:
    seed, offset = state
    _core.set_rng_state(int(seed), int(offset))
