"""Sequences and optionals: SequenceConstruct/Empty/At/Insert/Erase/Length, SplitToSequence,
ConcatFromSequence, SequenceMap, Optional, OptionalHasElement, OptionalGetElement.

At run time a sequence is a Python list of arrays (ops return new lists, never mutate their
inputs) and an empty optional is None. A sequence's type records one element type that every
element fits: where elements differ, `join_types` leaves those dims unknown.
"""

from __future__ import annotations

import numpy as np

from ...errors import AttributeValueError, ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import normalize_axis
from ..types import OptionalType, SequenceType, TensorType, Type
from .common import DTYPE, GRAPH, INT, TYPE
from .control import join_types
from .registry import define

K = FusionKind
_POSITION_DTYPES = (DType.int32, DType.int64)


def _sequence(ctx: InferContext, i: int) -> SequenceType:
    t = ctx.type(i)
    if not isinstance(t, SequenceType):
        ctx.fail(f"input {i} must be a sequence, got {t}",
                 hint="build one with SequenceConstruct or SplitToSequence")
    return t


def _elem_tensor(ctx: InferContext, i: int) -> TensorType:
    elem = _sequence(ctx, i).elem
    if not isinstance(elem, TensorType):
        ctx.fail(f"input {i} must be a sequence of tensors, got {ctx.type(i)}")
    return elem


def _check_position(ctx: InferContext, i: int) -> None:
    if not ctx.has_input(i):
        return
    t = ctx.tensor(i)
    if t.dtype not in _POSITION_DTYPES:
        ctx.fail(f"position must be i32 or i64, got {t.dtype.short}")
    if t.rank not in (None, 0) and t.numel() != 1:
        ctx.fail(f"position must be a scalar, got shape {list(t.shape)}")


def _joined_elem(ctx: InferContext, a: Type, b: Type) -> Type:
    t = join_types(a, b)
    if t is None:
        ctx.fail(f"a sequence holds one element type: {a} and {b} differ",
                 hint="insert a Cast so the elements agree")
    return t


def _position(pos, length: int, allow_end: bool) -> int:
    """A checked, non-negative index from a position tensor (negative counts from the back)."""
    p = int(np.asarray(pos).reshape(-1)[0])
    hi = length if allow_end else length - 1
    if not -length <= p <= hi:
        raise ExecutionError(f"position {p} is out of range for a sequence of length {length}",
                             hint=f"use a position in [{-length}, {hi}]")
    return p + length if p < 0 else p


# --- construction and access -------------------------------------------------------------------

def _infer_construct(ctx: InferContext):
    elem = ctx.tensor(0)
    for i in range(1, ctx.num_inputs):
        elem = _joined_elem(ctx, elem, ctx.tensor(i))
    return [SequenceType(elem)]


SequenceConstruct = define(
    "SequenceConstruct", ["inputs*"], ["output_sequence"], kind=K.OPAQUE, since_version=11,
    infer=_infer_construct, reference=lambda ctx, *xs: list(xs),
    doc="A sequence of the input tensors, in order.")

SequenceEmpty = define(
    "SequenceEmpty", [], ["output"], kind=K.OPAQUE, since_version=11,
    attrs=[DTYPE("dtype", DType.float32)],
    infer=lambda ctx: [SequenceType(TensorType(ctx.attrs.dtype, None))],
    reference=lambda ctx: [],
    doc="An empty sequence of tensors of element type dtype.")


def _infer_at(ctx: InferContext):
    elem = _sequence(ctx, 0).elem
    _check_position(ctx, 1)
    return [elem]


SequenceAt = define(
    "SequenceAt", ["input_sequence", "position"], ["tensor"], kind=K.OPAQUE, since_version=11,
    infer=_infer_at,
    reference=lambda ctx, seq, pos: seq[_position(pos, len(seq), allow_end=False)],
    doc="The element at position (negative counts from the back).")


def _infer_insert(ctx: InferContext):
    elem = _sequence(ctx, 0).elem
    _check_position(ctx, 2)
    return [SequenceType(_joined_elem(ctx, elem, ctx.tensor(1)))]


def _run_insert(ctx, seq, x, pos=None):
    at = len(seq) if pos is None else _position(pos, len(seq), allow_end=True)
    return seq[:at] + [x] + seq[at:]


