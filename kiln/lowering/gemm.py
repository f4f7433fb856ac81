"""A float32 matrix product as register-blocked Loop IR (the BLIS micro-kernel, see DESIGN.md's
measured facts), with the consumer's epilogue applied to the accumulators before the store.

The building block is `micro_tile`: an MR x (NV*16) tile of C held in MR*NV `<16 x float>`
accumulators (Locals in a 16-lane VECTORIZED loop), updated once per k by broadcasting one
element of A per row and loading NV vectors of B (`acc = acc + a * b`, an FMA). The stores call
back into the caller, who applies its epilogue (bias, activation, residual, scale) to the
accumulator, so a fused group costs no pass over memory after the product.

B is read from a packed copy laid out as the micro-kernel walks it, [panel, k, NR] (NR columns
of one panel contiguous per k, the last panel padded with zeros): a constant B (weights) is
packed when compiling, any other B by a packing nest in the same kernel. A is read in place (one
broadcast per row and k); rows past M read row M-1 and are never stored.

    spec = GemmSpec(batch, m, k, n, a_elem, b_elem, b_data)
    body = gemm_statements(ctx, spec, store)     # store(bidx, i, j, acc) -> [Stmt]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..ir.dtypes import DType
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Expr, Var, children
from ..loops.stmt import Assign, If, Local, Loop, LoopKind, Store
from . import exprs as E

f32 = DType.float32
LANES = 16                      # float32 lanes of one AVX-512 register
# (rows, vectors of 16 columns): 8x48 and 6x32 were the best tiles measured on Zen 4; 8x16 for
# products at most 16 columns wide.
TILES = ((8, 3), (6, 2), (8, 1))
PARALLEL_MIN_FLOPS = 1 << 18    # smaller products are not worth waking the thread pool


@dataclass
class GemmSpec:
    """C[b..., i, j] = sum_k a_elem(b, i, k) * b_elem(b, k, j) over the output batch `batch`.

    a_elem/b_elem take the output's batch index (a tuple), a row/column and k, and give a
    float32 Expr (they broadcast batch dims themselves). `b_data` is B as a [K, N] float32 array
    when it is a compile-time constant shared by every batch (then packed when compiling);
    `b_batch` is B's own batch shape and `b_batch_index(bidx)` maps the output's batch index to
    it (B is packed once per B batch, not per output batch)."""

    batch: tuple
    m: Expr
    k: Expr
    n: Expr
    a_elem: Callable
    b_elem: Callable
    b_data: np.ndarray | None = None
    b_batch: tuple = ()
    b_batch_index: Callable | None = None


def pick_tile(n) -> tuple[int, int]:
    """(MR, NV) for n columns: 8x16 when one vector covers them, else the tile of 8x48 and 6x32
    that pads the last panel least (8x48 on a tie or a symbolic n)."""
    if isinstance(n, Const) and n.value <= LANES:
        return TILES[2]
    if not isinstance(n, Const):
        return TILES[0]
    waste = [(-(-n.value // (nv * LANES)) * nv * LANES - n.value, k) for k, (_, nv) in
             enumerate(TILES[:2])]
    return TILES[min(waste)[1]]


def pack_constant(data: np.ndarray, nr: int) -> np.ndarray:
    """[K, N] -> [ceil(N / nr), K, nr], zero padded: each panel's rows of nr columns contiguous."""
    k, n = data.shape
    panels = -(-n // nr)
    padded = np.zeros((k, panels * nr), np.float32)
    padded[:, :n] = data
    return np.ascontiguousarray(padded.reshape(k, panels, nr).transpose(1, 0, 2))


def micro_tile(ctx, mr: int, nv: int, m: Expr, k_size: Expr, row0: Expr, col0: Expr,
               a_row: Callable, b_vec: Callable, store: Callable, guard_rows: bool = True,
               n: Expr | None = None, via_tile: bool = False) -> list:
    """One mr x (nv*16) tile of C at (row0, col0): the reusable GEMM micro-kernel.

    a_row(i, k) is A's element at row i (already clamped below m) and k; b_vec(k, v, lane) the
    element of B at k and column col0 + 16 v + lane (lane varies across the vector); store(i, j,
    value) gives the statements storing C[i, j] = value (a float32 Expr: the accumulator). Rows
    at or past m are not stored when `guard_rows`; columns at or past n (when given) are masked.

    Normally each accumulator is stored by its own copy of store()'s statements (the epilogue
    in registers). With `via_tile` (for a costly epilogue, whose mr x nv copies would bloat the
    code) the accumulators go to a LOCAL [mr, nv*16] tile that stays in L1, and one vector loop
    over it runs the epilogue once per row."""
    lane, k = ctx.fresh_var("lane"), ctx.fresh_var("k")
    accs = [[Var(ctx.fresh_name(f"acc{r}_{v}"), f32) for v in range(nv)] for r in range(mr)]
    zero = E.const(0, f32)
    rows = [E.minimum(E.add(row0, r), E.sub(m, 1)) if guard_rows else E.add(row0, r)
            for r in range(mr)]
    update = []
    for r in range(mr):
        a = a_row(rows[r], k)
        for v in range(nv):
            update.append(Assign(accs[r][v], accs[r][v] + a * b_vec(k, v, lane)))

    def guarded(i, j, value):
        s = store(i, j, value)
        return [If(E.lt(j, n), s)] if n is not None else s

    body = [*(Local(acc, zero) for row in accs for acc in row), Loop(k, E.ZERO, k_size, update)]
    if via_tile:
        tile = ctx.new_buffer("c_tile", (Const(mr), Const(nv * LANES)), f32, BufferKind.LOCAL)
        body += [Store(tile, (Const(r), E.add(lane, v * LANES)), accs[r][v])
                 for r in range(mr) for v in range(nv)]
        r, c = ctx.fresh_var("r"), ctx.fresh_var("c")
        i = E.add(row0, r)
        row = [Loop(c, E.ZERO, Const(nv * LANES), guarded(i, E.add(col0, c), tile[r, c]),
                    LoopKind.VECTORIZED, LANES)]
        after = [Loop(r, E.ZERO, Const(mr), [If(E.lt(i, m), row)] if guard_rows else row)]
        return [Loop(lane, E.ZERO, LANES, body, LoopKind.VECTORIZED, LANES), *after]
    for r in range(mr):
        i = E.add(row0, r)
        row = [st for v in range(nv) for st in
               guarded(i, E.add(col0, E.add(lane, v * LANES)), accs[r][v])]
        body += [If(E.lt(i, m), row)] if guard_rows else row
    return [Loop(lane, E.ZERO, LANES, body, LoopKind.VECTORIZED, LANES)]


def expr_size(e: Expr, limit: int = 1 << 30) -> int:
    """Nodes in an expression tree (counted up to `limit`)."""
    count, stack = 0, [e]
    while stack and count < limit:
        x = stack.pop()
        count += 1
        stack.extend(children(x))
    return count


def _unravel(flat: Expr, shape: tuple) -> tuple:
    """The multi-index of `flat` in a row-major `shape`."""
    out = []
    for axis in range(len(shape) - 1, -1, -1):
        out.append(E.mod(flat, shape[axis]) if axis else flat)
        flat = E.floordiv(flat, shape[axis])
    return tuple(reversed(out))


def packed_b(ctx, spec: GemmSpec, nr: int) -> tuple[Buffer, list]:
    """The packed B ([B batch..., panels, K, nr]) and the statements that fill it (none when B
    is a constant, packed now)."""
    if spec.b_data is not None:
        data = pack_constant(spec.b_data, nr)
        buf = Buffer(ctx.fresh_name("packed_b"), f32, data.shape, BufferKind.CONSTANT, data=data)
        return buf, []
    panels = E.ceildiv(spec.n, nr)
    shape = (*spec.b_batch, panels, spec.k, Const(nr))
    buf = ctx.new_buffer("packed_b", shape, f32)
    bvars = [ctx.fresh_var("pb") for _ in spec.b_batch]
    jt, k, lane = ctx.fresh_var("pj"), ctx.fresh_var("pk"), ctx.fresh_var("pl")
    col = E.add(E.mul(jt, nr), lane)
    value = E.select(E.lt(col, spec.n),
                     spec.b_elem(tuple(bvars), k, E.minimum(col, E.sub(spec.n, 1))),
                     E.const(0, f32))
    body = [Store(buf, (*bvars, jt, k, lane), value)]
    body = [Loop(lane, E.ZERO, nr, body, LoopKind.VECTORIZED, LANES)]
    body = [Loop(k, E.ZERO, spec.k, body)]
    outer = [*zip(bvars, spec.b_batch), (jt, panels)]
    for kk, (v, stop) in enumerate(reversed(outer)):
        kind = LoopKind.PARALLEL if kk == len(outer) - 1 else LoopKind.SERIAL
        body = [Loop(v, E.ZERO, stop, body, kind)]
    return buf, body


def gemm_statements(ctx, spec: GemmSpec, store: Callable, via_tile: bool = False) -> list:
    """Statements computing C = A @ B for `spec`, storing through store(bidx, i, j, value);
    `via_tile` as for micro_tile."""
    mr, nv = pick_tile(spec.n)
    nr = nv * LANES
    bp, prologue = packed_b(ctx, spec, nr)
    tiles_m, tiles_n = E.ceildiv(spec.m, mr), E.ceildiv(spec.n, nr)
    t = ctx.fresh_var("tile")
    per_batch = E.mul(tiles_n, tiles_m)
    # the tile's coordinates, computed once per tile as locals (not in every index)
    coords = []

    def local(hint, value):
        if isinstance(value, (Const, Var)):
            return value
        v = Var(ctx.fresh_name(hint))
        coords.append(Local(v, value))
        return v
    rest = local("in_batch", E.mod(t, per_batch)) if spec.batch else t
    flat_b = E.floordiv(t, per_batch)
    bidx = tuple(local(f"batch{d}", e) for d, e in
                 enumerate(_unravel(flat_b, spec.batch))) if spec.batch else ()
    jt = local("panel", E.floordiv(rest, tiles_m))
    row0 = local("row0", E.mul(E.mod(rest, tiles_m), mr))
    col0 = local("col0", E.mul(jt, nr))
    pidx = spec.b_batch_index(bidx) if spec.b_data is None and spec.b_batch else ()
    ragged = not (isinstance(spec.n, Const) and spec.n.value % nr == 0)

    def b_vec(k, v, lane):
        return bp[(*pidx, jt, k, E.add(lane, v * LANES))]

    tile = micro_tile(ctx, mr, nv, spec.m, spec.k, row0, col0,
                      lambda i, k: spec.a_elem(bidx, i, k), b_vec,
                      lambda i, j, acc: store(bidx, i, j, acc), n=spec.n if ragged else None,
                      via_tile=via_tile)
    count = E.mul(E.product(spec.batch), per_batch) if spec.batch else per_batch
    return [*prologue, Loop(t, E.ZERO, count, [*coords, *tile], _parallel_kind(spec))]


def _parallel_kind(spec: GemmSpec) -> LoopKind:
    sizes = [*spec.batch, spec.m, spec.k, spec.n]
    if not all(isinstance(d, Const) for d in sizes):
        return LoopKind.PARALLEL
    flops = 2
    for d in sizes:
        flops *= d.value
    return LoopKind.PARALLEL if flops >= PARALLEL_MIN_FLOPS else LoopKind.SERIAL
