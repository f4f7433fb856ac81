"""Shape ops: reading shapes (Shape, Size), re-viewing data (Reshape, Flatten, Squeeze, Unsqueeze,
Identity), making tensors of a given shape (Expand, ConstantOfShape, Range, EyeLike) and Dropout.

Shape-like operands (Reshape's `shape`, Squeeze's `axes`...) are read at compile time when they
are constants, so output dimensions stay exact, symbolic ones included:
Reshape(f32[batch,4,8], [0,-1]) is f32[batch,32]. The helpers at the top are shared with the
movement and indexing families.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import AttributeValueError, ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext, Trait
from ..shapes import broadcast_shapes, dims_product, normalize_axes
from ..types import Dim, TensorType
from .common import DTYPE, INT, TENSOR, same_as_input
from .registry import define

K = FusionKind
INDEX_DTYPES = frozenset({DType.int32, DType.int64})


# --- helpers shared by the shape, movement and indexing families ---------------------------------

def const_ints(ctx: InferContext, i: int) -> list[int] | None:
    """Input i's values as Python ints when it is present and a compile-time constant, else None."""
    if not ctx.has_input(i):
        return None
    c = ctx.const(i)
    if c is None:
        return None
    return [int(v) for v in np.asarray(c).reshape(-1)]


def check_dtype(ctx: InferContext, i: int, allowed, what: str) -> DType:
    """Input i's dtype, which must be one of `allowed`."""
    dt = ctx.tensor(i).dtype
    if dt not in allowed:
        ctx.fail(f"{what} must be {' or '.join(sorted(d.name for d in allowed))}, got {dt.name}",
                 hint="insert a Cast")
    return dt


def vector_length(ctx: InferContext, i: int, what: str, scalar_ok: bool = False) -> int | None:
    """Static length of a 1-D operand (shape, axes, pads...), None when not known. With
    `scalar_ok`, a scalar counts as one entry (ONNX Runtime accepts scalar axes)."""
    shape = ctx.tensor(i).shape
    if shape is None:
        return None
    if scalar_ok and len(shape) == 0:
        return 1
    if len(shape) != 1:
        ctx.fail(f"{what} must be a 1-D tensor, got shape {list(shape)}")
    return shape[0] if isinstance(shape[0], int) else None


def merge_dim(ctx: InferContext, a: Dim, b: Dim, what: str) -> Dim:
    """Two dimensions that must be equal: the more precise of them (int, then name, then None)."""
    if isinstance(a, int) and isinstance(b, int):
        if a != b:
            ctx.fail(f"{what}: {a} != {b}", hint="check the shapes of the node's inputs")
        return a
    for d in (a, b):
        if isinstance(d, int):
            return d
    return a if a is not None else b


def fill_value(dtype: np.dtype):
    """The zero of a dtype: 0, False, or the empty string for string tensors."""
    return "" if dtype == object else np.zeros((), dtype)[()]


def scalar_of(x: np.ndarray, what: str):
    """The one element of a scalar or one-element operand."""
    x = np.asarray(x)
    if x.size != 1:
        raise ExecutionError(f"{what} must hold one element, got shape {x.shape}")
    return x.reshape(-1)[0]


# --- Shape, Size -------------------------------------------------------------------------------

def _shape_range(rank: int, start: int, end: int | None) -> tuple[int, int]:
    """ONNX's clamped [start, end) over the axes of a rank-`rank` tensor."""
    def clamp(a):
        a = a + rank if a < 0 else a
        return min(max(a, 0), rank)
    return clamp(start), clamp(rank if end is None else end)


def _infer_shape(ctx: InferContext):
    shape = ctx.tensor(0).shape
    if shape is None:
        return [TensorType(DType.int64, (None,))]
    lo, hi = _shape_range(len(shape), ctx.attrs.start, ctx.attrs.end)
    return [TensorType(DType.int64, (max(hi - lo, 0),))]


def _shape(ctx, x):
    lo, hi = _shape_range(x.ndim, ctx.attrs.start, ctx.attrs.end)
    return np.array(x.shape[lo:hi], dtype=np.int64)


Shape = define(
    "Shape", ["data"], ["shape"], kind=K.OPAQUE, since_version=25, traits=[Trait.SHAPE_ONLY],
    attrs=[INT("start", 0), INT("end", None)], infer=_infer_shape, reference=_shape,
    doc="The input's shape (or the slice [start, end) of it) as a 1-D int64 tensor.")

