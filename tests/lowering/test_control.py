"""If, Loop and Scan lowered to one kernel each, against the Graph IR interpreter: both branches,
trip counts known or fed, early exit, carried values that need double buffering, every Scan
axis/direction form, symbolic lengths, nested bodies, and the errors for what cannot lower."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir import DType, GraphBuilder, tensor
from kiln.lowering import lower_graph

from .harness import check_graph, rand

f32, i64, boolean = DType.float32, DType.int64, DType.bool


# --- If ------------------------------------------------------------------------------------------

def _if_graph(nested: bool = False):
    """(y, z) = If(c) then (x + w, x * 2 [or a nested If]) else (-x, w - x); reads outer x, w."""
    b = GraphBuilder("main")
    c = b.input("c", tensor(boolean))
    c2 = b.input("c2", tensor(boolean))
    x = b.input("x", tensor(f32, 3, 7))
    w = b.input("w", tensor(f32, 7))
    t = GraphBuilder("then", parent=b.graph)
    if nested:
        tt = GraphBuilder("then2", parent=t.graph)
        tt.output(tt.Exp(x))
        te = GraphBuilder("else2", parent=t.graph)
        te.output(te.Transpose(te.Transpose(x)))
        inner = t.If(c2, then_branch=tt.graph, else_branch=te.graph)
    else:
        inner = t.Mul(x, t.constant(np.array(2.0, np.float32)))
    t.output(t.Add(x, w), inner)
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.Neg(x), e.Sub(w, x))
    y, z = b.If(c, then_branch=t.graph, else_branch=e.graph, outputs=2)
    b.output(y, b.Relu(z))
    return b.graph


@pytest.mark.parametrize("nested", [False, True])
def test_if_takes_either_branch(backend, nested):
    g = _if_graph(nested)
    for cv in (True, False):
        for c2 in (True, False):
            check_graph(backend, g, {"c": np.array(cv), "c2": np.array(c2),
                                     "x": rand((3, 7), seed=1), "w": rand(7, seed=2)})


def test_if_with_symbolic_dim_and_constant_cond(backend):
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, "n", 5))
    c = b.Greater(b.ReduceSum(x, keepdims=0), b.constant(np.array(0.0, np.float32)))
    t = GraphBuilder("then", parent=b.graph)
    t.output(t.Sigmoid(x))
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.Abs(x))
    y = b.If(c, then_branch=t.graph, else_branch=e.graph)
    # a constant condition takes one branch even when the shapes differ
    t2 = GraphBuilder("then2", parent=b.graph)
    t2.output(t2.constant(np.arange(3, dtype=np.float32)))
    e2 = GraphBuilder("else2", parent=b.graph)
    e2.output(e2.constant(np.ones((2, 2), np.float32)))
    z = b.If(b.constant(np.array(False)), then_branch=t2.graph, else_branch=e2.graph)
    b.output(y, z)
    for n, seed in ((1, 3), (4, 4), (9, 5)):
        check_graph(backend, b.graph, {"x": rand((n, 5), seed=seed)})


def test_if_branch_shapes_differ_names_cond():
    b = GraphBuilder("main")
    c = b.input("c", tensor(boolean))
    x = b.input("x", tensor(f32, 4))
    t = GraphBuilder("then", parent=b.graph)
    t.output(x)
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.Concat(x, x, axis=0))
    b.output(b.If(c, then_branch=t.graph, else_branch=e.graph))
    with pytest.raises(LoweringError, match="input 'cond' decides a shape") as info:
        lower_graph(b.graph)
    assert list(info.value.ops) == ["If"]


def test_body_value_the_back_end_lacks_is_reported():
    b = GraphBuilder("main")
    c = b.input("c", tensor(boolean))
    x = b.input("x", tensor(f32, 4))
    t = GraphBuilder("then", parent=b.graph)
    t.output(t.Neg(x))
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.SequenceAt(e.SequenceConstruct(x), e.constant(np.array(0, np.int64))))
    b.output(b.If(c, then_branch=t.graph, else_branch=e.graph))
    with pytest.raises(LoweringError, match="SequenceConstruct node") as info:
        lower_graph(b.graph)           # named by the check of every node, bodies' included
    assert "seq<f32[4]>" in str(info.value)


# --- Loop ----------------------------------------------------------------------------------------

def _loop_scan_graph(m: int):
    """y_{i+1} = y_i + x[i] * i; scans y after each step; cond passed through unchanged."""
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 9, 3))
    y0 = b.input("y0", tensor(f32, 3))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 3))
    xi = body.Gather(x, i, axis=0)
    y_next = body.Add(y, body.Mul(xi, body.Cast(i, to=f32)))
    body.output(c, y_next, body.Neg(y_next))
    yf, ys = b.Loop(b.constant(np.array(m, np.int64)), b.constant(np.array(True)), y0,
                    body=body.graph, outputs=2)
    b.output(yf, ys)
    return b.graph


@pytest.mark.parametrize("m", [0, 1, 7])
def test_loop_carried_and_scan_outputs(backend, m):
    check_graph(backend, _loop_scan_graph(m), {"x": rand((9, 3), seed=1),
                                               "y0": rand(3, seed=2)})


def _loop_early_exit_graph():
    """Runs while sum(y) < limit, at most M (fed) times: y_{i+1} = y_i * 1.5 + 1, k_{i+1} = k_i + 1."""
    b = GraphBuilder("main")
    m = b.input("m", tensor(i64))
    limit = b.input("limit", tensor(f32))
    y0 = b.input("y0", tensor(f32, 5))
    k0 = b.input("k0", tensor(i64, 1))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 5))
    k = body.input("k", tensor(i64, 1))
    y_next = body.Add(body.Mul(y, body.constant(np.array(1.5, np.float32))),
                      body.constant(np.array(1.0, np.float32)))
    go = body.Less(body.ReduceSum(y_next, keepdims=0), limit)
    body.output(go, y_next, body.Add(k, body.constant(np.array([1], np.int64))))
    cond0 = b.Less(b.ReduceSum(y0, keepdims=0), limit)
    yf, kf = b.Loop(m, cond0, y0, k0, body=body.graph, outputs=2)
    b.output(yf, kf)
    return b.graph


@pytest.mark.parametrize("m,limit", [(0, 100.0), (3, 1e9), (100, 60.0), (100, -5.0)])
def test_loop_fed_trip_count_and_early_exit(backend, m, limit):
    check_graph(backend, _loop_early_exit_graph(),
                {"m": np.array(m), "limit": np.array(limit, np.float32),
                 "y0": rand(5, seed=3, low=0, high=1), "k0": np.array([0])}, rtol=1e-5)


def _loop_scan_stops_early_graph(passthrough: bool):
    """Scans y while the body's condition (sum(y) < limit) holds, or with `passthrough` while
    the fed condition does: the scans' length is known only when the loop runs."""
    b = GraphBuilder("main")
    limit = b.input("limit", tensor(f32))
    cond = b.input("cond", tensor(boolean))
    y0 = b.input("y0", tensor(f32, 3))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 3))
    y_next = body.Add(body.Mul(y, body.constant(np.float32(2))), body.Cast(i, to=f32))
    go = c if passthrough else body.Less(body.ReduceSum(y_next, keepdims=0), limit)
    body.output(go, y_next, body.Neg(y_next), body.ReduceSum(y_next, keepdims=1))
    yf, ys, sums = b.Loop(b.constant(np.array(6, np.int64)), cond, y0, body=body.graph,
                          outputs=3)
    b.output(yf, ys, b.Relu(sums))
    return b.graph


