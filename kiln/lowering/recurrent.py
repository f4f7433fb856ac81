"""Recurrent layers: RNN, GRU and LSTM, lowered directly (every ONNX attribute).

Why a lowering and not a graph pass into Scan: the per-step work is small and fixed (one
recurrent matrix product and a few elementwise gates), while the masks of sequence_lens, the
reverse-within-length reads and the two directions would be many extra Graph IR nodes per step.
Lowered directly it is:

1. W and R packed (`pack`: blocks of gate columns, each contiguous, so the products stream
   them; constant weights are packed when compiling, others by a kernel), and the input projection of every time step at once,
   XW[d, t, b, q] = sum_i X[t, b, i] W[d, q, i] + Wb[d, q] + Rb[d, q] (Rb of GRU's candidate gate
   stays out with linear_before_reset), parallel over time steps.
2. One kernel for the recurrence: per direction, the state in H[d] (and C[d]) starts from
   initial_h/initial_c (or zero), then a serial loop over time whose step is the gates'
   product with R (`accumulate`: register-blocked, a few batch rows times a vector of gate
   columns accumulated in registers over k; parallel over column blocks when big) and then the
   state update, in place
   (each element reads only its own old state once the gates are computed). GRU takes two
   products: z and r first, then the candidate's (of h, or of r * h). A batch entry past its
   sequence length keeps its state and outputs zeros; a reverse direction reads (and writes Y
   at) len - 1 - t. Y_h and Y_c are the states at the end.

Computation is in the reference's accumulator dtype (float32 for float16/bfloat16/float32,
float64 for float64); activations take alpha/beta in order as the op's reference does, and
`clip` bounds every activation input.
"""

from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.rnn import DIRECTIONS, bind_activations, num_directions
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Load, Var
from ..loops.stmt import Assign, Local, Loop, LoopKind, Store
from . import exprs as E
from .registry import register
from .tensor import VECTOR_BYTES, Tensor, kernel, loop_nest, widen

BLOCK = 64                    # columns of a product kept in cache while its depth runs
MAX_GROUP = 8                 # rows of a product accumulated together (in registers)
CHAINS = 8                    # independent vector accumulators that keep the FMA units busy
PARALLEL_MIN_WORK = 1 << 17   # multiply-adds of one product worth splitting across threads

# name (lower case) -> (Expr builder of x, alpha, beta; default alpha; default beta), as in the
# op's reference (kiln/ir/ops/rnn.py); None: the function takes no such parameter
ACTIVATIONS = {
    "relu": (lambda x, a, b: E.binary("max", x, 0.0), None, None),
    "tanh": (lambda x, a, b: E.unary("tanh", x), None, None),
    "sigmoid": (lambda x, a, b: E.unary("sigmoid", x), None, None),
    "affine": (lambda x, a, b: E.binary("add", E.binary("mul", x, a), b), 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: E.select(E.ge(x, 0.0), x, E.binary("mul", x, a)), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: E.select(E.gt(x, a), x, 0.0), 1.0, None),
    "scaledtanh": (lambda x, a, b: E.binary("mul", E.unary("tanh", E.binary("mul", x, b)), a),
                   1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: E.binary("min", E.binary(
        "max", E.binary("add", E.binary("mul", x, a), b), 0.0), 1.0), 0.2, 0.5),
    "elu": (lambda x, a, b: E.select(E.ge(x, 0.0), x, E.binary(
        "mul", E.binary("sub", E.unary("exp", x), 1.0), a)), 1.0, None),
    "softsign": (lambda x, a, b: E.binary("div", x, E.binary("add", E.unary("abs", x), 1.0)),
                 None, None),
    "softplus": (lambda x, a, b: E.binary("add", E.binary("max", x, 0.0), E.unary(
        "log", E.binary("add", E.unary("exp", E.unary("neg", E.unary("abs", x))), 1.0))),
        None, None),
}

# op -> (gate blocks, default activations of one direction)
KINDS = {ops.RNN: (1, ("Tanh",)), ops.GRU: (3, ("Sigmoid", "Tanh")),
         ops.LSTM: (4, ("Sigmoid", "Tanh", "Tanh"))}


