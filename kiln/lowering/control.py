"""Control flow: If, Loop and Scan, each lowered to one kernel holding its bodies.

A body (an If branch, a Loop or Scan body) is lowered node by node like a graph, inside
`ctx.region()`: the kernels its nodes emit are collected instead of going into the program, and
their statements are put under the op's own Loop IR statements in one kernel. A body reads the
values of enclosing graphs directly (their Tensors are already in the context).

* If: `If(cond) [then statements; then outputs -> out] else [else ...]`. Both branches write the
  node's output buffers (a temporary a branch computes an output in becomes a view of the
  output buffer, so no copy is made), so their output shapes must agree; when they differ the condition
  decides a shape (LoweringError naming input 'cond': specialization fixes it). A condition
  known when compiling lowers only the branch it takes.
* Loop: `for it in 0..M: if cond: [body; write outputs]`. The loop-carried values live in the
  node's output buffers (the initial values are copied in first), the condition and the
  iteration number in one-element buffers the body reads. At the end of an iteration the scan
  outputs are stored at slice `it`, then each new carried value (and condition) is written over
  the old one; a new value that reads the old state (a transpose of it, say) is written to a
  temporary first (double buffering). Scan outputs need M when compiling (their length, or
  its bound): M must then be static (else LoweringError naming input 'M', which specialization
  fixes). When the condition may end the loop early (computed by the body, or fed), the scans'
  length is a size computed at run time (`computed_size`, docs/dynamic_shapes.md): the kernel
  counts the trips that ran into its count buffer, and M bounds it.
  Loop IR has no early exit: a loop that may stop early (its condition computed by the body,
  or fed) runs its trips as a nest of loops of at most LEVEL trips each, every level guarded by
  the condition (`guarded_trips`), so after the condition turns false each level ends within
  LEVEL tests. That makes a while loop (no M, or M = 2^63 - 1) cost microseconds past its end.
  When the body needs its
  iteration number as a compile-time value (a Slice at it) and M is known and at most
  MAX_UNROLL, the loop is unrolled instead, each copy lowered with its own shapes.
* Scan: `for it in 0..T: [body on slices at it (or T-1-it, reversed); write outputs]`, T the
  scanned inputs' length along their axes (symbolic sizes allowed); states as Loop's.
"""

from __future__ import annotations

import numpy as np

from ..errors import LoweringError
from ..ir import ops
from ..ir.dtypes import DType
from ..ir.graph import Graph, Node
from ..ir.ops.control import scan_layout
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Load
from ..loops.stmt import If, Loop, Store
from . import exprs as E
from .dynamic_shape import computed_size
from .graph import lower_node
from .registry import register
from .tensor import (Tensor, buffers_read, buffers_written, is_contiguous, kernel, loop_kinds,
                     store_all)

ZERO = Const(0)
MAX_UNROLL = 64       # a Loop whose body needs its iteration number statically is unrolled
MAX_SCAN_BOUND = 1 << 24      # largest M bounding scan outputs whose length is computed
LEVEL = 1 << 8                # trips per level of the nest running a loop that may stop early
INT64_MAX = 2 ** 63 - 1       # the bound of a while loop (no M)


# --- bodies ------------------------------------------------------------------------------------

def lower_body(ctx, graph: Graph, bindings) -> list:
    """Lower a body graph's nodes (inside an open region) with its inputs bound to the given
    Tensors; returns the Tensors of its outputs."""
    for v, t in bindings:
        ctx.set_tensor(v, t)
    for c in graph.constants:
        ctx.bind_constant(c)
    for node in graph.nodes:
        lower_node(ctx, node)
    return [ctx.tensor(v) for v in graph.outputs]


def statements(kernels: list) -> list:
    return [s for k in kernels for s in k.body]


def scalar_at(t: Tensor):
    """The one element of a tensor that holds one (cond, trip count)."""
    return t.at(tuple(ZERO for _ in t.shape))


def same_shape(a, b) -> bool:
    return len(a) == len(b) and all(E.same(x, y) for x, y in zip(a, b))