@pytest.mark.parametrize("passthrough", [False, True])
def test_loop_scan_length_computed_at_run_time(backend, passthrough):
    graph = _loop_scan_stops_early_graph(passthrough)
    for limit, cv in ((40.0, True), (1e9, True), (-1.0, True), (40.0, False)):
        check_graph(backend, graph, {"limit": np.array(limit, np.float32), "cond": np.array(cv),
                                     "y0": rand(3, seed=2, low=0, high=1)})


def test_loop_state_read_transposed_is_double_buffered(backend):
    """y_{i+1} = y_i^T @ w + y_i^T: the new value reads the old one at other positions."""
    b = GraphBuilder("main")
    y0 = b.input("y0", tensor(f32, 5, 5))
    w = b.input("w", tensor(f32, 5, 5))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 5, 5))
    yt = body.Transpose(y, perm=[1, 0])
    body.output(c, body.Add(body.MatMul(yt, w), yt), yt)
    yf, ys = b.Loop(b.constant(np.array(4, np.int64)), None, y0, body=body.graph, outputs=2)
    b.output(yf, ys)
    check_graph(backend, b.graph, {"y0": rand((5, 5), seed=4, low=-0.5, high=0.5),
                                   "w": rand((5, 5), seed=5, low=-0.5, high=0.5)}, rtol=1e-5,
                atol=1e-5)


