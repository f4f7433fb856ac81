"""Unique: the distinct elements (or slices along `axis`), sorted or in order of first
occurrence, with first-occurrence indices, the inverse map and counts.

With an input known when compiling, the node is a constant (dynamic_shape.fold_if_static).
Otherwise the number of distinct values n is a computed size (dynamic_shape.py), and the op is
two kernels over the N slices (N elements without an axis; each slice has M elements):

* `unique_count`: first[i] = the first j with slice j equal to slice i (a TEMP i64[N]); n is
  the number of i with first[i] == i, stored into n's count buffer.
* `unique`: for each slice i, its output position r (sorted: how many distinct slices are
  smaller; unsorted: how many distinct slices occur first before first[i]); inverse[i] = r,
  and when i is a first occurrence, Y[r] = slice i, indices[r] = i, counts[r] = how many j
  have first[j] == i. Y's stride along the axis is n, read in this kernel's prologue.

Slices compare lexicographically in row-major order of the other axes (NumPy's order); without
an axis NaN equals NaN and sorts last, and -0.0 equals 0.0 (the first occurrence is kept), as
np.unique does. No sort: every step compares all pairs, O(N^2 * M) work, which is quick for the
sizes Unique usually sees (thousands of elements) and slow for millions; a sort-based kernel is
the way to scale it. Slices of zero elements are all equal (n is 1 when N > 0).
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Reduce
from ..loops.stmt import Assign, If, Local, Loop, Store
from ..loops.stmt import loop_nest as plain_nest
from . import exprs as E
from .dynamic_shape import computed_size, fold_if_static
from .reduce import normalize_axis
from .registry import register
from .tensor import Tensor, kernel, widen
from .views import reshape_index

TRUE = Const(True, DType.bool)


class Slices:
    """Input x seen as N slices of M elements: element(i, k) (k row-major over the other axes)."""

    def __init__(self, x: Tensor, axis: int | None):
        self.x, self.axis = x, axis
        if axis is None:
            self.n, self.rest = E.product(x.shape), ()
        else:
            self.n = x.shape[axis]
            self.rest = tuple(d for a, d in enumerate(x.shape) if a != axis)
        self.m = E.product(self.rest)

    def index(self, i, rest_idx) -> tuple:
        if self.axis is None:
            return reshape_index(self.x.shape, (self.n,), (i,))
        idx = list(rest_idx)
        idx.insert(self.axis, i)
        return tuple(idx)

    def element(self, i, k):
        rest_idx = reshape_index(self.rest, (self.m,), (k,)) if self.rest else ()
        return widen(self.x.at(self.index(i, rest_idx)))

    def same_and_less(self, ctx, i, j):
        """(slice i == slice j, slice i < slice j) as bool Exprs."""
        if self.axis is None:
            a, b = self.element(i, E.ZERO), self.element(j, E.ZERO)
            if not a.dtype.is_float:
                return E.eq(a, b), E.lt(a, b)
            nan_a, nan_b = E.unary("isnan", a), E.unary("isnan", b)
            same = E.binary("or", E.eq(a, b), E.binary("and", nan_a, nan_b))
            less = E.binary("or", E.lt(a, b), E.binary("and", nan_b, E.unary("not", nan_a)))
            return same, less
        if E.is_const(self.m, 0):
            return TRUE, Const(False, DType.bool)
        k = ctx.fresh_var("k")
        differ = Reduce("min", self.m, ((k, E.ZERO, self.m),),
                        E.select(E.ne(self.element(i, k), self.element(j, k)), k, self.m))
        at = E.clamp(differ, E.ZERO, E.sub(self.m, 1))
        less = E.binary("and", E.lt(differ, self.m),
                        E.lt(self.element(i, at), self.element(j, at)))
        return E.eq(differ, self.m), less


def _count_where(ctx, n, cond):
    j = ctx.fresh_var("j")
    return Reduce("add", Const(0), ((j, E.ZERO, n),), E.select(cond(j), Const(1), Const(0))), j


@register(ops.Unique)
def lower_unique(ctx, node, inputs):
    folded = fold_if_static(ctx, node, inputs)
    if folded is not None:
        return folded
    x = inputs[0]
    a = ctx.attrs(node)
    axis = None if a.axis is None else normalize_axis(ctx, node, a.axis, x.rank)
    s = Slices(x, axis)
    n, count = computed_size(ctx, node, "unique_n", s.n)

    # kernel 1: first occurrences and their number
    first = ctx.new_buffer("unique_first", (s.n,), DType.int64)
    i, j = ctx.fresh_var("i"), ctx.fresh_var("j")
    same_ji, _ = s.same_and_less(ctx, j, i)
    found = Reduce("min", s.n, ((j, E.ZERO, s.n),), E.select(same_ji, j, s.n))
    total = ctx.fresh_var("distinct")
    body = [Store(first, (i,), found),
            If(E.eq(first[i], i), [Assign(total, E.add(total, 1))])]
    ctx.emit(kernel(ctx.fresh_name("unique_count", kernel=True),
                    [Local(total, Const(0)), Loop(i, E.ZERO, s.n, body),
                     Store(count, (E.ZERO,), total)]))

    # kernel 2: positions and outputs
    outs = [None] * 4
    y_shape = (n,) if axis is None else tuple(n if d == axis else e for d, e in enumerate(x.shape))
    outs[0] = ctx.buffer_for(node.outputs[0], y_shape, x.dtype)
    for k, shape in ((1, (n,)), (2, (s.n,)), (3, (n,))):
        if k < len(node.outputs) and node.outputs[k] is not None:
            outs[k] = ctx.buffer_for(node.outputs[k], shape, DType.int64)
    i = ctx.fresh_var("i")
    if a.sorted:
        def smaller(j):
            _, less_ji = s.same_and_less(ctx, j, i)
            return E.binary("and", E.eq(first[j], j), less_ji)
    else:
        def smaller(j):
            return E.binary("and", E.eq(first[j], j), E.lt(j, first[i]))
    rank, _ = _count_where(ctx, s.n, smaller)
    r = ctx.fresh_var("r")
    on_first = []
    if outs[1] is not None:
        on_first.append(Store(outs[1], (r,), i))
    if outs[3] is not None:
        times, _ = _count_where(ctx, s.n, lambda j: E.eq(first[j], i))
        on_first.append(Store(outs[3], (r,), times))
    rest_vars = ctx.index_vars(len(s.rest)) if axis is not None else []
    if axis is None:
        on_first.append(Store(outs[0], (r,), x.at(s.index(i, ()))))
    else:
        y_idx = list(rest_vars)
        y_idx.insert(axis, r)
        on_first += plain_nest(zip(rest_vars, s.rest),
                               [Store(outs[0], tuple(y_idx), x.at(s.index(i, rest_vars)))])
    body = [Local(r, rank)]
    if outs[2] is not None:
        body.append(Store(outs[2], (i,), r))
    body.append(If(E.eq(first[i], i), on_first))
    ctx.emit(kernel(ctx.fresh_name("unique", kernel=True), [Loop(i, E.ZERO, s.n, body)]))
    return [None if b is None else Tensor.of(b) for b in outs[:len(node.outputs)]]
