"""`summary(model, input_size)`: a table of the layers a forward pass runs (name, type, output
shape, parameters, multiply-accumulates), and `conv_output_shape(...)`: the notes' output-size
arithmetic for one layer, explained step by step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _core
from .tensor import Tensor, no_grad, tensor

__all__ = ["summary", "Summary", "LayerInfo", "conv_output_shape", "OutputShape"]


@dataclass
class LayerInfo:
    name: str
    type: str
    output_shape: tuple
    params: int
    trainable_params: int
    macs: int


@dataclass
class Summary:
    """What summary() found; str() is the printed table."""
    layers: list = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0
    input_size: tuple = ()

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __str__(self) -> str:
        head = ("Layer", "Type", "Output shape", "Params", "MACs")
        rows = [(li.name, li.type, str(list(li.output_shape)), f"{li.params:,}", f"{li.macs:,}")
                for li in self.layers]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]

        def line(r):
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths)))
        rule = "-" * len(line(head))
        out = [rule, line(head), rule, *[line(r) for r in rows], rule,
               f"Total params: {self.total_params:,}",
               f"Trainable params: {self.trainable_params:,}",
               f"Non-trainable params: {self.non_trainable_params:,}",
               f"Total MACs (per forward of the given input): {self.total_macs:,}", rule]
        return "\n".join(out)


def _own_params(module):
    ps = [p for p in module._parameters.values() if p is not None]
    return sum(p.numel() for p in ps), sum(p.numel() for p in ps if p.requires_grad)


def _macs(module, inputs, output) -> int:
    from . import nn
    out_numel = int(np.prod(output.shape)) if isinstance(output, Tensor) else 0
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out_numel * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        in_numel = int(np.prod(inputs[0].shape))
        return in_numel * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return out_numel * module.in_features
    return 0


def _make_input(size, batch_size: int):
    if not isinstance(size, (tuple, list)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"summary: input_size must be a tuple of positive ints such as (3, 32, "
                         f"32) (without the batch dimension), but got {size!r}")
    return tensor(np.zeros((batch_size, *size), np.float32))


def summary(model, input_size=None, batch_size: int = 1, input_data=None,
            print_table: bool = True) -> Summary:
    """Runs one forward pass (eval mode, no grad) on zeros of shape (batch_size, *input_size) —
    or on input_data (a Tensor or a tuple of inputs for multi-input models) — and tabulates every
    leaf layer that ran: dotted name, type, output shape, own parameters and MACs (convolutions
    and linear layers). Prints the table unless print_table=False; returns a Summary."""
    from .nn import Module
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a cnncore.nn.Module, but got "
                        f"{type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"summary: batch_size must be a positive int, but got {batch_size!r}")
    if input_data is not None:
        inputs = tuple(input_data) if isinstance(input_data, (tuple, list)) else (input_data,)
    elif input_size is None:
        raise ValueError("summary: give input_size (e.g. (3, 32, 32)) or input_data")
    elif isinstance(input_size, (tuple, list)) and input_size and \
            all(isinstance(s, (tuple, list)) for s in input_size):
        inputs = tuple(_make_input(s, batch_size) for s in input_size)
    else:
        inputs = (_make_input(input_size, batch_size),)

    names = {id(m): n for n, m in model.named_modules()}
    rows, handles = [], []

    def hook(module, args, output):
        own, own_trainable = _own_params(module)
        shape = tuple(output.shape) if isinstance(output, Tensor) else \
            tuple(tuple(o.shape) for o in output if isinstance(o, Tensor))
        rows.append(LayerInfo(names.get(id(module), "?") or type(module).__name__,
                              type(module).__name__, shape, own, own_trainable,
                              _macs(module, args, output)))

    for m in model.modules():
        if not list(m.children()) or any(p is not None for p in m._parameters.values()):
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    s = Summary(rows, total, trainable, sum(r.macs for r in rows),
                tuple(inputs[0].shape) if len(inputs) == 1 else tuple(i.shape for i in inputs))
    if print_table:
        print(s)
    return s


class OutputShape(tuple):
    """(C, H, W) or (H, W) of a layer's output; .explain() shows the arithmetic."""
    steps: list

    def explain(self) -> str:
        return "\n".join(self.steps)

    def __str__(self) -> str:
        return self.explain()


def _pair(v, arg: str):
    p = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(p) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in p):
        raise ValueError(f"conv_output_shape: {arg} must be an int or a pair of ints, but got "
                         f"{v!r}")
    return p


def conv_output_shape(input_shape, kernel_size, stride=1, padding=0, dilation=1,
                      out_channels=None) -> OutputShape:
    """Output size of a convolution (or pooling) layer on an input of shape (H, W) or (C, H, W):
    floor((n + 2p - d(f - 1) - 1) / s) + 1 per side, which is the notes' (n + 2p - f)/s + 1 for
    dilation 1. padding may be an int, a pair, 'valid' or 'same' (TensorFlow's rule for
    stride > 1: ceil(n / s)). Returns an OutputShape (a tuple; .explain() gives the steps)."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) not in (2, 3) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in shape):
        raise ValueError(f"conv_output_shape: input_shape must be (H, W) or (C, H, W) with "
                         f"positive ints, but got {input_shape!r}")
    ks, st, dl = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(dilation,
                                                                                    "dilation")
    steps, out = [], []
    for axis, n, f, s, d in zip(("H", "W"), shape[-2:], ks, st, dl):
        if f <= 0 or s <= 0 or d <= 0:
            raise ValueError(f"conv_output_shape: kernel_size, stride and dilation must be "
                             f"positive, but got {f}, {s}, {d}")
        fe = d * (f - 1) + 1
        if padding == "same":
            o = -(-n // s)
            total = max((o - 1) * s + fe - n, 0)
            steps.append(f"{axis}: 'same' padding keeps ceil(n / s) = ceil({n} / {s}) = {o}; it "
                         f"pads {total} in total ({total // 2} before, {total - total // 2} "
                         f"after{' — the extra pixel at the end, as TensorFlow' if total % 2 else ''})")
            out.append(o)
            continue
        p = 0 if padding == "valid" else _pair(padding, "padding")[0 if axis == "H" else 1]
        if p < 0:
            raise ValueError(f"conv_output_shape: padding must be non-negative, but got {p}")
        o = _core.conv_output_size(n, f, s, 2 * p, d)  # the one formula every layer uses
        eff = f"f = {f}" if d == 1 else f"effective f = d(f - 1) + 1 = {d}*({f} - 1) + 1 = {fe}"
        steps.append(f"{axis}: floor((n + 2p - f) / s) + 1 = floor(({n} + 2*{p} - {fe}) / {s}) "
                     f"+ 1 = {o}   ({eff})")
        if o <= 0:
            raise ValueError(f"conv_output_shape: the kernel ({fe}) is larger than the padded "
                             f"input ({n + 2 * p}) along {axis}")
        out.append(o)
    channels = out_channels if out_channels is not None else (shape[0] if len(shape) == 3
                                                              else None)
    result = OutputShape(((channels,) if channels is not None else ()) + tuple(out))
    if out_channels is not None:
        steps.append(f"C: one output channel per filter = {out_channels}")
    result.steps = steps
    return result
