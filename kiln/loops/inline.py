"""Inline a producer kernel into its consumer: compute each element where it is read.

The producer must be a perfect loop nest whose only statement is one Store
`p[v1, ..., vr] = f(v1, ..., vr)`, indexed by its loop variables (each once, in any order).
Every Load `p[e1, ..., er]` in the consumer becomes `f(e1, ..., er)`; the consumer then no
longer reads `p`, and the producer kernel (and `p`, unless something else needs it) can go.

This trades memory traffic for recomputation: an element read k times is computed k times.
"""

from __future__ import annotations

from ..errors import ScheduleError
from .dependence import buffers_read, buffers_written
from .expr import Load, Reduce, substitute
from .nest import all_exprs, copy_kernel, fresh_var, map_body, map_expr, names_in, simplify
from .stmt import Kernel, Loop, Store


def inline(producer: Kernel, consumer: Kernel) -> Kernel:
    """A copy of `consumer` that computes the producer's elements instead of loading them."""
    store, loop_vars = _single_store(producer)
    target = store.buffer
    read, written = buffers_read([store]), buffers_written(consumer.body)
    if target.root in read:
        raise ScheduleError(f"cannot inline kernel {producer.name}: it reads the buffer "
                            f"%{target.name} it writes")
    if target.root in written:
        raise ScheduleError(f"cannot inline kernel {producer.name} into {consumer.name}: "
                            f"{consumer.name} writes %{target.name} too")
    if clash := read & written:
        raise ScheduleError(
            f"cannot inline kernel {producer.name} into {consumer.name}: {consumer.name} "
            f"writes %{next(iter(clash)).name}, which the producer reads; the inlined "
            f"expression would see the new values")
    views = {e.buffer.name for e in all_exprs(consumer.body)
             if isinstance(e, Load) and e.buffer.root is target.root and e.buffer is not target}
    if views:
        raise ScheduleError(f"cannot inline kernel {producer.name} into {consumer.name}: "
                            f"{consumer.name} reads %{target.name} through the view(s) "
                            f"{', '.join(sorted(views))}",
                            hint="index the producer's buffer directly")
    new = copy_kernel(consumer)
    value = _rename_axes(store.value, names_in(new))
    position = {v: p for p, v in enumerate(store.index)}

    def replace(e):
        if isinstance(e, Load) and e.buffer is target:
            return simplify(substitute(value, {v: e.index[position[v]] for v in loop_vars}))
        return e

    new.body = map_body(new.body, lambda e: map_expr(e, replace))
    still_used = {x.buffer for x in all_exprs(new.body) if isinstance(x, Load)}
    still_used |= {s.buffer for s in new.stores()}
    inputs = [b for b in producer.buffers if b is not target and b not in new.buffers]
    buffers = []
    for b in new.buffers:       # the producer's buffers take the place of its output
        buffers += ([b] if b is not target or target in still_used else []) + \
            (inputs if b is target else [])
    new.buffers = buffers + [b for b in inputs if target not in consumer.buffers]
    return new


def _single_store(producer: Kernel) -> tuple[Store, list]:
    body, loop_vars = producer.body, []
    while len(body) == 1 and isinstance(body[0], Loop):
        loop_vars.append(body[0].var)
        body = body[0].body
    if len(body) != 1 or not isinstance(body[0], Store):
        raise ScheduleError(f"cannot inline kernel {producer.name}: it must be a perfect loop "
                            f"nest around one Store")
    store = body[0]
    if set(store.index) != set(loop_vars) or len(store.index) != len(loop_vars):
        raise ScheduleError(
            f"cannot inline kernel {producer.name}: its store into %{store.buffer.name} must be "
            f"indexed by its loop variables {', '.join(v.name for v in loop_vars) or '()'}, "
            f"each once")
    return store, loop_vars


def _rename_axes(value, taken: set):
    """Give the producer's Reduce axes names the consumer does not use."""
    taken = set(taken)

    def rename(e):
        if not isinstance(e, Reduce):
            return e
        mapping = {v: fresh_var(v.name, taken, v.dtype) for v, _, _ in e.axes}
        if all(k == w for k, w in mapping.items()):
            return e
        axes = tuple((mapping[v], substitute(s, mapping), substitute(t, mapping))
                     for v, s, t in e.axes)
        return Reduce(e.combiner, e.init, axes, substitute(e.body, mapping))

    return map_expr(value, rename)
