"""NonZero against the Graph IR interpreter (Loop IR interpreter and native code): random,
all-zero, all-nonzero, size-0 and rank-0 inputs, symbolic input sizes, a constant input (folded
when compiling), consumers sized by the computed count, and the runtime's compiled model."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.lowering import lower_graph
from kiln.runtime import compile_graph

from .harness import assert_same, check_graph, check_op, rand


def _sparse(shape, dtype, seed):
    x = rand(shape, dtype, seed=seed)
    x[rand(shape, np.float32, seed=seed + 1) > 1.0] = 0
    return x


@pytest.mark.parametrize("shape,dtype", [
    ((3, 4), np.float32), ((2, 3, 5), np.int32), ((7,), np.bool_), ((4, 1, 3), np.uint8),
    ((2, 6), np.float16), ((5, 3), np.float64),
])
def test_nonzero_random(backend, shape, dtype):
    check_op(backend, "NonZero", [_sparse(shape, dtype, seed=len(shape))])


@pytest.mark.parametrize("x", [
    np.zeros((2, 3), np.int32), np.ones((2, 3), bool), np.zeros((0, 3), np.float32),
    np.array(3.0, np.float32), np.array(0, np.int64),
    np.array([0.0, -0.0, np.nan, 1.0], np.float32),
], ids=["all_zero", "all_nonzero", "size_0", "scalar_true", "scalar_false", "nan_negzero"])
def test_nonzero_edges(backend, x):
    check_op(backend, "NonZero", [x])


def test_nonzero_symbolic_input(backend):
    x = _sparse((5, 4), np.float32, seed=3)
    check_op(backend, "NonZero", [x], dims={0: ("b", 4)})


def test_nonzero_constant_input_folds(backend):
    program = check_op(backend, "NonZero", [_sparse((3, 4), np.int64, seed=4)], consts=[0])
    assert not program.computed and not program.kernels or "nonzero_count" not in \
        [k.name for k in program.kernels]


def _consumer_graph():
    """NonZero -> Transpose -> Cast -> Mul by 2 -> Add x's element count: a chain sized by the
    computed count, and a second output straight from NonZero."""
    b = GraphBuilder("nonzero_chain")
    x = b.input("x", tensor(DType.float32, "n", 3))
    nz = b.NonZero(x)
    t = b.Transpose(nz, perm=[1, 0])
    f = b.Cast(t, to=DType.float32)
    two = b.constant(np.array(2.0, np.float32), "two")
    b.output(b.Mul(f, two, outputs=["scaled"]), b.Identity(nz, outputs=["raw"]))
    return b.graph


def test_nonzero_feeds_ops_sized_by_the_count(backend):
    graph = _consumer_graph()
    for n, seed in ((4, 0), (1, 1), (0, 2)):
        check_graph(backend, graph, {"x": _sparse((n, 3), np.float32, seed)})


def test_compiled_model_runs_nonzero_for_many_counts():
    graph = _consumer_graph()
    with compile_graph(graph) as model:
        for n, seed in ((6, 0), (2, 1), (0, 2), (6, 3)):
            x = _sparse((n, 3), np.float32, seed)
            got = model(x)
            want = interpret(graph, {"x": x})
            assert len(got) == 2
            for g, w in zip(got, want):
                assert_same(g, w, 0, 0)
        x = np.ones((5, 3), np.float32)        # every element: the upper bound itself
        assert_same(model(x)[1], np.array(np.nonzero(x)), 0, 0)


def _after_nonzero(make):
    b = GraphBuilder("after_nonzero")
    x = b.input("x", tensor(DType.float32, 3, 4))
    b.output(make(b, b.NonZero(x)))
    return b.graph


def _i64(b, values, name):
    return b.constant(np.array(values, np.int64), name)


CONSUMERS = {
    "reshape_to_its_shape": lambda b, nz: b.Reshape(nz, b.Shape(b.Transpose(nz, perm=[1, 0]))),
    "reduce_over_count": lambda b, nz: b.ReduceSum(nz, _i64(b, [1], "axes")),
    "matmul_inner_count": lambda b, nz: b.MatMul(
        b.Cast(nz, to=DType.float32), b.Transpose(b.Cast(nz, to=DType.float32), perm=[1, 0])),
    "topk_k_is_count": lambda b, nz: b.TopK(
        b.Cast(nz, to=DType.float32),
        b.Reshape(b.Gather(b.Shape(nz), _i64(b, 1, "one")), _i64(b, [1], "shape")), outputs=1),
}


@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_consumers_of_the_count(backend, name):
    graph = _after_nonzero(CONSUMERS[name])
    for seed in (0, 1):
        check_graph(backend, graph, {"x": _sparse((3, 4), np.float32, seed)})
    if name != "reshape_to_its_shape":     # a 0 in Reshape's target means "copy that dim"
        check_graph(backend, graph, {"x": np.zeros((3, 4), np.float32)})


def test_count_needed_as_a_compile_time_value_is_a_clear_error():
    def tile(b, nz):
        n = b.Slice(b.Shape(nz), _i64(b, [1], "one"), _i64(b, [2], "two"))
        return b.Tile(nz, b.Concat(_i64(b, [1], "once"), n, axis=0))
    with pytest.raises(LoweringError) as e:
        lower_graph(_after_nonzero(tile))
    assert e.value.node is not None and e.value.node.op.name == "Tile"
    assert "symbolic size" in str(e.value)


def test_concurrent_calls_get_their_own_counts():
    graph = _consumer_graph()
    import threading
    with compile_graph(graph) as model:
        inputs = [_sparse((5, 3), np.float32, seed) for seed in range(8)]
        wants = [interpret(graph, {"x": x}) for x in inputs]
        errors = []

        def worker(k):
            for _ in range(20):
                for got, want in zip(model(inputs[k]), wants[k]):
                    if got.shape != want.shape or not np.array_equal(got, want):
                        errors.append(k)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