Size = define(
    "Size", ["data"], ["size"], kind=K.OPAQUE, since_version=25, traits=[Trait.SHAPE_ONLY],
    infer=lambda ctx: [TensorType(DType.int64, ())],
    reference=lambda ctx, x: np.array(x.size, dtype=np.int64),
    doc="The input's number of elements as an int64 scalar.")


# --- Reshape, Flatten, Squeeze, Unsqueeze, Identity ----------------------------------------------

def _split_factors(dims) -> tuple[int, list[str]] | None:
    """A product of dims as (int factor, symbol names); None when a dim is unknown."""
    n, syms = 1, []
    for d in dims:
        if d is None:
            return None
        if isinstance(d, int):
            n *= d
        else:
            syms.append(d)
    return n, syms


def _solve_minus_one(ctx: InferContext, in_dims, known_out) -> Dim:
    """The dim a -1 stands for: product(in_dims) / product(known_out), cancelling symbols."""
    num, den = _split_factors(in_dims), _split_factors(known_out)
    if num is None or den is None:
        return None
    (n, syms), (d, den_syms) = num, den
    for s in den_syms:
        if s not in syms:
            return None
        syms.remove(s)
    if d == 0:
        ctx.fail(f"Reshape cannot solve -1 when the other output dims {list(known_out)} include 0",
                 hint="give the size explicitly")
    if not syms:
        if n % d:
            ctx.fail(f"cannot reshape {list(in_dims)} into a shape whose other dims are "
                     f"{list(known_out)}: {n} is not divisible by {d}")
        return n // d
    if len(syms) == 1 and n == d:
        return syms[0]
    return None


def _reshape_dims(ctx: InferContext, in_shape, target: list[int]) -> tuple:
    allowzero = ctx.attrs.allowzero
    if target.count(-1) > 1:
        ctx.fail(f"Reshape shape {target} has more than one -1")
    if allowzero and 0 in target and -1 in target:
        ctx.fail(f"Reshape shape {target} has both 0 and -1 while allowzero=1",
                 hint="with allowzero=1 a 0 is a real zero-size dim, so -1 cannot be solved")
    out: list[Dim] = []
    for i, s in enumerate(target):
        if s < -1:
            ctx.fail(f"Reshape shape {target} has invalid entry {s}")
        if s == 0 and not allowzero:
            if in_shape is None:
                out.append(None)
            elif i >= len(in_shape):
                ctx.fail(f"Reshape shape {target} copies dim {i} (a 0) but the input has rank "
                         f"{len(in_shape)}")
            else:
                out.append(in_shape[i])
        else:
            out.append(s)
    if -1 in target:
        k = target.index(-1)
        rest = out[:k] + out[k + 1:]
        out[k] = None if in_shape is None else _solve_minus_one(ctx, in_shape, rest)
    elif in_shape is not None:
        n_in, n_out = dims_product(in_shape), dims_product(out)
        if isinstance(n_in, int) and isinstance(n_out, int) and n_in != n_out:
            ctx.fail(f"cannot reshape {list(in_shape)} ({n_in} elements) into {target} "
                     f"({n_out} elements)")
    return tuple(out)


def _infer_reshape(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.int64}, "Reshape's shape")
    n = vector_length(ctx, 1, "Reshape's shape")
    target = const_ints(ctx, 1)
    if target is not None:
        return [x.with_shape(_reshape_dims(ctx, x.shape, target))]
    if n == 1:   # any valid one-entry target holds every element
        return [x.with_shape((x.numel(),))]
    return [x.with_shape(None if n is None else (None,) * n)]


def _reshape(ctx, x, shape):
    target = [int(s) for s in shape]
    if not ctx.attrs.allowzero:
        for i, s in enumerate(target):
            if s == 0:
                if i >= x.ndim:
                    raise ExecutionError(
                        f"shape {target} copies dim {i} but the input has rank {x.ndim}")
                target[i] = x.shape[i]
    try:
        return x.reshape(target)
    except ValueError:
        raise ExecutionError(f"cannot reshape an array of shape {x.shape} into {list(shape)}",
                             hint="the element counts must match") from None


Reshape = define(
    "Reshape", ["data", "shape"], ["reshaped"], kind=K.INJECTIVE, since_version=25,
    traits=[Trait.VIEW], attrs=[INT("allowzero", 0, choices=(0, 1))],
    infer=_infer_reshape, reference=_reshape,
    doc="The data in a new shape; 0 copies an input dim (unless allowzero), -1 is solved.")


def _flatten_axis(ctx, rank: int) -> int:
    axis = ctx.attrs.axis
    if not -rank <= axis <= rank:
        ctx.fail(f"Flatten axis {axis} is out of range for rank {rank}",
                 hint=f"use an axis in [{-rank}, {rank}]")
    return axis + rank if axis < 0 else axis


