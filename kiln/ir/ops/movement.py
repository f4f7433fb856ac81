"""Data movement: ops that copy input elements to new positions without arithmetic on them.

Transpose, Concat, Split, Slice, Pad and Tile rearrange whole tensors. Slice follows ONNX's
clamping rules exactly (which differ from Python slicing for large negative starts with negative
steps). Block and window rearrangements (DepthToSpace, Trilu, Col2Im...) live in layout.py.
"""

from __future__ import annotations

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import dim_add, dim_mul, normalize_axes, normalize_axis
from ..types import TensorType
from .common import INT, INTS, STRING, require_same_dtype
from .registry import define
from .shape import INDEX_DTYPES, check_dtype, const_ints, fill_value, merge_dim, vector_length

K = FusionKind


# --- Transpose ---------------------------------------------------------------------------------

def _perm(perm, rank: int) -> list[int] | None:
    """The permutation (reversed axes by default); None when `perm` is not one."""
    if perm is None:
        return list(range(rank))[::-1]
    return list(perm) if sorted(perm) == list(range(rank)) else None


def _infer_transpose(ctx: InferContext):
    x = ctx.tensor(0)
    if x.shape is None:
        perm = ctx.attrs.perm
        return [x.with_shape(None if perm is None else (None,) * len(perm))]
    perm = _perm(ctx.attrs.perm, len(x.shape))
    if perm is None:
        ctx.fail(f"Transpose perm {list(ctx.attrs.perm)} is not a permutation of the "
                 f"{len(x.shape)} axes", hint="give each axis exactly once")
    return [x.with_shape(x.shape[p] for p in perm)]


Transpose = define(
    "Transpose", ["data"], ["transposed"], kind=K.INJECTIVE, since_version=25,
    attrs=[INTS("perm", None)], infer=_infer_transpose,
    reference=lambda ctx, x: np.transpose(x, _perm(ctx.attrs.perm, x.ndim)),
    doc="Permutes the axes by `perm` (default: reversed).")


# --- Concat, Split -----------------------------------------------------------------------------

def _infer_concat(ctx: InferContext):
    dtype = require_same_dtype(ctx, *range(ctx.num_inputs))
    shapes = [ctx.tensor(i).shape for i in range(ctx.num_inputs)]
    ranks = {len(s) for s in shapes if s is not None}
    if len(ranks) > 1:
        ctx.fail(f"Concat inputs must share one rank, got shapes {[list(s) for s in shapes if s]}")
    if not ranks:
        return [TensorType(dtype, None)]
    rank = ranks.pop()
    if rank == 0:
        ctx.fail("Concat cannot join scalars", hint="Unsqueeze them to 1-D first")
    axis = normalize_axis(ctx.attrs.axis, rank, ctx.node)
    shapes = [s if s is not None else (None,) * rank for s in shapes]
    out = list(shapes[0])
    for s in shapes[1:]:
        for i in range(rank):
            if i == axis:
                out[i] = dim_add(out[i], s[i])
            else:
                out[i] = merge_dim(ctx, out[i], s[i], f"Concat inputs differ in dim {i}")
    return [TensorType(dtype, tuple(out))]


Concat = define(
    "Concat", ["inputs*"], ["concat_result"], kind=K.INJECTIVE, since_version=13,
    attrs=[INT("axis")], infer=_infer_concat,
    reference=lambda ctx, *xs: np.concatenate(xs, axis=ctx.attrs.axis),
    doc="Joins the inputs along `axis`; other dims must agree.")