SequenceInsert = define(
    "SequenceInsert", ["input_sequence", "tensor", "position?"], ["output_sequence"],
    kind=K.OPAQUE, since_version=11, infer=_infer_insert, reference=_run_insert,
    doc="A copy of the sequence with tensor inserted before position (default: at the end).")


def _infer_erase(ctx: InferContext):
    t = _sequence(ctx, 0)
    _check_position(ctx, 1)
    return [t]


def _run_erase(ctx, seq, pos=None):
    if not seq:
        raise ExecutionError("cannot erase from an empty sequence")
    at = len(seq) - 1 if pos is None else _position(pos, len(seq), allow_end=False)
    return seq[:at] + seq[at + 1:]


SequenceErase = define(
    "SequenceErase", ["input_sequence", "position?"], ["output_sequence"], kind=K.OPAQUE,
    since_version=11, infer=_infer_erase, reference=_run_erase,
    doc="A copy of the sequence without the element at position (default: the last).")


def _infer_length(ctx: InferContext):
    _sequence(ctx, 0)
    return [TensorType(DType.int64, ())]


SequenceLength = define(
    "SequenceLength", ["input_sequence"], ["length"], kind=K.OPAQUE, since_version=11,
    infer=_infer_length, reference=lambda ctx, seq: np.array(len(seq), np.int64),
    doc="The number of elements, as an i64 scalar.")


# --- SplitToSequence / ConcatFromSequence --------------------------------------------------------

def _infer_split(ctx: InferContext):
    t = ctx.tensor(0)
    if t.shape is None:
        return [SequenceType(TensorType(t.dtype, None))]
    axis = normalize_axis(ctx.attrs.axis, len(t.shape), ctx.node)
    dim = t.shape[axis]
    if not ctx.has_input(1):
        if not ctx.attrs.keepdims:
            return [SequenceType(TensorType(t.dtype, t.shape[:axis] + t.shape[axis + 1:]))]
        part = 1
    else:
        s = ctx.tensor(1)
        if s.dtype not in _POSITION_DTYPES:
            ctx.fail(f"split must be i32 or i64, got {s.dtype.short}")
        if s.rank not in (None, 0, 1):
            ctx.fail(f"split must be a scalar or 1-D, got rank {s.rank}")
        part = _split_part_dim(ctx, ctx.const(1), dim)
    return [SequenceType(TensorType(t.dtype, (*t.shape[:axis], part, *t.shape[axis + 1:])))]


def _split_part_dim(ctx: InferContext, split, dim):
    """The size of every part along the axis when it is the same for all parts, else None."""
    if split is None:
        return None
    if (split < 0).any():
        ctx.fail(f"split sizes must be >= 0, got {split.tolist()}")
    if split.ndim == 0:
        s = int(split)
        if isinstance(dim, int) and s > 0 and dim % s == 0:
            return s
        return None
    if isinstance(dim, int) and int(split.sum()) != dim:
        ctx.fail(f"split sizes {split.tolist()} sum to {int(split.sum())}, not the axis size {dim}")
    vals = set(split.tolist())
    return vals.pop() if len(vals) == 1 else None


