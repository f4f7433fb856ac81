"""Linear algebra: MatMul, Gemm, Einsum, Det and MatMulInteger.

`matmul_shape` is the one place that knows NumPy's matmul shape rule (1-D operands promoted and
then dropped, batch dims broadcast); the quantized matmuls in quantize.py reuse it.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import broadcast_dims, broadcast_shapes
from ..types import Dim, TensorType
from .common import FLOAT, INT, STRING, require_same_dtype
from .registry import define

K = FusionKind

# ONNX MatMul/Gemm element types (no 8/16-bit ints: those go through MatMulInteger).
_MATMUL_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64,
                            DType.int32, DType.int64, DType.uint32, DType.uint64})


def _check_dtype(ctx: InferContext, dtype: DType, allowed, what: str = "operands") -> None:
    if dtype not in allowed:
        ctx.fail(f"{ctx.op.name} does not take {dtype.short} {what}",
                 hint=f"allowed: {', '.join(sorted(d.short for d in allowed))}")


def _same_dim(ctx: InferContext, a: Dim, b: Dim, what: str) -> None:
    if isinstance(a, int) and isinstance(b, int) and a != b:
        ctx.fail(f"{what}: {a} != {b}", hint="check the shapes of the operands")


def matmul_shape(ctx: InferContext, a: tuple | None, b: tuple | None) -> tuple | None:
    """Output shape of numpy.matmul(a, b) over possibly symbolic shapes; None if a rank is unknown."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        ctx.fail("matmul operands must have rank >= 1, got a scalar",
                 hint="use Mul for scalar products")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    _same_dim(ctx, a2[-1], b2[-2], f"inner dimensions differ ({a} @ {b})")
    batch = broadcast_shapes(a2[:-2], b2[:-2], node=ctx.node)
    out = list(batch)
    if len(a) != 1:
        out.append(a2[-2])
    if len(b) != 1:
        out.append(b2[-1])
    return tuple(out)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.matmul(a, b)
    return out.astype(a.dtype, copy=False)


# --- MatMul ----------------------------------------------------------------------------------

def _infer_matmul(ctx: InferContext):
    dtype = require_same_dtype(ctx, 0, 1)
    _check_dtype(ctx, dtype, _MATMUL_DTYPES)
    return [TensorType(dtype, matmul_shape(ctx, ctx.tensor(0).shape, ctx.tensor(1).shape))]