def activation_exprs(ctx, node, a, defaults: tuple) -> list:
    """Per direction, the activation functions (Expr -> Expr, alpha/beta bound)."""
    return bind_activations(a, defaults, ACTIVATIONS,
                            lambda message, hint=None: ctx.fail(node, message, hint=hint))


@register(ops.RNN, ops.GRU, ops.LSTM)
def lower_recurrent(ctx, node, inputs):
    a = ctx.attrs(node)
    gates, defaults = KINDS[node.op]
    inputs = list(inputs) + [None] * (8 - len(inputs))
    x, w, r, bias, lens, h0, c0, peep = inputs[:8]
    lstm, gru = node.op is ops.LSTM, node.op is ops.GRU
    if a.direction not in DIRECTIONS:
        ctx.fail(node, f"direction '{a.direction}' is not one of {', '.join(DIRECTIONS)}")
    nd = num_directions(a)
    acts = activation_exprs(ctx, node, a, defaults)
    acc = DType.float64 if x.dtype is DType.float64 else DType.float32
    lbr = gru and bool(a.linear_before_reset)

    seq, batch = (x.shape[1], x.shape[0]) if a.layout else (x.shape[0], x.shape[1])
    size_in, hidden = x.shape[2], r.shape[2]
    gh = E.mul(gates, hidden)
    state = (batch, Const(nd), hidden) if a.layout else (Const(nd), batch, hidden)
    _check_dims(ctx, node, [("W", w, (Const(nd), gh, size_in)), ("R", r, (Const(nd), gh, hidden)),
                            ("B", bias, (Const(nd), E.mul(2, gh))),
                            ("sequence_lens", lens, (batch,)), ("initial_h", h0, state),
                            ("initial_c", c0, state), ("P", peep, (Const(nd), E.mul(3, hidden)))])

    def xs(t, b, i):
        return widen(x.at((b, t, i) if a.layout else (t, b, i)))

    def state0(t0: Tensor | None, d, b, j):
        if t0 is None:
            return E.const(0, acc)
        return E.cast(t0.at((b, d, j) if a.layout else (d, b, j)), acc)

    def clip(v):
        if a.clip is None:
            return v
        return E.binary("min", E.binary("max", v, -float(a.clip)), float(a.clip))

    def bias_at(d, q, recurrent: bool):
        if bias is None:
            return E.const(0, acc)
        return E.cast(bias.at((d, E.add(q, gh) if recurrent else q)), acc)

    # 1. packed weights and the input projection of every step --------------------------------
    w_packed = pack(ctx, w, E.ZERO, gh, size_in, nd, acc, "w_packed")
    two = E.mul(2, hidden)
    if gru:     # z and r first, then the candidate's product (of h, or of r * h)
        r_packs = {"zr": pack(ctx, r, E.ZERO, two, hidden, nd, acc, "r_packed"),
                   "h": pack(ctx, r, two, hidden, hidden, nd, acc, "r_packed")}
    else:
        r_packs = {"all": pack(ctx, r, E.ZERO, gh, hidden, nd, acc, "r_packed")}
    xw = ctx.new_buffer("xw", (nd, seq, batch, gh), acc)

    def xw_init(d, t):
        def init(b, q):
            total = bias_at(d, q, False)
            if not lbr:
                return E.binary("add", total, bias_at(d, q, True))
            return E.binary("add", total, E.select(E.lt(q, E.mul(2, hidden)),
                                                   bias_at(d, q, True), E.const(0, acc)))
        return init

    t = ctx.fresh_var("t")
    proj = []
    for d in range(nd):
        dc = Const(d)
        rows = accumulate(ctx, lambda b, q, dc=dc: (dc, t, b, q), xw, batch, E.ZERO, gh, size_in,
                          lambda b, k: E.cast(xs(t, b, k), acc),
                          lambda k, qb, q, dc=dc: Load(w_packed, (dc, qb, k, q)),
                          xw_init(dc, t))
        kind = LoopKind.PARALLEL if _big(E.mul(E.mul(seq, batch), E.mul(gh, size_in))) \
            else LoopKind.SERIAL
        proj.append(Loop(t, E.ZERO, seq, rows, kind))
        t = ctx.fresh_var("t")
    ctx.emit(kernel(ctx.fresh_name("projection", kernel=True), proj))

    # 2. the recurrence ------------------------------------------------------------------------
    out_dtype = x.dtype
    y = _output(ctx, node, 0, (batch, seq, Const(nd), hidden) if a.layout else
                (seq, Const(nd), batch, hidden), out_dtype)
    y_h = _output(ctx, node, 1, state, out_dtype)
    y_c = _output(ctx, node, 2, state, out_dtype) if lstm else None
    hs = ctx.new_buffer("h_state", (nd, batch, hidden), acc)
    cs = ctx.new_buffer("c_state", (nd, batch, hidden), acc) if lstm else None
    gbuf = ctx.new_buffer("gates", (batch, gh), acc)

    def nest(shape, buffer, body):
        return loop_nest(ctx, shape, buffer, body)

    def gates_of(d, which, q0, n, init, lhs):
        """gbuf[b, q0 + q] = init(b, q0 + q) + sum_k lhs(b, k) R[d, q0 + q, k], q < n."""
        packed = r_packs[which]
        return accumulate(ctx, lambda b, q: (b, q), gbuf, batch, q0, n, hidden, lhs,
                          lambda k, qb, q: Load(packed, (d, qb, k, q)), init,
                          parallel=_big(E.mul(E.mul(batch, n), hidden)))

    stmts = []
    stmts += nest((Const(nd), batch, hidden), hs, lambda i: [Store(hs, i, state0(h0, *i))])
    if lstm:
        stmts += nest((Const(nd), batch, hidden), cs, lambda i: [Store(cs, i, state0(c0, *i))])
    for d in range(nd):
        dc = Const(d)
        f = acts[d]
        backwards = a.direction == "reverse" or d == 1
        t = ctx.fresh_var("t")

        def length(b):
            if lens is None:
                return seq
            return E.clamp(E.cast(lens.at((b,)), DType.int64), E.ZERO, seq)

        def live(b):
            if lens is None:
                return Const(True, DType.bool)
            return E.lt(t, length(b))

        def at_time(b):
            """The time step the direction is at for batch entry b (where it reads and
            writes)."""
            if not backwards:
                return t
            if lens is None:
                return E.sub(E.sub(seq, 1), t)
            n = length(b)
            return E.select(live(b), E.sub(E.sub(n, 1), t), t)

        def xw_at(b, q):
            return Load(xw, (dc, at_time(b), b, q))

        def h_old(b, k):
            return Load(hs, (dc, b, k))

        def finish(b, j, h_new, c_new=None):
            """Keep the state past the sequence length; write Y (0 there)."""
            keep = live(b)
            out = []
            hv = Var(ctx.fresh_name("h_new"), acc)
            out.append(Local(hv, h_new))
            if c_new is not None:
                out.append(Store(cs, (dc, b, j), E.select(keep, c_new, Load(cs, (dc, b, j)))))
            if y is not None:
                at = at_time(b)
                idx = (b, at, dc, j) if a.layout else (at, dc, b, j)
                out.append(Store(y, idx, E.cast(E.select(keep, hv, E.const(0, acc)), out_dtype)))
            out.append(Store(hs, (dc, b, j), E.select(keep, hv, Load(hs, (dc, b, j)))))
            return out

        step = []
        if node.op is ops.RNN:
            step += gates_of(dc, "all", E.ZERO, hidden, xw_at, h_old)
            step += nest((batch, hidden), hs,
                         lambda i: finish(i[0], i[1], f[0](clip(Load(gbuf, i)))))
        elif lstm:
            step += gates_of(dc, "all", E.ZERO, gh, xw_at, h_old)
            step += nest((batch, hidden), hs, lambda i: _lstm_update(
                ctx, a, f, clip, acc, gbuf, cs, peep, dc, hidden, i[0], i[1], finish))
        else:
            step += gates_of(dc, "zr", E.ZERO, two, xw_at, h_old)        # z and r
            step += nest((batch, two), gbuf,
                         lambda i: [Store(gbuf, i, f[0](clip(Load(gbuf, i))))])
            if lbr:     # gbuf's h block: h Rh' + Rb_h, scaled by r in the update
                step += gates_of(dc, "h", two, hidden, lambda b, q: bias_at(dc, q, True),
                                 h_old)
            else:       # gbuf's h block: xw_h + (r * h) Rh'
                step += gates_of(dc, "h", two, hidden, xw_at, lambda b, k: E.binary(
                    "mul", Load(gbuf, (b, E.add(hidden, k))), h_old(b, k)))

            def update(i):
                b, j = i
                q = E.add(two, j)
                z = Load(gbuf, (b, j))
                cand = Load(gbuf, (b, q))
                if lbr:
                    cand = E.binary("add", xw_at(b, q),
                                    E.binary("mul", Load(gbuf, (b, E.add(hidden, j))), cand))
                hh = f[1](clip(cand))
                new = E.binary("add", E.binary("mul", E.binary("sub", E.const(1, acc), z), hh),
                               E.binary("mul", z, h_old(b, j)))
                return finish(b, j, new)
            step += nest((batch, hidden), hs, update)
        stmts.append(Loop(t, E.ZERO, seq, step))
    for final, held in ((y_h, hs), (y_c, cs)):
        if final is None:
            continue

        def copy(i, final=final, held=held):
            d, b, j = i
            idx = (b, d, j) if a.layout else (d, b, j)
            return [Store(final, idx, E.cast(Load(held, (d, b, j)), out_dtype))]
        stmts += nest((Const(nd), batch, hidden), hs, copy)
    ctx.emit(kernel(ctx.fresh_name(node.op.name.lower(), kernel=True), stmts))
    return [None if b is None else Tensor.of(b) for b in (y, y_h, y_c)][:len(node.outputs)]


