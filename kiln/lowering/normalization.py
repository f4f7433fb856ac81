"""Row normalizations: Softmax, LogSoftmax, Hardmax along one axis; LayerNormalization and
RMSNormalization (the per-channel ones are in channel_norms.py, built on `moments` here).

Each computes per-row statistics and then an elementwise expression of the input and them.
Softmax, LogSoftmax, LayerNormalization and RMSNormalization are written by ONE kernel
(`row_write`): a loop nest over the rows whose body computes the row's statistics (maximum and
sum of exponentials; mean and variance; mean square) into Locals, then writes the normalized
row (Softmax's sum pass stores each exp into the output as it adds it up, and the last pass
scales the row in place: one exp per element). The input's `at` is composed into every pass
over the row, so its producers (a fused residual Add, a scaled and masked score) are never
written to memory. Their `at` form (used only when something reads them element by element
instead of writing them) and the other
normalizations materialize the statistics into buffers of keepdims shape, one kernel each, and
read them. Statistics are computed in the op's stash type (float32 by default); narrow floats
are computed in float32.
"""

from __future__ import annotations

from typing import Callable

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.buffer import BufferKind
from ..loops.expr import Binary, Const, Expr, Load, Reduce, Var, children, simplify_index
from ..loops.stmt import Assign, Local, Loop, LoopKind, Store
from . import exprs as E
from .reduce import count, into, kept_index, lowest, normalize_axis, outer_kinds, reduction, temp
from .registry import register
from .tensor import (MIN_VECTOR_TRIP, VECTOR_BYTES, Tensor, broadcast_index, compute_dtype,
                     narrow, widen)

Index = tuple


def _exp(e): return E.unary("exp", e)


# exp(d) for d below this is subnormal in float32 (ln of the smallest normal is -87.3365):
# computing it stalls the CPU for each such lane (masked attention scores are all of them)
FLUSH_BELOW = -87.3


def _exp_shifted(d: Expr) -> Expr:
    """exp(d) for d = x - row max <= 0 (or NaN), with a float32 result that would be subnormal
    (below 1.2e-38) flushed to 0: it is computed from max(d, FLUSH_BELOW), so no lane makes a
    subnormal. A sum of these is exactly the same (the row's maximum adds 1); a softmax output
    that would be subnormal is 0 (-inf masks give 0 as before); NaN stays NaN. float64 is
    computed as is."""
    if d.dtype is not DType.float32:
        return _exp(d)
    floor = E.const(FLUSH_BELOW, DType.float32)
    return E.select(E.lt(d, floor), E.const(0, DType.float32), _exp(E.binary("max", d, floor)))


def _log(e): return E.unary("log", e)
def sqrt(e): return E.unary("sqrt", e)


def inv_sqrt(e: Expr, eps: float) -> Expr:
    """1 / sqrt(e + eps), as the reference computes it (not an approximate rsqrt)."""
    return E.const(1, e.dtype) / sqrt(e + E.const(eps, e.dtype))


def _buffer(ctx, node, i: int, shape, dtype: DType):
    """The buffer of node output i when the graph uses it, else None (a TEMP will do)."""
    if i < len(node.outputs) and node.outputs[i] is not None:
        return ctx.buffer_for(node.outputs[i], shape, dtype)
    return None


def _stat(ctx, t: Tensor, hint: str, buf=None) -> Tensor:
    return into(ctx, t, buf, hint) if buf is not None else temp(ctx, t, hint)


def moments(ctx, shape, axes, term: Callable[[Index], Expr], dtype: DType, eps: float,
            mean_buf=None, inv_buf=None) -> tuple[Tensor, Tensor]:
    """Mean and 1/sqrt(variance + eps) of term over `axes` of an index space of `shape`, each
    materialized with keepdims (two passes: the mean, then the mean squared deviation)."""
    n = count(shape, axes, dtype)
    total = reduction(ctx, shape, axes, "add", E.const(0, dtype), term)
    mean = _stat(ctx, Tensor(total.shape, dtype, lambda idx: total.at(idx) / n), "mean",
                 mean_buf)

    def deviation(idx):
        d = term(idx) - mean.at(kept_index(idx, axes))
        return d * d
    sq = reduction(ctx, shape, axes, "add", E.const(0, dtype), deviation)
    inv = _stat(ctx, Tensor(sq.shape, dtype, lambda idx: inv_sqrt(sq.at(idx) / n, eps)),
                "inv_std", inv_buf)
    return mean, inv


