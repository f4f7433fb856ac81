"""TreeEnsemble (ai.onnx.ml): a forest walked per row, the trees' node tables as constants.

One kernel, rows in parallel: per row and tree, a walk of at most `depth` steps (the deepest
path of the forest, found when compiling, which also rejects cycles) from the tree's root: at a
node, the row's feature is compared with the split by the node's mode (<=, <, >=, >, ==, !=, or
membership in the node's set, a Reduce over its slice of one constant table); NaN goes the true
way where nodes_missing_value_tracks_true says so. Reaching a leaf adds (or min/max-combines)
its weight into the row's score for the leaf's target, in a float64 scratch buffer. A second
step maps the scores to the output: the average's division, then the post transform (softmax,
softmax over the non-zero scores, logistic, probit via an inverse erf polished by Newton steps).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.ml import _Forest
from ..loops.expr import Const, Reduce, Var
from ..loops.stmt import Assign, If, Local, Loop, LoopKind, Store
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor, kernel

f64, i64 = DType.float64, DType.int64
_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)
_AVERAGE, _SUM, _MIN, _MAX = range(4)
_NONE, _SOFTMAX, _LOGISTIC, _SOFTMAX_ZERO, _PROBIT = range(5)


def _depth(ctx, node, forest: _Forest) -> int:
    """The most comparisons any path from a root takes to reach a leaf."""
    memo: dict[int, int] = {}

    def walk(nd: int, on_path: set) -> int:
        if nd in memo:
            return memo[nd]
        if nd in on_path:
            ctx.fail(node, "a tree has a cycle: a path never reaches a leaf",
                     hint="check nodes_truenodeids/nodes_falsenodeids")
        on_path.add(nd)
        deepest = 0
        for nxt, leaf in ((forest.true_id[nd], forest.true_leaf[nd]),
                          (forest.false_id[nd], forest.false_leaf[nd])):
            if not leaf:
                deepest = max(deepest, walk(int(nxt), on_path))
        on_path.discard(nd)
        memo[nd] = deepest + 1
        return memo[nd]
    return max((walk(int(r), set()) for r in forest.roots), default=0)


class _Tables:
    """The forest's per-node and per-leaf arrays as constant tensors."""

    def __init__(self, ctx, forest: _Forest):
        def table(name, data):
            return constant_tensor(ctx, np.asarray(data), "tree_" + name)
        self.mode = table("modes", forest.modes)
        self.split = table("splits", forest.splits)
        self.feature = table("features", forest.feature)
        self.true_id = table("true_ids", forest.true_id)
        self.false_id = table("false_ids", forest.false_id)
        self.true_leaf = table("true_leafs", forest.true_leaf)
        self.false_leaf = table("false_leafs", forest.false_leaf)
        self.nan_true = table("nan_true", forest.nan_true)
        self.weight = table("weights", forest.weights)
        self.target = table("targets", forest.targets)
        self.root = table("roots", forest.roots)
        n = len(forest.modes)
        start, count, values = np.zeros(n, np.int64), np.zeros(n, np.int64), []
        for nd, members in sorted(forest.members.items()):
            start[nd], count[nd] = len(values), len(members)
            values.extend(np.asarray(members, np.float64).tolist())
        self.has_members = bool(forest.members)
        if self.has_members:
            self.member_start = table("member_start", start)
            self.member_count = table("member_count", count)
            self.members = table("members", np.asarray(values, np.float64))


def _goes_true(ctx, tb: _Tables, nd, v):
    s = tb.split.at((nd,))
    mode = tb.mode.at((nd,))
    go = E.const(False, DType.bool)
    for m, cmp in ((_NEQ, E.ne), (_EQ, E.eq), (_GT, E.gt), (_GTE, E.ge), (_LT, E.lt),
                   (_LEQ, E.le)):
        go = E.select(E.eq(mode, m), cmp(v, s), go)
    if tb.has_members:
        j = ctx.fresh_var("j")
        first = tb.member_start.at((nd,))
        member = Reduce("or", E.const(False, DType.bool),
                        ((j, first, E.add(first, tb.member_count.at((nd,)))),),
                        E.eq(tb.members.at((j,)), v))
        go = E.select(E.eq(mode, _MEMBER), member, go)
    nan_true = E.cast(tb.nan_true.at((nd,)), DType.bool)
    return E.binary("or", go, E.binary("and", E.unary("isnan", v), nan_true))


