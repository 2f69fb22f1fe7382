"""ONNX in and out: ``load(path)`` runs an ONNX graph as a cnncore Module (with autograd);
``export(model, example_input, path)`` writes a model of built-in layers as ONNX (opset 17).

Needs the optional extra ``onnx`` (``pip install "cnncore[onnx]"``: onnx, and onnxruntime to
check exported files). ``import cnncore`` never imports onnx.

How load runs a graph: every value is either *static* (a numpy array: constants, shapes and
integer tensors, computed with numpy) or *dynamic* (a cnncore Tensor). Nodes whose inputs are all
static are evaluated once at load (constant folding), so the Shape/Gather/Unsqueeze/Concat chains
exporters emit around Reshape cost nothing per call when the input shape is fixed, and are
recomputed from the actual shape otherwise. Float initializers become Parameters (BatchNorm's
mean and variance become buffers), so ``model.parameters()`` trains and ``state_dict()`` keys
follow the initializer names (``conv1.weight`` nests as in torch).
"""

from __future__ import annotations

import math
import numbers
import os
import re

import numpy as np

from . import functional as F
from ._ops import tensor_ops as T
from ._ops.linalg import matmul
from .nn.module import Module, Parameter
from .tensor import Tensor, float32, tensor

__all__ = ["load", "export", "SUPPORTED_OPS", "OnnxModule"]

# Input positions that must be known without gradients (shapes, axes, pads, scales).
_STATIC_INPUTS = {
    "Reshape": (1,), "Unsqueeze": (1,), "Squeeze": (1,), "Pad": (1, 2, 3), "Resize": (1, 2, 3),
    "Upsample": (1,), "ConstantOfShape": (0,), "ReduceMean": (1,), "Gather": (1,),
    "Dropout": (1, 2), "Clip": (1, 2),
    "Slice": (1, 2, 3, 4),
}
_BUFFER_INPUTS = {"BatchNormalization": (3, 4)}


def _require_onnx(what: str):
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"cnncore.onnx.{what}: needs the onnx package; install the extra: "
                          f"pip install 'cnncore[onnx]'") from e
    return onnx


class _Node:
    """One ONNX node: op type, name (or #index), inputs/outputs by value name, attributes."""

    __slots__ = ("op", "name", "inputs", "outputs", "attrs", "index")

    def __init__(self, proto, index, onnx):
        self.op, self.index = proto.op_type, index
        self.name = proto.name or f"#{index}"
        self.inputs, self.outputs = list(proto.input), list(proto.output)
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        for k, v in self.attrs.items():
            if isinstance(v, bytes):
                self.attrs[k] = v.decode()
            elif hasattr(v, "dims") and hasattr(v, "data_type"):  # TensorProto
                self.attrs[k] = onnx.numpy_helper.to_array(v)

    def where(self) -> str:
        return f"node '{self.name}' ({self.op}, #{self.index})"


class OnnxUnsupportedError(NotImplementedError):
    """An operator, attribute or input the cnncore ONNX runtime does not implement."""


def _unsupported(node, what):
    raise OnnxUnsupportedError(f"cnncore.onnx: {node.where()}: {what}")


# ---- values --------------------------------------------------------------------------------------
def _is_static(v) -> bool:
    return not isinstance(v, Tensor)


def _dyn(v) -> Tensor:
    """A cnncore Tensor for a value (static float arrays become float32 tensors)."""
    if isinstance(v, Tensor):
        return v
    arr = np.asarray(v)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iub":
        arr = arr.astype(np.int64)
    return tensor(arr)


def _np(v, node=None, what="input") -> np.ndarray:
    if isinstance(v, Tensor):
        return v.detach().numpy()
    return np.asarray(v)


def _ints(v, node, what) -> list:
    arr = _np(v, node, what)
    if arr.dtype.kind not in "iu":
        _unsupported(node, f"{what} must be integers, but got {arr.dtype}")
    return [int(i) for i in arr.reshape(-1)]


# ---- padding helpers -----------------------------------------------------------------------------
def _spatial_pads(node, x_shape, kernel, strides, dilations):
    """ONNX pads (begin..., end...) for the spatial dims, auto_pad resolved for this input."""
    n = len(kernel)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(node.attrs.get("pads", [0] * (2 * n)))
        if len(pads) != 2 * n:
            _unsupported(node, f"pads has {len(pads)} values for {n} spatial dims")
        return pads
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        _unsupported(node, f"auto_pad={auto!r}")
    begin, end = [], []
    for i in range(n):
        size = x_shape[2 + i]
        out = -(-size // strides[i])
        total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size, 0)
        small = total // 2
        begin.append(small if auto == "SAME_UPPER" else total - small)
        end.append(total - small if auto == "SAME_UPPER" else small)
    return begin + end


def _torch_pad(pads):
    """ONNX spatial pads (b_h, b_w, e_h, e_w) -> F.pad's (left, right, top, bottom)."""
    n = len(pads) // 2
    out = []
    for i in reversed(range(n)):
        out += [pads[i], pads[n + i]]
    return tuple(out)


def _as_2d(x, node):
    """1-D ops run as 2-D with a unit height; returns (x, was_1d)."""
    if x.ndim == 3:
        return T.unsqueeze(x, 2), True
    if x.ndim != 4:
        _unsupported(node, f"only 1-D and 2-D spatial inputs are supported, got {x.ndim}-D "
                           f"input of shape {x.shape}")
    return x, False


def _attr2(node, name, default, n):
    """A per-spatial-dim attribute as two values (1-D ops run with a unit height first)."""
    v = list(node.attrs.get(name, [default] * n))
    return ([default] + v) if n == 1 else v


# ---- operators -----------------------------------------------------------------------------------
def _conv(m, node, x, w, b=None):
    x, one_d = _as_2d(_dyn(x), node)
    w = _dyn(w)
    if one_d:
        w = T.unsqueeze(w, 2)
    k = list(w.shape[2:])
    nd = 1 if one_d else 2
    strides = _attr2(node, "strides", 1, nd)
    dil = _attr2(node, "dilations", 1, nd)
    pads = _spatial_pads(node, x.shape, k, strides, dil) if not one_d else None
    if one_d:
        p1 = _spatial_pads(node, (0, 0, x.shape[3]), k[1:], strides[1:], dil[1:])
        pads = [0, p1[0], 0, p1[1]]
    groups = int(node.attrs.get("group", 1))
    if pads[:2] == pads[2:]:
        y = F.conv2d(x, w, None if b is None else _dyn(b), tuple(strides), tuple(pads[:2]),
                     tuple(dil), groups)
    else:
        y = F.conv2d(F.pad(x, _torch_pad(pads)), w, None if b is None else _dyn(b),
                     tuple(strides), 0, tuple(dil), groups)
    return T.squeeze(y, 2) if one_d else y


