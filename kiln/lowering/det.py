"""Det: one kernel, one matrix at a time: the matrix is copied into a LOCAL (stack) buffer in
float64 and reduced by Gaussian elimination with partial pivoting (the largest magnitude in the
column is the pivot, a row swap flips the sign); the determinant is the signed product of the
pivots, rounded to the input's dtype. The matrix size must be static (LOCAL buffers are)."""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.buffer import BufferKind
from ..loops.expr import Var
from ..loops.stmt import Assign, If, Local, Loop, Store
from . import exprs as E
from .reduce import outer_kinds
from .registry import register
from .tensor import Tensor, kernel

f64 = DType.float64


@register(ops.Det)
def lower_det(ctx, node, inputs):
    x = inputs[0]
    n = x.shape[-1]
    if not isinstance(n, E.Const) or not E.same(n, x.shape[-2]):
        ctx.fail(node, "Det needs square matrices of a static size",
                 hint="give the model static sizes")
    batch = x.shape[:-2]
    out = ctx.buffer_for(node.outputs[0], batch, x.dtype)
    m = ctx.new_buffer("det_matrix", (n, n), f64, BufferKind.LOCAL)
    vars_ = ctx.index_vars(len(batch))
    r0, c0, r1, c1, r2, c2 = (ctx.fresh_var(h) for h in ("r", "c", "r", "c", "r", "c"))
    p = ctx.fresh_var("p")
    best = ctx.fresh_var("best")
    big, det, piv, f, tmp = (Var(ctx.fresh_name(h), f64) for h in ("big", "det", "piv", "f", "t"))
    absval = lambda e: E.unary("abs", e)  # noqa: E731
    zero, one = E.const(0.0, f64), E.const(1.0, f64)
    choose = [Local(best, p), Local(big, absval(m[p, p])),
              Loop(r1, E.add(p, 1), n, [If(E.gt(absval(m[r1, p]), big),
                                           [Assign(best, r1), Assign(big, absval(m[r1, p]))])])]
    swap = If(E.ne(best, p), [
        Loop(c1, E.ZERO, n, [Local(tmp, m[p, c1]), Store(m, (p, c1), m[best, c1]),
                             Store(m, (best, c1), tmp)]),
        Assign(det, E.unary("neg", det))])
    eliminate = If(E.ne(piv, zero), [
        Loop(r2, E.add(p, 1), n, [Local(f, m[r2, p] / piv), Loop(c2, E.add(p, 1), n, [
            Store(m, (r2, c2), m[r2, c2] - f * m[p, c2])])])])
    body = [Loop(r0, E.ZERO, n, [Loop(c0, E.ZERO, n, [
                Store(m, (r0, c0), E.cast(x.at((*vars_, r0, c0)), f64))])]),
            Local(det, one),
            Loop(p, E.ZERO, n, [*choose, swap, Local(piv, m[p, p]), Assign(det, det * piv),
                                eliminate]),
            Store(out, tuple(vars_), E.cast(det, x.dtype))]
    kinds = outer_kinds(list(batch), x.shape) if batch else []
    for v, d, kind in reversed(list(zip(vars_, batch, kinds))):
        body = [Loop(v, E.ZERO, d, body, kind)]
    ctx.emit(kernel(ctx.fresh_name("det", kernel=True), body))
    return [Tensor.of(out)]