def _run_split(ctx, x, split=None):
    axis = ctx.attrs.axis % x.ndim
    n = x.shape[axis]
    if split is None:
        parts = np.split(x, n, axis=axis) if n else []
        return parts if ctx.attrs.keepdims else [np.squeeze(p, axis=axis) for p in parts]
    split = np.asarray(split)
    if (split < 0).any() or (split.ndim == 0 and int(split) == 0 and n):
        raise ExecutionError(f"split sizes must be positive, got {split.tolist()}")
    if split.ndim == 0:
        s = int(split)
        sizes = [s] * (n // s) + ([n % s] if n % s else []) if s else []
    else:
        sizes = [int(v) for v in split]
        if sum(sizes) != n:
            raise ExecutionError(f"split sizes {sizes} sum to {sum(sizes)}, not the axis size {n}")
    cuts = np.cumsum(sizes)[:-1]
    return [np.ascontiguousarray(p) for p in np.split(x, cuts, axis=axis)] if sizes else []


SplitToSequence = define(
    "SplitToSequence", ["input", "split?"], ["output_sequence"], kind=K.OPAQUE, since_version=24,
    attrs=[INT("axis", 0), INT("keepdims", 1, choices=(0, 1))],
    infer=_infer_split, reference=_run_split,
    doc="Splits input along axis into parts of the given sizes (default 1, dropping the axis "
        "when keepdims=0).")


def _infer_concat(ctx: InferContext):
    elem = _elem_tensor(ctx, 0)
    if elem.shape is None:
        return [TensorType(elem.dtype, None)]
    rank = len(elem.shape)
    if ctx.attrs.new_axis:
        axis = normalize_axis(ctx.attrs.axis, rank + 1, ctx.node)
        return [TensorType(elem.dtype, (*elem.shape[:axis], None, *elem.shape[axis:]))]
    axis = normalize_axis(ctx.attrs.axis, rank, ctx.node)
    return [TensorType(elem.dtype, (*elem.shape[:axis], None, *elem.shape[axis + 1:]))]


def _run_concat(ctx, seq):
    if not seq:
        raise ExecutionError("cannot concatenate an empty sequence",
                             hint="the result's shape would be unknown")
    if ctx.attrs.new_axis:
        return np.stack(seq, axis=ctx.attrs.axis % (seq[0].ndim + 1))
    return np.concatenate(seq, axis=ctx.attrs.axis % max(seq[0].ndim, 1))


ConcatFromSequence = define(
    "ConcatFromSequence", ["input_sequence"], ["concat_result"], kind=K.OPAQUE, since_version=11,
    attrs=[INT("axis"), INT("new_axis", 0, choices=(0, 1))],
    infer=_infer_concat, reference=_run_concat,
    doc="Concatenates the elements along axis (stacks them on a new axis when new_axis=1).")


# --- SequenceMap ---------------------------------------------------------------------------------

def _infer_map(ctx: InferContext):
    body = ctx.attrs.body
    _sequence(ctx, 0)
    if len(body.inputs) != ctx.num_inputs:
        ctx.fail(f"the body takes {len(body.inputs)} inputs; the node passes {ctx.num_inputs}")
    return [SequenceType(v.type) for v in body.outputs]


def _run_map(ctx, seq, *extra):
    length = len(seq)
    for i, x in enumerate(extra):
        if isinstance(x, list) and len(x) != length:
            raise ExecutionError(f"sequence input {i + 1} has {len(x)} elements; input 0 has "
                                 f"{length}", hint="all sequence inputs must be equally long")
    out: list[list] = [[] for _ in ctx.attrs.body.outputs]
    for t in range(length):
        args = [seq[t]] + [x[t] if isinstance(x, list) else x for x in extra]
        for acc, y in zip(out, ctx.run_graph(ctx.attrs.body, args)):
            acc.append(y)
    return tuple(out)


SequenceMap = define(
    "SequenceMap", ["input_sequence", "additional_inputs?*"], ["out_sequence*"], kind=K.OPAQUE,
    since_version=17, attrs=[GRAPH("body")], infer=_infer_map, reference=_run_map,
    doc="Applies body to each element (sequence inputs are walked together, tensors passed "
        "whole); each body output becomes a sequence.")


# --- Optional ------------------------------------------------------------------------------------

def _infer_optional(ctx: InferContext):
    if ctx.has_input(0):
        return [OptionalType(ctx.type(0))]
    if ctx.attrs.type is None:
        raise AttributeValueError("an Optional without an input needs the 'type' attribute",
                                  node=ctx.node, hint="set type to the element type")
    return [OptionalType(ctx.attrs.type)]


Optional = define(
    "Optional", ["input?"], ["output"], kind=K.OPAQUE, since_version=28,
    attrs=[TYPE("type", None)],
    infer=_infer_optional, reference=lambda ctx, x=None: x,
    doc="An optional holding input, or an empty optional of the given type.")


OptionalHasElement = define(
    "OptionalHasElement", ["input?"], ["output"], kind=K.OPAQUE, since_version=28,
    infer=lambda ctx: [TensorType(DType.bool, ())],
    reference=lambda ctx, x=None: np.array(x is not None),
    doc="True when the optional (or a plain tensor/sequence) holds a value.")


def _run_get(ctx, x):
    if x is None:
        raise ExecutionError("OptionalGetElement of an empty optional",
                             hint="guard it with OptionalHasElement and If")
    return x


def _infer_get(ctx: InferContext):
    t = ctx.type(0)
    return [t.elem if isinstance(t, OptionalType) else t]


OptionalGetElement = define(
    "OptionalGetElement", ["input"], ["output"], kind=K.OPAQUE, since_version=28,
    infer=_infer_get, reference=_run_get,
    doc="The value held by an optional (a plain tensor or sequence passes through).")