def shape_text(shape) -> str:
    return "[" + ", ".join(str(E.fold(d).value) if isinstance(E.fold(d), Const) else str(d)
                           for d in shape) + "]"


def output_buffer(ctx, node: Node, k: int, shape, dtype: DType) -> Buffer:
    """The buffer output k is written to (a TEMP nobody reads when the output is absent)."""
    v = node.outputs[k] if k < len(node.outputs) else None
    if v is None:
        return ctx.new_buffer(f"{node.op.name.lower()}_unused", shape, dtype)
    return ctx.buffer_for(v, shape, dtype)


def store_slice(ctx, t: Tensor, out: Buffer, axis: int, pos) -> list:
    """Statements writing t as the slice of `out` at position `pos` along `axis`."""
    vars_ = ctx.index_vars(t.rank)
    strides = tuple(s for k, s in enumerate(out.strides) if k != axis)
    kinds = loop_kinds(t.shape, Buffer("slice", out.dtype, t.shape, strides=strides))
    idx = tuple(vars_)
    stmts = [Store(out, (*idx[:axis], pos, *idx[axis:]), t.at(idx))]
    for v, stop, (kind, width) in reversed(list(zip(vars_, t.shape, kinds))):
        stmts = [Loop(v, E.ZERO, stop, stmts, kind, width)]
    return stmts


def update_state(ctx, news: list, targets: list) -> list:
    """Statements writing each new value over its state buffer. A new value that reads any of
    the state buffers is written to a temporary first, so every new value is computed from the
    old state."""
    state_roots = {b.root for b in targets}
    staged, final = [], []
    for t, target in zip(news, targets):
        if t.buffer is not None and t.buffer is target:
            continue                                    # passed through unchanged
        stmts = store_all(ctx, t, target)
        if {b.root for b in buffers_read(stmts)} & state_roots:
            tmp = ctx.new_buffer(f"{target.name}_next", t.shape, t.dtype)
            staged += store_all(ctx, t, tmp)
            stmts = store_all(ctx, Tensor.of(tmp), target)
        final += stmts
    return staged + final


def check_carried(ctx, node: Node, what: str, k: int, init: Tensor, new: Tensor) -> None:
    if new.dtype is not init.dtype:
        ctx.fail(node, f"{what} {k} is {init.dtype.short} initially but the body returns "
                       f"{new.dtype.short}")
    if not same_shape(init.shape, new.shape):
        ctx.fail(node, f"{what} {k} changes shape in the body ({shape_text(init.shape)} -> "
                       f"{shape_text(new.shape)}); the native back end keeps it in one buffer",
                 hint="keep loop-carried values the same shape, or run the model with the "
                      "interpreter")


# --- If ----------------------------------------------------------------------------------------

@register(ops.If)
def lower_if(ctx, node: Node, inputs):
    a = ctx.attrs(node)
    cond = E.fold(scalar_at(inputs[0]))
    if isinstance(cond, Const):                          # known when compiling: one branch
        return lower_body(ctx, a.then_branch if cond.value else a.else_branch, [])
    arms = []
    with ctx.region() as kernels:
        for branch in (a.then_branch, a.else_branch):
            start = len(kernels)
            outs = lower_body(ctx, branch, [])
            arms.append((outs, kernels[start:]))
        (then_outs, _), (else_outs, _) = arms
        buffers = []
        for k, (t, e) in enumerate(zip(then_outs, else_outs)):
            if not same_shape(t.shape, e.shape):
                ctx.fail(node, f"output {k} has shape {shape_text(t.shape)} from then_branch "
                               f"but {shape_text(e.shape)} from else_branch, so input 'cond' "
                               "decides a shape",
                         hint="make both branches return the same shapes, or fix the "
                              "condition (a constant) so one branch is taken")
            dtype = ctx.out_dtype(node, k) if node.outputs[k] is not None else t.dtype
            buffers.append(output_buffer(ctx, node, k, t.shape, dtype))
        bodies = []
        for outs, arm_kernels in arms:
            stmts = statements(arm_kernels)
            writes = [s for t, b in zip(outs, buffers) if not _adopt(t, b, stmts)
                      for s in store_all(ctx, t, b)]
            bodies.append(stmts + writes)
    ctx.emit(kernel(ctx.fresh_name("if", kernel=True), [If(cond, bodies[0], bodies[1])]))
    return [Tensor.of(b) for b in buffers]


