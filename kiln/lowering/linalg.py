"""MatMul (NumPy semantics: 1-D operands, broadcast batch dims), Gemm and Einsum.

Each is a contraction written as a `Reduce` over the summed index inside `at`. A float32
MatMul/Gemm of matrices (batched or not, transposed or not) is a `gemm_tensor`: the same `at`,
written by the register-blocked GEMM of kiln/lowering/gemm.py with the consumer's epilogue in
registers (a constant B is packed when compiling). Other dtypes, 1-D operands and Einsum keep
the plain nest: output loops (outermost parallel, the contiguous N loop vectorized) around the
reduction. Narrow floats accumulate in float32.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.linalg import _ELLIPSIS, parse_einsum
from ..loops.buffer import BufferKind
from ..loops.expr import Const, Expr, Reduce
from . import exprs as E
from .gemm import GemmSpec
from .gemm_tensor import gemm_info, gemm_tensor, written_by_gemm
from .registry import register
from .tensor import Tensor, broadcast_index, broadcast_shape, compute_dtype, narrow, widen


def _inner(a, b) -> Expr:
    """The contracted size: whichever operand states it as a constant."""
    return a if isinstance(a, Const) or not isinstance(b, Const) else b


def contract(ctx, terms, size: Expr, dtype: DType) -> Expr:
    """sum over k in [0, size) of the product of terms(k) (each a function k -> Expr)."""
    k = ctx.fresh_var("k")
    body = None
    for t in terms:
        body = t(k) if body is None else body * t(k)
    return Reduce("add", E.const(0, dtype), ((k, E.ZERO, size),), body)


def matmul(ctx, a: Tensor, b: Tensor, a_elem, b_elem, acc: DType, out: DType) -> Tensor:
    """NumPy's matmul of a and b: a_elem(index) / b_elem(index) read an operand's element as
    an `acc` value (they may offset it by a zero point), summed in `acc`, stored as `out`."""
    a_batch = a.shape[:-2]
    b_batch = b.shape[:-2]
    batch = broadcast_shape(a_batch, b_batch)
    nb = len(batch)
    m = [a.shape[-2]] if a.rank > 1 else []
    n = [b.shape[-1]] if b.rank > 1 else []
    size = _inner(a.shape[-1], b.shape[-2] if b.rank > 1 else b.shape[0])

    def at(idx):
        bidx, rest = idx[:nb], idx[nb:]
        i = rest[:1] if a.rank > 1 else ()
        j = rest[-1:] if b.rank > 1 else ()
        ai = broadcast_index(a_batch, batch, bidx)
        bi = broadcast_index(b_batch, batch, bidx)
        return narrow(contract(ctx, [lambda k: a_elem((*ai, *i, k)),
                                     lambda k: b_elem((*bi, k, *j))], size, acc), out)
    return Tensor((*batch, *m, *n), out, at)


def constant_matrix(t: Tensor, transposed: bool):
    """t's data as a [K, N] float32 array when t is a 2-D constant in a buffer of its own."""
    buf = t.buffer
    if t.rank != 2 or buf is None or buf.kind is not BufferKind.CONSTANT or buf.data is None \
            or buf.base is not None or buf.data.ndim != 2 or t.dtype is not DType.float32:
        return None
    return buf.data.T if transposed else buf.data


def fast_matmul(ctx, a: Tensor, b: Tensor, trans_a: bool = False, trans_b: bool = False):
    """The float32 product of matrices (batch dims broadcast) as a gemm_tensor, or None when
    the plain contraction must do (another dtype, a 1-D operand)."""
    f32 = DType.float32
    if a.dtype is not f32 or b.dtype is not f32 or a.rank < 2 or b.rank < 2:
        return None
    a_batch, b_batch = a.shape[:-2], b.shape[:-2]
    batch = broadcast_shape(a_batch, b_batch)
    m, ka = (a.shape[-1], a.shape[-2]) if trans_a else (a.shape[-2], a.shape[-1])
    kb, n = (b.shape[-1], b.shape[-2]) if trans_b else (b.shape[-2], b.shape[-1])

    def a_elem(bidx, i, k):
        ai = broadcast_index(a_batch, batch, bidx)
        return a.at((*ai, k, i) if trans_a else (*ai, i, k))

    def b_elem(own, k, j):
        return b.at((*own, j, k) if trans_b else (*own, k, j))
    spec = GemmSpec(batch, m, _inner(ka, kb), n, a_elem, b_elem,
                    constant_matrix(b, trans_b) if not b_batch else None, tuple(b_batch),
                    lambda bidx: broadcast_index(b_batch, batch, bidx))
    return gemm_tensor(ctx, spec)


@register(ops.MatMul)
def lower_matmul(ctx, node, inputs):
    a, b = inputs
    fast = fast_matmul(ctx, a, b)
    if fast is not None:
        return [fast]
    return [matmul(ctx, a, b, lambda idx: widen(a.at(idx)), lambda idx: widen(b.at(idx)),
                   compute_dtype(a.dtype), a.dtype)]


def zero_point_of(zp: Tensor | None, shape, per_axis: int):
    """index -> the int32 zero point of the element at `index` of an operand of `shape`: 0 when
    absent; entry index[per_axis] of a vector (a per-row zero point of A, per-column of B,
    per-output-channel of a conv weight); else the zero point broadcast to the operand."""
    i32 = DType.int32
    if zp is None:
        return lambda idx: E.const(0, i32)
    if zp.rank == 1 and not E.is_const(zp.shape[0], 1):
        return lambda idx: E.cast(zp.at((idx[per_axis],)), i32)
    return lambda idx: E.cast(zp.at(broadcast_index(zp.shape, shape, idx)), i32)