def _lstm_update(ctx, a, f, clip, acc, gbuf, cs, peep, dc, hidden, b, j, finish) -> list:
    """One element of the LSTM state update, from the gates (i, o, f, c blocks) in gbuf."""
    def gate(k):
        return Load(gbuf, (b, E.add(E.mul(k, hidden), j)))

    def peephole(k, v, state):
        """v + P[k] * state (no term without peepholes)."""
        if peep is None:
            return v
        p = E.cast(peep.at((dc, E.add(E.mul(k, hidden), j))), acc)
        return E.binary("add", v, E.binary("mul", p, state))

    c = Load(cs, (dc, b, j))
    iv = Var(ctx.fresh_name("i_gate"), acc)
    cv = Var(ctx.fresh_name("c_new"), acc)
    out = [Local(iv, f[0](clip(peephole(0, gate(0), c))))]
    if a.input_forget:
        forget = E.binary("sub", E.const(1, acc), iv)
    else:
        forget = f[0](clip(peephole(2, gate(2), c)))
    out.append(Local(cv, E.binary("add", E.binary("mul", forget, c),
                                  E.binary("mul", iv, f[1](clip(gate(3)))))))
    o = f[0](clip(peephole(1, gate(1), cv)))
    return out + finish(b, j, E.binary("mul", o, f[2](cv)), cv)


