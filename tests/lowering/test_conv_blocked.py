"""The register-blocked float32 Conv (kiln/lowering/conv_blocked.py) and the epilogues fused
onto it (conv_epilogue.py), against the Graph IR interpreter on the unoptimized graph: odd
sizes, strides, pads, dilations, groups, depthwise, both the row and the flat form, weights that
are constants or inputs, and fused groups (bias, folded BatchNorm, Relu, residual Add, a global
pool ending the group). Each case also checks that the blocked nest was used: no Reduce is left
in the conv's kernel."""

from __future__ import annotations

import pytest

from kiln.api import CompileOptions, optimize_graph
from kiln.ir.builder import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import TensorType
from kiln.loops.expr import Reduce, children
from kiln.loops.stmt import Loop, LoopKind, Store, walk
from kiln.loops.verifier import verify_program
from kiln.lowering import lower_graph

from .harness import assert_same, rand, run_backend

f32 = DType.float32
TOL = {"rtol": 1e-4, "atol": 1e-4}


def _has_reduce(e, seen=None) -> bool:
    seen = set() if seen is None else seen
    if id(e) in seen:
        return False
    seen.add(id(e))
    return isinstance(e, Reduce) or any(_has_reduce(c, seen) for c in children(e))


def blocked_kernels(program) -> int:
    """Blocked conv nests (parallel loops over blocks `mb`) whose stores compute no Reduce."""
    n = 0
    for k in program.kernels:
        for loop in walk(k.body):
            if isinstance(loop, Loop) and loop.var.name.startswith("mb"):
                stores = [s for s in walk(loop.body) if isinstance(s, Store)]
                n += not any(_has_reduce(s.value) for s in stores)
    return n


def check(backend, graph, feeds, optimize=True, blocked=1):
    want = interpret(graph, feeds)
    g = optimize_graph(graph, CompileOptions()) if optimize else graph
    program = lower_graph(g)
    verify_program(program)
    assert blocked_kernels(program) == blocked
    got = run_backend(backend, program, feeds)
    for k, (a, b) in enumerate(zip(got, want)):
        assert_same(a, b, what=f"output {k}", **TOL)
    return program


def conv_graph(xs, ws, attrs, bias=True, epilogue=None, weight_input=False, batch=None):
    b = GraphBuilder("conv")
    x = b.input("x", TensorType(f32, (batch or xs[0], *xs[1:])))
    if weight_input:
        w = b.input("w", TensorType(f32, ws))
    else:
        w = b.constant(rand(ws, seed=2), "w")
    ins = [x, w] + ([b.constant(rand((ws[0],), seed=3), "b")] if bias else [])
    y = b.Conv(*ins, **attrs)
    b.output(epilogue(b, y, x) if epilogue else y)
    feeds = {"x": rand(xs, seed=1)}
    if weight_input:
        feeds["w"] = rand(ws, seed=2)
    return b.graph, feeds


# (x shape, w shape, attributes)
CASES = [
    ((1, 3, 11, 9), (8, 3, 3, 3), {"pads": [1, 1, 1, 1]}),                        # flat form
    ((1, 4, 3, 35), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]}),                        # row form
    ((1, 4, 13, 10), (6, 4, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 2]}),    # block of 6
    ((1, 2, 9, 40), (5, 2, 3, 2), {"dilations": [2, 1], "strides": [1, 2]}),
    ((1, 4, 8, 9), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),             # groups
    ((1, 4, 9, 9), (4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((1, 4, 9, 33), (8, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),            # multiplier 2
    ((1, 3, 20, 18), (8, 3, 7, 7), {"pads": [3, 3, 3, 3], "strides": [2, 2]}),    # a stem
    ((1, 8, 10, 10), (16, 8, 1, 1), {"strides": [2, 2]}),                         # downsample
    ((1, 4, 3, 32), (8, 4, 1, 1), {}),                                            # x read in place
    ((1, 3, 9, 7), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 9, 7), (4, 3, 2, 3), {"auto_pad": "SAME_LOWER", "dilations": [3, 2]}),
    ((1, 2, 5, 6), (3, 2, 3, 3), {"pads": [4, 0, 3, 5], "strides": [3, 2]}),      # pad > kernel
    ((1, 2, 6, 6), (3, 2, 2, 2), {"strides": [3, 3], "dilations": [2, 2]}),
    # the channel form: 16 output channels a vector, a row's positions the accumulators
    ((1, 16, 7, 7), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 16, 3, 28), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),                     # 2 blocks a row
    ((1, 32, 5, 9), (32, 16, 3, 3), {"group": 2, "pads": [0, 1, 2, 1], "strides": [1, 2]}),
    # many taps: a loop over the kernel's rows instead of every tap written out
    ((1, 8, 9, 9), (16, 8, 5, 7), {"strides": [2, 2], "pads": [2, 3, 2, 3]}),
    ((1, 3, 20, 18), (8, 3, 5, 5), {"dilations": [2, 2], "strides": [2, 1], "pads": [3] * 4}),
    ((1, 3, 17, 19), (8, 3, 5, 4), {"dilations": [1, 2], "strides": [3, 2], "pads": [1] * 4}),
]


