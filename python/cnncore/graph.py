"""A model as a graph of built-in layers and tensor ops, recorded by running it once.

    g = cnncore.graph.trace(model, example_input)      # -> Graph
    g.nodes[0].op, g.nodes[0].params       # 'Conv2d', {'weight': 'conv1.weight', ...}
    json.dumps(g.to_dict());  Graph.from_dict(d)        # the JSON form model files carry

`trace(model, *example_inputs)` calls `model(*example_inputs)` once, in eval mode (the training
flags are restored afterwards, so BatchNorm statistics are not touched), and records:

- every call of a *built-in leaf module* (a class defined in `cnncore.nn`, other than the
  containers Sequential / ModuleList / ModuleDict) as one node: ``kind='module'``, ``op`` the
  class name, ``module`` its dotted path in the model, ``attrs`` its constructor arguments (by
  the constructor's parameter names, JSON values; ``bias`` as a bool) and ``params`` the
  state_dict key of each of its parameters and buffers (``{'weight': 'features.0.weight'}``);
  what happens inside the module is not recorded;
- every tensor op that forward code calls between them as one node: ``kind='function'``, ``op``
  the function's name in `cnncore.functional` / on Tensor (``add``, ``sub``, ``mul``, ``div``,
  ``cat``, ``flatten``, ``reshape``, ``relu``, ``adaptive_avg_pool2d``, ``pad``, ...; see
  `FUNCTIONS`), ``attrs`` its non-tensor arguments with defaults filled in. A binary op with a
  Python number records it as ``attrs['scalar']`` (``scalar_first`` when it came first).

Every node has ``inputs`` and ``outputs``: names of values. The graph's inputs are named after
forward's parameters (``x``), a node's outputs after the node (``layer1.0.conv1``, then
``name#1`` for a second output); ``Graph.shapes`` maps each value to its shape at the example
input. Nodes are in execution order, so running them in order is a valid schedule. Control flow
that depends on shapes or values is resolved at the example input, as `torch.jit.trace` does.

A tensor that reaches a recorded call without having come from the graph (a parameter used
directly in forward, a tensor built inside forward, an op the tracer does not record) raises
`TraceError` naming the module or op that received it and the op that made it; such a model
can still save its weights with `cnncore.save(model, path)`. Tracing patches module-level
functions for the duration of the call, so it is not thread-safe.

Model files: `save_model(model, path, *example_inputs)` (also `model.save(path)`) writes the
graph and the state_dict as one safetensors file (.cnn); `load_model(path)` (also
`cnncore.load_model`) reads it back as a `GraphModule`, and C++ reads it with
`cnncore::load_model` (cpp/include/cnncore/graph.hpp).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import numbers
from dataclasses import dataclass, field

from . import functional as F
from . import nn
from .tensor import Tensor

__all__ = ["Graph", "Node", "TraceError", "trace", "FUNCTIONS", "FORMAT_VERSION", "save_model",
           "load_model", "GraphModule", "optimize_for_inference", "InferenceModule"]

FORMAT_VERSION = 1

# Tensor ops recorded between leaf modules: name -> where the original function lives. Binary
# ops (add, sub, mul, div and the rest of tensor_ops._binary) are recorded through _binary.
FUNCTIONS = (
    "cat", "flatten", "reshape", "view", "relu", "relu6", "leaky_relu", "hardtanh", "sigmoid",
    "tanh", "softmax", "log_softmax", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "pad", "interpolate", "mean", "sum", "dropout", "dropout2d",
)
_BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class TraceError(ValueError):
    """The model's forward does something the graph cannot record."""


@dataclass
class Node:
    name: str                 # unique within the graph
    op: str                   # 'Conv2d' (kind 'module') or 'add' (kind 'function')
    kind: str                 # 'module' | 'function'
    inputs: list              # value names
    outputs: list             # value names
    attrs: dict = field(default_factory=dict)
    module: str | None = None  # dotted path of the module (kind 'module')
    params: dict = field(default_factory=dict)  # local name -> state_dict key

    def to_dict(self) -> dict:
        d = {"name": self.name, "op": self.op, "kind": self.kind, "inputs": list(self.inputs),
             "outputs": list(self.outputs), "attrs": dict(self.attrs)}
        if self.kind == "module":
            d["module"] = self.module
            d["params"] = dict(self.params)
        return d


