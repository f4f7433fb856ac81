"""View ops: Identity, Dropout (inference), Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand,
Slice and Split. Each output element is one input element at a re-mapped index, so they are all
registered lazy: `lower_graph` never copies them, their consumers read through them.

When the input is in memory, the output is also a Buffer *view* (shape, strides, offset over the
same memory), so consumers index it with plain strided arithmetic; a Reshape of a non-contiguous
input (a transposed view, say) falls back to index re-mapping through the flat position.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.buffer import row_major_strides
from ..loops.expr import Const
from . import exprs as E
from .context import HUGE
from .registry import register
from .tensor import Tensor, broadcast_index, broadcast_shape, is_contiguous


def view(ctx, t: Tensor, name: str, shape, to_source, layout=None) -> Tensor:
    """The tensor of `shape` whose element at idx is t's at to_source(idx). When t is in memory
    and `layout(buffer)` gives the (strides, offset) of that mapping, it is a Buffer view."""
    shape = tuple(shape)
    definition = t.remap(shape, to_source)
    if t.buffer is None or layout is None:
        return definition
    strides, offset = layout(t.buffer)
    buf = t.buffer.view(ctx.fresh_name(name), shape, strides, offset)
    return Tensor.holding(buf, definition)


def normalized_axes(ctx, node, values, rank: int) -> list[int]:
    out = []
    for a in values:
        if not -rank <= a < rank:
            ctx.fail(node, f"axis {a} is out of range for rank {rank}")
        out.append(a % rank)
    return out


# --- Identity, Dropout ---------------------------------------------------------------------------

@register(ops.Identity, lazy=True)
def lower_identity(ctx, node, inputs):
    return [inputs[0]]


@register(ops.Dropout, lazy=True)
def lower_dropout(ctx, node, inputs):
    x = inputs[0]
    if len(inputs) > 2 and inputs[2] is not None and ctx.static_scalar(node, 2).value:
        ratio = ctx.static_scalar(node, 1).value if inputs[1] is not None else 0.5
        if ratio != 0:
            ctx.fail(node, "Dropout in training mode draws random numbers",
                     hint="export the model in inference mode (training_mode false)")
    mask = Tensor.fill(x.shape, E.const(True, DType.bool))
    return [x, mask][:len(node.outputs)]


# --- Reshape, Flatten ----------------------------------------------------------------------------

def reshape(ctx, t: Tensor, name: str, shape) -> Tensor:
    """t with a new shape of the same element count (row-major order)."""
    shape = tuple(shape)
    if t.buffer is not None and is_contiguous(t.buffer):
        return view(ctx, t, name, shape, lambda idx: reshape_index(t.shape, shape, idx),
                    lambda b: (row_major_strides(shape), b.offset))
    return view(ctx, t, name, shape, lambda idx: reshape_index(t.shape, shape, idx))


def reshape_index(src_shape, out_shape, idx) -> tuple:
    """The source index of output element idx (row-major order). Runs of dims whose products
    match are re-mapped on their own, so (b, s, h*d) -> (b, s, h, d) touches only the last axis."""
    groups = _reshape_groups(tuple(src_shape), tuple(out_shape))
    if groups is None:
        groups = [((0, len(src_shape)), (0, len(out_shape)))]
    out = []
    for (s0, s1), (o0, o1) in groups:
        if s1 - s0 == 1 and o1 - o0 == 1:
            out.append(idx[o0])
            continue
        flat = E.ZERO
        for i, stride in zip(idx[o0:o1], row_major_strides(out_shape[o0:o1])):
            flat = E.add(flat, E.mul(i, stride))
        for k, stride in enumerate(row_major_strides(src_shape[s0:s1])):
            v = E.floordiv(flat, stride)
            out.append(E.mod(v, src_shape[s0 + k]) if k else v)
    return tuple(out)


def _divides(a, b) -> bool:
    """Is the product a a factor of the product b?"""
    (ca, fa), (cb, fb) = E.factors(a), E.factors(b)
    rest = list(fb)
    for f in fa:
        if f not in rest:
            return False
        rest.remove(f)
    return ca != 0 and cb % ca == 0


def _reshape_groups(src, out):
    """[((src start, stop), (out start, stop))] of runs with equal products, or None."""
    if any(E.is_const(d, 0) for d in src + out):
        return None
    groups, i, j = [], 0, 0
    while i < len(src) or j < len(out):
        si, oj = i, j
        ps = src[i] if i < len(src) else E.ONE
        po = out[j] if j < len(out) else E.ONE
        i, j = min(i + 1, len(src)), min(j + 1, len(out))
        while not E.same(ps, po):
            if _divides(ps, po) and i < len(src):
                ps, i = E.mul(ps, src[i]), i + 1
            elif _divides(po, ps) and j < len(out):
                po, j = E.mul(po, out[j]), j + 1
            else:
                return None
        groups.append(((si, i), (oj, j)))
    return groups


def solve_reshape(ctx, node, in_shape, target, allowzero: bool) -> tuple:
    """Reshape's output dims from the target entries (0 copies an input dim, -1 is solved)."""
    out = []
    minus_one = None
    for k, s in enumerate(target):
        if E.is_const(s, 0) and not allowzero:
            if k >= len(in_shape):
                ctx.fail(node, f"shape entry {k} is 0 (copy dim {k}) but the input has rank "
                         f"{len(in_shape)}")
            out.append(in_shape[k])
        elif E.is_const(s, -1):
            minus_one = k
            out.append(None)
        else:
            out.append(s)
    if minus_one is not None:
        out[minus_one] = divide(E.product(in_shape),
                                E.product(d for d in out if d is not None))
    return tuple(out)