def _infer_flatten(ctx: InferContext):
    x = ctx.tensor(0)
    if x.shape is None:
        return [x.with_shape((None, None))]
    axis = _flatten_axis(ctx, len(x.shape))
    return [x.with_shape((dims_product(x.shape[:axis]), dims_product(x.shape[axis:])))]


def _flatten(ctx, x):
    axis = ctx.attrs.axis + x.ndim if ctx.attrs.axis < 0 else ctx.attrs.axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


Flatten = define(
    "Flatten", ["input"], ["output"], kind=K.INJECTIVE, since_version=25, traits=[Trait.VIEW],
    attrs=[INT("axis", 1)], infer=_infer_flatten, reference=_flatten,
    doc="A 2-D view: dims before `axis` multiplied into the first, the rest into the second.")


def _infer_squeeze(ctx: InferContext):
    x = ctx.tensor(0)
    if ctx.has_input(1):
        check_dtype(ctx, 1, {DType.int64}, "Squeeze's axes")
        k = vector_length(ctx, 1, "Squeeze's axes", scalar_ok=True)
        axes = const_ints(ctx, 1)
        if x.shape is None:
            return [x.with_shape(None)]
        if axes is None:
            return [x.with_shape(None if k is None else (None,) * (len(x.shape) - k))]
        axes = normalize_axes(axes, len(x.shape), ctx.node)
        if len(set(axes)) != len(axes):
            ctx.fail(f"Squeeze axes {const_ints(ctx, 1)} repeat an axis")
        for a in axes:
            if isinstance(x.shape[a], int) and x.shape[a] != 1:
                ctx.fail(f"cannot squeeze axis {a} of size {x.shape[a]} (shape {list(x.shape)})",
                         hint="only dims of size 1 can be squeezed")
        return [x.with_shape(d for i, d in enumerate(x.shape) if i not in axes)]
    if x.shape is None or not x.is_static:
        return [x.with_shape(None)]   # a symbolic dim may or may not be 1 at run time
    return [x.with_shape(d for d in x.shape if d != 1)]


def _squeeze(ctx, x, axes=None):
    if axes is None:
        return np.squeeze(x)
    axes = tuple(int(a) + x.ndim if a < 0 else int(a) for a in axes.reshape(-1))
    for a in axes:
        if not 0 <= a < x.ndim or x.shape[a] != 1:
            raise ExecutionError(f"cannot squeeze axis {a} of an array of shape {x.shape}")
    return np.squeeze(x, axis=axes)


Squeeze = define(
    "Squeeze", ["data", "axes?"], ["squeezed"], kind=K.INJECTIVE, since_version=25,
    traits=[Trait.VIEW], infer=_infer_squeeze, reference=_squeeze,
    doc="Removes the size-1 dims listed in `axes` (all size-1 dims when axes is absent).")


def _infer_unsqueeze(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.int64}, "Unsqueeze's axes")
    k = vector_length(ctx, 1, "Unsqueeze's axes", scalar_ok=True)
    axes = const_ints(ctx, 1)
    if x.shape is None:
        return [x.with_shape(None)]
    if axes is None:
        return [x.with_shape(None if k is None else (None,) * (len(x.shape) + k))]
    rank = len(x.shape) + len(axes)
    axes = normalize_axes(axes, rank, ctx.node)
    if len(set(axes)) != len(axes):
        ctx.fail(f"Unsqueeze axes {const_ints(ctx, 1)} repeat an axis")
    rest = iter(x.shape)
    return [x.with_shape(1 if i in axes else next(rest) for i in range(rank))]


def _unsqueeze(ctx, x, axes):
    rank = x.ndim + axes.size
    norm = [int(a) + rank if a < 0 else int(a) for a in axes.reshape(-1)]
    if len(set(norm)) != len(norm) or any(not 0 <= a < rank for a in norm):
        raise ExecutionError(f"invalid Unsqueeze axes {axes.tolist()} for output rank {rank}")
    return np.expand_dims(x, tuple(norm))


Unsqueeze = define(
    "Unsqueeze", ["data", "axes"], ["expanded"], kind=K.INJECTIVE, since_version=25,
    traits=[Trait.VIEW], infer=_infer_unsqueeze, reference=_unsqueeze,
    doc="Inserts size-1 dims at `axes` (counted in the output's rank).")


def _identity(ctx, x):
    return list(x) if isinstance(x, list) else x