def _conv_transpose(m, node, x, w, b=None):
    x, one_d = _as_2d(_dyn(x), node)
    w = _dyn(w)
    if one_d:
        w = T.unsqueeze(w, 2)
    nd = 1 if one_d else 2
    k = list(w.shape[2:])
    strides = _attr2(node, "strides", 1, nd)
    dil = _attr2(node, "dilations", 1, nd)
    out_pad = _attr2(node, "output_padding", 0, nd)
    groups = int(node.attrs.get("group", 1))
    full = [(x.shape[2 + i] - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 for i in range(2)]
    auto = node.attrs.get("auto_pad", "NOTSET")
    if "output_shape" in node.attrs:
        target = list(node.attrs["output_shape"])[-nd:]
        target = ([1] + target) if one_d else target
        total = [full[i] + out_pad[i] - target[i] for i in range(2)]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [full[i] + out_pad[i] - x.shape[2 + i] * strides[i] for i in range(2)]
    else:
        total = None
    if total is not None:
        # A requested size beyond the full result grows it at the end, as output_padding does.
        out_pad = [op - min(t, 0) for op, t in zip(out_pad, total)]
        total = [max(t, 0) for t in total]
        upper = auto != "SAME_LOWER"  # the spec's default split: more padding at the end
        begin = [t // 2 if upper else t - t // 2 for t in total]
        pads = begin + [t - b_ for t, b_ in zip(total, begin)]
    elif auto in ("NOTSET", "", "VALID"):
        pads = [0] * 4 if auto == "VALID" else list(node.attrs.get("pads", [0] * (2 * nd)))
        if one_d:
            pads = [0, pads[0], 0, pads[1]]
    else:
        _unsupported(node, f"auto_pad={auto!r}")
    bias = None if b is None else _dyn(b)
    if pads[:2] == pads[2:] and all(op < max(s, d) for op, s, d in zip(out_pad, strides, dil)):
        y = F.conv_transpose2d(x, w, bias, tuple(strides), tuple(pads[:2]), tuple(out_pad),
                               groups, tuple(dil))
    else:
        # General case: the full result, zeros appended for output_padding, then cropped.
        y = F.conv_transpose2d(x, w, None, tuple(strides), 0, 0, groups, tuple(dil))
        if any(out_pad):
            y = F.pad(y, (0, out_pad[1], 0, out_pad[0]))
        h, wd = y.shape[2], y.shape[3]
        y = y[:, :, pads[0]:h - pads[2], pads[1]:wd - pads[3]]
        if bias is not None:
            y = y + T.reshape(bias, (1, -1, 1, 1))
    return T.squeeze(y, 2) if one_d else y


def _pool_params(node, x):
    nd = len(node.attrs["kernel_shape"])
    k = _attr2(node, "kernel_shape", 1, nd)
    strides = _attr2(node, "strides", 1, nd)
    dil = _attr2(node, "dilations", 1, nd)
    if nd == 1:
        p1 = _spatial_pads(node, (0, 0, x.shape[3]), k[1:], strides[1:], dil[1:])
        pads = [0, p1[0], 0, p1[1]]
    else:
        pads = _spatial_pads(node, x.shape, k, strides, dil)
    return k, strides, dil, pads, bool(node.attrs.get("ceil_mode", 0))


def _max_pool(m, node, x):
    if _is_static(x) and np.asarray(x).dtype.kind in "iu":  # exact in float32 for 8/16-bit ints
        dtype = np.asarray(x).dtype
        if dtype.itemsize > 2:
            _unsupported(node, f"MaxPool of {dtype} values")
        return _np(_max_pool(m, node, _dyn(np.asarray(x, np.float32)))).astype(dtype)
    if len(node.outputs) > 1 and node.outputs[1]:
        _unsupported(node, "the Indices output of MaxPool")
    if node.attrs.get("storage_order", 0):
        _unsupported(node, "storage_order=1")
    x, one_d = _as_2d(_dyn(x), node)
    k, s, d, pads, ceil = _pool_params(node, x)
    if pads[:2] == pads[2:] and all(p <= kk // 2 for p, kk in zip(pads[:2], k)):
        y = F.max_pool2d(x, tuple(k), tuple(s), tuple(pads[:2]), tuple(d), ceil)
    else:
        if ceil:
            _unsupported(node, "ceil_mode with asymmetric or more-than-half-kernel pads")
        y = F.max_pool2d(F.pad(x, _torch_pad(pads), value=-math.inf), tuple(k), tuple(s), 0,
                         tuple(d))
    return T.squeeze(y, 2) if one_d else y


def _avg_pool(m, node, x):
    x, one_d = _as_2d(_dyn(x), node)
    k, s, d, pads, ceil = _pool_params(node, x)
    if any(v != 1 for v in d):
        _unsupported(node, f"dilations={list(node.attrs['dilations'])} in AveragePool")
    include = bool(node.attrs.get("count_include_pad", 0))
    if pads[:2] == pads[2:] and all(p <= kk // 2 for p, kk in zip(pads[:2], k)):
        y = F.avg_pool2d(x, tuple(k), tuple(s), tuple(pads[:2]), ceil, include)
    else:
        if ceil:
            _unsupported(node, "ceil_mode with asymmetric or more-than-half-kernel pads")
        tp = _torch_pad(pads)
        y = F.avg_pool2d(F.pad(x, tp), tuple(k), tuple(s), 0)
        if not include:  # mean over the real pixels only: divide by the pooled share of them
            ones = F.pad(tensor(np.ones((1, 1) + tuple(x.shape[2:]), np.float32)), tp)
            y = y / F.avg_pool2d(ones, tuple(k), tuple(s), 0)
    return T.squeeze(y, 2) if one_d else y


def _global_pool(kind):
    def run(m, node, x):
        x = _dyn(x)
        dims = tuple(range(2, x.ndim))
        if kind == "avg":
            return T.mean(x, dims, keepdim=True)
        n, c = x.shape[:2]
        values = T.max(T.reshape(x, (n, c, -1)), 2, keepdim=True)[0]
        return T.reshape(values, (n, c) + (1,) * len(dims))
    return run


def _batch_norm(m, node, x, scale, bias, mean, var):
    if len([o for o in node.outputs if o]) > 1:
        _unsupported(node, "the running-statistics outputs of BatchNormalization "
                           "(training_mode=1)")
    train = m.training and isinstance(mean, Tensor) and isinstance(var, Tensor)
    return F.batch_norm(_dyn(x), _dyn(mean), _dyn(var), _dyn(scale), _dyn(bias), train,
                        1.0 - float(node.attrs.get("momentum", 0.9)),
                        float(node.attrs.get("epsilon", 1e-5)))


def _lrn(m, node, x):
    return F.local_response_norm(_dyn(x), int(node.attrs["size"]),
                                 float(node.attrs.get("alpha", 1e-4)),
                                 float(node.attrs.get("beta", 0.75)),
                                 float(node.attrs.get("bias", 1.0)))


def _softmax(m, node, x):
    x = _dyn(x)
    if m.opset >= 13:
        return F.softmax(x, int(node.attrs.get("axis", -1)))
    axis = int(node.attrs.get("axis", 1)) % max(x.ndim, 1)  # coerced to 2-D before opset 13
    shape = x.shape
    flat = T.reshape(x, (int(np.prod(shape[:axis], dtype=np.int64)), -1))
    return T.reshape(F.softmax(flat, 1), shape)


def _gemm(m, node, a, b, c=None):
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
    a, b = _dyn(a), _dyn(b)
    if not ta and tb and alpha == 1.0 and (c is None or (beta == 1.0 and _dyn(c).ndim == 1)):
        return F.linear(a, b, None if c is None else _dyn(c))
    y = matmul(T.transpose(a, 0, 1) if ta else a, T.transpose(b, 0, 1) if tb else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (_dyn(c) * beta if beta != 1.0 else _dyn(c))
    return y


def _binary(np_fn, t_fn):
    def run(m, node, a, b):
        if _is_static(a) and _is_static(b):
            a, b = np.asarray(a), np.asarray(b)
            out = np_fn(a, b)
            return out.astype(a.dtype) if a.dtype.kind in "iu" and out.dtype != a.dtype \
                else out
        return t_fn(_dyn(a), _dyn(b))
    return run


def _int_div(a, b):
    if a.dtype.kind in "iu":
        return np.trunc(a / b).astype(a.dtype)  # ONNX integer Div truncates
    return a / b


def _concat(m, node, *xs):
    axis = int(node.attrs["axis"])
    if all(_is_static(v) for v in xs):
        return np.concatenate([np.asarray(v) for v in xs], axis)
    return T.cat([_dyn(v) for v in xs], axis)


def _flatten(m, node, x):
    shape = _np_shape(x)
    axis = int(node.attrs.get("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    new = (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
    return np.asarray(x).reshape(new) if _is_static(x) else T.reshape(x, new)


def _np_shape(x):
    return tuple(x.shape) if isinstance(x, Tensor) else np.shape(x)


def _reshape(m, node, x, shape):
    target = _ints(shape, node, "shape")
    src = _np_shape(x)
    if not node.attrs.get("allowzero", 0):
        target = [src[i] if s == 0 else s for i, s in enumerate(target)]
    return np.reshape(np.asarray(x), target) if _is_static(x) else T.reshape(x, tuple(target))


def _dropout(m, node, x, ratio=None, training_mode=None):
    if len(node.outputs) > 1 and node.outputs[1]:
        _unsupported(node, "the mask output of Dropout")
    p = float(node.attrs.get("ratio", 0.5)) if ratio is None else float(_np(ratio))
    active = m.training if training_mode is None else bool(_np(training_mode))
    if not active or p == 0.0:
        return x  # inference, unless the graph or fine-tuning (model.train()) asks for it
    return F.dropout(_dyn(x), p, True)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


def _pad(m, node, x, pads=None, value=None, axes=None):
    mode = node.attrs.get("mode", "constant")
    if mode not in _PAD_MODES:
        _unsupported(node, f"mode={mode!r}")
    shape = _np_shape(x)
    nd = len(shape)
    p = _ints(pads, node, "pads") if pads is not None else list(node.attrs["pads"])
    ax = list(range(nd)) if axes is None else [a % nd for a in _ints(axes, node, "axes")]
    full = [0] * (2 * nd)
    for i, a in enumerate(ax):
        full[a], full[nd + a] = p[i], p[len(ax) + i]
    cval = float(node.attrs.get("value", 0.0)) if value is None else \
        float(_np(value).reshape(-1)[0]) if _np(value).size else 0.0
    if _is_static(x):
        arr = np.asarray(x)
        width = [(full[i], full[nd + i]) for i in range(nd)]
        if any(v < 0 for v in full):
            _unsupported(node, "negative pads on a constant")
        return np.pad(arr, width, mode=mode if mode != "edge" else "edge",
                      **({"constant_values": cval} if mode == "constant" else {}))
    lead = [i for i in range(nd) if full[i] or full[nd + i]]
    first = lead[0] if lead else nd
    tp = []
    for i in reversed(range(first, nd)):
        tp += [full[i], full[nd + i]]
    if not tp:
        return x
    return F.pad(_dyn(x), tuple(tp), _PAD_MODES[mode], cval if mode == "constant" else None)


def _resize(m, node, x, roi=None, scales=None, sizes=None):
    x = _dyn(x)
    a = node.attrs
    mode = a.get("mode", "nearest")
    ctm = a.get("coordinate_transformation_mode", "half_pixel")
    if node.op == "Upsample":
        scales, ctm = roi if scales is None else scales, "asymmetric"
        if scales is None:
            scales = np.asarray(a["scales"], np.float32)
    if a.get("antialias", 0):
        _unsupported(node, "antialias=1")
    if a.get("axes") is not None or a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        _unsupported(node, "axes or keep_aspect_ratio_policy")
    if mode == "nearest":
        nm = a.get("nearest_mode", "round_prefer_floor") if node.op == "Resize" else "floor"
        if ctm != "asymmetric" or nm != "floor":  # torch's 'nearest' is the fast path
            return _nearest_gather(node, x, ctm, nm, scales, sizes)
        tmode, align = "nearest", None
    elif mode == "linear":
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            align = False
        elif ctm == "align_corners":
            align = True
        else:
            _unsupported(node, f"linear resize with coordinate_transformation_mode={ctm!r}")
        tmode = {3: "linear", 4: "bilinear"}.get(x.ndim)
        if tmode is None:
            _unsupported(node, f"linear resize of a {x.ndim}-D input")
    else:
        _unsupported(node, f"mode={mode!r} (supported: nearest, linear)")
    spatial = x.ndim - 2
    if sizes is not None and _np(sizes).size:
        size = _ints(sizes, node, "sizes")
        if list(size[:2]) != list(x.shape[:2]):
            _unsupported(node, "resizing the batch or channel dims")
        if ctm == "pytorch_half_pixel" and any(s == 1 for s in size[2:]):
            _unsupported(node, "pytorch_half_pixel to a length-1 output")
        return F.interpolate(x, size=tuple(size[2:]), mode=tmode, align_corners=align)
    sc = [float(s) for s in _np(scales).reshape(-1)]
    if len(sc) != x.ndim or sc[:2] != [1.0, 1.0]:
        _unsupported(node, f"scales {sc} (need 1 for the batch and channel dims)")
    if align:  # align_corners maps by sizes, not by scales
        if any(float(x.shape[2 + i] * sc[2 + i]).is_integer() is False for i in range(spatial)):
            _unsupported(node, "align_corners with scales that give a fractional output size")
        size = tuple(int(math.floor(x.shape[2 + i] * sc[2 + i])) for i in range(spatial))
        return F.interpolate(x, size=size, mode=tmode, align_corners=True)
    return F.interpolate(x, scale_factor=tuple(sc[2:]), mode=tmode, align_corners=align)


def _resize_plan(node, x, scales, sizes):
    """(output sizes, scales) of the spatial dims, from either sizes or scales."""
    spatial = x.ndim - 2
    if sizes is not None and _np(sizes).size:
        size = _ints(sizes, node, "sizes")
        if list(size[:2]) != list(x.shape[:2]):
            _unsupported(node, "resizing the batch or channel dims")
        out = size[2:]
        return out, [out[i] / x.shape[2 + i] for i in range(spatial)]
    sc = [float(s) for s in _np(scales).reshape(-1)]
    if len(sc) != x.ndim or sc[:2] != [1.0, 1.0]:
        _unsupported(node, f"scales {sc} (need 1 for the batch and channel dims)")
    return [int(math.floor(x.shape[2 + i] * sc[2 + i])) for i in range(spatial)], sc[2:]


_NEAREST_ROUND = {"round_prefer_floor": lambda v: np.ceil(v - 0.5),
                  "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                  "floor": np.floor, "ceil": np.ceil}


def _nearest_gather(node, x, ctm, nearest_mode, scales, sizes):
    """Nearest resize in any coordinate mode: a gather of source rows and columns (its
    gradient scatters back through the indexing)."""
    if nearest_mode not in _NEAREST_ROUND:
        _unsupported(node, f"nearest_mode={nearest_mode!r}")
    out, sc = _resize_plan(node, x, scales, sizes)
    for i, (n_out, s) in enumerate(zip(out, sc)):
        n_in = x.shape[2 + i]
        o = np.arange(n_out, dtype=np.float64)
        if ctm == "half_pixel":
            src = (o + 0.5) / s - 0.5
        elif ctm == "pytorch_half_pixel":
            src = (o + 0.5) / s - 0.5 if n_out > 1 else np.zeros(n_out)
        elif ctm == "asymmetric":
            src = o / s
        elif ctm == "align_corners":
            src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
        elif ctm == "tf_half_pixel_for_nn":
            src = (o + 0.5) / s
        else:
            _unsupported(node, f"nearest resize with coordinate_transformation_mode={ctm!r}")
        idx = np.clip(_NEAREST_ROUND[nearest_mode](src), 0, n_in - 1).astype(np.int64)
        x = x[(slice(None),) * (2 + i) + (idx,)]
    return x


def _constant(m, node):
    a = node.attrs
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            v = a[key]
            if key.startswith("value_float"):
                return np.asarray(v, np.float32)
            if key.startswith("value_int"):
                return np.asarray(v, np.int64)
            return np.asarray(v)
    _unsupported(node, f"Constant with attribute {', '.join(a) or '(none)'}")


def _constant_of_shape(m, node, shape):
    value = node.attrs.get("value", np.zeros(1, np.float32))
    return np.full(_ints(shape, node, "input"), np.asarray(value).reshape(-1)[0],
                   np.asarray(value).dtype)


def _shape(m, node, x):
    s = np.asarray(_np_shape(x), np.int64)
    n = len(s)
    start = int(node.attrs.get("start", 0))
    end = int(node.attrs.get("end", n))
    return s[slice(start, end)]


def _gather(m, node, x, idx):
    axis = int(node.attrs.get("axis", 0))
    i = _np(idx)
    if i.dtype.kind not in "iu":
        _unsupported(node, f"indices must be integers, got {i.dtype}")
    if _is_static(x):
        return np.take(np.asarray(x), i, axis=axis)
    dim = x.shape[axis % x.ndim]
    i = np.where(i < 0, i + dim, i).astype(np.int64)
    key = (slice(None),) * (axis % x.ndim) + (i,)
    return x[key]


def _axes(node, axes, what):
    if axes is not None:
        return _ints(axes, node, "axes")
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    return None


def _unsqueeze(m, node, x, axes=None):
    ax = _axes(node, axes, "axes")
    shape = list(_np_shape(x))
    out_nd = len(shape) + len(ax)
    for a in sorted(a % out_nd for a in ax):
        shape.insert(a, 1)
    return np.reshape(np.asarray(x), shape) if _is_static(x) else T.reshape(x, tuple(shape))


def _squeeze(m, node, x, axes=None):
    ax = _axes(node, axes, "axes")
    shape = list(_np_shape(x))
    drop = {a % len(shape) for a in ax} if ax is not None else \
        {i for i, s in enumerate(shape) if s == 1}
    new = [s for i, s in enumerate(shape) if i not in drop]
    return np.reshape(np.asarray(x), new) if _is_static(x) else T.reshape(x, tuple(new))


def _cast(m, node, x):
    onnx = _require_onnx("load")
    to = onnx.helper.tensor_dtype_to_np_dtype(int(node.attrs["to"]))
    if _is_static(x):
        return np.asarray(x).astype(to)
    if to == float32:
        return x.float()
    if to.kind in "iub":
        return x.detach().numpy().astype(to)  # integers carry no gradient: a static value
    _unsupported(node, f"casting a float tensor to {to} (cnncore computes in float32)")


def _transpose(m, node, x):
    perm = node.attrs.get("perm")
    if _is_static(x):
        return np.transpose(np.asarray(x), perm)
    perm = tuple(perm) if perm is not None else tuple(reversed(range(x.ndim)))
    return T.permute(x, perm)


def _clip(m, node, x, lo=None, hi=None):
    lo = node.attrs.get("min") if lo is None else float(_np(lo))
    hi = node.attrs.get("max") if hi is None else float(_np(hi))
    if lo is None and hi is None:
        return x
    if _is_static(x):
        return np.clip(np.asarray(x), lo, hi)
    return T.clamp(x, lo, hi)


def _slice(m, node, x, starts=None, ends=None, axes=None, steps=None):
    if starts is None:  # before opset 10: attributes
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes = node.attrs.get("axes")
    else:
        starts, ends = _ints(starts, node, "starts"), _ints(ends, node, "ends")
        axes = None if axes is None else _ints(axes, node, "axes")
        steps = None if steps is None else _ints(steps, node, "steps")
    nd = len(_np_shape(x))
    axes = list(range(len(starts))) if axes is None else [a % nd for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    key = [slice(None)] * nd
    for a, b, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            _unsupported(node, "a step of 0")
        key[a] = slice(int(b), int(e), int(st))
    if _is_static(x):
        return np.asarray(x)[tuple(key)]
    if any(k.step is not None and k.step < 0 for k in key):
        _unsupported(node, "negative steps on a float tensor")
    return x[tuple(key)]


def _reduce_mean(m, node, x, axes=None):
    ax = _axes(node, axes, "axes")
    keep = bool(node.attrs.get("keepdims", 1))
    nd = len(_np_shape(x))
    if not ax:
        if node.attrs.get("noop_with_empty_axes", 0):
            return x
        ax = list(range(nd))
    ax = tuple(sorted(a % nd for a in ax))
    if _is_static(x):
        return np.mean(np.asarray(x), axis=ax, keepdims=keep)
    return T.mean(x, ax, keepdim=keep)


def _unary(fn):
    return lambda m, node, x: fn(_dyn(x))


_OPS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MaxPool": _max_pool,
    "AveragePool": _avg_pool, "GlobalAveragePool": _global_pool("avg"),
    "GlobalMaxPool": _global_pool("max"), "LRN": _lrn, "BatchNormalization": _batch_norm,
    "Relu": _unary(F.relu), "Sigmoid": _unary(F.sigmoid), "Tanh": _unary(F.tanh),
    "LeakyRelu": lambda m, node, x: F.leaky_relu(_dyn(x), float(node.attrs.get("alpha", 0.01))),
    "Softmax": _softmax, "Gemm": _gemm,
    "MatMul": _binary(np.matmul, matmul),
    "Add": _binary(np.add, T.add), "Sub": _binary(np.subtract, T.sub),
    "Mul": _binary(np.multiply, T.mul), "Div": _binary(_int_div, T.div),
    "Pow": _binary(np.power, T.pow), "Slice": _slice, "ReduceMean": _reduce_mean,
    "Concat": _concat, "Flatten": _flatten, "Reshape": _reshape, "Dropout": _dropout,
    "Pad": _pad, "Resize": _resize, "Upsample": _resize, "Constant": _constant,
    "ConstantOfShape": _constant_of_shape, "Shape": _shape, "Gather": _gather,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Cast": _cast, "Identity": lambda m, n, x: x,
    "Transpose": _transpose, "Clip": _clip,
}
SUPPORTED_OPS = tuple(sorted(_OPS))
_RANDOM_OPS = {"Dropout"}  # never folded: they depend on the training flag


# ---- the module ----------------------------------------------------------------------------------
_IDENT = re.compile(r"^\w+$")  # one part of a dotted name ("0" as in Sequential)


class OnnxModule(Module):
    """An ONNX graph run with cnncore ops. Call it with the graph's inputs in order (cnncore
    Tensors or numpy arrays); it returns a Tensor, or a tuple for several outputs. Static
    (integer) outputs come back as int64 Tensors."""

    def __init__(self, graph, opset: int, onnx):
        super().__init__()
        object.__setattr__(self, "opset", opset)
        init_names = {i.name for i in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in init_names]
        self.output_names = [o.name for o in graph.output]
        nodes = [_Node(p, i, onnx) for i, p in enumerate(graph.node)]
        self._check_supported(nodes)
        self._check_wiring(nodes, init_names)
        role = {}
        for nd in nodes:
            for pos, name in enumerate(nd.inputs):
                if name in init_names:
                    r = "buffer" if pos in _BUFFER_INPUTS.get(nd.op, ()) else \
                        "static" if pos in _STATIC_INPUTS.get(nd.op, ()) else "param"
                    role[name] = "param" if role.get(name, r) == "param" or r == "param" else r
        consts, self._slots = {}, {}
        used = set()
        for init in graph.initializer:
            arr = onnx.numpy_helper.to_array(init)
            r = role.get(init.name, "static")
            if arr.dtype.kind != "f" or r == "static":
                consts[init.name] = arr
                continue
            value = np.array(arr, np.float32, order="C")
            slot = self._register(init.name, value, r == "buffer", used)
            self._slots[init.name] = slot
        self._nodes = []
        # Constant folding: every node whose inputs are all known now runs once, here.
        for nd in nodes:
            if nd.op not in _RANDOM_OPS and all(n == "" or n in consts for n in nd.inputs):
                outs = self._run_node(nd, [consts.get(n) if n else None for n in nd.inputs])
                for name, v in zip(nd.outputs, outs):
                    if name:
                        consts[name] = v
            else:
                self._nodes.append(nd)
        object.__setattr__(self, "_consts", consts)

    def _check_supported(self, nodes):
        bad = [nd for nd in nodes if nd.op not in _OPS]
        if bad:
            listed = "; ".join(nd.where() for nd in bad[:20])
            more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
            ops = ", ".join(sorted({nd.op for nd in bad}))
            raise OnnxUnsupportedError(
                f"cnncore.onnx.load: unsupported operator(s) {ops}: {listed}{more}. "
                f"Supported: {', '.join(SUPPORTED_OPS)}")

    def _check_wiring(self, nodes, init_names):
        """ONNX graphs are topologically sorted: every node input must be a graph input, an
        initializer or an earlier node's output, and every graph output must be produced. A
        damaged or hand-edited file fails here, at load, not in the middle of a forward."""
        known = set(self.input_names) | set(init_names)
        for nd in nodes:
            for n in nd.inputs:
                if n and n not in known:
                    raise ValueError(f"cnncore.onnx.load: {nd.where()}: input '{n}' is not a "
                                     f"graph input, an initializer or an earlier node's output")
            known.update(n for n in nd.outputs if n)
        missing = [n for n in self.output_names if n not in known]
        if missing:
            raise ValueError(f"cnncore.onnx.load: graph output(s) {', '.join(map(repr, missing))}"
                             f" are produced by no node")

    def _register(self, name, value, buffer, used):
        """Registers an initializer under its dotted name (nested modules, torch's keys) when
        every part is an identifier; otherwise under a sanitised flat name."""
        parts = name.split(".")
        if not all(_IDENT.match(p) for p in parts):
            parts = [re.sub(r"\W", "_", name).strip("_") or "param"]
            if parts[0][0].isdigit():
                parts[0] = "p_" + parts[0]
        key = ".".join(parts)
        k = 1
        while key in used:
            k += 1
            key = ".".join(parts[:-1] + [f"{parts[-1]}_{k}"])
        used.add(key)
        parts = key.split(".")
        owner = self
        for p in parts[:-1]:
            child = owner._modules.get(p)
            if child is None:
                child = Module()
                owner.add_module(p, child)
            owner = child
        if buffer:
            owner.register_buffer(parts[-1], tensor(value))
        else:
            owner.register_parameter(parts[-1], Parameter(value))
        return key

    def _value_of_slot(self, key):
        owner = self
        parts = key.split(".")
        for p in parts[:-1]:
            owner = owner._modules[p]
        return getattr(owner, parts[-1])

    def _run_node(self, nd, args):
        while args and args[-1] is None:
            args.pop()
        try:
            out = _OPS[nd.op](self, nd, *args)
        except OnnxUnsupportedError:
            raise
        except (ValueError, TypeError, IndexError, RuntimeError) as e:
            raise type(e)(f"cnncore.onnx: {nd.where()}: {e}") from e
        return out if isinstance(out, tuple) else (out,)

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"OnnxModule: the graph takes {len(self.input_names)} input(s) "
                            f"({', '.join(self.input_names)}), but got {len(inputs)}")
        env = dict(self._consts)
        for name, key in self._slots.items():
            env[name] = self._value_of_slot(key)
        for name, v in zip(self.input_names, inputs):
            if isinstance(v, Tensor):
                env[name] = v if v.dtype == float32 else v.numpy()
            else:
                arr = np.asarray(v)
                env[name] = tensor(arr.astype(np.float32)) if arr.dtype.kind == "f" else arr
        for nd in self._nodes:
            args = []
            for n in nd.inputs:
                if n and n not in env:
                    raise RuntimeError(f"cnncore.onnx: {nd.where()}: input '{n}' is not "
                                       f"produced by any earlier node")
                args.append(env[n] if n else None)
            for name, v in zip(nd.outputs, self._run_node(nd, args)):
                if name:
                    env[name] = v
        outs = tuple(v if isinstance(v, Tensor) else _dyn(v)
                     for v in (env[n] for n in self.output_names))
        return outs[0] if len(outs) == 1 else outs


def _parse(onnx, parse, src, what):
    """onnx's parser, with protobuf's DecodeError (not a ValueError) turned into one that names
    the file."""
    from google.protobuf.message import DecodeError
    try:
        return parse(src)
    except DecodeError as e:
        raise ValueError(f"cnncore.onnx.load: {what} is not a valid ONNX model ({e})") from None


def load(path) -> OnnxModule:
    """An ONNX model (a path, bytes, or an onnx.ModelProto) as a cnncore Module (eval mode).
    Every operator is checked at load: an unsupported one raises OnnxUnsupportedError (a
    NotImplementedError) naming each such operator and node."""
    onnx = _require_onnx("load")
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"cnncore.onnx.load: no such file: {path}")
        model = _parse(onnx, onnx.load, path, path)
    elif isinstance(path, bytes):
        model = _parse(onnx, onnx.load_from_string, path, "the bytes given")
    elif hasattr(path, "graph"):
        model = path
    else:
        raise TypeError(f"cnncore.onnx.load: expected a path, bytes or an onnx.ModelProto, but "
                        f"got {type(path).__name__}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    others = {o.domain for o in model.opset_import if o.domain not in ("", "ai.onnx")}
    bad = [(i, n) for i, n in enumerate(model.graph.node) if n.domain not in ("", "ai.onnx")]
    if bad:
        raise OnnxUnsupportedError(
            "cnncore.onnx.load: unsupported operator(s) outside the standard domain: "
            + "; ".join(f"node '{n.name or f'#{i}'}' ({n.domain}.{n.op_type}, #{i})"
                        for i, n in bad[:20]) + (f" (opsets: {sorted(others)})" if others else ""))
    m = OnnxModule(model.graph, opset, onnx)
    m.eval()
    return m


# ---- export --------------------------------------------------------------------------------------
def _pair(v):
    return [int(v), int(v)] if isinstance(v, numbers.Integral) else [int(i) for i in v]


class _Emitter:
    """Builds ONNX nodes and initializers from a traced cnncore graph."""

    def __init__(self, onnx, graph, state):
        self.onnx, self.graph, self.state = onnx, graph, state
        self.nodes, self.inits, self.names = [], [], set()

    def unique(self, base):
        name, i = re.sub(r"[^\w.#]", "_", base), 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, base, value):
        name = self.unique(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def param(self, key):
        if key not in self.names:
            self.names.add(key)
            arr = self.state[key].numpy()
            self.inits.append(self.onnx.numpy_helper.from_array(
                np.array(arr, np.float32 if arr.dtype.kind == "f" else arr.dtype), key))
        return key

    def node(self, op, inputs, output=None, name=None, **attrs):
        out = output or self.unique(f"{name or op}_out")
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out],
                                                     name=self.unique(name or op), **attrs))
        return out


def _conv_pads(padding, in_hw, out_hw, k, s, d, transposed):
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        total = [max((o - 1) * st + (kk - 1) * dd + 1 - i, 0)
                 for i, o, kk, st, dd in zip(in_hw, out_hw, k, s, d)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    if isinstance(padding, (tuple, list)) and padding and isinstance(padding[0], (tuple, list)):
        (t, b), (l, r) = padding
        return [t, l, b, r]
    ph, pw = _pair(padding)
    return [ph, pw, ph, pw]


def _export_module(em, nd, x, out, mod_attrs, shapes):
    op, a, p = nd.op, mod_attrs, nd.params
    in_shape, out_shape = shapes[nd.inputs[0]], shapes[nd.outputs[0]]
    if op in ("Conv2d", "ConvTranspose2d"):
        k, s, d = _pair(a["kernel_size"]), _pair(a["stride"]), _pair(a["dilation"])
        ins = [x, em.param(p["weight"])] + ([em.param(p["bias"])] if "bias" in p else [])
        if op == "Conv2d":
            pads = _conv_pads(a["padding"], in_shape[2:], out_shape[2:], k, s, d, False)
            if a.get("padding_mode", "zeros") != "zeros":
                mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[
                    a["padding_mode"]]
                ins[0] = em.node("Pad", [x, em.const(nd.name + ".pads", np.array(
                    [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64))],
                    name=nd.name + ".pad", mode=mode)
                pads = [0, 0, 0, 0]
            return em.node("Conv", ins, out, nd.name, kernel_shape=k, strides=s, dilations=d,
                           pads=pads, group=int(a["groups"]))
        ph, pw = _pair(a["padding"])
        return em.node("ConvTranspose", ins, out, nd.name, kernel_shape=k, strides=s,
                       dilations=d, pads=[ph, pw, ph, pw], group=int(a["groups"]),
                       output_padding=_pair(a.get("output_padding", 0)))
    if op == "Linear":
        ins = [x, em.param(p["weight"])] + ([em.param(p["bias"])] if "bias" in p else [])
        return em.node("Gemm", ins, out, nd.name, transB=1)
    if op in ("BatchNorm1d", "BatchNorm2d"):
        if "running_mean" not in p:
            raise ValueError(f"cnncore.onnx.export: {op} '{nd.module}' has no running "
                             f"statistics (track_running_stats=False) to run in inference")
        c = in_shape[1]
        scale = em.param(p["weight"]) if "weight" in p else em.const(nd.name + ".one",
                                                                      np.ones(c, np.float32))
        bias = em.param(p["bias"]) if "bias" in p else em.const(nd.name + ".zero",
                                                                 np.zeros(c, np.float32))
        return em.node("BatchNormalization", [x, scale, bias, em.param(p["running_mean"]),
                                              em.param(p["running_var"])], out, nd.name,
                       epsilon=float(a["eps"]))
    if op == "MaxPool2d":
        if a.get("return_indices"):
            raise ValueError(f"cnncore.onnx.export: MaxPool2d '{nd.module}' returns indices")
        return _pool_node(em, "MaxPool", x, out, nd.name, a["kernel_size"], a["stride"],
                          a["padding"], a.get("ceil_mode", False), dilations=a["dilation"])
    if op == "AvgPool2d":
        if a.get("divisor_override"):
            raise ValueError(f"cnncore.onnx.export: AvgPool2d '{nd.module}' has "
                             f"divisor_override, which ONNX cannot express")
        return _pool_node(em, "AveragePool", x, out, nd.name, a["kernel_size"], a["stride"],
                          a["padding"], a.get("ceil_mode", False),
                          count_include_pad=int(a.get("count_include_pad", True)))
    if op in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return _adaptive_pool(em, nd, x, out, "Average" if "Avg" in op else "Max", in_shape,
                              out_shape)
    return _export_simple(em, nd, op, x, out, a, in_shape, out_shape)


def _pool_node(em, op, x, out, name, kernel, stride, padding, ceil, **extra):
    k = _pair(kernel)
    s = _pair(stride if stride is not None else kernel)
    ph, pw = _pair(padding)
    if "dilations" in extra:
        extra["dilations"] = _pair(extra["dilations"])
    return em.node(op, [x], out, name, kernel_shape=k, strides=s, pads=[ph, pw, ph, pw],
                   ceil_mode=int(bool(ceil)), **extra)


def _adaptive_pool(em, nd, x, out, kind, in_shape, out_shape):
    if tuple(out_shape[2:]) == (1, 1):
        return em.node(f"Global{kind}Pool", [x], out, nd.name)
    ih, iw = in_shape[2:]
    oh, ow = out_shape[2:]
    if ih % oh or iw % ow:
        raise ValueError(f"cnncore.onnx.export: {nd.op} '{nd.name}' maps {ih}x{iw} to {oh}x{ow}, "
                         f"which is not a whole-window pooling ONNX can express")
    k = [ih // oh, iw // ow]
    return em.node(f"{kind}Pool" if kind == "Max" else "AveragePool", [x], out, nd.name,
                   kernel_shape=k, strides=k)


def _resize_node(em, nd, x, out, mode, align_corners, out_shape):
    # (N, C) from the input at run time, so the batch stays free; the spatial size is fixed.
    lead = em.node("Shape", [x], name=nd.name + ".nc", start=0, end=2)
    sizes = em.node("Concat", [lead, em.const(nd.name + ".hw", np.asarray(out_shape[2:],
                                                                         np.int64))],
                    name=nd.name + ".sizes", axis=0)
    if mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    elif mode in ("bilinear", "linear"):
        attrs = dict(mode="linear", coordinate_transformation_mode="align_corners"
                     if align_corners else "half_pixel")
    else:
        raise ValueError(f"cnncore.onnx.export: {nd.name}: interpolation mode {mode!r} has no "
                         f"ONNX Resize equivalent here (nearest, bilinear)")
    return em.node("Resize", [x, "", "", sizes], out, nd.name, **attrs)


def _export_simple(em, nd, op, x, out, a, in_shape, out_shape):
    """Layers and functions that map one-to-one (activations, reshapes, pads, resizes)."""
    simple = {"ReLU": "Relu", "relu": "Relu", "Sigmoid": "Sigmoid", "sigmoid": "Sigmoid",
              "Tanh": "Tanh", "tanh": "Tanh", "Identity": "Identity"}
    if op in simple:
        return em.node(simple[op], [x], out, nd.name)
    if op in ("Dropout", "Dropout2d", "dropout", "dropout2d"):
        return em.node("Identity", [x], out, nd.name)  # inference graph
    if op in ("LeakyReLU", "leaky_relu"):
        return em.node("LeakyRelu", [x], out, nd.name, alpha=float(a["negative_slope"]))
    if op in ("ReLU6", "relu6", "hardtanh"):
        lo, hi = (0.0, 6.0) if op != "hardtanh" else (a["min_val"], a["max_val"])
        return em.node("Clip", [x, em.const(nd.name + ".min", np.float32(lo)),
                                em.const(nd.name + ".max", np.float32(hi))], out, nd.name)
    if op in ("Softmax", "softmax", "LogSoftmax", "log_softmax"):
        dim = a.get("dim")
        if dim is None:
            dim = 0 if len(in_shape) in (0, 1, 3) else 1  # torch's legacy implicit choice
        kind = "LogSoftmax" if "og" in op else "Softmax"
        return em.node(kind, [x], out, nd.name, axis=int(dim))
    if op == "LocalResponseNorm":
        return em.node("LRN", [x], out, nd.name, size=int(a["size"]), alpha=float(a["alpha"]),
                       beta=float(a["beta"]), bias=float(a["k"]))
    if op in ("Flatten", "flatten"):
        start, end = int(a.get("start_dim", 1)), int(a.get("end_dim", -1))
        if start == 1 and end in (-1, len(in_shape) - 1):
            return em.node("Flatten", [x], out, nd.name, axis=1)
    if op in ("Flatten", "flatten", "reshape", "view"):
        shape = np.asarray((-1,) + tuple(out_shape[1:]), np.int64)  # batch-size free
        return em.node("Reshape", [x, em.const(nd.name + ".shape", shape)], out, nd.name)
    if op in ("ZeroPad2d", "pad"):
        pad = list(a["padding"] if op == "ZeroPad2d" else a["pad"])
        mode = a.get("mode", "constant")
        nd_ = len(in_shape)
        begin, end = [0] * nd_, [0] * nd_
        for i in range(len(pad) // 2):
            begin[nd_ - 1 - i], end[nd_ - 1 - i] = pad[2 * i], pad[2 * i + 1]
        onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                     "circular": "wrap"}[mode]
        ins = [x, em.const(nd.name + ".pads", np.asarray(begin + end, np.int64))]
        if onnx_mode == "constant":
            ins.append(em.const(nd.name + ".value", np.float32(a.get("value") or 0.0)))
        return em.node("Pad", ins, out, nd.name, mode=onnx_mode)
    if op in ("Upsample", "interpolate"):
        return _resize_node(em, nd, x, out, a.get("mode", "nearest"), a.get("align_corners"),
                            out_shape)
    if op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _adaptive_pool(em, nd, x, out, "Average" if "avg" in op else "Max", in_shape,
                              out_shape)
    if op in ("max_pool2d", "avg_pool2d"):
        extra = {"dilations": a["dilation"]} if op == "max_pool2d" else \
            {"count_include_pad": int(a.get("count_include_pad", True))}
        return _pool_node(em, "MaxPool" if op == "max_pool2d" else "AveragePool", x, out,
                          nd.name, a["kernel_size"], a["stride"], a["padding"],
                          a.get("ceil_mode", False), **extra)
    if op in ("mean", "sum"):
        dims = a.get("dim")
        dims = list(range(len(in_shape))) if dims is None else \
            [int(dims)] if isinstance(dims, numbers.Integral) else [int(d) for d in dims]
        onnx_op = "ReduceMean" if op == "mean" else "ReduceSum"
        if onnx_op == "ReduceSum" or em.opset >= 18:  # axes became an input (13 / 18)
            return em.node(onnx_op, [x, em.const(nd.name + ".axes", np.asarray(dims, np.int64))],
                           out, nd.name, keepdims=int(bool(a.get("keepdim", False))))
        return em.node(onnx_op, [x], out, nd.name, axes=dims,
                       keepdims=int(bool(a.get("keepdim", False))))
    raise ValueError(f"cnncore.onnx.export: {nd.kind} '{nd.name}' ({op}) has no ONNX mapping; "
                     f"supported layers: {', '.join(EXPORTABLE_MODULES)}; functions: "
                     f"{', '.join(EXPORTABLE_FUNCTIONS)}")


EXPORTABLE_MODULES = ("Conv2d", "ConvTranspose2d", "Linear", "BatchNorm1d", "BatchNorm2d",
                      "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "ReLU",
                      "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
                      "LocalResponseNorm", "Dropout", "Dropout2d", "Flatten", "Identity",
                      "ZeroPad2d", "Upsample")
EXPORTABLE_FUNCTIONS = ("add", "sub", "mul", "div", "cat", "flatten", "reshape", "view", "relu",
                        "relu6", "hardtanh", "leaky_relu", "sigmoid", "tanh", "softmax",
                        "log_softmax", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                        "adaptive_max_pool2d", "pad", "interpolate", "mean", "sum", "dropout",
                        "dropout2d")
_BINARY_ONNX = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
                "maximum": "Max", "minimum": "Min"}


def export(model, example_input, path, opset_version: int = 17, input_names=None,
           output_names=None):
    """Writes ``model`` (built-in cnncore.nn layers wired by forward, recorded with
    cnncore.graph.trace at ``example_input``) as an ONNX file for inference (eval mode:
    BatchNorm uses its running statistics, Dropout is the identity). example_input: a Tensor,
    or a tuple of them for several inputs. The shapes are those of the example (Reshape keeps
    the batch dimension free). The file is checked with onnx.checker before it is written."""
    onnx = _require_onnx("export")
    from . import graph as cgraph
    from .io import atomic_write
    if isinstance(opset_version, bool) or not isinstance(opset_version, numbers.Integral) \
            or not 17 <= opset_version <= 22:
        raise ValueError(f"cnncore.onnx.export: opset_version must be an int in [17, 22], but "
                         f"got {opset_version!r}")
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    g = cgraph.trace(model, *inputs)
    em = _Emitter(onnx, g, model.state_dict())
    em.opset = int(opset_version)
    for name in g.inputs:
        em.names.add(name)
    for nd in g.nodes:
        out = nd.outputs[0]
        em.names.add(out)
    for nd in g.nodes:
        if len(nd.outputs) != 1:
            raise ValueError(f"cnncore.onnx.export: {nd.op} '{nd.name}' has several outputs")
        out = nd.outputs[0]
        if nd.op in _BINARY_ONNX:
            ins = list(nd.inputs)
            if "scalar" in nd.attrs:
                c = em.const(nd.name + ".scalar", np.float32(nd.attrs["scalar"]))
                ins = [c] + ins if nd.attrs.get("scalar_first") else ins + [c]
            if nd.attrs.get("alpha", 1) != 1:
                raise ValueError(f"cnncore.onnx.export: {nd.op} '{nd.name}' with alpha")
            em.node(_BINARY_ONNX[nd.op], ins, out, nd.name)
        elif nd.op == "cat":
            em.node("Concat", nd.inputs, out, nd.name, axis=int(nd.attrs.get("dim", 0)))
        elif nd.kind == "module":
            _export_module(em, nd, nd.inputs[0], out, nd.attrs, g.shapes)
        else:
            _export_simple(em, nd, nd.op, nd.inputs[0], out, nd.attrs, g.shapes[nd.inputs[0]],
                           g.shapes[out])
    names_in = list(input_names or g.inputs)
    names_out = list(output_names or g.outputs)
    rename = dict(zip(g.inputs + g.outputs, names_in + names_out))
    for n in em.nodes:
        n.input[:] = [rename.get(v, v) for v in n.input]
        n.output[:] = [rename.get(v, v) for v in n.output]
    tp = onnx.TensorProto

    def info(name, value):
        shape = list(g.shapes[value])
        if shape:
            shape[0] = "N"  # the batch dimension stays free
        return onnx.helper.make_tensor_value_info(name, tp.FLOAT, shape)

    graph = onnx.helper.make_graph(em.nodes, type(model).__name__,
                                   [info(n, v) for n, v in zip(names_in, g.inputs)],
                                   [info(n, v) for n, v in zip(names_out, g.outputs)],
                                   initializer=em.inits)
    proto = onnx.helper.make_model(graph, producer_name="cnncore",
                                   opset_imports=[onnx.helper.make_opsetid("", opset_version)])
    proto.ir_version = min(proto.ir_version, 10)  # readable by onnxruntime releases of 2024+
    onnx.checker.check_model(proto, full_check=True)
    path = os.fspath(path)
    with atomic_write(path, "wb") as f:
        f.write(proto.SerializeToString())
    return proto