def as_dtype(e: Expr, dtype: DType) -> Expr:
    return E.cast(e, dtype)


# --- one kernel per row-normalization ------------------------------------------------------------

# A statistic of the row: (hint, combiner, init, term(index, locals so far) -> Expr,
# finish(reduced value, locals so far) -> Expr). Each becomes a Local computed in turn; with
# combiner None there is no reduction and finish gets None. `locals so far` also holds "x":
# the function reading the input's element at a full index (the input's `at`, or the row cache).
Stat = tuple

ROW_CACHE_ELEMENTS = 4096     # a row up to this size (static) may be kept on the stack


def row_write(x: Tensor, axes, stats: list, element: Callable) -> Callable:
    """A `write` for the normalization over `axes` of x: one loop nest over the other axes (the
    first big one PARALLEL); in its body each statistic is a Local (a Reduce over the row of its
    term, then its finish unless that is `_keep`), then a nest over `axes` stores
    element(index, locals). The innermost store loop is VECTORIZED when the row is the buffer's
    contiguous tail.

    A statistic may carry a sixth entry, `store(term value)`: then its pass is an explicit loop
    nest (VECTORIZED like the store's) that also stores that into the output at the element's
    index, updating an accumulator (`acc = acc <combiner> term`: codegen keeps per-lane partials
    and combines them once after the loop). Softmax computes each exp once this way; later
    passes read the output back through `locals["out"]`. (A Reduce whose term LLVM can
    vectorize, a max or a plain sum, is as fast as the explicit loop, or faster: LLVM
    interleaves its accumulators.)

    The rows go in blocks of ROWS_AHEAD along the innermost row axis, and each block first
    computes its rows' first statistic (softmax's max, the mean) into a LOCAL buffer
    (`_first_stat_ahead`), so those reductions overlap one another.

    Every statistic and the store read the row again through x's `at`. When that is costly (it
    holds a reduction: a fused matrix product feeding the normalization) and the row has a small
    static size, the row is first computed once into a LOCAL buffer, and the passes read that
    (and the rows are not blocked)."""
    shape = x.shape
    rank = len(shape)

    def write(ctx, buffer):
        vars_ = ctx.index_vars(rank)
        outer = [d for d in range(rank) if d not in axes]
        body = []
        values: dict = {"x": x.at, "out": lambda idx: Load(buffer, tuple(idx))}
        cache = _row_cache(ctx, x, axes, vars_)
        if cache is not None:
            fill, values["x"] = cache
            body += fill
        ahead = _ahead_axis(shape, outer, stats) if cache is None else None
        rest = stats
        if ahead is not None:
            blk, ahead_loop, first = _first_stat_ahead(ctx, shape, axes, vars_, ahead, stats[0],
                                                       values)
            body.append(first)
            values[stats[0][0]] = first.var
            rest = stats[1:]
        for hint, combiner, init, term, finish, *store in rest:
            if combiner is None:
                value = finish(None, values)
                local = Var(ctx.fresh_name(hint), value.dtype)
                body.append(Local(local, value))
                values[hint] = local
                continue
            full = list(vars_)
            for d in axes:
                full[d] = E.ZERO if E.is_const(shape[d], 1) else ctx.fresh_var("r")
            ranges = tuple((full[d], E.ZERO, shape[d]) for d in axes if isinstance(full[d], Var))
            value = term(tuple(full), values)
            acc = Var(ctx.fresh_name(hint), init.dtype)
            if not store:
                body.append(Local(acc, Reduce(combiner, init, ranges, value) if ranges else
                                  value))
            else:
                e = Var(ctx.fresh_name("e"), value.dtype)
                inner = [Local(e, value), Store(buffer, tuple(full), store[0](e)),
                         Assign(acc, Binary(combiner, acc, e))]
                body.append(Local(acc, init))
                body += _row_nest(shape, [d for d in axes if isinstance(full[d], Var)], full,
                                  inner, buffer)
            if finish is _keep:
                values[hint] = acc
                continue
            value = finish(acc, values)
            local = Var(ctx.fresh_name(hint), value.dtype)
            body.append(Local(local, value))
            values[hint] = local
        inner = [Store(buffer, tuple(vars_), element(tuple(vars_), values))]
        body += _row_nest(shape, axes, vars_, inner, buffer)
        if ahead is None:
            return _rows_nest(ctx, shape, outer, vars_, body)
        # rows in blocks of ROWS_AHEAD along the `ahead` axis: the block's first statistics,
        # then its rows
        blocks, block_vars = list(shape), list(vars_)
        blocks[ahead], block_vars[ahead] = E.ceildiv(shape[ahead], ROWS_AHEAD), blk
        rows = Loop(vars_[ahead], ahead_loop.start, ahead_loop.stop, body)
        return _rows_nest(ctx, tuple(blocks), outer, block_vars, [ahead_loop, rows], shape)
    return write