def divide(total, part):
    """total / part for products of sizes, cancelling common factors when it can."""
    (ct, ft), (cp, fp) = E.factors(total), E.factors(part)
    rest = list(ft)
    for f in fp:
        if f not in rest:
            return E.floordiv(total, part)
        rest.remove(f)
    if cp == 0 or ct % cp:
        return E.floordiv(total, part)
    return E.product([Const(ct // cp), *rest])


@register(ops.Reshape, lazy=True)
def lower_reshape(ctx, node, inputs):
    t = inputs[0]
    target = [E.index(v) for v in ctx.static_values(node, 1)]
    shape = solve_reshape(ctx, node, t.shape, target, bool(ctx.attrs(node).allowzero))
    return [reshape(ctx, t, node.outputs[0].name, shape)]


@register(ops.Flatten, lazy=True)
def lower_flatten(ctx, node, inputs):
    t = inputs[0]
    axis = ctx.attrs(node).axis
    if not -t.rank <= axis <= t.rank:
        ctx.fail(node, f"Flatten axis {axis} is out of range for rank {t.rank}")
    axis = axis + t.rank if axis < 0 else axis
    shape = (E.product(t.shape[:axis]), E.product(t.shape[axis:]))
    return [reshape(ctx, t, node.outputs[0].name, shape)]


# --- Squeeze, Unsqueeze, Transpose ---------------------------------------------------------------

@register(ops.Squeeze, lazy=True)
def lower_squeeze(ctx, node, inputs):
    t = inputs[0]
    if len(inputs) > 1 and inputs[1] is not None:
        axes = normalized_axes(ctx, node, ctx.static_ints(node, 1), t.rank)
    else:
        if not all(isinstance(d, Const) for d in t.shape):
            ctx.fail(node, f"Squeeze without axes on shape {t.shape}: a symbolic dim may be 1",
                     hint="give Squeeze its axes")
        axes = [k for k, d in enumerate(t.shape) if d.value == 1]
    keep = [k for k in range(t.rank) if k not in axes]

    def to_source(idx):
        pos = dict(zip(keep, idx))
        return tuple(pos.get(k, E.ZERO) for k in range(t.rank))
    return [view(ctx, t, node.outputs[0].name, [t.shape[k] for k in keep], to_source,
                 lambda b: ([b.strides[k] for k in keep], b.offset))]


@register(ops.Unsqueeze, lazy=True)
def lower_unsqueeze(ctx, node, inputs):
    t = inputs[0]
    values = ctx.static_ints(node, 1)
    rank = t.rank + len(values)
    axes = set(normalized_axes(ctx, node, values, rank))
    kept = [k for k in range(rank) if k not in axes]
    shape, it = [], iter(t.shape)
    for k in range(rank):
        shape.append(E.ONE if k in axes else next(it))

    def layout(b):
        strides = iter(b.strides)
        return [E.ZERO if k in axes else next(strides) for k in range(rank)], b.offset
    return [view(ctx, t, node.outputs[0].name, shape,
                 lambda idx: tuple(idx[k] for k in kept), layout)]


@register(ops.Transpose, lazy=True)
def lower_transpose(ctx, node, inputs):
    t = inputs[0]
    perm = ctx.attrs(node).perm
    perm = list(range(t.rank))[::-1] if perm is None else list(perm)
    inverse = [perm.index(k) for k in range(t.rank)]
    return [view(ctx, t, node.outputs[0].name, [t.shape[p] for p in perm],
                 lambda idx: tuple(idx[inverse[k]] for k in range(t.rank)),
                 lambda b: ([b.strides[p] for p in perm], b.offset))]


# --- Expand --------------------------------------------------------------------------------------

@register(ops.Expand, lazy=True)
def lower_expand(ctx, node, inputs):
    t = inputs[0]
    target = [E.index(v) for v in ctx.static_values(node, 1)]
    try:
        shape = broadcast_shape(t.shape, tuple(target))
    except ValueError as e:
        ctx.fail(node, f"cannot expand {t.shape} to {target}: {e}")
    lead = len(shape) - t.rank
    decided = all(E.is_const(d, 1) or d == big or isinstance(d, Const) and isinstance(big, Const)
                  for d, big in zip(t.shape, shape[lead:]))

    def layout(b):
        strides = [E.ZERO] * lead + [E.ZERO if E.is_const(d, 1) else s
                                     for d, s in zip(t.shape, b.strides)]
        return strides, b.offset
    return [view(ctx, t, node.outputs[0].name, shape,
                 lambda idx: broadcast_index(t.shape, shape, idx), layout if decided else None)]


# --- Slice, Split --------------------------------------------------------------------------------

def _wrap(v, d):
    """A negative position counts from the end of an axis of size d."""
    if isinstance(v, Const):
        return E.add(d, v) if v.value < 0 else v
    return E.select(E.lt(v, 0), E.add(v, d), v)


def slice_axis(d, start, end, step: int):
    """ONNX's clamped (first index, length) of a slice of an axis of size d."""
    start, end = E.index(start), E.index(end)
    if step > 0:
        start = E.ZERO if E.is_const(start) and start.value <= -HUGE else \
            E.clamp(_wrap(start, d), 0, d)
        end = d if E.is_const(end) and end.value >= HUGE else E.clamp(_wrap(end, d), 0, d)
    else:
        last = E.sub(d, 1)
        start = last if E.is_const(start) and start.value >= HUGE else \
            E.clamp(_wrap(start, d), 0, last)
        end = Const(-1) if E.is_const(end) and end.value <= -HUGE else \
            E.clamp(_wrap(end, d), -1, last)
    return start, E.maximum(E.ceildiv(E.sub(end, start), step), 0)


def slice_view(ctx, t: Tensor, name: str, per_axis: dict) -> Tensor:
    """t sliced by {axis: (first, length, step)}."""
    shape = [per_axis[k][1] if k in per_axis else d for k, d in enumerate(t.shape)]

    def to_source(idx):
        return tuple(E.add(per_axis[k][0], E.mul(i, per_axis[k][2])) if k in per_axis else i
                     for k, i in enumerate(idx))

    def layout(b):
        strides = [E.mul(s, per_axis[k][2]) if k in per_axis else s
                   for k, s in enumerate(b.strides)]
        offset = b.offset
        for k, (first, _, _) in per_axis.items():
            offset = E.add(offset, E.mul(first, b.strides[k]))
        return strides, offset
    return view(ctx, t, name, shape, to_source, layout)


@register(ops.Slice, lazy=True)
def lower_slice(ctx, node, inputs):
    t = inputs[0]
    starts, ends = ctx.static_values(node, 1), ctx.static_values(node, 2)
    has = [len(inputs) > i and inputs[i] is not None for i in range(5)]
    axes = normalized_axes(ctx, node, ctx.static_ints(node, 3), t.rank) if has[3] else \
        list(range(len(starts)))
    steps = ctx.static_ints(node, 4) if has[4] else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        ctx.fail(node, "Slice starts, ends, axes and steps must have one length, steps not 0")
    per_axis = {}
    for a, s, e, step in zip(axes, starts, ends, steps):
        first, length = slice_axis(t.shape[a], s, e, step)
        per_axis[a] = (first, length, step)
    return [slice_view(ctx, t, node.outputs[0].name, per_axis)]


@register(ops.Split, lazy=True)
def lower_split(ctx, node, inputs):
    t = inputs[0]
    axis = normalized_axes(ctx, node, [ctx.attrs(node).axis], t.rank)[0]
    n = len(node.outputs)
    d = t.shape[axis]
    if len(inputs) > 1 and inputs[1] is not None:
        sizes = [E.index(v) for v in ctx.static_values(node, 1)]
    else:
        chunk = E.ceildiv(d, n)
        sizes = [chunk] * (n - 1) + [E.sub(d, E.mul(chunk, n - 1))]
    outs, first = [], E.ZERO
    for v, size in zip(node.outputs, sizes):
        name = v.name if v is not None else "split"
        outs.append(slice_view(ctx, t, name, {axis: (first, size, 1)}))
        first = E.add(first, size)
    return outs
