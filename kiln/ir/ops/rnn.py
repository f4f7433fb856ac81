"""Recurrent layers: RNN, GRU and LSTM, as ONNX defines them.

All three share one driver: inputs are laid out time-major (layout 0) or batch-major (layout 1);
each direction projects every time step through W at once, then runs its cell step by step.
`sequence_lens` masks each batch entry past its length (its state is held, its outputs are 0);
a reverse direction reads each sequence backwards from its own last valid step. Activations
take their alpha/beta values in order from activation_alpha/activation_beta, defaulting as the
ONNX activation ops do; `clip` bounds every activation input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import AttributeValueError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import Dim, TensorType
from .common import FLOAT, FLOATS, INT, STRING, STRINGS
from .registry import define
from .window import FLOAT_TYPES, accumulator, check_dtype

K = FusionKind

DIRECTIONS = ("forward", "reverse", "bidirectional")


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name (lower case) -> (function of x, alpha, beta; default alpha; default beta); a default of None
# means the function takes no such parameter.
_ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: _sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.logaddexp(0, x), None, None),
}


@dataclass(frozen=True)
class Recurrence:
    """What distinguishes RNN, GRU and LSTM for the shared inference and driver."""
    gates: int                         # blocks of hidden_size rows in W and R
    activations: tuple[str, ...]       # default activation functions of one direction
    cell: Callable                     # (attrs, acts, xw_t, h, c, r, rb, p) -> (h, c)
    has_cell_state: bool = False


def num_directions(attrs) -> int:
    return 2 if attrs.direction == "bidirectional" else 1


def activations(attrs, kind: Recurrence, node=None) -> list[list[Callable]]:
    """Per direction, the list of unary activation functions (alpha/beta bound)."""
    def fail(message, hint=None):
        raise AttributeValueError(message, node=node, hint=hint)

    return bind_activations(attrs, kind.activations, _ACTIVATIONS, fail)


def bind_activations(attrs, defaults: tuple[str, ...], table: dict, fail) -> list[list[Callable]]:
    """Per direction, the activations named by `attrs.activations` (or `defaults`, one
    direction's list) looked up in `table` (lower-case name -> (fn(x, alpha, beta), default
    alpha, default beta)), with activation_alpha/beta handed out in order to the functions that
    take them. The interpreter binds NumPy functions, the lowering Expr builders; `fail(message,
    hint=None)` raises the caller's error."""
    nd = num_directions(attrs)
    names = list(attrs.activations) or list(defaults) * nd
    per_dir = len(defaults)
    if len(names) == per_dir and nd == 2:
        names = names * 2
    if len(names) != per_dir * nd:
        fail(f"activations lists {len(names)} functions, expected {per_dir} per direction x "
             f"{nd} direction(s)")
    alphas, betas = list(attrs.activation_alpha), list(attrs.activation_beta)
    out = []
    for name in names:
        spec = table.get(name.lower())
        if spec is None:
            fail(f"unknown activation '{name}'",
                 hint=f"use one of {', '.join(sorted(table))} (any case)")
        fn, da, db = spec
        a = alphas.pop(0) if da is not None and alphas else da
        b = betas.pop(0) if db is not None and betas else db
        out.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    return [out[d * per_dir:(d + 1) * per_dir] for d in range(nd)]


# --- inference -------------------------------------------------------------------------------

def _known(d: Dim) -> bool:
    return isinstance(d, int)


def _expect_shape(ctx: InferContext, i: int, name: str, want: tuple) -> None:
    if not ctx.has_input(i):
        return
    got = ctx.tensor(i).shape
    if got is None:
        return
    if len(got) != len(want) or any(_known(a) and _known(b) and a != b
                                    for a, b in zip(got, want)):
        ctx.fail(f"{name} has shape {list(got)}, expected {list(want)}",
                 hint="shapes are [num_directions, ...] (batch first for initial states when "
                      "layout=1)")