@register(ops.MatMulInteger)
def lower_matmul_integer(ctx, node, inputs):
    """int32 (A - a_zero_point) @ (B - b_zero_point) of 8-bit operands."""
    a, b, a_zp, b_zp = (list(inputs) + [None, None])[:4]
    i32 = DType.int32
    za = zero_point_of(a_zp, a.shape, -2 if a.rank > 1 else -1)
    zb = zero_point_of(b_zp, b.shape, -1)
    return [matmul(ctx, a, b, lambda idx: E.cast(a.at(idx), i32) - za(idx),
                   lambda idx: E.cast(b.at(idx), i32) - zb(idx), i32, i32)]


@register(ops.Gemm)
def lower_gemm(ctx, node, inputs):
    """alpha * A' @ B' + beta * C (C broadcast to M x N). Integer operands scale in float64."""
    a, b, c = (list(inputs) + [None])[:3]
    attrs = ctx.attrs(node)
    dt = compute_dtype(a.dtype)
    rows_a = (lambda i, k: (k, i)) if attrs.transA else (lambda i, k: (i, k))
    rows_b = (lambda k, j: (j, k)) if attrs.transB else (lambda k, j: (k, j))
    m = a.shape[1] if attrs.transA else a.shape[0]
    size = _inner(a.shape[0] if attrs.transA else a.shape[1],
                  b.shape[1] if attrs.transB else b.shape[0])
    n = b.shape[0] if attrs.transB else b.shape[1]
    shape = (m, n)
    use_c = c is not None and attrs.beta != 0
    scale_dt = dt if dt.is_float else DType.float64
    fast = fast_matmul(ctx, a, b, bool(attrs.transA), bool(attrs.transB))

    def scaled(e: Expr, factor: float) -> Expr:
        if factor == 1:
            return e
        return E.cast(E.cast(e, scale_dt) * E.const(factor, scale_dt), dt)

    def product(i, j):
        if fast is not None:
            return fast.at((i, j))
        return contract(ctx, [lambda k: widen(a.at(rows_a(i, k))),
                              lambda k: widen(b.at(rows_b(k, j)))], size, dt)

    def at(idx):
        i, j = idx
        y = scaled(product(i, j), attrs.alpha)
        if use_c:
            y = y + scaled(widen(c.at(broadcast_index(c.shape, shape, idx))), attrs.beta)
        return narrow(y, a.dtype)
    if fast is not None:
        return [written_by_gemm(Tensor(shape, a.dtype, at), gemm_info(fast))]
    return [Tensor(shape, a.dtype, at)]


# --- Einsum ----------------------------------------------------------------------------------

class _Failer:
    """What parse_einsum needs of an inference context: a way to fail, naming the node."""

    def __init__(self, ctx, node):
        self.ctx, self.node = ctx, node

    def fail(self, message, hint=None):
        self.ctx.fail(self.node, message, hint)


@register(ops.Einsum)
def lower_einsum(ctx, node, inputs):
    """One Reduce over every label missing from the output, of the product of the operands.
    A repeated label reads a diagonal; a label or ellipsis dim of size 1 broadcasts. Ellipsis
    dims are labels of their own, ('.', p) with p counted from the right (-1 is the last)."""
    terms, out = parse_einsum(_Failer(ctx, node), ctx.attrs(node).equation, len(inputs))
    dtype = inputs[0].dtype
    dt = compute_dtype(dtype)
    ell_shapes, dims_of = [], []
    for t, term in zip(inputs, terms):
        labels = term.replace(_ELLIPSIS, "")
        n_ell = t.rank - len(labels)
        if n_ell < 0 or (n_ell and _ELLIPSIS not in term):
            ctx.fail(node, f"term '{term}' does not fit its operand of rank {t.rank}")
        if _ELLIPSIS in term:
            pre = term.index(_ELLIPSIS)
            ell_shapes.append(t.shape[pre:pre + n_ell])
            dims_of.append([*term[:pre], *((_ELLIPSIS, e - n_ell) for e in range(n_ell)),
                            *term[pre + 1:]])
        else:
            dims_of.append(list(term))
    ell = broadcast_shape(*ell_shapes) if ell_shapes else ()
    sizes: dict = {(_ELLIPSIS, e - len(ell)): n for e, n in enumerate(ell)}
    for t, dims in zip(inputs, dims_of):
        for d, n in zip(dims, t.shape):
            if not isinstance(d, tuple):
                sizes[d] = _label_size(sizes.get(d), n)
    out_labels = []
    for ch in out:
        out_labels.extend([(_ELLIPSIS, e - len(ell)) for e in range(len(ell))]
                          if ch == _ELLIPSIS else [ch])
    summed = [d for d in sizes if d not in out_labels]

    def at(idx):
        where = dict(zip(out_labels, idx))
        ranges = []
        for d in summed:
            where[d] = ctx.fresh_var("k")
            ranges.append((where[d], E.ZERO, sizes[d]))
        body = None
        for t, dims in zip(inputs, dims_of):
            index = tuple(E.ZERO if E.is_const(n, 1) else where[d] for d, n in zip(dims, t.shape))
            v = widen(t.at(index))
            body = v if body is None else body * v
        if ranges:
            body = Reduce("add", E.const(0, dt), tuple(ranges), body)
        return narrow(body, dtype)
    return [Tensor(tuple(sizes[d] for d in out_labels), dtype, at)]


def _label_size(prev, n):
    """A label's size from two operands: a size that is not 1 wins (broadcasting), and a
    constant wins over a symbol."""
    if prev is None or E.is_const(prev, 1):
        return n
    if E.is_const(n, 1):
        return prev
    if isinstance(n, Const) and not isinstance(prev, Const):
        return n
    return prev