@dataclass
class Graph:
    inputs: list    # value names, in forward's order
    outputs: list   # value names; one unless forward returned a tuple/list
    nodes: list     # Node, in execution order
    shapes: dict    # value name -> shape (tuple) at the example input

    def to_dict(self) -> dict:
        return {"format": "cnncore.graph", "version": FORMAT_VERSION,
                "inputs": [{"name": n, "shape": list(self.shapes[n])} for n in self.inputs],
                "outputs": list(self.outputs),
                "nodes": [n.to_dict() for n in self.nodes],
                "shapes": {k: list(v) for k, v in self.shapes.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> Graph:
        if not isinstance(d, dict) or d.get("format") != "cnncore.graph":
            raise ValueError("Graph.from_dict: not a cnncore graph (no format 'cnncore.graph')")
        if d.get("version") != FORMAT_VERSION:
            raise ValueError(f"Graph.from_dict: graph format version {d.get('version')!r} is not "
                             f"supported (this cnncore reads version {FORMAT_VERSION})")
        try:
            nodes = [Node(name=n["name"], op=n["op"], kind=n["kind"], inputs=list(n["inputs"]),
                          outputs=list(n["outputs"]), attrs=dict(n.get("attrs", {})),
                          module=n.get("module"), params=dict(n.get("params", {})))
                     for n in d["nodes"]]
            return cls(inputs=[i["name"] for i in d["inputs"]], outputs=list(d["outputs"]),
                       nodes=nodes, shapes={k: tuple(v) for k, v in d["shapes"].items()})
        except (KeyError, TypeError) as e:
            raise ValueError(f"Graph.from_dict: malformed graph ({type(e).__name__}: {e})") \
                from None

    def __repr__(self):
        lines = [f"Graph(inputs={self.inputs}, outputs={self.outputs})"]
        for n in self.nodes:
            what = n.op if n.kind == "function" else f"{n.op}[{n.module}]"
            lines.append(f"  {', '.join(n.outputs)} = {what}({', '.join(n.inputs)})"
                         f"{' ' + str(n.attrs) if n.attrs else ''}")
        return "\n".join(lines)


def is_leaf(module) -> bool:
    """A built-in layer the graph records as one node (not a container, not a user class)."""
    t = type(module)
    return t.__module__.startswith("cnncore.nn.") and not issubclass(t, _CONTAINERS) \
        and t is not nn.Module


def _json_value(v, where: str):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_json_value(x, where) for x in v]
    raise TraceError(f"trace: {where} has a value of type {type(v).__name__} that a graph cannot "
                     f"store ({v!r})")


def module_attrs(module) -> dict:
    """The constructor arguments of a leaf module, read back from its attributes by the names of
    its __init__'s parameters (so type(module)(**attrs) rebuilds it)."""
    out = {}
    for name, p in inspect.signature(type(module).__init__).parameters.items():
        if name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name == "bias":
            out[name] = module.bias is not None
        elif hasattr(module, name):
            out[name] = _json_value(getattr(module, name), f"{type(module).__name__}.{name}")
    return out


class _Tracer:
    def __init__(self, model):
        self.model = model
        self.module_names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
        self.values = {}        # id(tensor) -> value name
        self.keep = []          # the traced tensors, so their ids stay unique while tracing
        self.shapes = {}
        self.nodes = []
        self.names = set()
        self.depth = 0          # > 0 inside a recorded call: nested ops are its implementation

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def add_value(self, t: Tensor, name: str) -> str:
        self.values[id(t)] = name
        self.keep.append(t)
        self.shapes[name] = tuple(t.shape)
        return name

    def value_of(self, t: Tensor, where: str) -> str:
        name = self.values.get(id(t))
        if name is not None:
            return name
        maker = type(t.grad_fn).__name__ if t.grad_fn is not None else None
        maker = getattr(t.grad_fn, "name", maker)
        what = f"made by {maker}" if maker else "not computed from the model's inputs (a " \
            "parameter used directly, or a tensor built inside forward)"
        raise TraceError(f"trace: {where} receives a tensor of shape {tuple(t.shape)} {what}, "
                         f"which the graph does not record; graphs hold the built-in layers of "
                         f"cnncore.nn and the ops in cnncore.graph.FUNCTIONS. The weights can "
                         f"still be saved with cnncore.save(model, path)")

    def add_node(self, base, op, kind, tensors, result, attrs, module=None, params=None):
        where = f"{op} '{base}'" if kind == "module" else f"op {op}"
        inputs = [self.value_of(t, where) for t in tensors]
        name = self.unique(base)
        outs = list(result) if isinstance(result, (tuple, list)) else [result]
        out_names = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TraceError(f"trace: {where} returned a {type(o).__name__}, not a Tensor")
            out_names.append(self.add_value(o, name if i == 0 else f"{name}#{i}"))
        self.nodes.append(Node(name, op, kind, inputs, out_names, attrs, module, params or {}))

    # ---- the hooks ----
    def call_module(self, orig_call, module, args, kwargs):
        if self.depth or not is_leaf(module):
            return orig_call(module, *args, **kwargs)
        path = self.module_names.get(id(module))
        if path is None:
            raise TraceError(f"trace: a {type(module).__name__} that is not a submodule of the "
                             f"traced model was called in forward; register it as an attribute")
        if kwargs:
            raise TraceError(f"trace: {type(module).__name__} '{path}' was called with keyword "
                             f"arguments {sorted(kwargs)}; graphs record positional tensors only")
        tensors = [a for a in args if isinstance(a, Tensor)]
        if len(tensors) != len(args):
            raise TraceError(f"trace: {type(module).__name__} '{path}' was called with a "
                             f"non-tensor argument; graphs record tensors only")
        for t in tensors:  # checked before running, so the error names this module
            self.value_of(t, f"{type(module).__name__} '{path}'")
        self.depth += 1
        try:
            result = orig_call(module, *args)
        finally:
            self.depth -= 1
        prefix = path + "." if path else ""
        params = {k: prefix + k for k, v in module._parameters.items() if v is not None}
        params.update({k: prefix + k for k, v in module._buffers.items()
                       if v is not None and k not in module._non_persistent})
        self.add_node(path or type(module).__name__, type(module).__name__, "module", tensors,
                      result, module_attrs(module), path, params)
        return result

    def call_function(self, name, orig, args, kwargs):
        if self.depth:
            return orig(*args, **kwargs)
        bound = inspect.signature(orig).bind(*args, **kwargs)
        bound.apply_defaults()
        tensors, attrs = [], {}
        for arg, v in bound.arguments.items():
            if isinstance(v, Tensor):
                tensors.append(v)
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Tensor) for x in v):
                tensors.extend(v)
            elif arg not in ("_stacklevel", "dtype"):
                attrs[arg] = _json_value(v, f"op {name}, argument {arg}")
        for t in tensors:
            self.value_of(t, f"op {name}")
        self.depth += 1
        try:
            result = orig(*args, **kwargs)
        finally:
            self.depth -= 1
        self.add_node(name, name, "function", tensors, result, attrs)
        return result

    def call_binary(self, orig, op, input, other, alpha=1):
        if self.depth or not (isinstance(input, Tensor) or isinstance(other, Tensor)):
            return orig(op, input, other, alpha)
        tensors, attrs = [], {}
        if isinstance(input, Tensor) and isinstance(other, Tensor):
            tensors = [input, other]
        elif isinstance(input, Tensor):
            tensors, attrs = [input], {"scalar": _json_value(other, f"op {op}")}
        else:
            tensors, attrs = [other], {"scalar": _json_value(input, f"op {op}"),
                                       "scalar_first": True}
        if alpha != 1:
            attrs["alpha"] = _json_value(alpha, f"op {op}")
        for t in tensors:
            self.value_of(t, f"op {op}")
        self.depth += 1
        try:
            result = orig(op, input, other, alpha)
        finally:
            self.depth -= 1
        self.add_node(op, op, "function", tensors, result, attrs)
        return result