def _infer(kind: Recurrence):
    def infer(ctx: InferContext):
        a = ctx.attrs
        dtype = check_dtype(ctx, 0, FLOAT_TYPES, "input X")
        for i in (1, 2, 3, 5, 6, 7):
            if ctx.has_input(i) and ctx.tensor(i).dtype != dtype:
                ctx.fail(f"input {i} must have the dtype of X ({dtype.short}), got "
                         f"{ctx.tensor(i).dtype.short}")
        if ctx.has_input(4) and ctx.tensor(4).dtype != DType.int32:
            ctx.fail(f"sequence_lens must be int32, got {ctx.tensor(4).dtype.short}")
        activations(a, kind, ctx.node)
        nd = num_directions(a)
        for i, name in ((0, "X"), (1, "W"), (2, "R")):
            s = ctx.tensor(i).shape
            if s is not None and len(s) != 3:
                ctx.fail(f"{name} must have rank 3, got shape {list(s)}")
        x = ctx.tensor(0).shape or (None,) * 3
        w = ctx.tensor(1).shape or (None,) * 3
        r = ctx.tensor(2).shape or (None,) * 3
        seq, batch = (x[1], x[0]) if a.layout else (x[0], x[1])
        g = kind.gates
        hidden = a.hidden_size
        if hidden is None:
            hidden = r[2] if _known(r[2]) else (w[1] // g if _known(w[1]) else None)
        if _known(w[0]) and w[0] != nd:
            ctx.fail(f"W has {w[0]} directions but direction='{a.direction}' needs {nd}")
        gh = g * hidden if _known(hidden) else None
        _expect_shape(ctx, 1, "W", (nd, gh, x[2]))
        _expect_shape(ctx, 2, "R", (nd, gh, hidden))
        _expect_shape(ctx, 3, "B", (nd, 2 * gh if gh is not None else None))
        _expect_shape(ctx, 4, "sequence_lens", (batch,))
        state = (batch, nd, hidden) if a.layout else (nd, batch, hidden)
        _expect_shape(ctx, 5, "initial_h", state)
        if kind.has_cell_state:
            _expect_shape(ctx, 6, "initial_c", state)
            _expect_shape(ctx, 7, "P", (nd, 3 * hidden if _known(hidden) else None))
        y = (batch, seq, nd, hidden) if a.layout else (seq, nd, batch, hidden)
        types = [TensorType(dtype, y), TensorType(dtype, state)]
        if kind.has_cell_state:
            types.append(TensorType(dtype, state))
        return types
    return infer


# --- the shared driver -----------------------------------------------------------------------

def reverse_within(a: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Reverse each batch column a[:lens[b], b] in time; steps past a length stay in place."""
    t = np.arange(a.shape[0])[:, None]
    idx = np.where(t < lens[None, :], lens[None, :] - 1 - t, t)
    return np.take_along_axis(a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=0)


def _run(kind: Recurrence):
    def reference(ctx, x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None):
        a = ctx.attrs
        acc = accumulator(x.dtype)
        if a.layout:
            x = x.swapaxes(0, 1)
            h0 = None if h0 is None else h0.swapaxes(0, 1)
            c0 = None if c0 is None else c0.swapaxes(0, 1)
        seq, batch = x.shape[:2]
        nd, hidden = w.shape[0], r.shape[-1]
        gh = kind.gates * hidden
        lens = np.full(batch, seq, np.int64) if seq_lens is None else \
            np.minimum(seq_lens.astype(np.int64), seq)
        b = np.zeros((nd, 2 * gh), acc) if b is None else b.astype(acc)
        zeros = np.zeros((nd, batch, hidden), acc)
        h0 = zeros if h0 is None else h0.astype(acc)
        c0 = zeros if c0 is None else c0.astype(acc)
        p = np.zeros((nd, 3 * hidden), acc) if p is None else p.astype(acc)
        acts = activations(a, kind, ctx.node)
        y = np.zeros((seq, nd, batch, hidden), acc)
        y_h, y_c = np.zeros_like(zeros), np.zeros_like(zeros)
        for d in range(nd):
            backwards = a.direction == "reverse" or d == 1
            xs = x.astype(acc)
            if backwards:
                xs = reverse_within(xs, lens)
            xw = xs @ w[d].astype(acc).T + b[d, :gh]          # every step's input projection
            h, c = h0[d], c0[d]
            rd, rb = r[d].astype(acc), b[d, gh:]
            out = np.zeros((seq, batch, hidden), acc)
            for t in range(seq):
                live = (t < lens)[:, None]
                h_new, c_new = kind.cell(a, acts[d], xw[t], h, c, rd, rb, p[d])
                h = np.where(live, h_new, h)
                c = np.where(live, c_new, c) if c_new is not None else c
                out[t] = np.where(live, h_new, 0)
            y[:, d] = reverse_within(out, lens) if backwards else out
            y_h[d], y_c[d] = h, c
        if a.layout:
            y, y_h, y_c = y.transpose(2, 0, 1, 3), y_h.swapaxes(0, 1), y_c.swapaxes(0, 1)
        outs = (y.astype(x.dtype), y_h.astype(x.dtype))
        return outs + (y_c.astype(x.dtype),) if kind.has_cell_state else outs
    return reference


def _clip(attrs, v):
    return v if attrs.clip is None else np.clip(v, -attrs.clip, attrs.clip)


# --- cells -----------------------------------------------------------------------------------

def _rnn_cell(attrs, acts, xw, h, c, r, rb, p):
    (f,) = acts
    return f(_clip(attrs, xw + h @ r.T + rb)), None


def _gru_cell(attrs, acts, xw, h, c, r, rb, p):
    f, g = acts
    n = h.shape[-1]
    rz, rr, rh = r[:n], r[n:2 * n], r[2 * n:]
    z = f(_clip(attrs, xw[:, :n] + h @ rz.T + rb[:n]))
    reset = f(_clip(attrs, xw[:, n:2 * n] + h @ rr.T + rb[n:2 * n]))
    if attrs.linear_before_reset:
        cand = xw[:, 2 * n:] + reset * (h @ rh.T + rb[2 * n:])
    else:
        cand = xw[:, 2 * n:] + (reset * h) @ rh.T + rb[2 * n:]
    hh = g(_clip(attrs, cand))
    return (1 - z) * hh + z * h, None


def _lstm_cell(attrs, acts, xw, h, c, r, rb, p):
    f, g, hf = acts
    n = h.shape[-1]
    gates = xw + h @ r.T + rb
    pi, po, pf = p[:n], p[n:2 * n], p[2 * n:]
    i = f(_clip(attrs, gates[:, :n] + pi * c))
    if attrs.input_forget:
        forget = 1 - i
    else:
        forget = f(_clip(attrs, gates[:, 2 * n:3 * n] + pf * c))
    cell = forget * c + i * g(_clip(attrs, gates[:, 3 * n:]))
    o = f(_clip(attrs, gates[:, n:2 * n] + po * cell))
    return o * hf(cell), cell


# --- ops -------------------------------------------------------------------------------------

def _common_attrs():
    return [FLOATS("activation_alpha", ()), FLOATS("activation_beta", ()),
            STRINGS("activations", ()), FLOAT("clip", None),
            STRING("direction", "forward", choices=DIRECTIONS), INT("hidden_size", None),
            INT("layout", 0, choices=(0, 1))]


_RNN = Recurrence(gates=1, activations=("Tanh",), cell=_rnn_cell)
_GRU = Recurrence(gates=3, activations=("Sigmoid", "Tanh"), cell=_gru_cell)
_LSTM = Recurrence(gates=4, activations=("Sigmoid", "Tanh", "Tanh"), cell=_lstm_cell,
                   has_cell_state=True)

_INPUTS = ["X", "W", "R", "B?", "sequence_lens?", "initial_h?"]

RNN = define(
    "RNN", _INPUTS, ["Y?", "Y_h?"], kind=K.OPAQUE, since_version=22,
    attrs=_common_attrs(), infer=_infer(_RNN), reference=_run(_RNN),
    doc="Elman RNN: H = f(X W' + H R' + Wb + Rb), over time, in one or both directions.")

GRU = define(
    "GRU", _INPUTS, ["Y?", "Y_h?"], kind=K.OPAQUE, since_version=22,
    attrs=[*_common_attrs(), INT("linear_before_reset", 0, choices=(0, 1))],
    infer=_infer(_GRU), reference=_run(_GRU),
    doc="Gated recurrent unit (update z, reset r, candidate h gates).")

LSTM = define(
    "LSTM", [*_INPUTS, "initial_c?", "P?"], ["Y?", "Y_h?", "Y_c?"], kind=K.OPAQUE,
    since_version=22, attrs=[*_common_attrs(), INT("input_forget", 0, choices=(0, 1))],
    infer=_infer(_LSTM), reference=_run(_LSTM),
    doc="Long short-term memory (input, output, forget, cell gates; optional peepholes P).")