def _adopt(t: Tensor, out: Buffer, stmts: list) -> bool:
    """Make the temporary a branch computed `t` in (all of it, row-major) a view of the output
    buffer, so the branch's own kernel writes the output and no copy is needed. Only a
    temporary the branch writes qualifies: nothing outside the branch can read it."""
    buf = t.buffer
    if buf is None or buf.base is not None or buf.kind is not BufferKind.TEMP or \
            buf.dtype is not out.dtype or not same_shape(buf.shape, out.shape) or \
            out.base is not None or not is_contiguous(buf) or buf not in buffers_written(stmts):
        return False
    buf.base, buf.kind = out, out.kind          # same row-major memory
    return True


# --- Loop --------------------------------------------------------------------------------------

@register(ops.Loop)
def lower_loop(ctx, node: Node, inputs):
    body = ctx.attrs(node).body
    inputs = list(inputs) + [None] * (2 - len(inputs))
    m_t, cond_t, inits = inputs[0], inputs[1], inputs[2:]
    n = len(inits)
    k = len(body.outputs) - 1 - n
    if m_t is None and cond_t is None:
        ctx.fail(node, "the Loop has neither a trip count M nor a condition: it never ends",
                 hint="give the node a trip count M or a condition input")
    if m_t is None and k:
        ctx.fail(node, "a while loop (no trip count M) with scan outputs: nothing bounds their "
                       "length", hint="give the Loop a trip count M (an upper bound)")
    m = Const(INT64_MAX) if m_t is None else E.fold(E.cast(scalar_at(m_t), DType.int64))
    cond0 = Const(True, DType.bool) if cond_t is None else E.fold(scalar_at(cond_t))
    if isinstance(cond0, Const) and not cond0.value:
        m = ZERO                                        # never runs
    if k and not isinstance(m, Const):
        ctx.static_scalar(node, 0)     # raises: the scan outputs' length is M
    trips = Const(max(m.value, 0)) if isinstance(m, Const) else None
    counted = None
    if k and cond_t is not None and not (isinstance(cond0, Const) and
                                         _condition_passes_through(body)):
        # the scans' length is the number of trips run: a size computed at run time
        if trips.value > MAX_SCAN_BOUND:
            ctx.fail(node, f"the scan outputs' length is bounded only by M = {trips.value}, too "
                           "large to allocate", hint="give the Loop a real upper bound as M")
        counted = computed_size(ctx, node, "trips", trips)
    args = (ctx, node, inits, m, cond0, cond_t is not None, trips, counted)
    try:
        return _lower_loop(*args, unroll=False)
    except LoweringError:
        if trips is None or trips.value > MAX_UNROLL:
            raise
    # the body needs the iteration number when compiling (a Slice at it, say): unroll
    forget_values(ctx, body)
    for v in node.outputs:
        if v is not None:
            ctx.forget(v)
    return _lower_loop(*args, unroll=True)


def _condition_passes_through(body: Graph) -> bool:
    """The body returns its condition input (directly or through Identity) or a constant
    true: the loop then runs all its trips or none."""
    out = body.outputs[0]
    if out.producer is not None and out.producer.op is ops.Identity:
        out = out.producer.inputs[0]
    if out is body.inputs[1]:
        return True
    data = getattr(out, "data", None)
    return data is not None and np.size(data) == 1 and bool(np.asarray(data).reshape(-1)[0])