ROWS_AHEAD = 8     # rows whose first statistic is computed before any of them is normalized


def _ahead_axis(shape, outer, stats):
    """The innermost row axis (not statically 1) when the first statistic is a plain
    reduction (no store): its rows are then taken in blocks, else None."""
    hint, combiner, init, term, finish, *store = stats[0]
    if combiner is None or store:
        return None
    multi = [d for d in outer if not E.is_const(shape[d], 1)]
    return multi[-1] if multi else None


def _first_stat_ahead(ctx, shape, axes, vars_, ahead: int, stat, values):
    """The first statistic of ROWS_AHEAD consecutive rows along axis `ahead`, into a LOCAL
    buffer, before any of those rows is normalized: the rows' reductions are independent, so
    the end of one (a horizontal max over vector lanes, a long chain of dependent steps)
    overlaps the next instead of stalling the row's next pass. Returns (the block Var, the
    loop filling the buffer, the row's Local reading its statistic back)."""
    hint, combiner, init, term, finish = stat[:5]
    blk, a = ctx.fresh_var("rows"), ctx.fresh_var("a")
    base = E.mul(blk, ROWS_AHEAD)
    stop = E.minimum(E.add(base, ROWS_AHEAD), shape[ahead])
    full = list(vars_)
    full[ahead] = a
    for d in axes:
        full[d] = E.ZERO if E.is_const(shape[d], 1) else ctx.fresh_var("r")
    ranges = tuple((full[d], E.ZERO, shape[d]) for d in axes if isinstance(full[d], Var))
    value = term(tuple(full), values)
    value = Reduce(combiner, init, ranges, value) if ranges else value
    if finish is not _keep:
        value = finish(value, values)
    buf = ctx.new_buffer(hint + "_ahead", (Const(ROWS_AHEAD),), value.dtype, BufferKind.LOCAL)
    fill = Loop(a, base, stop, [Store(buf, (E.sub(a, base),), value)])
    local = Var(ctx.fresh_name(hint), value.dtype)
    return blk, fill, Local(local, Load(buf, (E.sub(vars_[ahead], base),)))