MatMul = define(
    "MatMul", ["A", "B"], ["Y"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=13,
    infer=_infer_matmul, reference=lambda ctx, a, b: _matmul(a, b),
    doc="Y = A @ B with numpy.matmul semantics (1-D operands, broadcast batch dims).")


# --- Gemm ------------------------------------------------------------------------------------

def _infer_gemm(ctx: InferContext):
    dtype = require_same_dtype(ctx, 0, 1, 2)
    _check_dtype(ctx, dtype, _MATMUL_DTYPES)
    a, b = ctx.tensor(0).shape, ctx.tensor(1).shape
    for i, s in ((0, a), (1, b)):
        if s is not None and len(s) != 2:
            ctx.fail(f"Gemm input {'AB'[i]} must have rank 2, got shape {s}",
                     hint="use MatMul for batched or 1-D products")
    m = k_a = k_b = n = None
    if a is not None:
        m, k_a = (a[1], a[0]) if ctx.attrs.transA else (a[0], a[1])
    if b is not None:
        k_b, n = (b[1], b[0]) if ctx.attrs.transB else (b[0], b[1])
    _same_dim(ctx, k_a, k_b, "Gemm inner dimensions differ")
    if ctx.has_input(2):
        c = ctx.tensor(2).shape
        if c is not None:
            if len(c) > 2:
                ctx.fail(f"Gemm input C must have rank <= 2, got shape {c}")
            padded = (1,) * (2 - len(c)) + tuple(c)
            for want, got, name in ((m, padded[0], "M"), (n, padded[1], "N")):
                if got != 1:
                    _same_dim(ctx, want, got, f"C does not broadcast to (M, N) along {name}")
            # a known C dim fills an unknown M or N
            m = padded[0] if m is None and padded[0] != 1 else m
            n = padded[1] if n is None and padded[1] != 1 else n
    return [TensorType(dtype, (m, n))]


def _gemm(ctx, a, b, c=None):
    if ctx.attrs.transA:
        a = a.T
    if ctx.attrs.transB:
        b = b.T
    out = np.dot(a, b) * ctx.attrs.alpha
    if c is not None and ctx.attrs.beta != 0:
        out = out + c * ctx.attrs.beta
    return out.astype(a.dtype, copy=False)


Gemm = define(
    "Gemm", ["A", "B", "C?"], ["Y"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=13,
    attrs=[FLOAT("alpha", 1.0), FLOAT("beta", 1.0), INT("transA", 0, choices=(0, 1)),
           INT("transB", 0, choices=(0, 1))],
    infer=_infer_gemm, reference=_gemm,
    doc="Y = alpha * A' @ B' + beta * C for 2-D A, B (optionally transposed); C broadcasts.")


# --- Einsum ----------------------------------------------------------------------------------

_ELLIPSIS = "."   # one character standing for "..." after parsing


def parse_einsum(ctx: InferContext, equation: str, num_inputs: int):
    """Split an equation into input terms and an output term; '...' becomes one '.' each.

    Returns (terms, output); an implicit output is spelled out as ONNX defines it."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != num_inputs:
        ctx.fail(f"equation '{equation}' has {len(terms)} operand terms but the node has "
                 f"{num_inputs} inputs")

    def compact(term: str, where: str) -> str:
        if term.count("...") > 1:
            ctx.fail(f"{where} term '{term}' has more than one ellipsis")
        t = term.replace("...", _ELLIPSIS)
        bad = [ch for ch in t if not (ch.isascii() and ch.isalpha()) and ch != _ELLIPSIS]
        if bad:
            ctx.fail(f"equation '{equation}' has invalid characters {bad}",
                     hint="terms use letters a-z, A-Z and '...'")
        return t

    terms = [compact(t, "input") for t in terms]
    if arrow:
        out = compact(rhs, "output")
        seen = set("".join(terms))
        for ch in out:
            if ch != _ELLIPSIS and ch not in seen:
                ctx.fail(f"output label '{ch}' of '{equation}' is not in any input term")
        if len(set(out)) != len(out):
            ctx.fail(f"output term of '{equation}' repeats a label")
    else:
        counts: dict[str, int] = {}
        for ch in "".join(terms):
            if ch != _ELLIPSIS:
                counts[ch] = counts.get(ch, 0) + 1
        out = "".join(sorted(ch for ch, n in counts.items() if n == 1))
        if any(_ELLIPSIS in t for t in terms):
            out = _ELLIPSIS + out
    return terms, out


def _infer_einsum(ctx: InferContext):
    if ctx.num_inputs == 0:
        ctx.fail("Einsum needs at least one input")
    dtype = require_same_dtype(ctx, *range(ctx.num_inputs))
    terms, out = parse_einsum(ctx, ctx.attrs.equation, ctx.num_inputs)
    sizes: dict[str, Dim] = {}
    ell_shapes = []
    ell_rank_unknown = False
    for i, term in enumerate(terms):
        shape = ctx.tensor(i).shape
        labels = term.replace(_ELLIPSIS, "")
        if shape is None:
            ell_rank_unknown |= _ELLIPSIS in term
            continue
        if _ELLIPSIS in term:
            if len(shape) < len(labels):
                ctx.fail(f"input {i} has rank {len(shape)} but term '{term}' needs at least "
                         f"{len(labels)} dimensions")
            pre = term.index(_ELLIPSIS)
            n_ell = len(shape) - len(labels)
            ell_shapes.append(shape[pre:pre + n_ell])
            dims = shape[:pre] + shape[pre + n_ell:]
        else:
            if len(shape) != len(labels):
                ctx.fail(f"input {i} has rank {len(shape)} but term '{term}' names "
                         f"{len(labels)} dimensions")
            dims = shape
        for ch, d in zip(labels, dims):
            if ch not in sizes:
                sizes[ch] = d
                continue
            prev = sizes[ch]
            if prev != 1 and d != 1:   # NumPy lets a size-1 label broadcast
                _same_dim(ctx, prev, d, f"label '{ch}' has inconsistent sizes")
            sizes[ch] = broadcast_dims(prev, d, ctx.node)
    if _ELLIPSIS in out and ell_rank_unknown:
        return [TensorType(dtype, None)]
    ell = broadcast_shapes(*ell_shapes, node=ctx.node) if ell_shapes else ()
    shape = []
    for ch in out:
        if ch == _ELLIPSIS:
            shape.extend(ell)
        else:
            shape.append(sizes.get(ch))
    return [TensorType(dtype, tuple(shape))]


def _einsum(ctx, *xs):
    eq = ctx.attrs.equation.replace(" ", "")
    dtype = xs[0].dtype
    if dtype == DType.bfloat16.np:  # NumPy has no bfloat16 matmul kernels: accumulate in float32
        return np.asarray(np.einsum(eq, *(x.astype(np.float32) for x in xs),
                                    optimize=True)).astype(dtype)
    return np.asarray(np.einsum(eq, *xs, optimize=True)).astype(dtype, copy=False)


Einsum = define(
    "Einsum", ["Inputs*"], ["Output"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=28,
    attrs=[STRING("equation")], infer=_infer_einsum, reference=_einsum,
    doc="Einstein summation over the inputs, with '...' broadcasting and implicit outputs.")


# --- Det -------------------------------------------------------------------------------------

_DET_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})


def _infer_det(ctx: InferContext):
    t = ctx.tensor(0)
    _check_dtype(ctx, t.dtype, _DET_DTYPES, "inputs")
    if t.shape is None:
        return [t]
    if len(t.shape) < 2:
        ctx.fail(f"Det needs a [*, M, M] input, got shape {t.shape}")
    _same_dim(ctx, t.shape[-2], t.shape[-1], "Det needs square matrices")
    return [t.with_shape(t.shape[:-2])]


def _det(ctx, x):
    wide = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    return np.asarray(np.linalg.det(wide)).astype(x.dtype, copy=False)


Det = define(
    "Det", ["X"], ["Y"], kind=K.OPAQUE, since_version=22, infer=_infer_det, reference=_det,
    doc="Determinants of the innermost square matrices of X.")


# --- MatMulInteger ---------------------------------------------------------------------------

_INT8 = frozenset({DType.int8, DType.uint8})


def _infer_matmul_integer(ctx: InferContext):
    for i in (0, 1):
        _check_dtype(ctx, ctx.tensor(i).dtype, _INT8)
    for i, of in ((2, 0), (3, 1)):
        if ctx.has_input(i) and ctx.tensor(i).dtype != ctx.tensor(of).dtype:
            ctx.fail(f"zero point #{i} must have the dtype of input {of} "
                     f"({ctx.tensor(of).dtype.short}), got {ctx.tensor(i).dtype.short}")
    return [TensorType(DType.int32, matmul_shape(ctx, ctx.tensor(0).shape, ctx.tensor(1).shape))]


def row_zero_point(zp: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A per-row zero point given as an M-vector lines up with A's rows, not its columns."""
    if zp.ndim == 1 and zp.size > 1 and a.ndim >= 2:
        return zp.reshape(-1, 1)
    return zp


def _matmul_integer(ctx, a, b, a_zp=None, b_zp=None):
    a32 = a.astype(np.int32)
    b32 = b.astype(np.int32)
    if a_zp is not None:
        a32 = a32 - row_zero_point(a_zp, a).astype(np.int32)
    if b_zp is not None:
        b32 = b32 - b_zp.astype(np.int32)
    return np.matmul(a32, b32).astype(np.int32, copy=False)


MatMulInteger = define(
    "MatMulInteger", ["A", "B", "a_zero_point?", "b_zero_point?"], ["Y"],
    kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=10,
    infer=_infer_matmul_integer, reference=_matmul_integer,
    doc="int32 (A - a_zero_point) @ (B - b_zero_point) for 8-bit A and B.")