def _lower_loop(ctx, node: Node, inits: list, m, cond0, has_cond: bool, trips, counted,
                unroll: bool):
    """The Loop's kernel: a Loop IR loop over the iterations, or with `unroll` the body lowered
    once per iteration with the iteration number a constant. With `counted` (a computed size:
    its Var and count buffer) the scan outputs are as long as the trips that ran."""
    body = ctx.attrs(node).body
    n = len(inits)
    k = len(body.outputs) - 1 - n
    states = [output_buffer(ctx, node, i, t.shape, t.dtype) for i, t in enumerate(inits)]
    cond_buf = ctx.new_buffer("cond", (), DType.bool)
    iter_buf = ctx.new_buffer("iter", (), DType.int64)
    it = ctx.fresh_var("it")
    scan_bufs: list = []
    steps = []
    with ctx.region() as kernels:
        pre = [s for t, b in zip(inits, states) for s in store_all(ctx, t, b)]
        pre.append(Store(cond_buf, (), cond0))
        if counted is not None:
            pre.append(Store(counted[1], (ZERO,), ZERO))
        for trip in range(trips.value if unroll else 1):
            if unroll and trip:
                forget_values(ctx, body)
            first = len(kernels)
            number = Tensor.fill((), Const(trip)) if unroll else Tensor.of(iter_buf)
            outs = lower_body(ctx, body, [(body.inputs[0], number),
                                          (body.inputs[1], Tensor.of(cond_buf)),
                                          *zip(body.inputs[2:], map(Tensor.of, states))])
            cond_out, news, scans = outs[0], outs[1:1 + n], outs[1 + n:]
            for i, (init, new) in enumerate(zip(inits, news)):
                check_carried(ctx, node, "loop-carried value", i, init, new)
            keeps_going = not has_cond or _stays_true(scalar_at(cond_out), cond_buf)
            if k and not keeps_going and counted is None:
                ctx.fail(node, "the body computes the condition, so the scan outputs' length is "
                               "only known when the loop runs",
                         hint="run the model with the interpreter, or make the body return its "
                              "condition input unchanged")
            if not scan_bufs:
                length = trips if counted is None else counted[0]
                scan_bufs = [output_buffer(ctx, node, n + j, (length, *t.shape), t.dtype)
                             for j, t in enumerate(scans)]
            post = []
            for j, (t, b) in enumerate(zip(scans, scan_bufs)):
                if not same_shape(t.shape, b.shape[1:]):
                    ctx.fail(node, f"scan output {j} changes shape between iterations "
                                   f"({shape_text(b.shape[1:])} and {shape_text(t.shape)})")
                post += store_slice(ctx, t, b, 0, Const(trip) if unroll else it)
            targets, values = list(states), list(news)
            if has_cond and not keeps_going:
                targets.append(cond_buf)
                values.append(cond_out)
            post += update_state(ctx, values, targets)
            if counted is not None:
                ran = E.add(Const(trip) if unroll else it, 1)
                post.append(Store(counted[1], (ZERO,), ran))
            step = ([] if unroll else [Store(iter_buf, (), it)]) + \
                statements(kernels[first:]) + post
            guarded = has_cond and not (keeps_going and isinstance(cond0, Const))
            if guarded:
                step = [If(Load(cond_buf, ()), step)]
            steps += step
    if unroll:
        body_stmts = pre + steps
    elif guarded:
        body_stmts = pre + [guarded_trips(ctx, it, trips if trips is not None else m, steps,
                                          Load(cond_buf, ()))]
    else:
        body_stmts = pre + [Loop(it, ZERO, trips if trips is not None else m, steps)]
    ctx.emit(kernel(ctx.fresh_name("loop", kernel=True), body_stmts))
    return [Tensor.of(b) for b in states + scan_bufs]


def guarded_trips(ctx, it, m, step: list, cond):
    """`for it in 0..m: step` (step tests `cond` itself) for a loop that may stop early: Loop IR
    has no early exit, so the trips are a nest of loops of at most LEVEL trips each whose every
    level runs its body only while `cond` holds. Once it is false, each level ends with a test
    per remaining trip of its own (at most LEVEL), not one per remaining trip up to m (which
    may be 2^63 - 1, a while loop)."""
    bound = m.value if isinstance(m, Const) else INT64_MAX
    levels = 1
    while LEVEL ** levels < bound:
        levels += 1
    if levels == 1:
        return Loop(it, ZERO, m, step)
    outer = [ctx.fresh_var("chunk") for _ in range(levels - 1)]
    spans = [LEVEL ** (levels - 1 - k) for k in range(levels - 1)]

    def trips_from(base, span):
        """min(LEVEL, ceil((m - base) / span)), without overflow near 2^63."""
        left = E.sub(m, base)
        return E.minimum(Const(LEVEL), E.add(E.floordiv(E.sub(left, 1), span), 1))

    bases = []
    base = ZERO
    for v, span in zip(outer, spans):
        base = E.add(base, E.mul(v, span))
        bases.append(base)
    loop = Loop(it, base, E.add(base, E.minimum(Const(LEVEL), E.sub(m, base))), step)
    for k in range(levels - 2, -1, -1):
        previous = bases[k - 1] if k else ZERO
        stop = E.add(E.floordiv(E.sub(m, 1), spans[0]), 1) if k == 0 else \
            trips_from(previous, spans[k])
        loop = Loop(outer[k], ZERO, stop, [If(cond, [loop])])
    return loop