@pytest.mark.parametrize("xs,ws,attrs", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_blocked_conv(xs, ws, attrs, backend):
    check(backend, *conv_graph(xs, ws, attrs), optimize=False)


def form_of(program) -> str:
    """Which form the conv kernel took, by the name of its vector loop."""
    names = [s.var.name for k in program.kernels for s in walk(k.body)
             if isinstance(s, Loop) and s.kind is LoopKind.VECTORIZED]
    return {"m": "channels", "q": "flat", "o": "row"}[names[-1][0]]


@pytest.mark.parametrize("xs,ws,attrs,form", [
    ((1, 3, 11, 9), (8, 3, 3, 3), {"pads": [1] * 4}, "flat"),           # 9 of 16 lanes a row
    ((1, 4, 3, 32), (8, 4, 3, 3), {"pads": [1] * 4}, "row"),            # whole vectors
    ((1, 16, 3, 28), (16, 16, 3, 3), {"pads": [1] * 4}, "channels"),    # 28 of 32, 144 terms
    ((1, 8, 3, 28), (16, 8, 3, 3), {"pads": [1] * 4}, "row"),           # 72 terms: too few
    ((1, 3, 3, 64), (16, 3, 7, 7), {"pads": [3] * 4}, "row"),           # a stem: whole vectors
])
def test_form_chosen(xs, ws, attrs, form):
    graph, _ = conv_graph(xs, ws, attrs)
    assert form_of(lower_graph(graph)) == form


def test_blocked_conv_weights_from_an_input(backend):
    check(backend, *conv_graph((1, 4, 8, 9), (6, 2, 3, 3), {"group": 2, "pads": [1] * 4},
                               weight_input=True), optimize=False)


def test_blocked_conv_symbolic_batch(backend):
    graph, feeds = conv_graph((3, 3, 9, 9), (8, 3, 3, 3), {"pads": [1] * 4, "strides": [2, 1]},
                              batch="n")
    check(backend, graph, feeds, optimize=False)


def _bn_relu_residual(b, y, x):
    c = 8
    y = b.BatchNormalization(y, b.constant(rand((c,), seed=4, low=0.5, high=1.5), "g"),
                             b.constant(rand((c,), seed=5), "beta"),
                             b.constant(rand((c,), seed=6), "mean"),
                             b.constant(rand((c,), seed=7, low=0.5, high=1.5), "var"))
    return b.Relu(b.Add(b.Relu(y), x))


def test_fused_batchnorm_relu_residual(backend):
    """Conv -> BatchNorm (folded into the weights) -> Relu -> Add(x) -> Relu: one kernel."""
    for xs in ((1, 8, 7, 7), (1, 8, 5, 33)):
        prog = check(backend, *conv_graph(xs, (8, 8, 3, 3), {"pads": [1] * 4},
                                          epilogue=_bn_relu_residual))
        assert len(prog.kernels) == 1          # the padded input, then conv and its epilogue


def test_fused_epilogue_reads_conv_twice(backend):
    """x * sigmoid(x) on the conv reads it twice at the same index: still blocked."""
    check(backend, *conv_graph((1, 3, 6, 7), (4, 3, 3, 3), {"pads": [1] * 4},
                               epilogue=lambda b, y, x: b.Mul(y, b.Sigmoid(y))))


def test_conv_relu_global_pool(backend):
    """A group ending in a global pool: the conv and Relu are blocked into a temp first, in
    the group's one kernel."""
    prog = check(backend, *conv_graph((1, 4, 7, 7), (8, 4, 3, 3), {"pads": [1] * 4},
                                      epilogue=lambda b, y, x: b.GlobalAveragePool(b.Relu(y))))
    assert len(prog.kernels) == 1


def test_fused_residual_of_two_convs(backend):
    """conv(x) + BN + downsample conv(x) + BN, then Relu (a ResNet block with a downsample):
    both convs are blocked, the smaller one into a temp first, in the group's one kernel."""
    b = GraphBuilder("block")
    x = b.input("x", TensorType(f32, (1, 4, 9, 9)))

    def conv_bn(k, stride, seed):
        y = b.Conv(x, b.constant(rand((8, 4, k, k), seed=seed), f"w{seed}"),
                   kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
        return b.BatchNormalization(
            y, *(b.constant(rand((8,), seed=seed + j, low=0.5, high=1.5), f"bn{seed}_{j}")
                 for j in range(4)))
    b.output(b.Relu(b.Add(conv_bn(3, 2, 10), conv_bn(1, 2, 20))))
    prog = check(backend, b.graph, {"x": rand((1, 4, 9, 9), seed=1)}, blocked=2)
    assert len(prog.kernels) == 1
