"""Anchors: tensors (a convolution) whose lowering writes a better loop nest than one store per
element, with whatever elementwise epilogue a fused group put on top of them applied in
registers before the store.

A lowering makes an `Anchor` and returns `anchor.tensor`. Read anywhere, that tensor's `at` is
the plain definition (a Reduce), so every consumer stays correct. When a tensor `t` is written
to memory (`store_all`), `anchored_write` probes it: it evaluates `t.at` at fresh index
variables and records which anchors were read, and where. If exactly one anchor was read, only
at the probe's own index, and `t` has the anchor's shape, then `t` is an elementwise function of
the anchor (bias, folded BatchNorm, Relu, a residual Add...). The anchor's `write` then builds
its blocked nest: it keeps each block's results in locals, and for every element of the block
asks `t.at(index)` once more with the anchor bound to that local (`bind`), so the epilogue is
computed from the register and stored once. When `t` reads several anchors (a residual
block's Add of its conv and its downsampling conv), the one with the most work is blocked and
the others are first written to temps by their own nests, in the same kernel. Anything else (a
reduction over the anchor, a read at a shifted index) keeps the plain nest; `anchored_in_memory`
gives such a consumer its input in a temp and the statements writing it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from ..loops.buffer import BufferKind
from ..loops.expr import simplify_index
from . import exprs as E
from .tensor import Tensor


def _key(idx, shape) -> tuple:
    """An index compared structurally; an axis of size 1 is always read at 0 (broadcasting
    reads it so)."""
    return tuple(E.ZERO if E.is_const(d, 1) else simplify_index(E.index(i))
                 for i, d in zip(idx, shape))


class Anchor:
    """`definition(idx)` is the element's plain Expr; `finish(core, idx)` turns the anchor's
    core value (the plain Reduce or a bound local) into the element (adds a bias, narrows);
    `write(ctx, t, buffer)` returns the statements writing `t` (an elementwise function of this
    anchor) into `buffer`, or None to keep the plain nest."""

    def __init__(self, shape, dtype, definition: Callable, finish: Callable,
                 write: Callable, work: int = 0):
        self.definition, self.finish, self.write_fn = definition, finish, write
        self.work = work                        # multiply-adds, to pick which one to block
        self.bound: dict = {}
        self.reads: list | None = None          # recording while probing
        self.memory: Tensor | None = None       # once written to a temp of its own
        anchor = self

        def at(idx):
            idx = tuple(idx)
            if anchor.memory is not None:
                return anchor.memory.at(idx)
            if anchor.reads is not None:
                anchor.reads.append(_key(idx, shape))
            core = anchor.bound.get(_key(idx, shape)) if anchor.bound else None
            return anchor.finish(anchor.definition(idx) if core is None else core, idx)
        self.tensor = Tensor(tuple(shape), dtype, at)

    @contextmanager
    def bind(self, values: dict):
        """Within the block: reading the anchor at one of `values`' indices gives its Expr."""
        saved = self.bound
        self.bound = {_key(k, self.tensor.shape): v for k, v in values.items()}
        try:
            yield
        finally:
            self.bound = saved


def register_anchor(ctx, anchor: Anchor) -> Tensor:
    """Make `anchor` known to the lowering context (kept in its `anchors` list) and return its
    tensor."""
    ctx.__dict__.setdefault("anchors", []).append(anchor)
    return anchor.tensor


def anchor_of(ctx, t: Tensor) -> tuple:
    """(the one anchor `t` is an elementwise function of (same shape, read only at t's own
    index) or None, statements to run first). When `t` reads several anchors, all but the one
    with the most work are written to temps by those statements, in the same kernel."""
    anchors = getattr(ctx, "anchors", None)     # set by register_anchor
    if not anchors:
        return None, []
    probe = tuple(ctx.fresh_var("probe") for _ in t.shape)
    for a in anchors:
        a.reads = []
    try:
        t.at(probe)
        hit = [a for a in anchors if a.reads]
    finally:
        reads = [a.reads for a in anchors]
        for a in anchors:
            a.reads = None
    if not hit:
        return None, []
    if len(hit) > 1:            # two convs into one Add (a residual block's downsample)
        main = max(hit, key=lambda h: h.work)
        first = []
        for other in hit:
            if other is not main:
                buf = ctx.new_buffer("conv", other.tensor.shape, other.tensor.dtype,
                                     BufferKind.TEMP)
                first += other.write_fn(ctx, other.tensor, buf)
                other.memory = Tensor.of(buf)
        a, more = anchor_of(ctx, t)
        return a, first + more
    a = hit[0]
    shape = a.tensor.shape
    if len(shape) != len(t.shape) or not all(E.same(x, y) for x, y in zip(shape, t.shape)):
        return None, []
    if any(r != _key(probe, shape) for r in reads[anchors.index(a)]):
        return None, []
    return a, []


def anchored_write(ctx, t: Tensor, buffer) -> list | None:
    """The anchor's blocked statements writing `t` into `buffer`, when `t` is an elementwise
    function of exactly one anchor; else None."""
    a, first = anchor_of(ctx, t)
    if a is None:
        return first or None
    return first + a.write_fn(ctx, t, buffer)


def anchored_in_memory(ctx, t: Tensor, name: str) -> tuple[Tensor, list]:
    """(`t`, no statements), or, when `t` is an elementwise function of an anchor, (`t` in a
    temp, the statements writing it by the anchor's nest), for a consumer that is not
    elementwise (a pool ending a fused group), which would otherwise read the anchor's plain
    definition. The consumer's kernel runs the statements first."""
    a, first = anchor_of(ctx, t)
    if a is None:
        return t, first
    buf = ctx.new_buffer(name, t.shape, t.dtype, BufferKind.TEMP)
    return Tensor.of(buf), first + a.write_fn(ctx, t, buf)
