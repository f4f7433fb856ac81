"""Data movement that is not a view: Concat, Pad, Tile, Gather, GatherElements, GatherND, OneHot,
ArrayFeatureExtractor, DepthToSpace, SpaceToDepth, Trilu, ReverseSequence and CenterCropPad.
Each output element is still one input element (or a fill value) at a computed index, so each
is written as `at`; `lower_graph` writes their outputs to memory.

Every Load they build stays inside its buffer for every output index, even in the arm of a
Select whose value is not used (indices are clamped): code generators may evaluate both arms.
Indices read from data (Gather*, ArrayFeatureExtractor, ReverseSequence's lengths) outside their
axis are clamped too, since native code cannot raise; the reference interpreter reports them.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const
from . import exprs as E
from .registry import register
from .tensor import Tensor, store_all
from .views import normalized_axes, reshape_index


def _replace(idx, axis: int, value) -> tuple:
    return tuple(idx[:axis]) + (value,) + tuple(idx[axis + 1:])


# --- Concat --------------------------------------------------------------------------------------

@register(ops.Concat)
def lower_concat(ctx, node, inputs):
    rank = inputs[0].rank
    axis = normalized_axes(ctx, node, [ctx.attrs(node).axis], rank)[0]
    parts, first = [], E.ZERO
    for t in inputs:
        if not E.is_const(t.shape[axis], 0):
            parts.append((t, first))
        first = E.add(first, t.shape[axis])
    shape = _replace(inputs[0].shape, axis, first)
    dtype = inputs[0].dtype
    if not parts:
        return [Tensor.fill(shape, E.const(0, dtype))]

    def at(idx):
        i = idx[axis]
        last, start = parts[-1]
        value = last.at(_replace(idx, axis,
                                 E.clamp(E.sub(i, start), 0, E.sub(last.shape[axis], 1))))
        for t, start in reversed(parts[:-1]):
            n = t.shape[axis]
            here = t.at(_replace(idx, axis, E.clamp(E.sub(i, start), 0, E.sub(n, 1))))
            value = E.select(E.lt(i, E.add(start, n)), here, value)
        return value

    def write(ctx, buffer):
        """One loop nest per input, each storing into its slab of the output: no selects."""
        stmts = []
        for t, start in parts:
            slab = buffer.view(ctx.fresh_name(f"{buffer.name}_part"), t.shape, buffer.strides,
                               E.add(buffer.offset, E.mul(start, buffer.strides[axis])))
            stmts += store_all(ctx, t, slab)
        return stmts
    return [Tensor(shape, dtype, at, write=write)]


# --- Pad, Tile -----------------------------------------------------------------------------------

def _abs(i):
    return E.select(E.lt(i, 0), E.sub(0, i), i)


def pad_axis(mode: str, d, begin: int, end: int, o):
    """(source index, in-range condition or None) for output index o of one padded axis."""
    crop = max(-begin, 0)
    grow_b, grow_e = max(begin, 0), max(end, 0)
    m = E.sub(E.sub(d, crop), max(-end, 0))          # input elements kept after cropping
    j = E.sub(o, grow_b)                              # position in the kept elements
    if not grow_b and not grow_e:
        return E.add(crop, j), None
    if mode == "wrap":
        return E.add(crop, E.mod(j, m)), None
    if mode == "reflect":
        top = E.sub(m, 1)
        return E.add(crop, E.sub(top, _abs(E.sub(top, _abs(j))))), None
    inside = E.clamp(j, 0, E.sub(m, 1))
    if mode == "edge":
        return E.add(crop, inside), None
    conds = ([E.ge(j, 0)] if grow_b else []) + ([E.lt(j, m)] if grow_e else [])
    cond = conds[0] if len(conds) == 1 else E.binary("and", *conds)
    return E.add(crop, inside), cond


@register(ops.Pad)
def lower_pad(ctx, node, inputs):
    t = inputs[0]
    has = [len(inputs) > i and inputs[i] is not None for i in range(4)]
    pads = ctx.static_ints(node, 1)
    axes = normalized_axes(ctx, node, ctx.static_ints(node, 3), t.rank) if has[3] else \
        list(range(t.rank))
    if len(pads) != 2 * len(axes):
        ctx.fail(node, f"Pad has {len(pads)} pads for {len(axes)} axes; it needs 2 per axis")
    widths = {a: (pads[k], pads[k + len(axes)]) for k, a in enumerate(axes)}
    mode = ctx.attrs(node).mode
    fill = inputs[2].at((E.ZERO,) * inputs[2].rank) if has[2] else E.const(0, t.dtype)
    shape = tuple(E.add(d, sum(widths.get(k, (0, 0)))) for k, d in enumerate(t.shape))
    kept = [E.sub(d, max(-b, 0) + max(-e, 0)) for d, (b, e) in
            ((d, widths.get(k, (0, 0))) for k, d in enumerate(t.shape))]
    if any(E.is_const(m, 0) for m in kept):     # nothing of the input is left: all fill
        return [Tensor.fill(shape, fill)]

    def at(idx):
        src, conds = [], []
        for k, (d, o) in enumerate(zip(t.shape, idx)):
            i, cond = pad_axis(mode, d, *widths.get(k, (0, 0)), o)
            src.append(i)
            if cond is not None:
                conds.append(cond)
        value = t.at(tuple(src))
        if conds:
            inside = conds[0]
            for c in conds[1:]:
                inside = E.binary("and", inside, c)
            value = E.select(inside, value, fill)
        return value
    return [Tensor(shape, t.dtype, at)]


@register(ops.Tile)
def lower_tile(ctx, node, inputs):
    t = inputs[0]
    reps = ctx.static_ints(node, 1)
    if len(reps) != t.rank or any(r < 0 for r in reps):
        ctx.fail(node, f"Tile repeats {reps} must be {t.rank} non-negative counts")
    shape = tuple(E.mul(d, r) for d, r in zip(t.shape, reps))
    return [t.remap(shape, lambda idx: tuple(i if r == 1 else E.mod(i, d)
                                             for i, d, r in zip(idx, t.shape, reps)))]


# --- Gather, GatherElements ----------------------------------------------------------------------

def checked_index(i, n):
    """An index read from data, negative counting from the end, clamped into [0, n)."""
    i = E.index(i)
    return E.clamp(E.select(E.lt(i, 0), E.add(i, n), i), 0, E.sub(n, 1))


@register(ops.Gather)
def lower_gather(ctx, node, inputs):
    data, indices = inputs
    axis = normalized_axes(ctx, node, [ctx.attrs(node).axis], data.rank)[0]
    q = indices.rank
    shape = tuple(data.shape[:axis]) + tuple(indices.shape) + tuple(data.shape[axis + 1:])

    def at(idx):
        i = checked_index(indices.at(tuple(idx[axis:axis + q])), data.shape[axis])
        return data.at(tuple(idx[:axis]) + (i,) + tuple(idx[axis + q:]))
    return [Tensor(shape, data.dtype, at)]


@register(ops.GatherElements)
def lower_gather_elements(ctx, node, inputs):
    data, indices = inputs
    axis = normalized_axes(ctx, node, [ctx.attrs(node).axis], data.rank)[0]

    def at(idx):
        return data.at(_replace(idx, axis, checked_index(indices.at(idx), data.shape[axis])))
    return [Tensor(indices.shape, data.dtype, at)]


# --- DepthToSpace, SpaceToDepth, Trilu -----------------------------------------------------------

@register(ops.DepthToSpace)
def lower_depth_to_space(ctx, node, inputs):
    t = inputs[0]
    a = ctx.attrs(node)
    b = a.blocksize
    n, c, h, w = t.shape
    c_out = E.floordiv(c, b * b)
    shape = (n, c_out, E.mul(h, b), E.mul(w, b))

    def to_source(idx):
        i_n, i_c, y, x = idx
        by, bx = E.mod(y, b), E.mod(x, b)
        block = E.add(E.mul(by, b), bx)
        if a.mode == "DCR":
            channel = E.add(E.mul(block, c_out), i_c)
        else:
            channel = E.add(E.mul(i_c, b * b), block)
        return (i_n, channel, E.floordiv(y, b), E.floordiv(x, b))
    return [t.remap(shape, to_source)]


@register(ops.SpaceToDepth)
def lower_space_to_depth(ctx, node, inputs):
    t = inputs[0]
    a = ctx.attrs(node)
    b = a.blocksize
    n, c, h, w = t.shape
    shape = (n, E.mul(c, b * b), E.floordiv(h, b), E.floordiv(w, b))

    def to_source(idx):
        i_n, co, i_h, i_w = idx
        if a.mode == "DCR":
            block, channel = E.floordiv(co, c), E.mod(co, c)
        else:
            block, channel = E.mod(co, b * b), E.floordiv(co, b * b)
        by, bx = E.floordiv(block, b), E.mod(block, b)
        return (i_n, channel, E.add(E.mul(i_h, b), by), E.add(E.mul(i_w, b), bx))
    return [t.remap(shape, to_source)]


@register(ops.Trilu)
def lower_trilu(ctx, node, inputs):
    t = inputs[0]
    k = E.index(ctx.static_scalar(node, 1)) if len(inputs) > 1 and inputs[1] is not None \
        else Const(0)
    upper = ctx.attrs(node).upper
    zero = E.const(0, t.dtype)

    def at(idx):
        diagonal = E.sub(idx[-1], idx[-2])
        keep = E.ge(diagonal, k) if upper else E.le(diagonal, k)
        return E.select(keep, t.at(idx), zero)
    return [Tensor(t.shape, t.dtype, at)]


# --- GatherND, ArrayFeatureExtractor, OneHot, ReverseSequence, CenterCropPad ------------------

@register(ops.GatherND)
def lower_gather_nd(ctx, node, inputs):
    data, indices = inputs
    b = ctx.attrs(node).batch_dims
    k = indices.shape[-1]
    if not isinstance(k, Const):
        ctx.fail(node, "GatherND needs the length of its index tuples when compiling")
    k = k.value
    mid = indices.rank - 1 - b
    shape = tuple(data.shape[:b]) + tuple(indices.shape[b:-1]) + tuple(data.shape[b + k:])

    def at(idx):
        lead = tuple(idx[:b + mid])
        picks = tuple(checked_index(indices.at(lead + (Const(j),)), data.shape[b + j])
                      for j in range(k))
        return data.at(tuple(idx[:b]) + picks + tuple(idx[b + mid:]))
    return [Tensor(shape, data.dtype, at)]


@register(ops.ArrayFeatureExtractor)
def lower_array_feature_extractor(ctx, node, inputs):
    x, y = inputs
    count = E.product(y.shape)
    n = x.shape[-1]
    lead = (E.ONE,) if x.rank == 1 else tuple(x.shape[:-1])

    def at(idx):
        flat = reshape_index(y.shape, (count,), (idx[-1],))
        column = checked_index(y.at(flat), n)
        return x.at((column,) if x.rank == 1 else tuple(idx[:-1]) + (column,))
    return [Tensor(lead + (count,), x.dtype, at)]


@register(ops.OneHot)
def lower_one_hot(ctx, node, inputs):
    indices, _, values = inputs
    depth = ctx.static_scalar(node, 1)
    depth = Const(int(depth.value)) if isinstance(depth, Const) else E.index(depth)
    rank = indices.rank + 1
    axis = normalized_axes(ctx, node, [ctx.attrs(node).axis], rank)[0]
    shape = tuple(indices.shape[:axis]) + (depth,) + tuple(indices.shape[axis:])
    off, on = values.at((E.ZERO,)), values.at((E.ONE,))

    def at(idx):
        i = E.cast(indices.at(tuple(idx[:axis]) + tuple(idx[axis + 1:])), DType.int64)
        i = E.select(E.lt(i, 0), E.add(i, depth), i)
        return E.select(E.eq(i, idx[axis]), on, off)
    return [Tensor(shape, values.dtype, at)]


@register(ops.ReverseSequence)
def lower_reverse_sequence(ctx, node, inputs):
    x, lens = inputs
    a = ctx.attrs(node)
    steps = x.shape[a.time_axis]

    def at(idx):
        t = idx[a.time_axis]
        n = E.index(lens.at((idx[a.batch_axis],)))
        source = E.select(E.lt(t, n), E.sub(E.sub(n, 1), t), t)
        return x.at(_replace(idx, a.time_axis, E.clamp(source, 0, E.sub(steps, 1))))
    return [Tensor(x.shape, x.dtype, at)]


@register(ops.CenterCropPad)
def lower_center_crop_pad(ctx, node, inputs):
    x = inputs[0]
    sizes = [E.index(v) for v in ctx.static_values(node, 1)]
    axes_attr = ctx.attrs(node).axes
    axes = list(range(x.rank)) if axes_attr is None else \
        normalized_axes(ctx, node, axes_attr, x.rank)
    target = dict(zip(axes, sizes))
    shape = tuple(target.get(k, d) for k, d in enumerate(x.shape))
    zero = E.const(0, x.dtype)

    def at(idx):
        src, inside = [], []
        for k, (d, o) in enumerate(zip(x.shape, idx)):
            if k not in target:
                src.append(o)
                continue
            s = target[k]
            crop = E.floordiv(E.maximum(E.sub(d, s), 0), 2)     # the window starts rounded down
            pad = E.floordiv(E.maximum(E.sub(s, d), 0), 2)      # the odd pixel goes to the end
            j = E.sub(o, pad)
            src.append(E.clamp(E.add(j, crop), 0, E.sub(d, 1)))
            inside += [E.ge(j, 0), E.lt(j, d)]
        value = x.at(tuple(src))
        for c in inside:
            value = E.select(c, value, zero)
        return value
    return [Tensor(shape, x.dtype, at)]
