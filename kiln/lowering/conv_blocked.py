"""float32 2-D convolution as a register-blocked direct convolution (the GEMM recipe of
DESIGN.md's measured facts, applied to Conv without an im2col buffer).

    parallel for mb in [0, M / MR)                 blocks of MR output channels, one group each
      for n, for oh                                (row form; the flat form has no oh loop)
        vector for ow in [0, OW), 16 lanes         output positions along a row
          acc_0 .. acc_{MR-1} = 0                  <16 x float> each: MR output channels
          for c in [0, C / group)
            (every tap kh, kw, written out)
              xv = xp[n, c, phase(kh), phase(kw), oh + a(kh), ow + a(kw)]      one vector load
              acc_r += xv * wp[mb, c, kh, kw, r]                                broadcast, fma
          y[n, mb * MR + r, oh, ow] = epilogue(acc_r)                           one store each

- **Weights** are repacked when compiling into wp[M / MR, C / group, KH, KW, MR]: the MR
  weights one tap broadcasts are adjacent, and the kernel walks wp in order. A weight that is
  not a constant is packed by a nest of the same kernel.
- **Input.** The kernel first copies x into xp, padded and split by stride phase:
  xp[n, c, ph, pw, i, j] = x[n, c, i * s + ph - pad, j * s + pw - pad] (0 outside). Tap k of
  output o then reads phase (k * d) mod s at o + (k * d) div s, so every read is contiguous
  along the vector, whatever the stride, and the hot loop has no padding test. With no padding
  and stride 1 the copy is skipped when x is already a contiguous buffer.
- **Flat form.** A narrow image wastes most lanes of a row. Then the vector runs over q in
  [0, OH * Wq), the rows of xp laid end to end (Wq = xp's row length): tap (kh, kw) of q reads
  xp's flat position q + a(kh) * Wq + a(kw), still contiguous. Lanes whose column is past OW
  are computed and dropped (the store is under a per-lane test); xp has one more row so their
  reads stay inside it.
- **Channel form.** When both of those leave lanes idle (rows of 7, 14, 28 or 56), each output
  sums enough terms and the output channels of a group are a multiple of 16: the vector holds
  16 output channels, and up to 14 positions of a row are the accumulators (one weight vector
  load and 14 broadcast FMAs a tap; the stores go down the channel axis). ResNet-18's 3x3
  convolutions all take it; its stem keeps the row form.
- **Code size.** With many taps or input channels the taps of one kernel row are written out
  inside a loop over the rows, instead of all of them.
- **Epilogue.** The conv is an Anchor (conv_epilogue.py): the tensor written (the conv itself,
  or a fused group's bias / Relu / residual Add on top of it) is evaluated per accumulator.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Load, Var
from ..loops.stmt import Assign, If, Local, Loop, LoopKind, Store
from . import exprs as E
from .conv_epilogue import Anchor, register_anchor
from .tensor import VECTOR_BYTES, Tensor, is_contiguous, loop_nest

f32 = DType.float32
LANES = VECTOR_BYTES // 4          # float32 lanes of one vector register
MAX_BLOCK = 8                      # output channels per block (accumulator vectors)
FLAT_GAIN = 1.15                   # the flat form's lane use must beat the row form's by this
# the channel form: taken when the row and flat forms leave lanes idle (use fewer than this),
# a row splits into blocks of MIN_ROW..MAX_ROW positions (one accumulator each) and each output
# sums at least MIN_TERMS terms (its stores are scatters, paid once per output). Measured on
# one core: ResNet-18's 3x3 convs 95 -> 104-112 GFLOP/s, its 1x1 downsamples of 128 and 256
# channels 71 -> 83-93; below 128 terms (the 64-channel 1x1, the 3-channel stem) it loses.
CHANNEL_FORM_BELOW = 0.99
MAX_ROW = 14
MIN_ROW = 7
# taps x accumulators written out per input channel; a bigger kernel keeps the plain nest
MAX_UNROLLED = 4096
# all taps written out (not a loop over the kernel's rows) up to this many taps x accumulators,
# below this many input channels
UNROLL_TAPS = 128
ROLL_FROM_CHANNELS = 128
MIN_TERMS = 128


class Axis:
    """One spatial axis: where tap k reads in xp (phase slot, offset) and xp's length."""

    def __init__(self, kernel: int, stride: int, dilation: int, begin: int, out: int,
                 size: int):
        self.stride, self.dilation, self.begin, self.size = stride, dilation, begin, size
        self.kernel = kernel
        self.phases = 1 if all(k * dilation % stride == 0 for k in range(kernel)) else stride
        self.taps = [((k * dilation) % stride, (k * dilation) // stride) for k in range(kernel)]
        self.length = out + max(a for _, a in self.taps)    # positions of xp per phase

    def tap(self, k) -> tuple:
        """(phase slot, offset) of tap k (an int, or the Var of a loop over the taps)."""
        if isinstance(k, int):
            return tuple(Const(v) for v in self.taps[k])
        t = E.mul(k, self.dilation)
        if self.stride == 1:
            return E.ZERO, t
        return (E.mod(t, self.stride) if self.phases > 1 else E.ZERO), E.floordiv(t, self.stride)

    def inside(self, phase: int, length: int) -> tuple[int, int]:
        """The positions [lo, hi) of xp's `phase` that copy an input element (the others are
        padding): those with 0 <= i * stride + phase - begin < size."""
        s = self.stride
        lo = max(0, -(-(self.begin - phase) // s))
        hi = min(length, (self.size - 1 + self.begin - phase) // s + 1)
        return lo, max(lo, hi)


def _block_size(per_group_out: int) -> int:
    return next(r for r in range(MAX_BLOCK, 0, -1) if per_group_out % r == 0)


def _static(dims):
    return [d.value for d in dims] if all(isinstance(d, Const) for d in dims) else None


def _constant_data(w: Tensor):
    """The weight as an ndarray when it is a compile-time constant."""
    buf = w.buffer
    if buf is not None and buf.kind is BufferKind.CONSTANT and buf.base is None and \
            buf.data is not None:
        return np.asarray(buf.data, dtype=np.float32)
    shape = w.static_shape()
    if buf is None and shape is not None:       # every element the same (Tensor.fill)
        value = E.fold(w.at(tuple(Var(f"_w{k}") for k in range(len(shape)))))
        if isinstance(value, Const):
            return np.full(shape, value.value, dtype=np.float32)
    return None


def blocked_conv(ctx, node, x: Tensor, w: Tensor, win, sw, group: int, definition,
                 finish) -> Tensor | None:
    """The conv as an Anchor whose nest is blocked, or None when this path does not apply
    (not float32 2-D, or sizes unknown when compiling)."""
    if x.dtype is not f32 or w.dtype is not f32 or x.rank != 4:
        return None
    dims = _static([*x.shape[1:], *w.shape, *sw.out, *sw.begin])
    if dims is None:
        return None
    C, H, W, M, Cg, KH, KW, OH, OW, pt, pl = dims
    if OH <= 0 or OW <= 0 or M % group or Cg * group != C:
        return None
    ah = Axis(KH, win.strides[0], win.dilations[0], pt, OH, H)
    aw = Axis(KW, win.strides[1], win.dilations[1], pl, OW, W)
    mr = _block_size(M // group)
    row_use = _lane_use(OW, OW)
    flat = _lane_use(OW * OH, OH * aw.length) > FLAT_GAIN * row_use
    row = _row_block(OW)
    channels = (M // group) % LANES == 0 and row and Cg * KH * KW >= MIN_TERMS and \
        max(row_use, _lane_use(OW * OH, OH * aw.length)) < CHANNEL_FORM_BELOW
    shape = (x.shape[0], Const(M), Const(OH), Const(OW))
    plan = dict(ah=ah, aw=aw, mr=mr, flat=flat and not channels, row=row, group=group, C=C,
                Cg=Cg, M=M, KH=KH, KW=KW, OH=OH, OW=OW)
    if KH * KW * (max(row, 1) if channels else mr) > MAX_UNROLLED:
        return None
    state: dict = {}

    def write(ctx, t, buffer):
        first = []          # the first kernel writing the conv also prepares its operands
        if "xp" not in state:
            state["xp"], prep = prepared_input(ctx, node, x, ah, aw, plan["flat"])
            state["wp"], pack = _packed_weights(ctx, node, w, LANES if channels else mr,
                                                channels)
            first = prep + pack
        nest = _channel_nest if channels else _nest
        return first + nest(ctx, anchor, t, buffer, state["xp"], state["wp"], plan)

    anchor = Anchor(shape, f32, definition, finish, write, work=M * Cg * KH * KW * OH * OW)
    return register_anchor(ctx, anchor)


def _row_block(width: int) -> int:
    """Positions per block of the channel form: all of a short row, else the largest divisor
    of the row of at least MIN_ROW and at most MAX_ROW (0: none)."""
    if width <= MAX_ROW:
        return width
    return next((d for d in range(MAX_ROW, MIN_ROW - 1, -1) if width % d == 0), 0)


def _lane_use(useful: int, computed: int) -> float:
    return useful / (LANES * -(-computed // LANES))


def prepared_input(ctx, node, x: Tensor, ah: Axis, aw: Axis, flat: bool,
                   pad=0.0) -> tuple[Buffer, list]:
    """(xp, the statements writing it): x padded (with `pad`) and split by stride phase (x
    itself and no statements when that changes nothing)."""
    N, C = x.shape[0], x.shape[1]
    rows = ah.length + (1 if flat else 0)
    same = ah.phases == aw.phases == 1 and ah.stride == aw.stride == 1 and \
        ah.begin == aw.begin == 0 and not flat and \
        ah.length == ah.size and aw.length == aw.size
    if same and x.buffer is not None and is_contiguous(x.buffer):
        b = x.buffer
        return b.view(ctx.fresh_name(f"{b.name}_phases"), (N, C, 1, 1, ah.size, aw.size),
                      (*b.strides[:2], 0, 0, *b.strides[2:]), b.offset), []
    shape = (N, C, Const(ah.phases), Const(aw.phases), Const(rows), Const(aw.length))
    buf = ctx.new_buffer(f"{node.outputs[0].name}_padded", shape, x.dtype)
    stmts, padded = [], False
    n = ctx.fresh_var("n")
    for ph in range(ah.phases):
        for pw in range(aw.phases):
            (i0, i1), (j0, j1) = ah.inside(ph, rows), aw.inside(pw, aw.length)
            padded |= (i0, i1, j0, j1) != (0, rows, 0, aw.length)
            if i0 >= i1 or j0 >= j1:
                continue
            c, i, j = (ctx.fresh_var(h) for h in ("c", "i", "j"))
            src = (n, c, E.add(E.sub(E.mul(i, ah.stride), ah.begin), ph),
                   E.add(E.sub(E.mul(j, aw.stride), aw.begin), pw))
            copy = Store(buf, (n, c, Const(ph), Const(pw), i, j), x.at(src))
            stmts.append(Loop(c, E.ZERO, C, [Loop(i, Const(i0), Const(i1), [
                Loop(j, Const(j0), Const(j1), [copy], LoopKind.VECTORIZED, LANES)])],
                LoopKind.PARALLEL))
    if padded:      # zeros first, then the copies over them
        c = ctx.fresh_var("c")
        stmts.insert(0, Loop(c, E.ZERO, C, loop_nest(
            ctx, shape[2:], buf, lambda idx: [Store(buf, (n, c, *idx), E.const(pad, x.dtype))]),
            LoopKind.PARALLEL))
    return buf, [Loop(n, E.ZERO, N, stmts)]


def _packed_weights(ctx, node, w: Tensor, mr: int, channels: bool = False) -> tuple:
    """(wp, the statements writing it): wp[M / mr, C / group, KH, KW, mr] =
    w[mb * mr + r, c, kh, kw] (with `channels`, mr is one vector of output channels); a
    constant w is packed now, into a CONSTANT buffer, with no statements."""
    M, Cg, KH, KW = (d.value for d in w.shape)
    shape = (M // mr, Cg, KH, KW, mr)
    data = _constant_data(w)
    name = f"{node.outputs[0].name}_weights"
    if data is not None:
        packed = np.ascontiguousarray(data.reshape(M // mr, mr, Cg, KH, KW)
                                      .transpose(0, 2, 3, 4, 1))
        return Buffer(ctx.fresh_name(name), f32, shape, BufferKind.CONSTANT, data=packed), []
    buf = ctx.new_buffer(name, shape, f32)
    packing = Tensor(tuple(Const(d) for d in shape), f32,
                     lambda i: w.at((E.add(E.mul(i[0], mr), i[4]), i[1], i[2], i[3])))
    return buf, loop_nest(ctx, packing.shape, buf, lambda i: [Store(buf, i, packing.at(i))])


def _kernel_rows(ctx, ah: Axis, per_row: int, channels: int) -> tuple:
    """(the Var of a loop over the kernel's rows, [that Var]): only one row's taps are written
    out, which keeps the code (and LLVM's time) small, for a branch per row. Or (None, every
    row as an int): all taps written out, when they are few (per_row statements a row) and the
    input channels few enough that the branch shows (measured: 9% at 64 channels of 56 x 56,
    nothing from 128 channels on)."""
    if ah.kernel == 1 or (ah.kernel * per_row <= UNROLL_TAPS and channels < ROLL_FROM_CHANNELS):
        return None, list(range(ah.kernel))
    kh = ctx.fresh_var("kh")
    return kh, [kh]


def _rolled(kh, ah: Axis, taps: list) -> list:
    return taps if kh is None else [Loop(kh, E.ZERO, Const(ah.kernel), taps)]


def _nest(ctx, anchor: Anchor, t: Tensor, out: Buffer, xp: Buffer, wp: Buffer, p: dict) -> list:
    ah, aw, mr, flat = p["ah"], p["aw"], p["mr"], p["flat"]
    mb, n, c = ctx.fresh_var("mb"), ctx.fresh_var("n"), ctx.fresh_var("c")
    v = ctx.fresh_var("q" if flat else "ow")
    oh = None if flat else ctx.fresh_var("oh")
    blocks_per_group = p["M"] // p["group"] // mr
    cin = c if p["group"] == 1 else E.add(E.mul(E.floordiv(mb, blocks_per_group), p["Cg"]), c)
    accs = [Var(ctx.fresh_name(f"acc{r}"), f32) for r in range(mr)]
    wq = aw.length
    if flat:
        N, C, PH, PW, R, _ = xp.shape
        src = xp.view(ctx.fresh_name(f"{xp.name}_flat"), (N, C, PH, PW, R * wq),
                      xp.strides[:4] + (Const(1),), xp.offset)
    row_var, kernel_rows = _kernel_rows(ctx, ah, aw.kernel * mr, p["Cg"])
    taps = []
    for kh in kernel_rows:
        sh, a = ah.tap(kh)
        for kw in range(aw.kernel):
            sw_, b = aw.tap(kw)
            xv = Var(ctx.fresh_name("xv"), f32)
            if flat:
                where = (n, cin, sh, sw_, E.add(v, E.add(E.mul(a, wq), b)))
                load = Load(src, where)
            else:
                load = Load(xp, (n, cin, sh, sw_, E.add(oh, a), E.add(v, b)))
            taps.append(Local(xv, load))
            for r, acc in enumerate(accs):
                taps.append(Assign(acc, acc + xv * Load(wp, (mb, c, E.index(kh), Const(kw),
                                                               Const(r)))))
    body = [Local(acc, E.const(0.0, f32)) for acc in accs]
    body.append(Loop(c, E.ZERO, Const(p["Cg"]), _rolled(row_var, ah, taps)))
    if flat:
        row = E.floordiv(v, wq)
        col = E.minimum(E.mod(v, wq), p["OW"] - 1)
        idxs = [(n, E.add(E.mul(mb, mr), r), row, col) for r in range(mr)]
    else:
        idxs = [(n, E.add(E.mul(mb, mr), r), oh, v) for r in range(mr)]
    with anchor.bind(dict(zip(idxs, accs))):
        stores = [Store(out, idx, t.at(idx)) for idx in idxs]
    if flat:
        body.append(If(E.lt(E.mod(v, wq), Const(p["OW"])), stores))
        inner = Loop(v, E.ZERO, Const(p["OH"] * wq), body, LoopKind.VECTORIZED, LANES)
    else:
        body.extend(stores)
        inner = Loop(oh, E.ZERO, Const(p["OH"]),
                     [Loop(v, E.ZERO, Const(p["OW"]), body, LoopKind.VECTORIZED, LANES)])
    nest = Loop(n, E.ZERO, out.shape[0], [inner])
    return [Loop(mb, E.ZERO, Const(p["M"] // mr), [nest], LoopKind.PARALLEL)]


def _channel_nest(ctx, anchor: Anchor, t: Tensor, out: Buffer, xp: Buffer, wp: Buffer,
                  p: dict) -> list:
    """The channel form: the vector holds 16 output channels, and one output row's positions
    are the accumulators. Each tap loads one vector of weights and broadcasts one input value
    per position; the stores go down the channel axis (scatters)."""
    ah, aw = p["ah"], p["aw"]
    mb, n, c, oh, lane, ob = (ctx.fresh_var(h) for h in ("mb", "n", "c", "oh", "m", "ob"))
    width = p["row"]
    ow0 = E.mul(ob, width)
    per_group = p["M"] // p["group"]
    cin = c if p["group"] == 1 else \
        E.add(E.mul(E.floordiv(E.mul(mb, LANES), per_group), p["Cg"]), c)
    accs = [Var(ctx.fresh_name(f"acc{q}"), f32) for q in range(width)]
    row_var, kernel_rows = _kernel_rows(ctx, ah, aw.kernel * width, p["Cg"])
    taps = []
    for kh in kernel_rows:
        sh, a = ah.tap(kh)
        for kw in range(aw.kernel):
            sw_, b = aw.tap(kw)
            wv = Var(ctx.fresh_name("wv"), f32)
            taps.append(Local(wv, Load(wp, (mb, c, E.index(kh), Const(kw), lane))))
            for q, acc in enumerate(accs):
                xv = Load(xp, (n, cin, sh, sw_, E.add(oh, a), E.add(E.add(ow0, q), b)))
                taps.append(Assign(acc, acc + xv * wv))
    body = [Local(acc, E.const(0.0, f32)) for acc in accs]
    body.append(Loop(c, E.ZERO, Const(p["Cg"]), _rolled(row_var, ah, taps)))
    m = E.add(E.mul(mb, LANES), lane)
    idxs = [(n, m, oh, E.add(ow0, q)) for q in range(width)]
    with anchor.bind(dict(zip(idxs, accs))):
        body += [Store(out, idx, t.at(idx)) for idx in idxs]
    inner = Loop(lane, E.ZERO, Const(LANES), body, LoopKind.VECTORIZED, LANES)
    row = Loop(ob, E.ZERO, Const(p["OW"] // width), [inner])
    nest = Loop(n, E.ZERO, out.shape[0], [Loop(oh, E.ZERO, Const(p["OH"]), [row])])
    return [Loop(mb, E.ZERO, Const(p["M"] // LANES), [nest], LoopKind.PARALLEL)]