def test_loop_unrolled_when_the_body_needs_the_iteration_number(backend):
    """Slice(x, i, i + 1) and Range(0, i + 1) have shapes or positions set by the iteration
    number: with M known the loop is unrolled, each copy with its own shapes."""
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 6))
    y0 = b.input("y0", tensor(f32, 1))
    cond = b.input("cond", tensor(boolean))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 1))
    axis0 = body.constant(np.array([0], np.int64))
    one = body.constant(np.array(1, np.int64))
    nxt = body.Add(i, one)
    piece = body.Slice(x, body.Unsqueeze(i, axis0), body.Unsqueeze(nxt, axis0))
    ramp = body.Cast(body.ReduceSum(body.Range(body.constant(np.array(0, np.int64)), nxt, one),
                                    keepdims=1), to=f32)
    y_next = body.Add(body.Add(y, piece), ramp)
    go = body.Less(body.ReduceSum(y_next, keepdims=0), body.constant(np.array(9.0, np.float32)))
    body.output(go, y_next)
    b.output(b.Loop(b.constant(np.array(5, np.int64)), cond, y0, body=body.graph, outputs=1))
    for cv, seed in ((True, 1), (False, 2), (True, 3)):
        check_graph(backend, b.graph, {"x": rand(6, seed=seed, low=0, high=2),
                                       "y0": rand(1, seed=seed), "cond": np.array(cv)})


def test_nested_loop_and_scan_in_loop(backend):
    """An outer Loop whose body runs an inner Loop (carrying a sum) and a Scan (cumulative)."""
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 4, 3))
    s0 = b.input("s0", tensor(f32, 3))
    outer = GraphBuilder("outer", parent=b.graph)
    outer.input("i", tensor(i64))
    c = outer.input("c", tensor(boolean))
    s = outer.input("s", tensor(f32, 3))
    inner = GraphBuilder("inner", parent=outer.graph)
    j = inner.input("j", tensor(i64))
    ci = inner.input("ci", tensor(boolean))
    acc = inner.input("acc", tensor(f32, 3))
    inner.output(ci, inner.Add(acc, inner.Gather(x, j, axis=0)))
    total = outer.Loop(outer.constant(np.array(3, np.int64)), None, s, body=inner.graph,
                          outputs=1)
    scan_body = GraphBuilder("cum", parent=outer.graph)
    run = scan_body.input("run", tensor(f32))
    xi = scan_body.input("xi", tensor(f32))
    r = scan_body.Add(run, xi)
    scan_body.output(r, r)
    _, cum = outer.Scan(outer.constant(np.array(0.0, np.float32)), total, body=scan_body.graph,
                        num_scan_inputs=1, outputs=2)
    outer.output(c, outer.Mul(cum, outer.constant(np.array(0.5, np.float32))), cum)
    sf, ss = b.Loop(b.constant(np.array(3, np.int64)), b.constant(np.array(True)), s0,
                    body=outer.graph, outputs=2)
    b.output(sf, ss)
    check_graph(backend, b.graph, {"x": rand((4, 3), seed=6), "s0": rand(3, seed=7)},
                rtol=1e-5, atol=1e-5)


