"""CompiledModel: calling conventions, input checking, symbolic sizes, lifetime, one native call."""

import gc
import sys
import threading

import numpy as np
import pytest

from kiln.errors import DTypeMismatchError, ExecutionError, InputNameError, ShapeMismatchError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.runtime import CompiledModel, compile_graph
from kiln.runtime.benchmark import tiny_add_graph


def two_output_graph():
    """sum = a + b (broadcast bias), act = exp(a) * relu(b); a, b: f32[n,5], bias: f32[5]."""
    b = GraphBuilder("two_outputs")
    a = b.input("a", tensor(DType.float32, "n", 5))
    x = b.input("b", tensor(DType.float32, "n", 5))
    bias = b.input("bias", tensor(DType.float32, 5))
    b.output(b.Add(b.Add(a, x), bias, outputs=["sum"]))
    b.output(b.Mul(b.Exp(a), b.Relu(x), outputs=["act"]))
    return b.graph


@pytest.fixture(scope="module")
def model():
    m = compile_graph(two_output_graph())
    yield m
    m.close()


def feeds(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal((n, 5)).astype(np.float32),
            "b": rng.standard_normal((n, 5)).astype(np.float32),
            "bias": rng.standard_normal(5).astype(np.float32)}


def check(got, graph, f):
    want = interpret(graph, f)
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)


def test_calling_conventions_agree_and_return_a_list(model):
    f = feeds(3)
    by_position = model(f["a"], f["b"], f["bias"])
    check(by_position, model.graph, f)
    for got in (model(**f), model(f), model.run(f), model.run([f["a"], f["b"], f["bias"]])):
        for g, w in zip(got, by_position):
            np.testing.assert_array_equal(g, w)


def test_one_output_is_still_a_list():
    with compile_graph(tiny_add_graph()) as m:
        out = m(np.ones(1, np.float32), np.full(1, 2.0, np.float32))
        assert isinstance(out, list) and len(out) == 1 and out[0].tolist() == [3.0]


def test_symbolic_batch_runs_at_many_sizes_without_recompiling(model, monkeypatch):
    import kiln.codegen
    import kiln.codegen.jit

    def no_compiling(*a, **k):
        raise AssertionError("a call recompiled the model")
    monkeypatch.setattr(kiln.codegen, "compile_program", no_compiling)
    monkeypatch.setattr(kiln.codegen.jit, "compile_program", no_compiling)
    native = model.native
    for n in (1, 7, 64, 0, 3, 7):
        f = feeds(n, seed=n)
        check(model(**f), model.graph, f)
    assert model.native is native


def test_outputs_are_fresh_arrays(model):
    f = feeds(2)
    first = model(**f)
    second = model(**f)
    assert first[0] is not second[0]
    first[0][...] = 0
    assert np.abs(second[0]).sum() > 0


def test_non_contiguous_and_list_inputs(model):
    f = feeds(4)
    wide = np.zeros((4, 10), np.float32)
    wide[:, ::2] = f["a"]
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    check(model(a=strided, b=f["b"], bias=f["bias"].tolist()), model.graph, f)
    transposed = np.asfortranarray(f["b"])
    check(model(a=f["a"], b=transposed, bias=f["bias"]), model.graph, f)


@pytest.mark.parametrize("call,error,words", [
    (lambda m, f: m(a=f["a"], b=f["b"]), InputNameError, "missing input(s) ['bias']"),
    (lambda m, f: m(**f, c=f["a"]), InputNameError, "unknown input(s) ['c']"),
    (lambda m, f: m(f["a"], f["b"]), InputNameError, "expected 3 inputs"),
    (lambda m, f: m(f["a"], b=f["b"]), InputNameError, "not both"),
    (lambda m, f: m(**{**f, "a": f["a"].astype(np.float64)}), DTypeMismatchError, "float64"),
    (lambda m, f: m(**{**f, "bias": f["bias"].astype(np.int32)}), DTypeMismatchError, "int32"),
    (lambda m, f: m(**{**f, "a": "text"}), DTypeMismatchError, "NumPy array"),
    (lambda m, f: m(**{**f, "a": f["a"][0]}), ShapeMismatchError, "rank 1"),
    (lambda m, f: m(**{**f, "bias": np.zeros(4, np.float32)}), ShapeMismatchError,
     "dimension 0 must be 5"),
    (lambda m, f: m(**{**f, "b": np.zeros((3, 5), np.float32)}), ShapeMismatchError,
     "symbolic dimension 'n'"),
])
def test_wrong_inputs_raise_kiln_errors_before_native_code(model, call, error, words):
    f = feeds(2)
    model(**f)                      # a good call first: its checked signature must not let
    with pytest.raises(error) as e:  # a different, wrong one through
        call(model, f)
    assert words in str(e.value)


def test_rank_0_and_empty_inputs():
    b = GraphBuilder("scale")
    x = b.input("x", tensor(DType.float32, "n"))
    s = b.input("s", tensor(DType.float32))
    b.output(b.Mul(x, s, outputs=["y"]))
    g = b.graph
    with compile_graph(g) as m:
        for n in (5, 0, 1):
            f = {"x": np.arange(n, dtype=np.float32), "s": np.array(2.5, np.float32)}
            check(m(**f), g, f)
        with pytest.raises(ShapeMismatchError):
            m(x=np.arange(3, dtype=np.float32), s=np.ones(1, np.float32))