def _scores(ctx, node, x: Tensor, forest: _Forest, aggregate: int):
    """Emit the forest walk; returns the f64 scratch buffer of raw scores [N, targets]."""
    rows, features = x.shape
    targets = Const(forest.n_targets)
    acc = ctx.new_buffer("tree_scores", (rows, targets), f64)
    tb = _Tables(ctx, forest)
    depth = _depth(ctx, node, forest)
    r, t, k, step = (ctx.fresh_var(h) for h in ("r", "t", "k", "step"))
    at_node, leaf = ctx.fresh_var("node"), ctx.fresh_var("leaf")
    v, nxt = Var(ctx.fresh_name("v"), f64), ctx.fresh_var("next")
    init = 0.0 if aggregate in (_AVERAGE, _SUM) else math.nan
    feature = E.clamp(tb.feature.at((at_node,)), 0, E.sub(features, 1))
    go = _goes_true(ctx, tb, at_node, v)
    is_leaf = E.cast(E.select(go, tb.true_leaf.at((at_node,)), tb.false_leaf.at((at_node,))),
                     DType.bool)
    walk = Loop(step, E.ZERO, Const(depth), [If(E.lt(leaf, 0), [
        Local(v, E.cast(x.at((r, feature)), f64)),
        Local(nxt, E.select(go, tb.true_id.at((at_node,)), tb.false_id.at((at_node,)))),
        If(is_leaf, [Assign(leaf, nxt)], [Assign(at_node, nxt)])])])
    last = max(len(forest.weights) - 1, 0)
    w = tb.weight.at((E.clamp(leaf, 0, last),))
    where = (r, E.clamp(tb.target.at((E.clamp(leaf, 0, last),)), 0, forest.n_targets - 1))
    old = acc[where]
    if aggregate in (_AVERAGE, _SUM):
        new = old + w
    else:
        new = E.select(E.unary("isnan", old), w,
                       E.binary("min" if aggregate == _MIN else "max", old, w))
    per_tree = [Local(at_node, tb.root.at((k,))), Local(leaf, Const(-1)), walk,
                If(E.ge(leaf, 0), [Store(acc, where, new)])]
    body = [Loop(t, E.ZERO, targets, [Store(acc, (r, t), E.const(init, f64))]),
            Loop(k, E.ZERO, Const(len(forest.roots)), per_tree)]
    ctx.emit(kernel(ctx.fresh_name("tree_ensemble", kernel=True),
                    [Loop(r, E.ZERO, rows, body, LoopKind.PARALLEL)]))
    return acc


def _erfinv(y):
    """Winitzki's approximation polished by three Newton steps (as the reference)."""
    y = E.binary("min", E.binary("max", y, E.const(-1.0, f64)), E.const(1.0, f64))
    a = 0.147
    ln = E.unary("log", E.const(1.0, f64) - y * y)
    t = E.const(2 / (math.pi * a), f64) + ln * 0.5
    x = E.unary("sign", y) * E.unary("sqrt", E.unary("sqrt", t * t - ln / a) - t)
    inner = E.lt(E.unary("abs", y), E.const(1.0, f64))
    for _ in range(3):
        slope = E.const(2 / math.sqrt(math.pi), f64) * E.unary("exp", -(x * x))
        x = E.select(inner, x - (E.unary("erf", x) - y) / slope, x)
    return x


def _post(ctx, s: Tensor, kind: int, dtype: DType) -> Tensor:
    targets = s.shape[1]
    zero = E.const(0.0, f64)

    def over_row(combiner, init, r, fn):
        j = ctx.fresh_var("j")
        return Reduce(combiner, E.const(init, f64), ((j, E.ZERO, targets),), fn(s.at((r, j))))

    def at(idx):
        r = idx[0]
        v = s.at(idx)
        if kind == _SOFTMAX:
            top = over_row("max", -math.inf, r, lambda e: e)
            total = over_row("add", 0.0, r, lambda e: E.unary("exp", e - top))
            y = E.unary("exp", v - top) / total
        elif kind == _SOFTMAX_ZERO:
            top = over_row("max", -math.inf, r, lambda e: E.select(E.ne(e, 0.0), e, -math.inf))
            top = E.select(E.unary("isinf", top), zero, top)
            total = over_row("add", 0.0, r,
                             lambda e: E.select(E.ne(e, 0.0), E.unary("exp", e - top), zero))
            y = E.select(E.binary("and", E.ne(v, 0.0), E.gt(total, zero)),
                         E.unary("exp", v - top) / total, zero)
        elif kind == _LOGISTIC:
            y = E.const(1.0, f64) / (E.const(1.0, f64) + E.unary("exp", -v))
        elif kind == _PROBIT:
            y = E.const(math.sqrt(2), f64) * _erfinv(v * 2.0 - 1.0)
        else:
            y = v
        return E.cast(y, dtype)
    return Tensor(s.shape, dtype, at)


@register(ops.TreeEnsemble)
def lower_tree_ensemble(ctx, node, inputs):
    x = inputs[0]
    a = ctx.attrs(node)
    forest = _Forest(a, node)
    acc = _scores(ctx, node, x, forest, a.aggregate_function)
    roots = len(forest.roots)

    def raw(idx):
        s = acc[idx]
        if a.aggregate_function in (_MIN, _MAX):
            s = E.select(E.unary("isnan", s), E.const(0.0, f64), s)
        if a.aggregate_function == _AVERAGE and roots:
            s = s / E.const(float(roots), f64)
        return s
    scores = Tensor(acc.shape, f64, raw)
    return [_post(ctx, scores, a.post_transform, ctx.out_dtype(node))]