def test_loop_errors():
    b = GraphBuilder("main")
    m = b.input("m", tensor(i64))
    c = b.input("c", tensor(boolean))
    y0 = b.input("y0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    bc = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 2))
    body.output(bc, y, y)
    b.output(*b.Loop(m, c, y0, body=body.graph, outputs=2))
    with pytest.raises(LoweringError, match="input 'M' must be known"):
        lower_graph(b.graph)

    b = GraphBuilder("main")
    c = b.input("c", tensor(boolean))
    y0 = b.input("y0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    bc = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 2))
    body.output(bc, y, y)
    b.output(*b.Loop(None, c, y0, body=body.graph, outputs=2))
    with pytest.raises(LoweringError, match="nothing bounds their length"):
        lower_graph(b.graph)


def _while_graph(m):
    """Doubles y while sum(y) < limit: a while loop (M absent, or the bound 2^63 - 1, or fed)."""
    b = GraphBuilder("main")
    y0 = b.input("y0", tensor(f32, 2))
    limit = b.input("limit", tensor(f32))
    trips = b.input("m", tensor(i64)) if m == "fed" else \
        None if m is None else b.constant(np.array(m, np.int64))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 2))
    k = body.input("k", tensor(i64))
    y2 = body.Add(y, y)
    body.output(body.Less(body.ReduceSum(y2, keepdims=0), limit), y2, body.Add(k, i))
    go = b.Less(b.ReduceSum(y0, keepdims=0), limit)
    b.output(*b.Loop(trips, go, y0, b.constant(np.array(0, np.int64)), body=body.graph,
                     outputs=2))
    return b.graph


@pytest.mark.parametrize("m", [None, 2 ** 63 - 1, 5000, "fed"])
def test_while_loops_end_soon_after_their_condition(backend, m):
    """Loop IR has no early exit: the trips run as a guarded nest (a few thousand tests past
    the end at most, not 2^63)."""
    graph = _while_graph(m)
    for limit in (1e3, 1e6, 0.5):
        feeds = {"y0": np.array([0.75, 0.5], np.float32), "limit": np.array(limit, np.float32)}
        if m == "fed":
            feeds["m"] = np.array(2 ** 62)
        check_graph(backend, graph, feeds)


def test_loop_without_trip_count_or_condition_is_an_error():
    b = GraphBuilder("main")
    y0 = b.input("y0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    bc = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 2))
    body.output(bc, y)
    b.output(b.Loop(None, None, y0, body=body.graph, outputs=1))
    with pytest.raises(LoweringError, match="never ends"):
        lower_graph(b.graph)


def test_loop_carried_value_changing_shape_is_an_error():
    b = GraphBuilder("main")
    y0 = b.input("y0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    bc = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, None))
    body.output(bc, body.Concat(y, y, axis=0))
    b.output(b.Loop(b.constant(np.array(2, np.int64)), None, y0, body=body.graph, outputs=1))
    with pytest.raises(LoweringError, match="changes shape"):
        lower_graph(b.graph)


# --- Scan ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("in_axis,in_dir,out_axis,out_dir", [
    (0, 0, 0, 0), (1, 1, 0, 0), (-1, 0, 1, 1), (0, 1, -1, 0)])
