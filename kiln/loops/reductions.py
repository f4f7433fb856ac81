"""Make Reduce expressions explicit: a Local accumulator, loops over the axes, an Assign.

    out[i] = sum(k in 0..n: x[i, k]; init 0.0)
becomes
    local acc: f32 = 0.0
    for k in 0..n {
      acc = acc + x[i, k]
    }
    out[i] = acc

The accumulator folds the body in the same order the Reduce does (axes nested in order, the
first outermost), so results are bit for bit the same; the reduction loops are then ordinary
loops that split, unroll and reorder can work on. A Reduce inside a Reduce's body becomes an
accumulator inside the outer one's loops. Axis names are kept unless the kernel uses them
already. The accumulator's statements go just before the statement holding the Reduce.
"""

from __future__ import annotations

from .expr import Binary, Expr, Reduce, substitute
from .nest import fresh_var, names_in, rebuild
from .stmt import Assign, If, Kernel, Local, Loop, Store


def lower_reductions(kernel: Kernel) -> Kernel:
    """A copy of `kernel` with no Reduce expressions left."""
    taken = names_in(kernel, axes=False)
    return Kernel(kernel.name, _body(kernel.body, taken), list(kernel.buffers))


def _body(body: list, taken: set) -> list:
    out = []
    for s in body:
        if isinstance(s, Loop):
            pre_start, start = _expr(s.start, taken)
            pre_stop, stop = _expr(s.stop, taken)
            out += pre_start + pre_stop
            out.append(Loop(s.var, start, stop, _body(s.body, taken), s.kind, s.width))
        elif isinstance(s, Store):
            pre, (*index, value) = _exprs((*s.index, s.value), taken)
            out += pre
            out.append(Store(s.buffer, tuple(index), value))
        elif isinstance(s, (Local, Assign)):
            pre, value = _expr(s.init if isinstance(s, Local) else s.value, taken)
            out += pre
            out.append(type(s)(s.var, value))
        elif isinstance(s, If):
            pre, cond = _expr(s.cond, taken)
            out += pre
            out.append(If(cond, _body(s.then, taken), _body(s.orelse, taken)))
        else:
            raise TypeError(f"not a Loop IR statement: {s!r}")
    return out


def _exprs(exprs, taken: set) -> tuple[list, list]:
    pre, out = [], []
    for e in exprs:
        p, x = _expr(e, taken)
        pre += p
        out.append(x)
    return pre, out


def _expr(e: Expr, taken: set) -> tuple[list, Expr]:
    """Statements computing `e`'s reductions, and `e` with each Reduce replaced by its
    accumulator."""
    pre: list = []

    def lower(x: Expr) -> Expr:
        if isinstance(x, Reduce):
            stmts, acc = _reduce(x, taken)
            pre.extend(stmts)
            return acc
        return rebuild(x, lower)

    return pre, lower(e)


def _reduce(r: Reduce, taken: set) -> tuple[list, Expr]:
    init_pre, init = _expr(r.init, taken)
    mapping, axes = {}, []
    for v, start, stop in r.axes:
        new = fresh_var(v.name, taken, v.dtype)
        if new != v:
            mapping[v] = new
        axes.append((new, substitute(start, mapping), substitute(stop, mapping)))
    body_pre, body = _expr(substitute(r.body, mapping), taken)
    acc = fresh_var("acc", taken, r.dtype)
    inner: list = body_pre + [Assign(acc, Binary(r.combiner, acc, body))]
    for v, start, stop in reversed(axes):
        inner = [Loop(v, start, stop, inner)]
    return init_pre + [Local(acc, init)] + inner, acc
