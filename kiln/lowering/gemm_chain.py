"""Back-to-back matrix products (a dense network's layers) as one kernel over tiles of rows.

A *stage* is a fused group of: a float32 MatMul/Gemm of a [M, K] row operand A and a constant
[K, N] B (Gemm: transA 0, a constant C), then elementwise/broadcast ops whose other operands are
constants that broadcast along rows (bias, scale), and, only in the last stage, a Softmax over
the last axis. Every op is row-local: row r of the stage's result depends on row r of A only.
A *chain* is a sequence of stages where each one's result feeds only the A operand of the next.

Such a chain runs as one kernel: a PARALLEL loop over tiles of TR rows, and in it, per stage,
the GEMM micro-kernel (kiln/lowering/gemm.py) over the tile's rows and the stage's columns,
its epilogue applied in registers, writing the stage's [TR, N] result into a LOCAL tile that
the next stage reads as its A. Only the chain's input is read from memory and only its last
result is written. The LOCAL tiles are bounded (TILE_BYTES); the fusion rule
(kiln/passes/fuse.py, `chain_gemm_groups`) merges stages only within that bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.opdef import FusionKind
from ..ir.types import TensorType
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Var, substitute
from ..loops.stmt import Assign, If, Local, Loop, LoopKind, Store
from . import exprs as E
from .gemm import LANES, micro_tile, pack_constant
from .gemm_tensor import epilogue_of, gemm_info
from .reduce import lowest
from .tensor import Tensor

f32 = DType.float32
TILE_BYTES = 64 * 1024         # the LOCAL row tiles of one chain, together, at most this
ROW_TILES = (32, 24, 16, 8)    # rows per tile, the most that fits TILE_BYTES
MR = 8


@dataclass
class Stage:
    nodes: list            # the GEMM first, in graph order
    gemm: object           # the MatMul/Gemm node
    n: int                 # the stage's columns
    softmax: object = None # a Softmax ending the last stage

    @property
    def result(self):
        return self.nodes[-1].outputs[0]

    @property
    def product_end(self):
        """The value the GEMM's epilogue ends in (the Softmax's input, or the result)."""
        return self.softmax.inputs[0] if self.softmax is not None else self.result


def _shape(v):
    t = v.type if v is not None else None
    return t.shape if isinstance(t, TensorType) and t.dtype is f32 else None


def _row_broadcast_constant(v, n: int) -> bool:
    """A float32 constant read the same by every row: shape (), (n,), (1, n), (1,) or (1, 1)."""
    shape = _shape(v)
    return v.is_constant and shape is not None and len(shape) <= 2 and \
        all(d == 1 for d in shape[:-1]) and (not shape or shape[-1] in (1, n))


def gemm_stage(nodes: list) -> Stage | None:
    """The stage `nodes` (one fused group, in graph order) form, or None."""
    if not nodes or nodes[0].op not in (ops.MatMul, ops.Gemm):
        return None
    g = nodes[0]
    a, b = g.inputs[0], g.inputs[1]
    sa, sb, so = _shape(a), _shape(b), _shape(g.outputs[0])
    if sa is None or sb is None or so is None or len(sa) != 2 or len(sb) != 2 or \
            not b.is_constant or not isinstance(so[1], int) or not isinstance(sa[1], int):
        return None
    n = so[1]
    if g.op is ops.Gemm:
        c = g.inputs[2] if len(g.inputs) > 2 else None
        if g.attr("transA") or (c is not None and not _row_broadcast_constant(c, n)):
            return None
    inside = {id(g.outputs[0])}
    softmax = None
    for k, node in enumerate(nodes[1:], 1):
        if len(node.outputs) != 1 or any(v is None for v in node.inputs):
            return None
        if node.op is ops.Softmax and k == len(nodes) - 1 and \
                node.attr("axis") in (-1, 1) and id(node.inputs[0]) in inside:
            softmax = node
        elif node.op.kind not in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST) or \
                _shape(node.outputs[0]) != so or \
                not all(id(v) in inside or _row_broadcast_constant(v, n) for v in node.inputs):
            return None
        inside.add(id(node.outputs[0]))
    return Stage(list(nodes), g, n, softmax)


def rows_per_tile(local_columns: int) -> int | None:
    """Rows per tile so that the LOCAL tiles (local_columns floats per row) fit TILE_BYTES."""
    for tr in ROW_TILES:
        if tr * local_columns * 4 <= TILE_BYTES:
            return tr
    return None


def local_columns(stages: list) -> int:
    """Floats per row the chain keeps in LOCAL tiles: every stage's result but the last, and
    the last's too when a Softmax normalizes it in the tile."""
    return sum(s.n for s in stages[:-1]) + (stages[-1].n if stages[-1].softmax else 0)


def chain_stages(nodes: list) -> list | None:
    """The stages of a fused body that is a chain of at least two products, else None."""
    starts = [k for k, n in enumerate(nodes) if n.op in (ops.MatMul, ops.Gemm)]
    if len(starts) < 2 or starts[0] != 0:
        return None
    stages = []
    for lo, hi in zip(starts, starts[1:] + [len(nodes)]):
        s = gemm_stage(nodes[lo:hi])
        if s is None:
            return None
        stages.append(s)
    for s1, s2 in zip(stages, stages[1:]):
        if s1.softmax is not None or s2.gemm.inputs[0] is not s1.result:
            return None
    if rows_per_tile(local_columns(stages)) is None:
        return None
    return stages