def test_ir_at_every_level(model):
    assert "Exp(%a)" in model.graph_ir
    assert "kernel" in model.loop_ir and "%sum" in model.loop_ir
    assert "define i32 @\"kiln_entry\"" in model.llvm_ir or "@kiln_entry" in model.llvm_ir
    assert "kiln_entry" in model.optimized_llvm_ir
    assert "kiln_entry:" in model.asm
    assert repr(model) == ("<CompiledModel two_outputs(a: f32[n,5], b: f32[n,5], bias: f32[5]) "
                           "-> (sum: f32[n,5], act: f32[n,5])>")
    assert set(model.timings) >= {"lower", "codegen"}


def test_closed_model_raises_instead_of_running():
    m = compile_graph(tiny_add_graph())
    x = np.ones(1, np.float32)
    m(x, x)
    m.close()
    with pytest.raises(ExecutionError, match="closed"):
        m(x, x)
    m.close()                       # closing twice is fine


def test_concurrent_calls_from_threads_are_correct(model):
    errors = []

    def work(seed):
        try:
            for k in range(30):
                f = feeds(16 + seed, seed=seed * 100 + k)
                check(model(**f), model.graph, f)
        except Exception as e:          # reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def count_python_calls(fn) -> int:
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def chain_graph(length):
    b = GraphBuilder(f"chain{length}")
    x = b.input("x", tensor(DType.float32, "n", 8))
    h = x
    for k in range(length):
        h = b.Relu(b.Add(h, x)) if k % 2 else b.Sigmoid(h)
    b.output(b.Identity(h, outputs=["y"]))
    return b.graph


def test_a_call_runs_no_python_per_op():
    """A call of a 1-op and of a 12-op model run the same Python code: one native call."""
    x = np.ones((3, 8), np.float32)
    counts = []
    for length in (1, 12):
        with compile_graph(chain_graph(length)) as m:
            assert len(m.program.kernels) >= length // 2
            m(x)
            calls_before = m._entry.calls
            counts.append(count_python_calls(lambda: m(x)))
            assert m._entry.calls == calls_before + 1
    assert counts[0] == counts[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_compiling_many_models_does_not_leak():
    """30 compiles of a model that is dropped (one of them in a reference cycle) leave far less
    behind than 30 kept models. What does remain is LLVM's: llvmlite's pass-manager run leaves
    ~60 KB per module (measured; the module, engine and machine code are all freed)."""
    x = np.ones(1, np.float32)
    for _ in range(5):                               # warm up: thread pool, caches
        compile_graph(tiny_add_graph())(x, x)

    def grow(keep: list) -> float:
        gc.collect()
        before = rss_mb()
        for k in range(30):
            m = compile_graph(tiny_add_graph())
            assert m(x, x)[0][0] == 2.0
            if keep is not None:
                keep.append(m)
            elif k == 0:
                cycle = [m]
                cycle.append(cycle)                  # collected by gc, not by refcount
            del m
        gc.collect()
        return rss_mb() - before
    dropped = grow(None)
    kept_models: list = []
    kept = grow(kept_models)
    assert dropped < 6.0 and dropped < kept / 3, (dropped, kept)
    for m in kept_models:
        m.close()


def test_compiled_model_type():
    assert isinstance(compile_graph(tiny_add_graph()), CompiledModel)


def test_unknown_input_dims_are_named_and_run_at_any_size():
    b = GraphBuilder("unknown")
    x = b.input("x", tensor(DType.float32, None, 3))
    b.output(b.Relu(x, outputs=["y"]))
    g = b.graph
    with compile_graph(g) as m:
        assert m.graph.inputs[0].type.shape == ("x.0", 3)
        for n in (2, 5):
            f = {"x": np.linspace(-1, 1, 3 * n, dtype=np.float32).reshape(n, 3)}
            check(m(**f), g, f)


def test_shapes_the_ops_reject_raise_before_native_code():
    """Symbolic dims with different names pass the declared types; the ops still need them
    to agree (reading b past its end otherwise)."""
    b = GraphBuilder("mm")
    x = b.input("a", tensor(DType.float32, "n", "k"))
    y = b.input("b", tensor(DType.float32, "j", "m"))
    w = b.input("w", tensor(DType.float32, "p"))
    b.output(b.Add(b.MatMul(x, y), w, outputs=["z"]))
    with compile_graph(b.graph) as m:
        good = m(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32),
                 np.zeros(4, np.float32))
        np.testing.assert_array_equal(good[0], np.full((2, 4), 3.0, np.float32))
        with pytest.raises(ShapeMismatchError, match="MatMul node: inner dimensions differ"):
            m(np.ones((2, 1000), np.float32), np.ones((3, 4), np.float32),
              np.zeros(4, np.float32))
        with pytest.raises(ShapeMismatchError, match="Add node"):
            m(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32),
              np.zeros(5, np.float32))