def _rows_nest(ctx, shape, outer, vars_, body: list, size_shape=None) -> list:
    """The loops over the rows (the `outer` axes) around `body`. When the leading outer axis is
    symbolic (a batch, often 1 at run time), its parallel loop could have one iteration and run
    every row on one thread: then the rows are one PARALLEL loop over their flat number, each
    row's indices Locals unravelled from it (a div/mod per row, against a row of work)."""
    dims = [shape[d] for d in outer]
    kinds = outer_kinds(dims, shape if size_shape is None else size_shape)
    multi = [d for d in outer if not E.is_const(shape[d], 1)]
    if LoopKind.PARALLEL not in kinds or len(multi) < 2 or isinstance(shape[multi[0]], Const):
        for d, kind in reversed(list(zip(outer, kinds))):
            body = [Loop(vars_[d], E.ZERO, shape[d], body, kind)]
        return body
    flat = ctx.fresh_var("row")
    coords, rest = [], flat
    for d in reversed(outer):
        if E.is_const(shape[d], 1):
            coords.append(Local(vars_[d], E.ZERO))
        elif d == multi[0]:
            coords.append(Local(vars_[d], rest))
        else:
            coords.append(Local(vars_[d], E.mod(rest, shape[d])))
            rest = E.floordiv(rest, shape[d])
    return [Loop(flat, E.ZERO, E.product(dims), [*reversed(coords), *body], LoopKind.PARALLEL)]


def _row_nest(shape, axes, vars_, inner: list, buffer) -> list:
    """Loops over the row's axes around `inner` (stores into `buffer` at vars_)."""
    last = len(shape) - 1
    for d in reversed(sorted(axes)):
        kind, width = LoopKind.SERIAL, 0
        n = shape[d]
        if d == last and buffer.strides[-1] == Const(1) and \
                not (isinstance(n, Const) and n.value < MIN_VECTOR_TRIP):
            kind, width = LoopKind.VECTORIZED, VECTOR_BYTES // max(buffer.dtype.itemsize, 4)
        inner = [Loop(vars_[d], E.ZERO, n, inner, kind, width)]
    return inner


def _row_cache(ctx, x: Tensor, axes, vars_):
    """(statements filling a LOCAL buffer with the row of x at vars_, the reader of it) when x's
    element holds a reduction and the row is static and small; else None."""
    dims = [x.shape[d] for d in sorted(axes)]
    if not all(isinstance(n, Const) for n in dims):
        return None
    size = 1
    for n in dims:
        size *= n.value
    if size > ROW_CACHE_ELEMENTS or not _has_reduce(x.at(tuple(vars_))):
        return None
    row = ctx.new_buffer("row", tuple(dims), x.dtype, BufferKind.LOCAL)
    order = sorted(axes)
    fill_vars = list(vars_)
    for d in order:
        fill_vars[d] = ctx.fresh_var("c")
    store = Store(row, tuple(fill_vars[d] for d in order), x.at(tuple(fill_vars)))
    fill = _row_nest(x.shape, order, fill_vars, [store], row)

    def read(idx):
        return Load(row, tuple(simplify_index(E.index(idx[d])) for d in order))
    return fill, read


ROW_NORMALIZATIONS = frozenset({ops.Softmax, ops.LogSoftmax, ops.LayerNormalization,
                                ops.RMSNormalization})


def caches_costly_rows(node) -> bool:
    """Whether node is a row normalization whose one kernel keeps a costly row (a matrix
    product's, say) on the stack instead of recomputing it per pass: its row has a static size
    of at most ROW_CACHE_ELEMENTS and only its first output is used. Fusion uses this to let a
    MatMul/Gemm group flow into it."""
    if node.op not in ROW_NORMALIZATIONS or any(v is not None for v in node.outputs[1:]):
        return False
    t = node.inputs[0].type if node.inputs and node.inputs[0] is not None else None
    shape = getattr(t, "shape", None)
    if shape is None or not shape:
        return False
    axis = node.attr("axis") % len(shape)
    row = shape[axis:axis + 1] if node.op in (ops.Softmax, ops.LogSoftmax) else shape[axis:]
    if not all(isinstance(d, int) for d in row):
        return False
    size = 1
    for d in row:
        size *= d
    return size <= ROW_CACHE_ELEMENTS


def _has_reduce(e: Expr) -> bool:
    return isinstance(e, Reduce) or any(_has_reduce(c) for c in children(e))


def _keep(e, _values):
    return e


# --- Softmax, LogSoftmax, Hardmax ----------------------------------------------------------------

