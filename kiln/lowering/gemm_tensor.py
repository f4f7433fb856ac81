"""A matrix product as a lazy Tensor that knows how to be written by the fast GEMM.

Its `at` is the plain contraction (a Reduce over k, correct wherever it is composed), tagged
with the product's `GemmInfo` so that the tensor a fused group finally writes can be searched
for the product: when every use of the Reduce in the group's element expression reads it at the
element's own (batch, row, column), the product runs as `gemm_statements` and the rest of the
expression (bias, activation, residual, scale) is its epilogue, applied to the accumulator
before the store. Anything else is written the plain way (still correct).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.dtypes import DType
from ..loops.expr import Binary, Expr, Reduce, Var, children, substitute
from ..loops.stmt import If, Store
from . import exprs as E
from .gemm import GemmSpec, expr_size, gemm_statements
from .tensor import Tensor, store_all

_F32 = DType.float32
# An epilogue of more expression nodes than this is run once per row of a micro-tile from an
# L1 tile, not copied for each of its accumulators (code size and compile time).
INLINE_EPILOGUE_NODES = 12


@dataclass(eq=False)
class GemmInfo:
    spec: GemmSpec
    k: Var                                         # the contraction's axis in every Reduce
    made: dict = field(default_factory=dict)       # Reduce -> (bidx, i, j) it was made for

    def reduce_at(self, bidx, i, j) -> Reduce:
        s = self.spec
        own = s.b_batch_index(bidx) if s.b_batch else ()
        r = Reduce("add", E.const(0, _F32), ((self.k, E.ZERO, s.k),),
                   s.a_elem(bidx, i, self.k) * s.b_elem(own, self.k, j))
        self.made[r] = (tuple(bidx), i, j)
        return r


def gemm_tensor(ctx, spec: GemmSpec) -> Tensor:
    """The product of `spec` as a Tensor: `at` the Reduce, `write` the fast kernel."""
    info = GemmInfo(spec, ctx.fresh_var("k"))
    nb = len(spec.batch)

    def at(idx):
        return info.reduce_at(tuple(idx[:nb]), idx[nb], idx[nb + 1])
    return written_by_gemm(Tensor((*spec.batch, spec.m, spec.n), _F32, at), info)


def written_by_gemm(t: Tensor, info: GemmInfo) -> Tensor:
    """t (an expression of the product of `info`) tagged with it, and written by the GEMM."""
    t.at.gemm = info
    t.write = lambda ctx, buffer: write_with_epilogue(ctx, t, buffer, info)
    return t


def gemm_info(t: Tensor) -> GemmInfo | None:
    return getattr(t.at, "gemm", None)


def _reduces_of(e: Expr, info: GemmInfo, out: list, seen: set) -> None:
    if id(e) in seen:
        return
    seen.add(id(e))
    if isinstance(e, Reduce) and e.axes and e.axes[0][0] == info.k:
        out.append(e)
        return
    for c in children(e):
        _reduces_of(c, info, out, seen)


def epilogue_of(ctx, t: Tensor, info: GemmInfo):
    """(index Vars, acc Var, the element expression of t with the product's value at the
    element replaced by acc, checks), or None when t reads the product elsewhere than at its
    own element or not at all.

    Where t's size and the product's are spelled differently (a symbolic size and a broadcast
    of it with another spelling of the same size), t reads the product clamped, min(i, m - 1),
    which is the element itself when the sizes are equal: `checks` lists the (t's size,
    product's size) pairs that must be equal at run time for the epilogue to hold."""
    nb = len(info.spec.batch)
    if t.rank != nb + 2:
        return None
    product = (*info.spec.batch, info.spec.m, info.spec.n)
    checks = [(a, b) for a, b in zip(t.shape, product) if not E.same(a, b) and not E.is_const(b, 1)]
    idx = tuple(ctx.fresh_var("e") for _ in range(t.rank))
    expr = t.at(idx)
    found: list = []
    _reduces_of(expr, info, found, set())
    if not found:
        return None

    def reads_element(e, v, size) -> bool:
        return e == v or E.is_const(size, 1) or \
            (isinstance(e, Binary) and e.op == "min" and e.a == v)
    for r in found:
        bidx, i, j = info.made.get(r, (None, None, None))
        if i is None or not all(reads_element(e, v, d) for e, v, d in
                                zip((*bidx, i, j), idx, product)):
            return None
    acc = Var(ctx.fresh_name("acc"), _F32)
    return idx, acc, substitute(expr, {r: acc for r in found}), checks


def write_with_epilogue(ctx, t: Tensor, buffer, info: GemmInfo) -> list:
    """Statements writing t (the product, or an expression of it) into buffer: the fast GEMM
    with t's epilogue when `epilogue_of` finds one (guarded by its size checks, the plain nest
    otherwise), else the plain nest."""
    found = epilogue_of(ctx, t, info)
    plain = lambda: store_all(ctx, Tensor(t.shape, t.dtype, t.at), buffer)  # noqa: E731
    if found is None:
        return plain()
    idx, acc, expr, checks = found

    def store(bidx, i, j, value):
        where = (*bidx, i, j)
        mapping = {v: w for v, w in zip(idx, where)}
        mapping[acc] = value
        return [Store(buffer, where, substitute(expr, mapping))]
    costly = expr_size(expr, INLINE_EPILOGUE_NODES + 1) > INLINE_EPILOGUE_NODES
    fast = gemm_statements(ctx, info.spec, store, via_tile=costly)
    if not checks:
        return fast
    cond = None
    for a, b in checks:
        c = E.eq(a, b)
        cond = c if cond is None else E.binary("and", cond, c)
    return [If(cond, fast, plain())]
