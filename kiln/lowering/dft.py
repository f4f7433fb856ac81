"""DFT, directly from its definition: every output element is one Reduce over the signal
(O(n^2) per signal, no FFT), in float64. The twiddle factors come from constant tables of
cos and sin at 2 pi j / n (computed by NumPy when compiling), read at j = k * t mod n.
Forward and inverse (1/n scaled), one-sided forward (the first n // 2 + 1 bins) and one-sided
inverse (irfft: the Hermitian half counted twice, the imaginary parts of bin 0 and of the
Nyquist bin ignored). dft_length and axis must be known
when compiling; a shorter signal is zero padded, a longer one cut.
"""

from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Reduce
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor

f64 = DType.float64


@register(ops.DFT)
def lower_dft(ctx, node, inputs):
    x = inputs[0]
    a = ctx.attrs(node)
    rank = x.rank
    axis = ctx.static_ints(node, 2)[0] if len(inputs) > 2 and inputs[2] is not None else -2
    if -rank <= axis <= -2:
        axis += rank
    if not 0 <= axis <= rank - 2:
        ctx.fail(node, f"DFT axis {axis} is out of range for rank {rank}")
    parts, n_in = x.shape[-1], x.shape[axis]
    if not isinstance(parts, Const) or not isinstance(n_in, Const):
        ctx.fail(node, "DFT needs a static signal length and complex axis",
                 hint="give the model static sizes")
    parts, n_in = parts.value, n_in.value
    inverse, onesided = bool(a.inverse), bool(a.onesided)
    irfft = inverse and onesided
    if len(inputs) > 1 and inputs[1] is not None:
        n = ctx.static_ints(node, 1)[0]
    else:
        n = 2 * (n_in - 1) if irfft else n_in
    out_len = n // 2 + 1 if onesided and not inverse else n
    shape = list(x.shape)
    shape[axis] = Const(out_len)
    shape[-1] = Const(1 if irfft else 2)
    sign = 1.0 if inverse else -1.0
    scale = 1.0 / n if inverse else 1.0

    def read(idx, t, part):
        if part >= parts:
            return E.const(0.0, f64)
        where = list(idx)
        where[axis], where[-1] = t, Const(part)
        return E.cast(x.at(tuple(where)), f64)

    turns = np.arange(n) * (2 * np.pi / n)
    cos_table = constant_tensor(ctx, np.cos(turns), "dft_cos")
    sin_table = constant_tensor(ctx, np.sin(turns), "dft_sin")

    def turn(k, t):
        return (E.mod(E.mul(k, t), n),)

    def at(idx):
        k = idx[axis]
        t = ctx.fresh_var("t")
        if irfft:                     # output sample k from bins t in [0, n // 2]
            m = min(n // 2 + 1, n_in)
            th = turn(k, t)
            edge = E.eq(t, 0) if n % 2 else E.binary("or", E.eq(t, 0), E.eq(t, n // 2))
            w = E.select(edge, E.const(1.0, f64), E.const(2.0, f64))
            wb = E.select(edge, E.const(0.0, f64), E.const(2.0, f64))
            body = w * read(idx, t, 0) * cos_table.at(th) - \
                wb * read(idx, t, 1) * sin_table.at(th)
        else:                         # bin k from samples t
            m = min(n, n_in)
            th = turn(k, t)
            c, s = cos_table.at(th), E.const(sign, f64) * sin_table.at(th)
            re, im = read(idx, t, 0), read(idx, t, 1)
            body = E.select(E.eq(idx[-1], 0), re * c - im * s, im * c + re * s)
        if m == 0:
            return E.const(0.0, x.dtype)
        total = Reduce("add", E.const(0.0, f64), ((t, E.ZERO, Const(m)),), body)
        if scale != 1.0:
            total = total * E.const(scale, f64)
        return E.cast(total, x.dtype)
    return [Tensor(tuple(shape), x.dtype, at)]