@register(ops.Softmax, ops.LogSoftmax)
def lower_softmax(ctx, node, inputs):
    """max along the axis, then sum of exp(x - max), then per element exp(x - max) / sum, or
    (x - max) - log(sum). As one row kernel (`write`) in float32/float64, the sum's pass also
    stores each exp into the output, and the last pass scales it by 1 / sum in place (a
    multiply per element, not a divide: within an ulp or two of the quotient); narrow floats,
    whose output cannot hold the float32 exp, compute it again in the last pass. The `at` form
    materializes the max and the sum."""
    x = inputs[0]
    axis = normalize_axis(ctx, node, ctx.attrs(node).axis, x.rank)
    dt = compute_dtype(x.dtype)
    axes = (axis,)
    m = temp(ctx, reduction(ctx, x.shape, axes, "max", lowest(dt), lambda idx: widen(x.at(idx))),
             "row_max")

    def shifted(idx):
        return widen(x.at(idx)) - m.at(kept_index(idx, axes))
    s = temp(ctx, reduction(ctx, x.shape, axes, "add", E.const(0, dt),
                            lambda idx: _exp_shifted(shifted(idx))), "row_sum")
    if node.op is ops.Softmax:
        def at(idx):
            return narrow(_exp_shifted(shifted(idx)) / s.at(kept_index(idx, axes)), x.dtype)

        def element(idx, v):
            return narrow(_exp_shifted(widen(v["x"](idx)) - v["row_max"]) / v["row_sum"],
                          x.dtype)
    else:
        def at(idx):
            return narrow(shifted(idx) - _log(s.at(kept_index(idx, axes))), x.dtype)

        def element(idx, v):
            return narrow(widen(v["x"](idx)) - v["row_max"] - v["log_sum"], x.dtype)
    sum_exp = ("row_sum", "add", E.const(0, dt),
               lambda idx, v: _exp_shifted(widen(v["x"](idx)) - v["row_max"]), _keep)
    stats = [("row_max", "max", lowest(dt), lambda idx, v: widen(v["x"](idx)), _keep), sum_exp]
    if node.op is ops.Softmax and dt is x.dtype:
        # exp once per element: the sum's pass stores it, the last pass scales it in place
        stats[1] += (lambda e: e,)
        stats.append(("inv_sum", None, None, None,
                      lambda e, v: E.const(1, dt) / v["row_sum"]))

        def element(idx, v):
            return v["out"](idx) * v["inv_sum"]
    if node.op is ops.LogSoftmax:
        stats.append(("log_sum", None, None, None, lambda e, v: _log(v["row_sum"])))
    return [Tensor(x.shape, x.dtype, at, write=row_write(x, axes, stats, element))]


@register(ops.Hardmax)
def lower_hardmax(ctx, node, inputs):
    """1 at the first largest element along the axis (a NaN counts as largest), else 0."""
    x = inputs[0]
    axis = normalize_axis(ctx, node, ctx.attrs(node).axis, x.rank)
    dt = compute_dtype(x.dtype)
    axes = (axis,)
    m = temp(ctx, reduction(ctx, x.shape, axes, "max", lowest(dt), lambda idx: widen(x.at(idx))),
             "row_max")
    n = x.shape[axis]

    def term(idx):
        v = widen(x.at(idx))
        hit = E.binary("or", E.eq(v, m.at(kept_index(idx, axes))), E.unary("isnan", v))
        return E.select(hit, idx[axis], n)
    first = temp(ctx, reduction(ctx, x.shape, axes, "min", n, term), "first")
    one, zero = E.const(1, x.dtype), E.const(0, x.dtype)
    return [Tensor(x.shape, x.dtype, lambda idx: E.select(
        E.eq(idx[axis], first.at(kept_index(idx, axes))), one, zero))]


# --- LayerNormalization, RMSNormalization --------------------------------------------------------

def _broadcast_at(t: Tensor, shape, idx) -> Expr:
    return widen(t.at(broadcast_index(t.shape, shape, idx)))


