"""STFT, MelWeightMatrix and the Hann, Hamming and Blackman windows.

STFT, like dft.py's DFT, straight from the definition: every output element (batch, frame, bin,
re/im) is one Reduce over the frame's samples times the window times a twiddle factor read from
constant cos/sin tables at (bin * t) mod frame_length, in float64. frame_step and frame_length
(or the window's length) must be known when compiling, and so must the signal length (it decides
the number of frames).

MelWeightMatrix and the windows have no data input: their operands decide the shape (and the
values), so they must be known when compiling, and the result is computed then, by the op's
NumPy reference, into a constant (the back end's code reads it from memory).
"""

from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.interpreter import evaluate_node
from ..loops.expr import Const, Reduce
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor

f64 = DType.float64


def _present(inputs, i) -> bool:
    return len(inputs) > i and inputs[i] is not None


@register(ops.STFT)
def lower_stft(ctx, node, inputs):
    x = inputs[0]
    window = inputs[2] if _present(inputs, 2) else None
    step = ctx.static_ints(node, 1)[0]
    length, parts = x.shape[1], x.shape[2]
    if not isinstance(length, Const) or not isinstance(parts, Const):
        ctx.fail(node, "STFT needs a static signal length (it decides the number of frames)",
                 hint="give the signal a static length")
    length, parts = length.value, parts.value
    if _present(inputs, 3):
        frame = ctx.static_ints(node, 3)[0]
    elif window is not None:
        if not isinstance(window.shape[0], Const):
            ctx.fail(node, "the window's length must be known when compiling")
        frame = window.shape[0].value
    else:
        frame = length
    if step < 1 or not 0 < frame <= length:
        ctx.fail(node, f"cannot cut frames of {frame} every {step} from a signal of {length}")
    frames = (length - frame) // step + 1
    bins = frame // 2 + 1 if ctx.attrs(node).onesided else frame
    turns = np.arange(frame) * (2 * np.pi / frame)
    cos_table = constant_tensor(ctx, np.cos(turns), "stft_cos")
    sin_table = constant_tensor(ctx, -np.sin(turns), "stft_sin")     # forward: e^{-i theta}
    dtype = ctx.out_dtype(node)

    def read(b, f, t, part):
        if part >= parts:
            return E.const(0.0, f64)
        v = E.cast(x.at((b, E.add(E.mul(f, step), t), Const(part))), f64)
        return v if window is None else v * E.cast(window.at((t,)), f64)

    def at(idx):
        b, f, k, part = idx
        t = ctx.fresh_var("t")
        th = (E.mod(E.mul(k, t), frame),)
        c, s = cos_table.at(th), sin_table.at(th)
        re, im = read(b, f, t, 0), read(b, f, t, 1)
        body = E.select(E.eq(part, 0), re * c - im * s, im * c + re * s)
        return E.cast(Reduce("add", E.const(0.0, f64), ((t, E.ZERO, Const(frame)),), body),
                      dtype)
    return [Tensor((x.shape[0], Const(frames), Const(bins), Const(2)), dtype, at)]


@register(ops.MelWeightMatrix, ops.HannWindow, ops.HammingWindow, ops.BlackmanWindow)
def lower_generated(ctx, node, inputs):
    args = []
    for i, t in enumerate(inputs):
        v = ctx.static_values(node, i)
        if len(v) != 1 or not isinstance(v[0], Const):
            ctx.fail(node, f"operand {i} of {node.op.name} must be one number known when "
                     "compiling", hint="make it a constant")
        args.append(np.asarray(v[0].value, t.dtype.np))
    matrix = evaluate_node(node, args)[0]
    return [constant_tensor(ctx, np.asarray(matrix), node.outputs[0].name)]