@contextlib.contextmanager
def _patched(tracer: _Tracer):
    """Routes Module.__call__, the recorded functions and tensor_ops._binary through tracer."""
    import sys
    from ._ops import tensor_ops
    saved = []

    def put(owner, attr, value):
        saved.append((owner, attr, owner.__dict__[attr]))
        setattr(owner, attr, value)

    orig_call = nn.Module.__call__
    put(nn.Module, "__call__",
        lambda self, *a, **k: tracer.call_module(orig_call, self, a, k))
    orig_binary = tensor_ops._binary
    put(tensor_ops, "_binary", lambda op, i, o, alpha=1: tracer.call_binary(orig_binary, op, i,
                                                                            o, alpha))
    owners = [m for n, m in sys.modules.items()
              if m is not None and (n == "cnncore" or n.startswith("cnncore._ops")
                                    or n in ("cnncore.functional", "cnncore.nn.functional"))]
    for name in FUNCTIONS:
        orig = getattr(F, name, None) or getattr(tensor_ops, name)

        def wrapper(*a, _name=name, _orig=orig, **k):
            return tracer.call_function(_name, _orig, a, k)
        wrapper.__name__ = name
        for owner in owners + [Tensor]:
            if owner.__dict__.get(name) is orig:
                put(owner, name, wrapper)
    try:
        yield
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


