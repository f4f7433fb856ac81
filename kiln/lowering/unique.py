"""Unique: the distinct elements (or slices along `axis`), sorted or in order of first
occurrence, with first-occurrence indices, the inverse map and counts.

With an input known when compiling, the node is a constant (dynamic_shape.fold_if_static).
Otherwise the number of distinct values n is a computed size (dynamic_shape.py), and the op is
two kernels over the N slices (N elements without an axis; each slice has M elements):

* `unique_sort` (serial): `perm` = the slice indices stably sorted by slice (a bottom-up merge
  sort: pass p merges runs of 2^p, ceil(log2 N) passes, each O(N) comparisons); then one scan
  marks where each group of equal slices starts (`start[g]`, `group[k]`), and n, the number of
  groups, goes to n's count buffer. A group's first element in the stable order is its first
  occurrence. Unsorted output orders the groups by first occurrence: `order[g]` comes from one
  scan over the input positions that flags the first occurrences.
* `unique`: for every sorted position k, inverse[perm[k]] = its group's output position r;
  at a group's start, Y[r] = that slice, indices[r] = perm[k], counts[r] = the group's size.
  Y's stride along the axis is n, read in this kernel's prologue.

Slices compare lexicographically in row-major order of the other axes (NumPy's order); without
an axis NaN equals NaN and sorts last, and -0.0 equals 0.0 (the first occurrence is kept), as
np.unique does. O(N log N * M) comparisons, and six i64[N] temporaries. Slices of zero elements
are all equal (n is 1 when N > 0).
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


MAX_SORT_PASSES = 63          # merge passes: enough for any N below 2**63


def _sort_slices(ctx, s: "Slices", perm, tmp) -> list:
    """Statements sorting `perm` (i64[N]) to the stable order of the slices it indexes, through
    `tmp`: bottom-up merge passes, each merging neighbouring runs of `width` into tmp and copying
    back. The merge walks the output positions k of a pass; at the start of a pair of runs it
    resets the two read positions."""
    n = s.n
    k0, p, k, k2 = (ctx.fresh_var(h) for h in ("k", "pass", "k", "k"))
    width, left, right = (ctx.fresh_var(h) for h in ("width", "left", "right"))
    lo = E.mul(E.floordiv(k, E.mul(width, 2)), E.mul(width, 2))
    mid, hi = E.minimum(E.add(lo, width), n), E.minimum(E.add(lo, E.mul(width, 2)), n)
    take_left = [Store(tmp, (k,), perm[left]), Assign(left, E.add(left, 1))]
    take_right = [Store(tmp, (k,), perm[right]), Assign(right, E.add(right, 1))]
    _, right_first = s.same_and_less(ctx, perm[right], perm[left])
    merge = [If(E.eq(k, lo), [Assign(left, lo), Assign(right, mid)]),
             If(E.lt(left, mid),
                [If(E.lt(right, hi), [If(right_first, take_right, take_left)], take_left)],
                take_right)]
    one_pass = [If(E.lt(width, n), [
        Loop(k, E.ZERO, n, merge),
        Loop(k2, E.ZERO, n, [Store(perm, (k2,), tmp[k2])]),
        Assign(width, E.mul(width, 2))])]
    return [Loop(k0, E.ZERO, n, [Store(perm, (k0,), k0)]),
            Local(width, Const(1)), Local(left, Const(0)), Local(right, Const(0)),
            Loop(p, E.ZERO, Const(MAX_SORT_PASSES), one_pass)]


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

    # kernel 1: sort, find the groups of equal slices, count them, order them
    temps = {h: ctx.new_buffer(f"unique_{h}", (s.n,), DType.int64)
             for h in ("perm", "tmp", "start", "group", "first", "order")}
    perm, start, group = temps["perm"], temps["start"], temps["group"]
    first, order = temps["first"], temps["order"]
    k, i, g = ctx.fresh_var("k"), ctx.fresh_var("i"), ctx.fresh_var("g")
    groups, next_pos = ctx.fresh_var("groups"), ctx.fresh_var("next")
    same_prev, _ = s.same_and_less(ctx, perm[E.maximum(E.sub(k, 1), E.ZERO)], perm[k])
    heads = [Local(groups, Const(0)), Loop(k, E.ZERO, s.n, [
        If(E.binary("or", E.eq(k, E.ZERO), E.unary("not", same_prev)),
           [Store(start, (groups,), k), Assign(groups, E.add(groups, 1))]),
        Store(group, (k,), E.sub(groups, 1))]), Store(count, (E.ZERO,), groups)]
    if a.sorted:
        ordering = []
    else:     # the groups by first occurrence: flag each group's first index, scan in order
        ordering = [Loop(i, E.ZERO, s.n, [Store(first, (i,), Const(-1))]),
                    Loop(g, E.ZERO, s.n, [If(E.lt(g, groups), [
                        Store(first, (perm[start[g]],), g)])]),
                    Local(next_pos, Const(0)),
                    Loop(ctx.fresh_var("i"), E.ZERO, s.n, [])]
        scan = ordering[-1].var
        ordering[-1].body = [If(E.ge(first[scan], E.ZERO), [
            Store(order, (first[scan],), next_pos), Assign(next_pos, E.add(next_pos, 1))])]
    ctx.emit(kernel(ctx.fresh_name("unique_sort", kernel=True),
                    [*_sort_slices(ctx, s, perm, temps["tmp"]), *heads, *ordering]))

    # kernel 2: the outputs, per sorted position
    outs = [None] * 4
    y_shape = (n,) if axis is None else tuple(n if d == axis else e for d, e in enumerate(x.shape))
    outs[0] = ctx.buffer_for(node.outputs[0], y_shape, x.dtype)
    for j, shape in ((1, (n,)), (2, (s.n,)), (3, (n,))):
        if j < len(node.outputs) and node.outputs[j] is not None:
            outs[j] = ctx.buffer_for(node.outputs[j], shape, DType.int64)
    k, r = ctx.fresh_var("k"), ctx.fresh_var("r")
    gk = group[k]
    src = perm[k]
    at_head = []
    if outs[1] is not None:
        at_head.append(Store(outs[1], (r,), src))
    if outs[3] is not None:
        after = E.select(E.lt(E.add(gk, 1), n),
                         start[E.minimum(E.add(gk, 1), E.sub(s.n, 1))], s.n)
        at_head.append(Store(outs[3], (r,), E.sub(after, k)))
    if axis is None:
        at_head.append(Store(outs[0], (r,), x.at(s.index(src, ()))))
    else:
        rest_vars = ctx.index_vars(len(s.rest))
        y_idx = list(rest_vars)
        y_idx.insert(axis, r)
        at_head += plain_nest(zip(rest_vars, s.rest),
                              [Store(outs[0], tuple(y_idx), x.at(s.index(src, rest_vars)))])
    body = [Local(r, gk if a.sorted else order[gk])]
    if outs[2] is not None:
        body.append(Store(outs[2], (src,), r))
    body.append(If(E.eq(start[gk], k), at_head))
    ctx.emit(kernel(ctx.fresh_name("unique", kernel=True), [Loop(k, E.ZERO, s.n, body)]))
    return [None if b is None else Tensor.of(b) for b in outs[:len(node.outputs)]]