def _even_split(dim: int, n: int) -> list[int]:
    """ONNX's split into n parts: equal chunks of ceil(dim / n), the last one smaller."""
    chunk = -(-dim // n)
    last = dim - chunk * (n - 1)
    if last < 0:
        raise ValueError(f"cannot split {dim} into {n} chunks of {chunk}")
    return [chunk] * (n - 1) + [last]


def _infer_split(ctx: InferContext):
    x = ctx.tensor(0)
    n = ctx.num_outputs
    num = ctx.attrs.num_outputs
    if num is not None and ctx.has_input(1):
        ctx.fail("Split takes either the split input or num_outputs, not both")
    if num is not None and num != n:
        ctx.fail(f"Split has num_outputs={num} but the node has {n} outputs")
    if num is not None and num < 1:
        ctx.fail(f"Split num_outputs must be >= 1, got {num}")
    sizes = None
    if ctx.has_input(1):
        check_dtype(ctx, 1, {DType.int64}, "Split's split")
        vector_length(ctx, 1, "Split's split")
        sizes = const_ints(ctx, 1)
        if sizes is not None and len(sizes) != n:
            ctx.fail(f"Split sizes {sizes} give {len(sizes)} parts but the node has {n} outputs")
        if sizes is not None and any(s < 0 for s in sizes):
            ctx.fail(f"Split sizes {sizes} must not be negative")
    if x.shape is None:
        return [x.with_shape(None)] * n
    axis = normalize_axis(ctx.attrs.axis, len(x.shape), ctx.node)
    dim = x.shape[axis]
    if isinstance(dim, int):
        if sizes is None and not ctx.has_input(1):
            try:
                sizes = _even_split(dim, n)
            except ValueError:
                # left to run time: such nodes occur in If branches that never run for this shape
                sizes = None
        if sizes is not None and sum(sizes) != dim:
            ctx.fail(f"Split sizes {sizes} sum to {sum(sizes)}, but axis {axis} has {dim}")
    if sizes is None:
        sizes = [dim if n == 1 else None] * n
    return [x.with_shape(x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]


def _split(ctx, x, split=None):
    axis = ctx.attrs.axis + x.ndim if ctx.attrs.axis < 0 else ctx.attrs.axis
    dim = x.shape[axis]
    try:
        sizes = [int(s) for s in split] if split is not None else _even_split(dim, ctx.num_outputs)
    except ValueError as e:
        raise ExecutionError(str(e)) from None
    if sum(sizes) != dim or any(s < 0 for s in sizes):
        raise ExecutionError(f"split sizes {sizes} do not add up to axis {axis}'s size {dim}")
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


Split = define(
    "Split", ["input", "split?"], ["outputs*"], kind=K.INJECTIVE, since_version=18,
    attrs=[INT("axis", 0), INT("num_outputs", None)], infer=_infer_split, reference=_split,
    doc="Cuts the input along `axis` into parts of the given sizes (or equal parts).")


# --- Slice -------------------------------------------------------------------------------------

_LARGE = 2 ** 31 - 1   # starts/ends at least this large mean "to the end" in practice


def slice_range(dim: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX's clamped (start, end, length) of one sliced axis of size `dim`."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    length = 0 if dim == 0 else max(0, -(-(end - start) // step))
    return start, end, length


def _slice_operands(starts, ends, axes, steps, rank: int, fail):
    """Per-axis (start, end, step) as dicts keyed by normalized axis."""
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        fail(f"Slice starts, ends, axes and steps have different lengths "
             f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
    norm = []
    for a in axes:
        if not -rank <= a < rank:
            fail(f"Slice axis {a} is out of range for rank {rank}")
        norm.append(a % rank)
    if len(set(norm)) != len(norm):
        fail(f"Slice axes {list(axes)} repeat an axis")
    if 0 in steps:
        fail("Slice steps must not be 0")
    return {a: (s, e, st) for a, s, e, st in zip(norm, starts, ends, steps)}


def _sliced_dim(dim, start: int, end: int, step: int):
    if isinstance(dim, int):
        return slice_range(dim, start, end, step)[2]
    # a symbolic axis keeps its size only when the slice certainly covers all of it
    if step == 1 and (start == 0 or start <= -_LARGE) and end >= _LARGE:
        return dim
    if step == -1 and (start == -1 or start >= _LARGE) and end <= -_LARGE:
        return dim
    return None


def _infer_slice(ctx: InferContext):
    x = ctx.tensor(0)
    for i, name in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        if ctx.has_input(i):
            check_dtype(ctx, i, INDEX_DTYPES, f"Slice's {name}")
            vector_length(ctx, i, f"Slice's {name}")
    if x.shape is None:
        return [x]
    rank = len(x.shape)
    starts, ends = const_ints(ctx, 1), const_ints(ctx, 2)
    axes = const_ints(ctx, 3) if ctx.has_input(3) else None
    steps = const_ints(ctx, 4) if ctx.has_input(4) else None
    known = starts is not None and ends is not None and \
        (axes is not None or not ctx.has_input(3)) and (steps is not None or not ctx.has_input(4))
    if not known:
        if axes is not None:   # only the listed axes change
            touched = set(normalize_axes(axes, rank, ctx.node))
            return [x.with_shape(None if i in touched else d for i, d in enumerate(x.shape))]
        return [x.with_shape((None,) * rank)]
    per_axis = _slice_operands(starts, ends, axes, steps, rank, ctx.fail)
    return [x.with_shape(_sliced_dim(d, *per_axis[i]) if i in per_axis else d
                         for i, d in enumerate(x.shape))]


def _slice(ctx, x, starts, ends, axes=None, steps=None):
    def fail(message):
        raise ExecutionError(message)
    ints = [None if v is None else [int(a) for a in v.reshape(-1)]
            for v in (starts, ends, axes, steps)]
    per_axis = _slice_operands(*ints, x.ndim, fail)
    index = [slice(None)] * x.ndim
    for a, (s, e, st) in per_axis.items():
        s, e, _ = slice_range(x.shape[a], s, e, st)
        index[a] = slice(s, e if e >= 0 else None, st)
    return x[tuple(index)]


Slice = define(
    "Slice", ["data", "starts", "ends", "axes?", "steps?"], ["output"], kind=K.INJECTIVE,
    since_version=13, infer=_infer_slice, reference=_slice,
    doc="Strided window [starts, ends) along `axes`, clamped to each axis as ONNX specifies.")


# --- Pad, Tile ---------------------------------------------------------------------------------

def _pad_widths(pads: list[int], axes: list[int] | None, rank: int, fail) -> list[tuple[int, int]]:
    axes = list(range(rank)) if axes is None else axes
    if len(pads) != 2 * len(axes):
        fail(f"Pad has {len(pads)} pads for {len(axes)} axes; it needs 2 per axis")
    widths = [(0, 0)] * rank
    for i, a in enumerate(axes):
        if not -rank <= a < rank:
            fail(f"Pad axis {a} is out of range for rank {rank}")
        widths[a % rank] = (pads[i], pads[i + len(axes)])
    return widths


def _pad_problem(mode: str, size: int, begin: int, end: int) -> str | None:
    """Why `mode` cannot grow an axis of `size` (after cropping) by begin/end, or None."""
    if mode == "constant" or not (begin or end):
        return None
    if size == 0:
        return f"mode '{mode}' cannot extend an empty axis"
    if mode == "reflect" and max(begin, end) > size - 1:
        # a reflection excludes the edge, so it has size - 1 elements (ONNX Runtime's rule too)
        return f"mode 'reflect' adds at most {size - 1} elements per side to an axis of {size}"
    return None


def _infer_pad(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.int64}, "Pad's pads")
    vector_length(ctx, 1, "Pad's pads")
    if ctx.has_input(2):
        value = ctx.tensor(2)
        if value.dtype != x.dtype:
            ctx.fail(f"Pad constant_value is {value.dtype.name} but the data is {x.dtype.name}")
        if value.shape is not None and value.numel() not in (1, None):
            ctx.fail(f"Pad constant_value must be a scalar, got shape {list(value.shape)}")
    if ctx.has_input(3):
        check_dtype(ctx, 3, INDEX_DTYPES, "Pad's axes")
    if x.shape is None:
        return [x]
    pads = const_ints(ctx, 1)
    axes = const_ints(ctx, 3)
    if pads is None or (ctx.has_input(3) and axes is None):
        return [x.with_shape((None,) * len(x.shape))]
    widths = _pad_widths(pads, axes, len(x.shape), ctx.fail)
    out = []
    for d, (b, e) in zip(x.shape, widths):
        kept = d + min(b, 0) + min(e, 0) if isinstance(d, int) else None   # after cropping
        if kept is not None and kept < 0:
            ctx.fail(f"Pad {pads} removes more than the {d} elements of an axis")
        if kept is not None:
            problem = _pad_problem(ctx.attrs.mode, kept, max(b, 0), max(e, 0))
            if problem:
                ctx.fail(f"Pad {pads}: {problem}")
        out.append(dim_add(d, b + e))
    return [x.with_shape(out)]


def _pad(ctx, x, pads, constant_value=None, axes=None):
    def fail(message):
        raise ExecutionError(message)
    axes_list = None if axes is None else [int(a) for a in axes.reshape(-1)]
    widths = _pad_widths([int(p) for p in pads.reshape(-1)], axes_list, x.ndim, fail)
    # negative pads crop first; what remains is padded
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(widths))
    if any(s.start > s.stop for s in crop):
        fail(f"Pad widths {widths} remove more than the input's shape {x.shape}")
    x = x[crop]
    if x.ndim == 0:
        return x.copy()
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    mode = ctx.attrs.mode
    if mode == "constant":
        value = fill_value(x.dtype) if constant_value is None else constant_value.reshape(-1)[0]
        return np.pad(x, grow, mode="constant", constant_values=value).astype(x.dtype, copy=False)
    for axis, (b, e) in enumerate(grow):
        problem = _pad_problem(mode, x.shape[axis], b, e)
        if problem:
            fail(f"axis {axis}: {problem}")
    return np.pad(x, grow, mode=mode)


Pad = define(
    "Pad", ["data", "pads", "constant_value?", "axes?"], ["output"], kind=K.INJECTIVE,
    since_version=25,
    attrs=[STRING("mode", "constant", choices=("constant", "reflect", "edge", "wrap"))],
    infer=_infer_pad, reference=_pad,
    doc="Pads (or, with negative pads, crops) each axis; pads = [begins..., ends...].")


def _infer_tile(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.int64}, "Tile's repeats")
    n = vector_length(ctx, 1, "Tile's repeats")
    if x.shape is not None and n is not None and n != len(x.shape):
        ctx.fail(f"Tile repeats has {n} entries but the input has rank {len(x.shape)}")
    reps = const_ints(ctx, 1)
    if x.shape is None:
        return [x.with_shape(None if n is None else (None,) * n)]
    if reps is None:
        return [x.with_shape((None,) * len(x.shape))]
    if len(reps) != len(x.shape) or any(r < 0 for r in reps):
        ctx.fail(f"Tile repeats {reps} must be {len(x.shape)} non-negative counts")
    return [x.with_shape(dim_mul(d, r) for d, r in zip(x.shape, reps))]


def _tile(ctx, x, repeats):
    reps = [int(r) for r in repeats.reshape(-1)]
    if len(reps) != x.ndim or any(r < 0 for r in reps):
        raise ExecutionError(f"Tile repeats {reps} must be {x.ndim} non-negative counts")
    return np.tile(x, reps)


Tile = define(
    "Tile", ["input", "repeats"], ["output"], kind=K.INJECTIVE, since_version=13,
    infer=_infer_tile, reference=_tile,
    doc="Repeats the input `repeats[i]` times along each axis i.")
