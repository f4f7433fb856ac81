"""Random ops: RandomNormal, RandomUniform, their *Like forms, Bernoulli and Multinomial.

Native code draws from a counter-based generator: the bits of draw number c of a node are
SplitMix64's output for the state key + c * golden, i.e. one multiply-xorshift finalizer of a
counter, so every element is computed independently (in any order, in parallel, vectorized) and
a node with a seed gives the same numbers on every run and every machine. The key is a hash of
the seed attribute and the op; a node without a seed gets a key chosen when compiling, so one
compiled model repeats its draws from run to run (compile again for fresh ones). The numbers are
not NumPy's (the interpreter's reference uses RandomState); ONNX promises no agreement between
runtimes for these ops.

Uniform: the top 53 bits as a float64 in [0, 1). Normal: Box-Muller on two draws per element.
Multinomial: per row (rows in parallel), softmax of the logits (max subtracted, summed in
float64), then per sample the number of classes whose running sum is <= u * total, capped at
classes - 1 (the reference's searchsorted on the CDF).
"""

from __future__ import annotations

import math
import secrets

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Expr, Reduce, Var
from ..loops.stmt import Assign, Local, Loop, LoopKind, Store
from . import exprs as E
from .registry import register
from .tensor import Tensor, kernel

u64, f64 = DType.uint64, DType.float64
GOLDEN = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def _u(v: int) -> Const:
    return Const(v & MASK, u64)


def mix64(z: Expr) -> Expr:
    """SplitMix64's finalizer: a bijection of 64-bit words that scrambles every bit."""
    z = E.binary("mul", E.binary("xor", z, E.binary("shr", z, _u(30))), _u(0xBF58476D1CE4E5B9))
    z = E.binary("mul", E.binary("xor", z, E.binary("shr", z, _u(27))), _u(0x94D049BB133111EB))
    return E.binary("xor", z, E.binary("shr", z, _u(31)))


def node_key(ctx, node) -> int:
    """The generator key of a node: from its seed attribute, else chosen now."""
    seed = ctx.attrs(node).seed
    if seed is None or math.isnan(seed):
        return secrets.randbits(64)
    return _mix_int((int(seed) & MASK) ^ 0x6B696C6E)          # "kiln"


def _mix_int(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def random_bits(key: int, counter: Expr) -> Expr:
    """64 random bits: draw number `counter` (an i64 Expr) of the stream `key`."""
    c = E.binary("add", E.cast(counter, u64), _u(1))
    return mix64(E.binary("add", _u(key), E.binary("mul", c, _u(GOLDEN))))


def uniform01(key: int, counter: Expr) -> Expr:
    """A float64 in [0, 1) with 53 random bits."""
    top = E.cast(E.binary("shr", random_bits(key, counter), _u(11)), DType.int64)
    return E.cast(top, f64) * E.const(2.0 ** -53, f64)


def standard_normal(key: int, counter: Expr) -> Expr:
    """A float64 from N(0, 1): Box-Muller on draws 2c and 2c + 1."""
    two = E.mul(counter, 2)
    u1 = E.const(1.0, f64) - uniform01(key, two)          # (0, 1]: the log is finite
    u2 = uniform01(key, E.add(two, 1))
    radius = E.unary("sqrt", E.const(-2.0, f64) * E.unary("log", u1))
    return radius * E.unary("cos", E.const(2 * math.pi, f64) * u2)


def flat_index(shape, idx) -> Expr:
    """The row-major position of idx in a tensor of `shape`."""
    flat = E.ZERO
    for d, i in zip(shape, idx):
        flat = E.add(E.mul(flat, d), i)
    return flat


def _draws(ctx, node, shape, draw) -> Tensor:
    """out[idx] = draw(key, flat index) * scale + shift, rounded once into the output dtype."""
    a = ctx.attrs(node)
    key = node_key(ctx, node)
    dtype = ctx.out_dtype(node)
    normal = node.op in (ops.RandomNormal, ops.RandomNormalLike)
    scale = a.scale if normal else a.high - a.low
    shift = a.mean if normal else a.low

    def at(idx):
        x = draw(key, flat_index(shape, idx))
        return E.cast(x * E.const(scale, f64) + E.const(shift, f64), dtype)
    return Tensor(tuple(shape), dtype, at)


@register(ops.RandomNormal, ops.RandomUniform)
def lower_random(ctx, node, inputs):
    shape = tuple(Const(int(d)) for d in ctx.attrs(node).shape)
    draw = standard_normal if node.op is ops.RandomNormal else uniform01
    return [_draws(ctx, node, shape, draw)]


@register(ops.RandomNormalLike, ops.RandomUniformLike)
def lower_random_like(ctx, node, inputs):
    draw = standard_normal if node.op is ops.RandomNormalLike else uniform01
    return [_draws(ctx, node, inputs[0].shape, draw)]


@register(ops.Bernoulli)
def lower_bernoulli(ctx, node, inputs):
    p = inputs[0]
    key = node_key(ctx, node)
    dtype = ctx.out_dtype(node)

    def at(idx):
        hit = E.lt(uniform01(key, flat_index(p.shape, idx)), E.cast(p.at(idx), f64))
        return E.cast(hit, dtype)
    return [Tensor(p.shape, dtype, at)]


@register(ops.Multinomial)
def lower_multinomial(ctx, node, inputs):
    z = inputs[0]
    a = ctx.attrs(node)
    key = node_key(ctx, node)
    batch, classes = z.shape
    samples = a.sample_size
    out = ctx.buffer_for(node.outputs[0], (batch, Const(samples)))
    b, s, c = ctx.fresh_var("b"), ctx.fresh_var("s"), ctx.fresh_var("c")
    logit = lambda k: E.cast(z.at((b, k)), f64)                       # noqa: E731
    r = ctx.fresh_var("r")
    top = Var(ctx.fresh_name("top"), f64)
    total = Var(ctx.fresh_name("total"), f64)
    running = Var(ctx.fresh_name("running"), f64)
    count = ctx.fresh_var("count")
    weight = E.unary("exp", logit(c) - top)
    target = uniform01(key, E.add(E.mul(b, samples), s)) * total
    per_sample = [
        Local(running, E.const(0.0, f64)), Local(count, E.ZERO),
        Loop(c, E.ZERO, classes, [
            Assign(running, running + weight),
            Assign(count, E.add(count, E.cast(E.le(running, target), DType.int64)))]),
        Store(out, (b, s), E.cast(E.minimum(count, E.sub(classes, 1)), out.dtype))]
    per_row = [
        Local(top, Reduce("max", E.const(-math.inf, f64), ((r, E.ZERO, classes),), logit(r))),
        Local(total, Reduce("add", E.const(0.0, f64), ((r, E.ZERO, classes),),
                            E.unary("exp", logit(r) - top))),
        Loop(s, E.ZERO, Const(samples), per_sample)]
    ctx.emit(kernel(ctx.fresh_name("multinomial", kernel=True),
                    [Loop(b, E.ZERO, batch, per_row, LoopKind.PARALLEL)]))
    return [Tensor.of(out)]