Identity = define(
    "Identity", ["input"], ["output"], kind=K.INJECTIVE, since_version=25, traits=[Trait.VIEW],
    infer=same_as_input(0), reference=_identity,
    doc="The input unchanged (a tensor, sequence or optional).")


# --- Expand, ConstantOfShape, Range, EyeLike -----------------------------------------------------

def _infer_expand(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.int64}, "Expand's shape")
    n = vector_length(ctx, 1, "Expand's shape")
    target = const_ints(ctx, 1)
    if target is not None:
        if any(s < 0 for s in target):
            ctx.fail(f"Expand shape {target} has a negative dim")
        return [x.with_shape(broadcast_shapes(x.shape, tuple(target), node=ctx.node))]
    if x.shape is None or n is None:
        return [x.with_shape(None)]
    rank = max(len(x.shape), n)
    padded = (1,) * (rank - len(x.shape)) + tuple(x.shape)
    # a dim above 1 survives any target value; everything else depends on the unknown target
    return [x.with_shape(d if isinstance(d, int) and d > 1 else None for d in padded)]


def _expand(ctx, x, shape):
    try:
        out_shape = np.broadcast_shapes(x.shape, tuple(int(s) for s in shape))
    except ValueError:
        raise ExecutionError(f"cannot expand shape {x.shape} to {shape.tolist()}",
                             hint="each dim must match the target or be 1") from None
    return np.broadcast_to(x, out_shape).copy()


Expand = define(
    "Expand", ["input", "shape"], ["output"], kind=K.INJECTIVE, since_version=13,
    infer=_infer_expand, reference=_expand,
    doc="The input broadcast against `shape` (NumPy rules, so the result may be larger).")


def _fill_tensor(ctx) -> np.ndarray:
    """ConstantOfShape's one-element fill value (float32 0 by default)."""
    value = ctx.attrs.value
    if value is None:
        return np.zeros((1,), np.float32)
    if value.size != 1:
        raise AttributeValueError(
            f"ConstantOfShape value must hold one element, got shape {value.shape}", node=ctx.node)
    return value


def _shape_from_operand(ctx: InferContext, i: int, what: str) -> tuple | None:
    """The output shape a 1-D shape operand describes: exact when constant, else just its rank."""
    n = vector_length(ctx, i, what)
    dims = const_ints(ctx, i)
    if dims is not None:
        if any(d < 0 for d in dims):
            ctx.fail(f"{what} {dims} has a negative dim")
        return tuple(dims)
    return None if n is None else (None,) * n


def _infer_constant_of_shape(ctx: InferContext):
    check_dtype(ctx, 0, {DType.int64}, "ConstantOfShape's input")
    dtype = DType.from_numpy(_fill_tensor(ctx).dtype)
    return [TensorType(dtype, _shape_from_operand(ctx, 0, "ConstantOfShape's shape"))]


def _constant_of_shape(ctx, shape):
    value = _fill_tensor(ctx)
    dims = tuple(int(s) for s in shape)
    if any(d < 0 for d in dims):
        raise ExecutionError(f"ConstantOfShape got negative dims {list(dims)}")
    return np.full(dims, value.reshape(-1)[0], dtype=value.dtype)


ConstantOfShape = define(
    "ConstantOfShape", ["input"], ["output"], kind=K.OPAQUE, since_version=25,
    attrs=[TENSOR("value", None)], infer=_infer_constant_of_shape, reference=_constant_of_shape,
    doc="A tensor of the given shape filled with `value` (default float32 0).")


_RANGE_DTYPES = frozenset({DType.float32, DType.float64, DType.int16, DType.int32, DType.int64,
                           DType.float16, DType.bfloat16})


