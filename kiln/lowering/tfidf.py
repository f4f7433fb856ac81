"""TfIdfVectorizer with an integer pool (pool_int64s): n-gram counts per row, then TF, IDF or
TFIDF weighting. The string pool has no native form (no string type): a LoweringError says so.

The pooled n-grams (the reference's table: lengths in [min, max], a repeated n-gram counting for
its last column) are grouped by length into constant token tables. One kernel zeroes a float32
count buffer and, per row and pooled n-gram, adds the number of places it occurs, with every
skip (step 1 .. max_skip_count + 1) for lengths >= 2 and once for unigrams, as a Reduce over
start positions; the output reads the counts through the weighting (weights by column).
"""

from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.strings import _ngram_table
from ..loops.expr import Const, Reduce
from ..loops.stmt import Loop, LoopKind, Store
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor, kernel, loop_nest

f32, i64 = DType.float32, DType.int64


def _occurrences(ctx, row, r, tokens, e, size: int, steps, length):
    """How often n-gram e of `tokens` (a [E, size] table) occurs in row r, over `steps`."""
    total = None
    for st in steps:
        s = ctx.fresh_var("s")
        match = None
        for j in range(size):
            at = E.add(s, j * st)
            eq = E.eq(E.cast(row.at((r, at)), i64), tokens.at((e, Const(j))))
            match = eq if match is None else E.binary("and", match, eq)
        stop = E.maximum(E.sub(length, (size - 1) * st), 0)
        count = Reduce("add", E.const(0.0, f32), ((s, E.ZERO, stop),), E.cast(match, f32))
        total = count if total is None else total + count
    return total


@register(ops.TfIdfVectorizer)
def lower_tfidf(ctx, node, inputs):
    x = inputs[0]
    a = ctx.attrs(node)
    if a.pool_strings is not None:
        ctx.fail(node, "TfIdfVectorizer over strings has no native lowering (the back end has "
                 "no string type)", hint="map the tokens to integers and use pool_int64s")
    width = max(a.ngram_indexes) + 1
    row = x if x.rank == 2 else x.remap((Const(1), x.shape[0]), lambda idx: (idx[1],))
    rows, length = row.shape
    counts = ctx.new_buffer("tfidf_counts", (rows, Const(width)), f32)
    by_size: dict[int, list] = {}
    for gram, col in _ngram_table(a).items():
        by_size.setdefault(len(gram), []).append((gram, col))
    r = ctx.fresh_var("r")
    body = loop_nest(ctx, (Const(width),), counts,
                     lambda idx: [Store(counts, (r, idx[0]), E.const(0.0, f32))])
    for size, grams in sorted(by_size.items()):
        tokens = constant_tensor(ctx, np.array([g for g, _ in grams], np.int64).reshape(-1, size),
                                 f"tfidf_grams{size}")
        cols = constant_tensor(ctx, np.array([c for _, c in grams], np.int64), f"tfidf_cols{size}")
        steps = [1] if size == 1 else range(1, a.max_skip_count + 2)
        e = ctx.fresh_var("e")
        where = (r, cols.at((e,)))
        found = _occurrences(ctx, row, r, tokens, e, size, steps, length)
        body.append(Loop(e, E.ZERO, Const(len(grams)), [Store(counts, where, counts[where] + found)]))
    ctx.emit(kernel(ctx.fresh_name("tfidf", kernel=True),
                    [Loop(r, E.ZERO, rows, body, LoopKind.SERIAL)]))
    weights = np.zeros(width, np.float32)
    if a.weights is not None:
        n = min(width, len(a.weights))
        weights[:n] = a.weights[:n]
    else:
        weights[:] = 1.0
    w = constant_tensor(ctx, weights, "tfidf_weights")

    def at(idx):
        where = (idx[0], idx[1]) if x.rank == 2 else (E.ZERO, idx[0])
        c = counts[where]
        if a.mode == "IDF":
            return E.select(E.gt(c, 0.0), w.at((where[1],)), E.const(0.0, f32))
        if a.mode == "TFIDF":
            return c * w.at((where[1],))
        return c
    shape = (rows, Const(width)) if x.rank == 2 else (Const(width),)
    return [Tensor(shape, f32, at)]