def accumulate(ctx, index, out, rows, q0, n, depth, lhs, rhs, init, parallel=False) -> list:
    """out[index(b, c)] = init(b, c) + sum_k lhs(b, k) rhs(k, qb, q) for b < rows and the
    columns c = q0 + qb * BLOCK + q < q0 + n (rhs reads a `pack`ed matrix).

    A register-blocked product: columns in blocks of BLOCK (the block of rhs stays in cache
    while the rows run), rows in groups of `row_group(rows)`; in a vector loop along q, one
    accumulator per row of the group (a Local, so a register) adds lhs(b, k) * rhs(k, q) for
    every k, each rhs vector loaded once for the whole group; with few rows the vectors span
    several registers, so that about CHAINS sums run side by side. With `parallel` the column
    blocks are split across threads."""
    qb, bb, q, k = (ctx.fresh_var(h) for h in ("qb", "bb", "q", "k"))
    group = row_group(rows)
    lanes = VECTOR_BYTES // out.dtype.itemsize
    while group * lanes < CHAINS * VECTOR_BYTES // out.dtype.itemsize and lanes < BLOCK:
        lanes *= 2           # wider vectors (several registers each): more independent sums
    col = E.add(E.add(q0, E.mul(qb, BLOCK)), q)
    width = E.minimum(BLOCK, E.sub(n, E.mul(qb, BLOCK)))
    rows_here = [E.add(E.mul(bb, group), r) for r in range(group)]
    accs = [Var(ctx.fresh_name("acc"), out.dtype) for _ in range(group)]
    body = [Local(acc, init(b, col)) for acc, b in zip(accs, rows_here)]
    body.append(Loop(k, E.ZERO, depth, [
        Assign(acc, E.binary("add", acc, E.binary("mul", lhs(b, k), rhs(k, qb, q))))
        for acc, b in zip(accs, rows_here)]))
    body += [Store(out, index(b, col), acc) for acc, b in zip(accs, rows_here)]
    vector = Loop(q, E.ZERO, width, body, LoopKind.VECTORIZED, lanes)
    kind = LoopKind.PARALLEL if parallel else LoopKind.SERIAL
    return [Loop(qb, E.ZERO, E.ceildiv(n, BLOCK),
                 [Loop(bb, E.ZERO, E.floordiv(rows, group), [vector])], kind)]