def test_scan_axes_and_directions(backend, in_axis, in_dir, out_axis, out_dir):
    """state += x_t (a [3] row per step) and out_t = state * y_t, y scanned alongside."""
    b = GraphBuilder("main")
    shape = (5, 3) if in_axis == 0 else (3, 5)
    s0 = b.input("s0", tensor(f32, 3))
    x = b.input("x", tensor(f32, *shape))
    y = b.input("y", tensor(f32, 5))
    body = GraphBuilder("body", parent=b.graph)
    s = body.input("s", tensor(f32, 3))
    xt = body.input("xt", tensor(f32, 3))
    yt = body.input("yt", tensor(f32))
    s_next = body.Add(s, xt)
    body.output(s_next, body.Mul(s_next, yt))
    sf, outs = b.Scan(s0, x, y, body=body.graph, num_scan_inputs=2,
                      scan_input_axes=[in_axis, 0], scan_input_directions=[in_dir, 0],
                      scan_output_axes=[out_axis], scan_output_directions=[out_dir], outputs=2)
    b.output(sf, outs)
    check_graph(backend, b.graph, {"s0": rand(3, seed=1), "x": rand(shape, seed=2),
                                   "y": rand(5, seed=3)})


def test_scan_symbolic_length_with_if_in_body(backend):
    """Running max over a sequence of symbolic length, the choice made by an If per step."""
    b = GraphBuilder("main")
    m0 = b.input("m0", tensor(f32, 4))
    x = b.input("x", tensor(f32, "t", 4))
    body = GraphBuilder("body", parent=b.graph)
    m = body.input("m", tensor(f32, 4))
    xt = body.input("xt", tensor(f32, 4))
    bigger = body.Greater(body.ReduceSum(xt, keepdims=0), body.ReduceSum(m, keepdims=0))
    t = GraphBuilder("then", parent=body.graph)
    t.output(t.Identity(xt))
    e = GraphBuilder("else", parent=body.graph)
    e.output(e.Max(m, xt))
    m_next = body.If(bigger, then_branch=t.graph, else_branch=e.graph)
    body.output(m_next, body.Sub(m_next, m))
    b.output(*b.Scan(m0, x, body=body.graph, num_scan_inputs=1, outputs=2))
    for n, seed in ((1, 4), (6, 5), (11, 6), (0, 7)):
        check_graph(backend, b.graph, {"m0": rand(4, seed=seed + 10), "x": rand((n, 4), seed=seed)})


# --- through the whole compiler ------------------------------------------------------------------

def test_compiled_through_the_pass_pipeline():
    """kiln.compile at -O2 (graph passes, fusion, memory plan) keeps bodies' outer reads alive."""
    import kiln
    from kiln.ir.interpreter import interpret
    from kiln.runtime.specialize import copy_graph

    from .harness import assert_same
    cases = [(_if_graph(nested=True), {"c": np.array(True), "c2": np.array(False),
                                       "x": rand((3, 7), seed=1), "w": rand(7, seed=2)}),
             (_loop_scan_graph(7), {"x": rand((9, 3), seed=3), "y0": rand(3, seed=4)}),
             (_loop_scan_stops_early_graph(False), {"limit": np.array(40.0, np.float32),
                                                    "cond": np.array(True),
                                                    "y0": rand(3, seed=5, low=0, high=1)})]
    for graph, feeds in cases:
        want = interpret(graph, feeds)
        got = kiln.compile(copy_graph(graph), opt_level=2).run(feeds)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, 1e-5, 1e-5, f"output {k}")