def _range_length(start, limit, delta) -> int:
    if delta == 0:
        raise ExecutionError("Range delta must not be 0")
    if all(isinstance(v, int) for v in (start, limit, delta)):
        return max(-((start - limit) // delta), 0)      # exact ceil for int64 ranges
    return max(int(math.ceil((limit - start) / delta)), 0)


def _infer_range(ctx: InferContext):
    dtype = check_dtype(ctx, 0, _RANGE_DTYPES, "Range's start")
    for i, name in enumerate(("start", "limit", "delta")):
        t = ctx.tensor(i)
        if t.dtype != dtype:
            ctx.fail(f"Range inputs must share one dtype; {name} is {t.dtype.name}, start is "
                     f"{dtype.name}")
        if t.shape is not None and (len(t.shape) > 1 or t.numel() not in (1, None)):
            ctx.fail(f"Range {name} must be a scalar, got shape {list(t.shape)}")
    consts = [ctx.const(i) for i in range(3)]
    if any(c is None for c in consts):
        return [TensorType(dtype, (None,))]
    start, limit, delta = (_range_operand(ctx, c) for c in consts)
    if delta == 0:
        ctx.fail("Range delta is 0")
    return [TensorType(dtype, (_range_length(start, limit, delta),))]


def _range_operand(ctx, x: np.ndarray):
    """A Range input as a Python number, in the precision the op computes with."""
    v = np.asarray(x).reshape(-1)[0]
    if x.dtype.kind in "iu":
        return int(v)
    low = x.dtype in (DType.float16.np, DType.bfloat16.np)
    return float(v.astype(ctx.attrs.stash_type.np)) if low else float(v)


def _range(ctx, start, limit, delta):
    s, l, d = (_range_operand(ctx, x) for x in (start, limit, delta))
    n = _range_length(s, l, d)
    if start.dtype.kind in "iu":
        return (s + np.arange(n, dtype=np.int64) * d).astype(start.dtype)
    if start.dtype in (DType.float16.np, DType.bfloat16.np):
        stash = ctx.attrs.stash_type.np
        return (stash.type(s) + np.arange(n, dtype=stash) * stash.type(d)).astype(start.dtype)
    return (s + np.arange(n, dtype=np.float64) * d).astype(start.dtype)


Range = define(
    "Range", ["start", "limit", "delta"], ["output"], kind=K.OPAQUE, since_version=27,
    attrs=[DTYPE("stash_type", DType.float32)], infer=_infer_range, reference=_range,
    doc="[start, start+delta, ...) up to limit (exclusive); f16/bf16 computed in stash_type.")


def _infer_eye_like(ctx: InferContext):
    x = ctx.tensor(0)
    if x.shape is not None and len(x.shape) != 2:
        ctx.fail(f"EyeLike takes a 2-D input, got shape {list(x.shape)}")
    dtype = x.dtype if ctx.attrs.dtype is None else ctx.attrs.dtype
    if dtype is DType.string:
        ctx.fail("EyeLike cannot produce strings")
    return [TensorType(dtype, (None, None) if x.shape is None else x.shape)]


def _eye_like(ctx, x):
    dtype = x.dtype if ctx.attrs.dtype is None else ctx.attrs.dtype.np
    return np.eye(x.shape[0], x.shape[1], k=ctx.attrs.k, dtype=dtype)


EyeLike = define(
    "EyeLike", ["input"], ["output"], kind=K.INJECTIVE, since_version=22,
    attrs=[INT("k", 0), DTYPE("dtype", None)], infer=_infer_eye_like, reference=_eye_like,
    doc="A 2-D tensor shaped like the input with ones on diagonal k and zeros elsewhere.")


# --- Dropout -----------------------------------------------------------------------------------

def _infer_dropout(ctx: InferContext):
    x = ctx.tensor(0)
    if not x.dtype.is_float:
        ctx.fail(f"Dropout takes float data, got {x.dtype.name}")
    if ctx.has_input(1) and not ctx.tensor(1).dtype.is_float:
        ctx.fail(f"Dropout ratio must be a float scalar, got {ctx.tensor(1).dtype.name}")
    if ctx.has_input(2):
        check_dtype(ctx, 2, {DType.bool}, "Dropout's training_mode")
    return [x, x.with_dtype(DType.bool)]


def _dropout(ctx, x, ratio=None, training_mode=None):
    ratio = 0.5 if ratio is None else float(scalar_of(ratio, "Dropout ratio"))
    training = training_mode is not None and bool(scalar_of(training_mode, "training_mode"))
    if not training or ratio == 0:
        return x, np.ones(x.shape, dtype=bool)
    if not 0 <= ratio < 1:
        raise ExecutionError(f"Dropout ratio must be in [0, 1) when training, got {ratio}")
    # A fixed seed gives the mask numpy.random.RandomState(seed) gives; no seed draws fresh entropy.
    rng = np.random.RandomState(ctx.attrs.seed)
    mask = rng.uniform(0.0, 1.0, x.shape) >= ratio
    scale = 1.0 / (1.0 - ratio)
    return (mask * x * x.dtype.type(scale)).astype(x.dtype), mask


Dropout = define(
    "Dropout", ["data", "ratio?", "training_mode?"], ["output", "mask?"], kind=K.ELEMENTWISE,
    since_version=22, traits=[Trait.STATEFUL], attrs=[INT("seed", None)],
    infer=_infer_dropout, reference=_dropout,
    doc="Identity at inference; with training_mode, zeroes a random `ratio` of it and rescales.")