def _tile_columns(n: int) -> int:
    """Vectors of 16 columns per micro-tile (8 rows): the fewest padded columns, wider on ties."""
    if n <= LANES:
        return 1
    return min((3, 2), key=lambda nv: (-(-n // (nv * LANES)) * nv * LANES - n, -nv))


def lower_chain(ctx, node, stages: list) -> list:
    from .graph import lower_node
    for n in (n for s in stages for n in s.nodes):
        lower_node(ctx, n, materialize=False)
    epilogues = []
    for s in stages:
        info = gemm_info(ctx.tensor(s.gemm.outputs[0]))
        found = None if info is None else epilogue_of(ctx, ctx.tensor(s.product_end), info)
        if found is None or found[3]:   # not what the stage rule promised: compose plainly
            return [ctx.tensor(v) for v in node.attrs["body"].outputs]
        epilogues.append((info, found[:3]))
    final = ctx.tensor(stages[-1].result)
    out = Tensor(final.shape, final.dtype, final.at)
    out.write = lambda c, buffer: chain_statements(c, stages, epilogues, buffer)
    return [out]


def chain_statements(ctx, stages: list, epilogues: list, out: Buffer) -> list:
    """The kernel body: a loop over row tiles, each running every stage into LOCAL tiles."""
    tr = rows_per_tile(local_columns(stages))
    first = epilogues[0][0].spec
    m = first.m
    rt = ctx.fresh_var("row_tile")
    row0 = E.mul(rt, tr)
    body, prev = [], None
    for k, (s, (info, (idx, acc, expr))) in enumerate(zip(stages, epilogues)):
        last = k == len(stages) - 1
        nv = _tile_columns(s.n)
        nr = nv * LANES
        data = pack_constant(info.spec.b_data, nr)
        bp = Buffer(ctx.fresh_name("packed_b"), f32, data.shape, BufferKind.CONSTANT, data=data)
        tile = None
        if not last or s.softmax is not None:
            tile = ctx.new_buffer(f"rows{k}", (Const(tr), Const(s.n)), f32, BufferKind.LOCAL)
        if prev is None:
            a_row = (lambda i, kk: first.a_elem((), E.minimum(E.add(row0, i), E.sub(m, 1)), kk))
        else:
            a_row = (lambda i, kk, prev=prev: prev[i, kk])
        body += _stage_loops(ctx, s, nv, bp, a_row, info.spec.k, tr, row0, m, (idx, acc, expr),
                             tile if tile is not None else out, tile is None)
        prev = tile
    if stages[-1].softmax is not None:
        body += _softmax_rows(ctx, prev, stages[-1].n, tr, row0, m, out)
    return [Loop(rt, E.ZERO, E.ceildiv(m, tr), body, LoopKind.PARALLEL)]


def _stage_loops(ctx, s: Stage, nv: int, bp: Buffer, a_row, k_size, tr: int, row0, m,
                 epilogue, dest: Buffer, to_memory: bool) -> list:
    """One stage over the tile's tr rows: panels of columns, in each the 8-row micro-tiles.
    The epilogue's element index (row, column) gets the global row; the result goes to the
    LOCAL tile (tile rows) or, in the last stage, to memory (rows past m not stored)."""
    idx, acc, expr = epilogue
    jt, it = ctx.fresh_var("panel"), ctx.fresh_var("rows")
    nr = nv * LANES

    def store(i, j, value):
        grow = E.add(row0, i)
        v = substitute(expr, {idx[0]: grow, idx[1]: j, acc: value})
        if to_memory:
            return [If(E.lt(grow, m), [Store(dest, (grow, j), v)])]
        return [Store(dest, (i, j), v)]

    def b_vec(k, v, lane):
        return bp[jt, k, E.add(lane, v * LANES)]

    ragged = s.n % nr != 0
    tile = micro_tile(ctx, MR, nv, Const(tr), k_size, E.mul(it, MR), E.mul(jt, nr), a_row, b_vec,
                      store, guard_rows=False, n=Const(s.n) if ragged else None)
    return [Loop(jt, E.ZERO, Const(-(-s.n // nr)), [Loop(it, E.ZERO, Const(tr // MR), tile)])]


def _softmax_rows(ctx, tile: Buffer, n: int, tr: int, row0, m, out: Buffer) -> list:
    """Softmax over each row of the LOCAL tile (exp(x - max) / sum, as the op's lowering
    computes it), stored to the tile's rows of `out` that exist."""
    r = ctx.fresh_var("r")
    j1, j2, j3 = ctx.fresh_var("j"), ctx.fresh_var("j"), ctx.fresh_var("j")
    mx, total = Var(ctx.fresh_name("row_max"), f32), Var(ctx.fresh_name("row_sum"), f32)
    grow = E.add(row0, r)
    vec = LoopKind.VECTORIZED

    def shifted(j):
        return E.unary("exp", tile[r, j] - mx)
    row = [Local(mx, lowest(f32)),
           Loop(j1, E.ZERO, Const(n), [Assign(mx, E.binary("max", mx, tile[r, j1]))], vec),
           Local(total, E.const(0, f32)),
           Loop(j2, E.ZERO, Const(n), [Assign(total, total + shifted(j2))], vec),
           Loop(j3, E.ZERO, Const(n), [Store(out, (grow, j3), shifted(j3) / total)], vec)]
    return [Loop(r, E.ZERO, Const(tr), [If(E.lt(grow, m), row)])]