def trace(model, *example_inputs) -> Graph:
    """Runs model(*example_inputs) once and returns the Graph of what it did (see the module
    docstring). example_inputs: Tensors (numpy arrays are converted)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"trace: model must be a cnncore.nn.Module, but got "
                        f"{type(model).__name__}")
    if not example_inputs:
        raise ValueError("trace: give at least one example input (e.g. a batch of one image)")
    inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in example_inputs]
    # Fresh leaves that require grad, so every op on them leaves a grad_fn whose name the error
    # for an unrecorded op can quote.
    inputs = [x.detach().requires_grad_(True) if x.dtype.kind == "f" else x for x in inputs]
    tracer = _Tracer(model)
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    input_names = []
    for i, x in enumerate(inputs):
        base = names[i] if i < len(names) else f"input_{i}"
        input_names.append(tracer.add_value(x, tracer.unique(base)))
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with _patched(tracer):
            result = model(*inputs)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    results = list(result) if isinstance(result, (tuple, list)) else [result]
    outputs = []
    for r in results:
        if not isinstance(r, Tensor):
            raise TraceError(f"trace: forward returned a {type(r).__name__}; graphs return "
                             f"Tensors (or a tuple of them)")
        outputs.append(tracer.value_of(r, "the model's output"))
    return Graph(input_names, outputs, tracer.nodes, tracer.shapes)


# ---- model files: the graph and the weights in one safetensors file ----------------------------
_GRAPH_KEY = "cnncore.graph"
_CRC_KEY = "cnncore.crc32"
_FORMAT_KEY = "cnncore.format"


def _data_crc32(raw: bytes) -> str:
    import zlib
    n = int.from_bytes(raw[:8], "little")
    return f"{zlib.crc32(memoryview(raw)[8 + n:]) & 0xFFFFFFFF:08x}"


def save_model(model, path, *example_inputs) -> Graph:
    """Writes model as one .cnn file: a safetensors file of its state_dict whose __metadata__
    holds the traced graph (JSON, key 'cnncore.graph') and a CRC-32 of the tensor bytes; written
    atomically. example_inputs: as for trace; by default zeros shaped like the last input the
    model was called with (batch size 1). Returns the graph. C++ reads it with
    cnncore::load_model, Python with cnncore.load_model."""
    from . import io
    from .tensor import zeros
    if not isinstance(model, nn.Module):
        raise TypeError(f"save_model: model must be a cnncore.nn.Module, but got "
                        f"{type(model).__name__}")
    if not example_inputs:
        seen = getattr(model, "_last_input_specs", None)
        if not seen:
            raise ValueError("save: the graph needs an input shape: call the model once first, "
                             "or pass an example input: model.save(path, cnncore.zeros(1, 3, "
                             "32, 32))")
        example_inputs = tuple(zeros(1, *shape[1:], dtype=dtype) for shape, dtype in seen)
    g, data = _model_bytes(model, example_inputs)
    with io.atomic_write(path) as f:
        f.write(data)
    return g


def _model_bytes(model, example_inputs):
    """-> (the traced Graph, the .cnn file's bytes)."""
    import numpy as np
    from . import io
    g = trace(model, *example_inputs)
    st = io._safetensors_numpy()
    sd = model.state_dict()
    arrays = {k: np.require(v.numpy(), requirements="C") for k, v in sd.items()}
    meta = {_FORMAT_KEY: "model", _GRAPH_KEY: json.dumps(g.to_dict()),
            io._ORDER_KEY: json.dumps(list(arrays))}
    # The tensor bytes do not depend on the metadata: serialise once to checksum them.
    meta[_CRC_KEY] = _data_crc32(st.save(arrays, metadata=meta))
    return g, st.save(arrays, metadata=meta)


def optimize_for_inference(model, *example_inputs) -> InferenceModule:
    """A frozen copy of model for inference, run by the C++ graph engine (torch.jit's
    ``optimize_for_inference(torch.jit.trace(model, example_inputs))``):

        fast = cnncore.optimize_for_inference(model.eval(), cnncore.zeros(1, 3, 224, 224))
        logits = fast(x)

    The model is traced once at example_inputs (as `trace`; control flow is fixed at them,
    other batch sizes run). Each BatchNorm2d with running statistics after a Conv2d is folded
    into the conv's weight and bias, and an add that follows (a residual) and a ReLU / ReLU6 /
    hardtanh run in the conv's epilogue, where nothing else reads the values in between; every
    node runs in C++ without Python in between. The weights are a snapshot: changes to model
    after this call do not reach the copy (call it again). Outputs agree with model.eval()'s
    within float rounding; they carry no autograd history, and the copy cannot train()."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"optimize_for_inference: model must be a cnncore.nn.Module, but got "
                        f"{type(model).__name__}")
    if not example_inputs:
        raise ValueError("optimize_for_inference: pass an example input to trace the model "
                         "with, e.g. cnncore.zeros(1, 3, 224, 224)")
    for k, x in enumerate(example_inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"optimize_for_inference: example_inputs[{k}] must be a "
                            f"cnncore.Tensor, but got {type(x).__name__}")
    from . import _core
    g, data = _model_bytes(model, example_inputs)
    engine = _core.load_model_from_bytes(data, type(model).__name__)
    engine.eval()
    return InferenceModule(_core.optimize_for_inference(engine), g)


class InferenceModule(nn.Module):
    """What `optimize_for_inference` returns: calls the C++ engine's forward with the graph's
    inputs (cnncore.Tensor), returns a Tensor (a tuple for several outputs). `summary()` lists
    the nodes as they run, merged ones as ``Conv2d+BatchNorm2d+add+ReLU``."""

    def __init__(self, engine, graph: Graph):
        super().__init__()
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "graph", graph)
        object.__setattr__(self, "training", False)

    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError("train: mode must be a bool")
        if mode:
            raise ValueError("InferenceModule.train: a model from optimize_for_inference runs "
                             "inference only (BatchNorm is folded into the convolutions): train "
                             "the original model and call optimize_for_inference again")
        return self

    def save(self, path, *example_inputs):
        raise ValueError("InferenceModule.save: a model from optimize_for_inference holds "
                         "folded weights, not a state_dict: save the original model")

    def summary(self) -> str:
        return self._engine.summary()

    def forward(self, *inputs):
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ValueError(f"InferenceModule: the graph takes {len(g.inputs)} input(s) "
                             f"({', '.join(g.inputs)}), but got {len(inputs)}")
        for name, x in zip(g.inputs, inputs):
            if not isinstance(x, Tensor):
                raise TypeError(f"InferenceModule: input '{name}' must be a cnncore.Tensor, but "
                                f"got {type(x).__name__}")
        outs = [Tensor._wrap(o) for o in self._engine.forward([x._c for x in inputs])]
        return outs[0] if len(outs) == 1 else tuple(outs)


class GraphModule(nn.Module):
    """A Module that runs a Graph: the leaf modules are rebuilt from the recorded constructor
    arguments under their original paths (so state_dict keys are the original model's)."""

    def __init__(self, graph: Graph, state_order=None):
        super().__init__()
        object.__setattr__(self, "graph", graph)
        object.__setattr__(self, "_leaves", {})
        first = {}
        for n in graph.nodes:
            if n.kind == "module":
                first.setdefault(n.module, n)
        # Registered in state_dict order (the file's), not execution order, so state_dict()
        # lists keys as the original model did (ResNet runs downsample before conv1).
        rank = {k: i for i, k in enumerate(state_order or [])}
        nodes = sorted(first.values(), key=lambda n: min(
            (rank.get(k, len(rank)) for k in n.params.values()), default=len(rank)))
        for n in nodes:
            cls = getattr(nn, n.op, None)
            if cls is None or not isinstance(cls, type) or not issubclass(cls, nn.Module):
                raise ValueError(f"GraphModule: node '{n.name}' uses module '{n.op}', which is "
                                 f"not a cnncore.nn layer")
            try:
                leaf = cls(**n.attrs)
            except (TypeError, ValueError) as e:
                raise ValueError(f"GraphModule: node '{n.name}' ({n.op}): cannot rebuild it from "
                                 f"{n.attrs} ({e})") from None
            self._leaves[n.module] = leaf
            owner, parts = self, n.module.split(".") if n.module else [n.op]
            for p in parts[:-1]:
                if p not in owner._modules:
                    owner.add_module(p, nn.Module())
                owner = owner._modules[p]
            owner.add_module(parts[-1], leaf)

    def forward(self, *inputs):
        from ._ops import tensor_ops
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ValueError(f"GraphModule: the graph takes {len(g.inputs)} input(s) "
                             f"({', '.join(g.inputs)}), but got {len(inputs)}")
        values = dict(zip(g.inputs, inputs))
        for n in g.nodes:
            args = [values[i] for i in n.inputs]
            if n.kind == "module":
                out = self._leaves[n.module](*args)
            elif n.op in _BINARY:
                a = dict(n.attrs)
                alpha = a.pop("alpha", 1)
                if "scalar" in a:
                    pair = (a["scalar"], args[0]) if a.get("scalar_first") else \
                        (args[0], a["scalar"])
                else:
                    pair = tuple(args)
                out = tensor_ops._binary(n.op, *pair, alpha)
            else:
                fn = getattr(F, n.op, None) or getattr(tensor_ops, n.op)
                a = dict(n.attrs)
                if n.op in ("dropout", "dropout2d"):
                    a["training"] = self.training  # traced in eval mode; follow the model's
                if n.op == "cat":
                    out = fn(args, **a)
                elif n.op == "view":
                    out = fn(args[0], *a["shape"])
                else:
                    out = fn(*args, **a)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            values.update(zip(n.outputs, outs))
        results = [values[o] for o in g.outputs]
        return results[0] if len(results) == 1 else tuple(results)


def load_model(path) -> GraphModule:
    """Reads a .cnn file (model.save / cnncore::Model::save) into a GraphModule with the saved
    weights, in eval mode. ValueError names the file and what is wrong when it is damaged."""
    import os
    from collections import OrderedDict
    from . import io
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_model: no such file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    st = io._safetensors_numpy()
    try:
        arrays = st.load(raw)
        n = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8:8 + n]).get("__metadata__") or {}
    except Exception as e:  # noqa: BLE001 - the library's errors vary by version
        raise ValueError(f"load_model: {path} is not a valid safetensors file ({e})") from None
    if _GRAPH_KEY not in meta:
        raise ValueError(f"load_model: {path} holds weights only (no '{_GRAPH_KEY}' metadata); "
                         f"read them with cnncore.load and load_state_dict")
    if _CRC_KEY in meta and meta[_CRC_KEY] != _data_crc32(raw):
        raise ValueError(f"load_model: {path}: checksum mismatch: the tensor data has CRC-32 "
                         f"{_data_crc32(raw)} but the file records {meta[_CRC_KEY]} (the file "
                         f"is damaged)")
    try:
        graph_dict = json.loads(meta[_GRAPH_KEY])
    except ValueError as e:
        raise ValueError(f"load_model: {path}: the graph is not valid JSON ({e})") from None
    order = io._key_order(raw, arrays)
    module = GraphModule(Graph.from_dict(graph_dict), order)
    module.load_state_dict(OrderedDict((k, arrays[k]) for k in order))
    return module.eval()