def forget_values(ctx, graph: Graph) -> None:
    """Drop what lowering recorded for the values a body computes (nested bodies included),
    so lowering it again gives them new Tensors and buffers."""
    for node in graph.nodes:
        for v in node.outputs:
            if v is not None:
                ctx.forget(v)
        for a in node.attrs.values():
            if isinstance(a, Graph):
                forget_values(ctx, a)


def _stays_true(cond, cond_buf: Buffer) -> bool:
    """The body's condition output is its condition input unchanged, or a constant true."""
    cond = E.fold(cond)
    if isinstance(cond, Const):
        return bool(cond.value)
    return isinstance(cond, Load) and cond.buffer is cond_buf


# --- Scan --------------------------------------------------------------------------------------

@register(ops.Scan)
def lower_scan(ctx, node: Node, inputs):
    a = ctx.attrs(node)
    body = a.body
    n, k, in_axes, in_dirs, out_axes, out_dirs = scan_layout(a, len(inputs))
    inits, scanned = inputs[:n], inputs[n:]
    axes = [ax % x.rank if x.rank else 0 for ax, x in zip(in_axes, scanned)]
    length = scanned[0].shape[axes[0]]
    for i, (x, ax) in enumerate(zip(scanned, axes)):
        if not E.same(x.shape[ax], length):
            ctx.fail(node, f"scan input {i} has length {shape_text([x.shape[ax]])[1:-1]} and "
                           f"scan input 0 {shape_text([length])[1:-1]}: they must be equal, and "
                           "the back end cannot tell that they are",
                     hint="give the scanned axes the same size or symbolic name")
    it = ctx.fresh_var("it")
    back = E.sub(E.sub(length, 1), it)

    def sliced(x: Tensor, axis: int, reverse: bool) -> Tensor:
        pos = back if reverse else it
        shape = x.shape[:axis] + x.shape[axis + 1:]
        return Tensor(shape, x.dtype, lambda idx: x.at((*idx[:axis], pos, *idx[axis:])))

    slices = [sliced(x, ax, bool(d)) for x, ax, d in zip(scanned, axes, in_dirs)]
    states = [output_buffer(ctx, node, i, t.shape, t.dtype) for i, t in enumerate(inits)]
    with ctx.region() as kernels:
        pre = [s for t, b in zip(inits, states) for s in store_all(ctx, t, b)]
        outs = lower_body(ctx, body, [*zip(body.inputs[:n], map(Tensor.of, states)),
                                      *zip(body.inputs[n:], slices)])
        news, scans = outs[:n], outs[n:]
        for i, (init, new) in enumerate(zip(inits, news)):
            check_carried(ctx, node, "state", i, init, new)
        post, scan_bufs = [], []
        for j, (t, ax, d) in enumerate(zip(scans, out_axes, out_dirs)):
            ax = ax % (t.rank + 1)
            buf = output_buffer(ctx, node, n + j, (*t.shape[:ax], length, *t.shape[ax:]),
                                t.dtype)
            scan_bufs.append(buf)
            post += store_slice(ctx, t, buf, ax, back if d else it)
        post += update_state(ctx, news, states)
        step = statements(kernels) + post
    ctx.emit(kernel(ctx.fresh_name("scan", kernel=True), pre + [Loop(it, ZERO, length, step)]))
    return [Tensor.of(b) for b in states + scan_bufs]