def pack(ctx, m: Tensor, q0, n, depth, nd: int, acc, name: str):
    """m[d, q0 + c, k] (c < n) packed as [d, c // BLOCK, k, c % BLOCK], the columns of one block
    contiguous for each k (zero past n): `accumulate` streams a block with unit stride."""
    blocks = E.ceildiv(n, BLOCK)
    done = _pack_constant(ctx, m, q0, n, blocks, acc, name)
    if done is not None:
        return done

    def at(i):
        d, qb, k, q = i
        c = E.add(E.mul(qb, BLOCK), q)
        src = E.cast(m.at((d, E.add(q0, E.minimum(c, E.sub(n, 1))), k)), acc)
        return E.select(E.lt(c, n), src, E.const(0, acc))
    buf = ctx.new_buffer(name, (nd, blocks, depth, BLOCK), acc)
    ctx.materialize(Tensor((Const(nd), blocks, depth, Const(BLOCK)), acc, at), buf, "pack")
    return buf


def _pack_constant(ctx, m: Tensor, q0, n, blocks, acc, name: str):
    """A constant weight packed when compiling (a CONSTANT buffer), or None when m is not one
    whole constant of known size."""
    buf = m.buffer
    sizes = [E.fold(v) for v in (q0, n, blocks)]
    if buf is None or buf.base is not None or buf.data is None or \
            not all(isinstance(v, Const) for v in sizes):
        return None
    (q0, n, blocks) = (v.value for v in sizes)
    data = np.asarray(buf.data).astype(acc.np)[:, q0:q0 + n, :]          # [d, c, k]
    out = np.zeros((data.shape[0], blocks * BLOCK, data.shape[2]), acc.np)
    out[:, :n, :] = data
    out = np.ascontiguousarray(
        out.reshape(data.shape[0], blocks, BLOCK, data.shape[2]).transpose(0, 1, 3, 2))
    return Buffer(ctx.fresh_name(name), acc, out.shape, BufferKind.CONSTANT, data=out)


def row_group(rows) -> int:
    """Rows accumulated together: the largest divisor of a static row count up to MAX_GROUP
    (1 for a symbolic count)."""
    rows = E.fold(rows)
    if not isinstance(rows, Const):
        return 1
    return max(g for g in range(1, MAX_GROUP + 1) if rows.value % g == 0)


def _big(work) -> bool:
    """Enough multiply-adds to be worth splitting across threads (any symbolic size is)."""
    work = E.fold(work)
    return not isinstance(work, Const) or work.value >= PARALLEL_MIN_WORK


def _check_dims(ctx, node, operands) -> None:
    """Each present operand has the expected dims (static ones are checked by type inference;
    this catches symbolic sizes that may differ at run time, which would read out of bounds)."""
    for name, t, want in operands:
        if t is None:
            continue
        if t.rank != len(want) or not all(E.same(d, e) for d, e in zip(t.shape, want)):
            ctx.fail(node, f"{name} has dims {list(t.shape)}, expected {list(want)}; the back "
                           "end must know they agree",
                     hint="give the batch, sequence and size axes the same sizes or symbolic "
                          "names in every input")


def _output(ctx, node, k: int, shape, dtype):
    v = node.outputs[k] if k < len(node.outputs) else None
    return None if v is None else ctx.buffer_for(v, shape, dtype)