def test_fed_trip_count_of_scan_outputs_is_specialized():
    """M deciding the scan outputs' length makes lowering name input 'M'; the ONNX backend's
    specializing model then compiles per fed value."""
    from kiln.runtime.specialize import SpecializingModel
    from kiln.ir.interpreter import interpret

    from .harness import assert_same
    b = GraphBuilder("main")
    m = b.input("m", tensor(i64))
    y0 = b.input("y0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 2))
    y_next = body.Add(y, body.Cast(i, to=f32))
    body.output(c, y_next, y_next)
    b.output(*b.Loop(m, None, y0, body=body.graph, outputs=2))
    with pytest.raises(LoweringError, match="input 'M'") as info:
        lower_graph(b.graph)
    model = SpecializingModel(b.graph, info.value)
    assert model.fixed == {"m"}
    for trips in (3, 0, 5):
        feeds = {"m": np.array(trips), "y0": rand(2, seed=trips)}
        for k, (g, w) in enumerate(zip(model.run(feeds), interpret(b.graph, feeds))):
            assert_same(g, w, 1e-6, 1e-6, f"output {k}")
    model.close()


def test_parallel_nests_inside_bodies_read_the_iteration(backend):
    """Bodies big enough for parallel loops: the outlined loop bodies get the scan position
    (the slice read at it, the output written at T-1-it) and the loop's iteration number."""
    if backend == "loops":
        pytest.skip("too large for the Loop IR interpreter; the small forms are tested above")
    b = GraphBuilder("main")
    s0 = b.input("s0", tensor(f32, 190, 190))
    x = b.input("x", tensor(f32, 3, 190, 190))
    body = GraphBuilder("body", parent=b.graph)
    s = body.input("s", tensor(f32, 190, 190))
    xt = body.input("xt", tensor(f32, 190, 190))
    s_next = body.Add(s, body.Mul(xt, body.constant(np.float32(0.5))))
    body.output(s_next, body.Sigmoid(s_next))
    sf, outs = b.Scan(s0, x, body=body.graph, num_scan_inputs=1, scan_output_directions=[1],
                      outputs=2)
    loop_body = GraphBuilder("loop", parent=b.graph)
    i = loop_body.input("i", tensor(i64))
    c = loop_body.input("c", tensor(boolean))
    y = loop_body.input("y", tensor(f32, 190, 190))
    y_next = loop_body.Add(loop_body.Mul(y, loop_body.Cast(i, to=f32)), sf)
    loop_body.output(c, y_next)
    yf = b.Loop(b.constant(np.array(3, np.int64)), None, s0, body=loop_body.graph, outputs=1)
    b.output(sf, outs, yf)
    check_graph(backend, b.graph, {"s0": rand((190, 190), seed=1), "x": rand((3, 190, 190),
                                                                              seed=2)},
                rtol=1e-5, atol=1e-5)


def test_scan_inputs_of_lengths_not_known_equal_are_an_error():
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, "t", 2))
    y = b.input("y", tensor(f32, "u", 2))
    body = GraphBuilder("body", parent=b.graph)
    xt = body.input("xt", tensor(f32, 2))
    yt = body.input("yt", tensor(f32, 2))
    body.output(body.Add(xt, yt))
    b.output(b.Scan(x, y, body=body.graph, num_scan_inputs=2, outputs=1))
    with pytest.raises(LoweringError, match="scan input 1 has length u"):
        lower_graph(b.graph)


def test_torchscript_exported_while_for_and_if():
    """A TorchScript module with a while loop (exported as Loop with M = 2^63 - 1 and a
    condition), a for loop over a symbolic size and an if, exported by torch.onnx and compiled
    by kiln.compile: matches PyTorch for several sizes and loop lengths."""
    torch = pytest.importorskip("torch")
    import io
    import warnings

    import onnx

    import kiln

    class Model(torch.nn.Module):
        def forward(self, x, limit):
            y = x
            n = torch.zeros(1)
            while bool(y.sum() < limit):
                y = y * 1.5 + 0.25
                n = n + 1
            for i in range(x.shape[0]):
                y = y + x[i].sum()
            if bool(x.mean() > 0):
                z = y * 2
            else:
                z = -y
            return z, n

    module = torch.jit.script(Model())
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.rand(4, 3), torch.tensor(50.0)), buf, dynamo=False,
                          input_names=["x", "limit"], dynamic_axes={"x": {0: "n"}})
    proto = onnx.load_from_string(buf.getvalue())
    assert {"Loop", "If"} <= {n.op_type for n in proto.graph.node}
    model = kiln.compile(proto)
    for shape, limit, seed in (((4, 3), 50.0, 1), ((2, 3), 1000.0, 2), ((6, 3), -1.0, 3),
                               ((3, 3), 5.0, 4)):
        x = rand(shape, seed=seed, low=-1.0, high=1.0)
        want = [t.numpy() for t in module(torch.from_numpy(x), torch.tensor(limit))]
        for got, w in zip(model.run({"x": x, "limit": np.array(limit, np.float32)}), want):
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)