@register(ops.LayerNormalization)
def lower_layer_norm(ctx, node, inputs):
    x, scale, b = (list(inputs) + [None])[:3]
    a = ctx.attrs(node)
    axis = normalize_axis(ctx, node, a.axis, x.rank)
    axes = tuple(range(axis, x.rank))
    stash = compute_dtype(a.stash_type)
    stats_shape = tuple(E.ONE if d in axes else n for d, n in enumerate(x.shape))
    # the Mean and InvStdDev outputs are written directly unless they must be rounded first
    direct = stash is a.stash_type
    mean, inv = moments(ctx, x.shape, axes, lambda idx: as_dtype(x.at(idx), stash), stash, a.epsilon,
                        _buffer(ctx, node, 1, stats_shape, stash) if direct else None,
                        _buffer(ctx, node, 2, stats_shape, stash) if direct else None)
    dt = compute_dtype(x.dtype)

    def at(idx):
        k = kept_index(idx, axes)
        y = as_dtype((as_dtype(x.at(idx), stash) - mean.at(k)) * inv.at(k), dt) * \
            _broadcast_at(scale, x.shape, idx)
        if b is not None:
            y = y + _broadcast_at(b, x.shape, idx)
        return narrow(y, x.dtype)
    stats = [t if direct else Tensor(t.shape, a.stash_type, lambda idx, t=t: narrow(
        t.at(idx), a.stash_type)) for t in (mean, inv)]

    def element(idx, v):
        y = as_dtype((as_dtype(v["x"](idx), stash) - v["mean"]) * v["inv_std"], dt) * \
            _broadcast_at(scale, x.shape, idx)
        if b is not None:
            y = y + _broadcast_at(b, x.shape, idx)
        return narrow(y, x.dtype)
    write = row_write(x, axes, _moment_stats(x, axes, stash, a.epsilon), element)
    return [Tensor(x.shape, x.dtype, at, write=write), *stats]


def _moment_stats(x: Tensor, axes, stash: DType, eps: float) -> list:
    """The row statistics of `row_write` for a mean and 1/sqrt(variance + eps), as `moments`
    computes them (the mean, then the mean squared deviation from it)."""
    n = count(x.shape, axes, stash)

    def deviation(idx, v):
        d = as_dtype(v["x"](idx), stash) - v["mean"]
        return d * d
    return [("mean", "add", E.const(0, stash), lambda idx, v: as_dtype(v["x"](idx), stash),
             lambda e, v: e / n),
            ("inv_std", "add", E.const(0, stash), deviation,
             lambda e, v: inv_sqrt(e / n, eps))]


@register(ops.RMSNormalization)
def lower_rms_norm(ctx, node, inputs):
    x, scale = inputs
    a = ctx.attrs(node)
    axis = normalize_axis(ctx, node, a.axis, x.rank)
    axes = tuple(range(axis, x.rank))
    stash = compute_dtype(a.stash_type)
    n = count(x.shape, axes, stash)

    def square(idx):
        v = as_dtype(x.at(idx), stash)
        return v * v
    total = reduction(ctx, x.shape, axes, "add", E.const(0, stash), square)
    inv = temp(ctx, Tensor(total.shape, stash, lambda idx: inv_sqrt(total.at(idx) / n,
                                                                     a.epsilon)), "inv_rms")
    out = scale.dtype
    dt = compute_dtype(out)

    def normalized(x_at, idx, inv_rms):
        return narrow(as_dtype(as_dtype(x_at(idx), stash) * inv_rms, dt) *
                      _broadcast_at(scale, x.shape, idx), out)

    def cached_square(idx, v):
        e = as_dtype(v["x"](idx), stash)
        return e * e
    stats = [("inv_rms", "add", E.const(0, stash), cached_square,
              lambda e, v: inv_sqrt(e / n, a.epsilon))]
    write = row_write(x, axes, stats, lambda idx, v: normalized(v["x"], idx, v["inv_rms"]))
    return [Tensor(x.shape, out, lambda idx: normalized(x.at, idx, inv.at(kept_index(idx, axes))),
                   write=write)]
