"""Schedule transforms keep results: every case runs the Loop IR interpreter before and after
(on odd and symbolic sizes), the verifier accepts the result, and the native code of the
transformed program agrees with the interpreter. Illegal transforms raise ScheduleError."""

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.errors import ScheduleError
from kiln.ir.dtypes import DType
from kiln.loops import Compare, Const, If, Kernel, Load, Loop, LoopKind, Reduce, Store, Var
from kiln.loops.interpreter import run_program
from kiln.loops.nest import all_exprs, map_body, map_expr
from kiln.loops.printer import print_kernel
from kiln.loops.schedule import (fuse, inline, lower_reductions, parallelize, reorder, split, tile,
                                 unroll, vectorize)
from kiln.loops.stmt import walk
from kiln.loops.verifier import verify_program
from tests.loops import kernels
from tests.loops.kernels import random_inputs, with_kernel

i32 = DType.int32


def _first(result):
    return result[0] if isinstance(result, tuple) else result


def _chain(*steps):
    """Transforms applied in turn; each step maps a kernel to a kernel (or a tuple with one)."""
    def apply(kernel):
        for step in steps:
            kernel = _first(step(kernel))
        return kernel
    return apply


def _split_reorder(kernel):
    kernel, jo, ji = split(kernel, "j", 3)
    return reorder(kernel, ("j_o", "i", "j_i"))


def _fuse_split_vectorize(kernel):
    kernel, ij = fuse(kernel, "i", "j")
    kernel, o, inner = split(kernel, ij, 4)
    return vectorize(parallelize(kernel, o), inner, 4)


def _tile_schedule(kernel):
    kernel, (io, jo), (ii, ji) = tile(kernel, ("i", "j"), (2, 3))
    return unroll(vectorize(parallelize(kernel, io), ji, 4), ii, 2)


def _inlined(program):
    """The producer/consumer program with the producer inlined and its kernel dropped."""
    produce, consume = program.kernels
    return kernels.Program(program.name, program.inputs, program.outputs,
                           [inline(produce, consume)], [], program.sizes)


# name: (program builder, kernel index, transform, symbolic sizes to run, exact?)
CASES = {
    "split_uneven": (kernels.elementwise, 0, lambda k: split(k, "j", 4), [None], True),
    "split_divides": (kernels.elementwise, 0, lambda k: split(k, "i", 5), [None], True),
    "split_past_end": (kernels.elementwise, 0, lambda k: split(k, "j", 8), [None], True),
    "split_by_one": (kernels.elementwise, 0, lambda k: split(k, "i", 1), [None], True),
    "split_twice": (kernels.elementwise, 0, _chain(lambda k: split(k, "j", 4),
                                                    lambda k: split(k, "j_i", 2)), [None], True),
    "tile": (kernels.elementwise, 0, lambda k: tile(k, ("i", "j"), (2, 4)), [None], True),
    "tile_schedule": (kernels.elementwise, 0, _tile_schedule, [None], True),
    "reorder": (kernels.elementwise, 0, lambda k: reorder(k, ("j", "i")), [None], True),
    "split_reorder": (kernels.elementwise, 0, _split_reorder, [None], True),
    "fuse": (kernels.elementwise, 0, lambda k: fuse(k, "i", "j"), [None], True),
    "fuse_split_vectorize": (kernels.elementwise, 0, _fuse_split_vectorize, [None], True),
    "vectorize_parallelize": (kernels.elementwise, 0,
                              lambda k: vectorize(parallelize(k, "i"), "j", 8), [None], True),
    "unroll": (kernels.elementwise, 0, lambda k: unroll(unroll(k, "j"), "i", 2), [None], True),
    "sum_split_axis": (kernels.row_sum, 0,
                       _chain(lower_reductions, lambda k: split(k, "k", 3),
                              lambda k: unroll(k, "k_i", 3)), [None], True),
    "sum_parallel_rows": (kernels.row_sum, 0,
                          _chain(lambda k: split(k, "i", 2), lower_reductions,
                                 lambda k: parallelize(k, "i_o"), lambda k: vectorize(k, "i_i")),
                          [None], True),
    "sum_reorder_axes_int": (lambda: kernels.total_sum(dtype=i32), 0,
                             _chain(lower_reductions, lambda k: reorder(k, ("m", "k"))),
                             [None], True),
    "sum_reorder_axes_float": (kernels.total_sum, 0,
                               _chain(lower_reductions, lambda k: reorder(k, ("m", "k"))),
                               [None], False),
    "softmax_lowered": (kernels.softmax_rows, 0,
                        _chain(lower_reductions, lambda k: parallelize(k, "i")), [None], True),
    "matmul_ikj": (kernels.matmul, 1, lambda k: reorder(k, ("i", "k", "j")), [None], True),
    "matmul_kij": (kernels.matmul, 1, lambda k: reorder(k, ("k", "i", "j")), [None], True),
    "matmul_tiled": (kernels.matmul, 1,
                     _chain(lambda k: tile(k, ("i", "j"), (2, 3)),
                            lambda k: parallelize(k, "i_o"), lambda k: vectorize(k, "j_i", 4)),
                     [None], True),
    "matmul_split_k_outside": (kernels.matmul, 1,
                               _chain(lambda k: split(k, "k", 2),
                                      lambda k: reorder(k, ("k_o", "i", "j", "k_i"))),
                               [None], True),
    "matmul_fused": (kernels.matmul, 1, _chain(lambda k: fuse(k, "i", "j"),
                                               lambda k: parallelize(k, "i_j")), [None], True),
    "scratch_parallel": (kernels.scratch_rows, 0,
                         _chain(lambda k: parallelize(k, "i"), lambda k: vectorize(k, "j2", 4),
                                lambda k: vectorize(k, "j", 4)), [None], True),
    "stencil_split": (kernels.stencil, 1, _chain(lambda k: split(k, "i", 2),
                                                 lambda k: unroll(k, "i_i", 2)), [None], True),
    "stencil_fuse": (kernels.stencil, 1, lambda k: fuse(k, "i", "jj"), [None], True),
    "empty_split": (lambda: kernels.elementwise(3, 0), 0, lambda k: split(k, "j", 4), [None],
                    True),
    "empty_fuse": (lambda: kernels.elementwise(0, 3), 0, lambda k: fuse(k, "i", "j"), [None],
                   True),
    "symbolic_split": (kernels.symbolic, 0, lambda k: split(k, "i", 2),
                       [{"n": 0}, {"n": 1}, {"n": 5}], True),
    "symbolic_fuse_vectorize": (kernels.symbolic, 0, _fuse_split_vectorize,
                                [{"n": 0}, {"n": 1}, {"n": 4}], True),
    "symbolic_tile": (kernels.symbolic, 0, lambda k: tile(k, ("i", "j"), (2, 2)),
                      [{"n": 1}, {"n": 5}], True),
    "symbolic_parallel": (kernels.symbolic, 0,
                          lambda k: vectorize(parallelize(k, "i"), "j", 4), [{"n": 3}], True),
}


def _transformed(name):
    build, index, transform, _, _ = CASES[name]
    before = build()
    original = print_kernel(before.kernels[index])
    after = with_kernel(before, index, _first(transform(before.kernels[index])))
    assert print_kernel(before.kernels[index]) == original, "the input kernel was changed"
    return before, after


def _compare(got, want, exact):
    for g, w in zip(got, want):
        if exact:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_transform_keeps_results(name):
    before, after = _transformed(name)
    verify_program(after)
    index = CASES[name][1]
    assert print_kernel(after.kernels[index]) != print_kernel(before.kernels[index])
    for sizes in CASES[name][3]:
        feeds = random_inputs(before, sizes)
        _compare(run_program(after, feeds), run_program(before, feeds), CASES[name][4])


def test_inline_keeps_results():
    before = kernels.producer_consumer()
    after = _inlined(before)
    verify_program(after)
    (consumer,) = after.kernels
    assert before.buffers[0] not in consumer.buffers
    assert "%t" not in print_kernel(consumer)
    feeds = random_inputs(before)
    np.testing.assert_array_equal(run_program(after, feeds)[0], run_program(before, feeds)[0])
    lowered = with_kernel(after, 0, lower_reductions(consumer))
    verify_program(lowered)
    np.testing.assert_array_equal(run_program(lowered, feeds)[0], run_program(before, feeds)[0])


def test_inline_into_a_triple_nest_and_a_symbolic_consumer():
    before = kernels.matmul()
    zero, update = before.kernels
    a, b, c = update.buffers
    a2 = kernels.Buffer("a2", a.dtype, a.shape, kernels.TEMP)
    p, q = Var("p"), Var("q")
    scale = Kernel("scale", [Loop(q, 0, 5, [Loop(p, 0, 3, [Store(a2, (p, q), a[p, q] * 3.0)])])],
                   [a, a2])
    reads_a2 = map_body(update.body, lambda e: map_expr(
        e, lambda x: Load(a2, x.index) if isinstance(x, Load) and x.buffer is a else x))
    uses_a2 = Kernel("matmul", reads_a2, [a2, b, c])
    staged = kernels.Program("staged", [a, b], [c], [zero, scale, uses_a2], [a2])
    fused = kernels.Program("fused", [a, b], [c], [zero, inline(scale, uses_a2)])
    verify_program(staged)
    verify_program(fused)
    assert "%a2" not in print_kernel(fused.kernels[1])
    feeds = random_inputs(before)
    np.testing.assert_array_equal(run_program(fused, feeds)[0], run_program(staged, feeds)[0])
    np.testing.assert_allclose(run_program(fused, feeds)[0], 3 * feeds["a"] @ feeds["b"],
                               rtol=1e-5)

    sym = kernels.symbolic()
    x, out = sym.kernels[0].buffers
    t = kernels.Buffer("t", x.dtype, x.shape, kernels.TEMP)
    produce = Kernel("neg", [Loop(p, 0, kernels.n, [Loop(q, 0, 3, [Store(t, (p, q), -x[p, q])])])],
                     [x, t])
    i, j = Var("i"), Var("j")
    consume = Kernel("flip", [Loop(i, 0, kernels.n, [Loop(j, 0, 3, [
        Store(out, (i, j), t[i, 2 - j] + t[kernels.n - 1 - i, j])])])], [t, out])
    staged = kernels.Program("staged", [x], [out], [produce, consume], [t], sym.sizes)
    fused = kernels.Program("fused", [x], [out], [inline(produce, consume)], [], sym.sizes)
    verify_program(fused)
    for rows in (1, 4):
        feeds = random_inputs(sym, {"n": rows})
        np.testing.assert_array_equal(run_program(fused, feeds)[0],
                                      run_program(staged, feeds)[0])


def test_inline_renames_reduce_axes_the_consumer_uses():
    before = kernels.producer_consumer()
    produce, consume = before.kernels
    summed = kernels.row_sum(3, 5).kernels[0]           # produces out[i] = sum_k x[i, k]
    t1 = summed.buffers[1]
    t1.kind = kernels.TEMP
    k = Var("k")
    use = Kernel("use", [Loop(k, 0, 3, [Store(before.outputs[0], (k,), t1[k] * 2.0)])],
                 [t1, before.outputs[0]])
    new = inline(summed, use)
    text = print_kernel(new)
    assert "sum(k_1 in 0..5: %x[k, k_1]" in text, text
    program = kernels.Program("p", [summed.buffers[0]], [before.outputs[0]], [new])
    verify_program(program)
    x = np.arange(15, dtype=np.float32).reshape(3, 5)
    np.testing.assert_array_equal(run_program(program, {"x": x})[0], x.sum(1) * 2)


def test_lower_reductions_leaves_no_reduce_and_keeps_bits():
    for build in (kernels.row_sum, kernels.softmax_rows, kernels.total_sum):
        before = build()
        after = with_kernel(before, 0, lower_reductions(before.kernels[0]))
        verify_program(after)
        assert not any(isinstance(e, Reduce) for e in all_exprs(after.kernels[0].body))
        feeds = random_inputs(before)
        np.testing.assert_array_equal(run_program(after, feeds)[0], run_program(before, feeds)[0])


def test_split_marks_kinds_on_the_right_loop():
    k = vectorize(parallelize(kernels.elementwise().kernels[0], "i"), "j", 8)
    k, io, ii = split(k, "i", 2)
    k, jo, ji = split(k, "j", 4)
    kinds = {s.var.name: (s.kind, s.width) for s in walk(k.body) if isinstance(s, Loop)}
    assert kinds["i_o"] == (LoopKind.PARALLEL, 0) and kinds["i_i"][0] is LoopKind.SERIAL
    assert kinds["j_i"] == (LoopKind.VECTORIZED, 8) and kinds["j_o"][0] is LoopKind.SERIAL


# random schedules ------------------------------------------------------------------------------

def _random_step(draw, kernel):
    """One transform on a random loop of `kernel` (it may be illegal there)."""
    loops = [s for s in walk(kernel.body) if isinstance(s, Loop)]
    if not loops:
        return lower_reductions
    loop = draw(st.sampled_from(loops))
    v = loop.var.name
    op = draw(st.sampled_from(["split", "fuse", "reorder", "vectorize", "parallelize", "unroll",
                               "tile", "lower"]))
    if op == "split":
        return lambda k: split(k, v, draw(st.integers(1, 4)))
    if op == "fuse" and len(loop.body) == 1 and isinstance(loop.body[0], Loop):
        return lambda k: fuse(k, v, loop.body[0].var)
    if op in ("reorder", "tile"):
        chain = [loop]
        while len(chain[-1].body) == 1 and isinstance(chain[-1].body[0], Loop):
            chain.append(chain[-1].body[0])
        names = [lp.var.name for lp in chain]
        if op == "tile":
            return lambda k: tile(k, names, [draw(st.integers(1, 3)) for _ in names])
        return lambda k: reorder(k, draw(st.permutations(names)))
    if op == "vectorize":
        return lambda k: vectorize(k, v, draw(st.sampled_from([0, 1, 4, 8])))
    if op == "parallelize":
        return lambda k: parallelize(k, v)
    if op == "unroll":
        return lambda k: unroll(k, v, draw(st.integers(0, 3)))
    return lower_reductions


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_schedules_keep_results(data):
    build, index = data.draw(st.sampled_from([(kernels.elementwise, 0), (kernels.matmul, 1),
                                              (kernels.row_sum, 0), (kernels.symbolic, 0),
                                              (kernels.stencil, 1), (kernels.scratch_rows, 0),
                                              (kernels.softmax_rows, 0), (kernels.total_sum, 0)]))
    before = build()
    kernel = before.kernels[index]
    for _ in range(data.draw(st.integers(1, 4))):
        try:
            kernel = _first(_random_step(data.draw, kernel)(kernel))
        except ScheduleError:
            continue
    after = with_kernel(before, index, kernel)
    verify_program(after)
    sizes = {"n": data.draw(st.integers(0, 4))}
    feeds = random_inputs(before, sizes)
    for g, w in zip(run_program(after, feeds), run_program(before, feeds)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


# illegal transforms ----------------------------------------------------------------------------

def _raises(fn, *words):
    with pytest.raises(ScheduleError) as info:
        fn()
    for w in words:
        assert w in str(info.value), str(info.value)


def test_missing_loops_and_bad_factors():
    k = kernels.elementwise().kernels[0]
    _raises(lambda: split(k, "z", 2), "no loop over z", "i, j")
    _raises(lambda: split(k, "i", 0), "positive")
    _raises(lambda: vectorize(k, "j", 3), "power of two")
    _raises(lambda: unroll(k, "j", -1), ">= 0")
    _raises(lambda: tile(k, ("i", "j"), (2,)), "one factor per loop")
    _raises(lambda: reorder(k, ("i", "i")), "twice")


def test_reorder_and_fuse_need_perfect_nests():
    lowered = lower_reductions(kernels.row_sum().kernels[0])
    _raises(lambda: reorder(lowered, ("k", "i")), "not perfectly nested", "loop i")
    _raises(lambda: fuse(lowered, "i", "k"), "whole body")
    m = kernels.matmul().kernels[1]
    _raises(lambda: fuse(m, "i", "k"), "whole body")
    _raises(lambda: tile(m, ("i", "k"), (2, 2)), "consecutive")
    _raises(lambda: reorder(kernels.matmul().kernels[0], ("i0", "j")), "no loop over j")


def test_reorder_keeps_bounds_inside_their_loops():
    k, jo, ji = split(kernels.elementwise().kernels[0], "j", 4)
    _raises(lambda: reorder(k, ("i", "j_i", "j_o")), "cannot move loop j_i", "j_o")
    tri = Kernel("tri", [Loop(Var("a"), 0, 4, [Loop(Var("b"), 0, Var("a"), [])])], [])
    _raises(lambda: fuse(tri, "a", "b"), "depend on a")
    _raises(lambda: reorder(tri, ("b", "a")), "cannot move loop b")


def test_dependences_block_reorder_and_parallel_loops():
    sweep = kernels.stencil().kernels[1]
    _raises(lambda: reorder(sweep, ("jj", "i")), "cannot reorder", "%a")
    _raises(lambda: parallelize(sweep, "i"), "cannot parallelize loop i", "%a")
    _raises(lambda: tile(sweep, ("i", "jj"), (2, 2)), "cannot reorder")
    matmul = kernels.matmul().kernels[1]
    _raises(lambda: parallelize(matmul, "k"), "cannot parallelize loop k", "%c[i, j]")
    _raises(lambda: vectorize(matmul, "k", 4), "cannot vectorize loop k")
    lowered = lower_reductions(kernels.row_sum().kernels[0])
    _raises(lambda: parallelize(lowered, "k"), "acc")
    total = lower_reductions(kernels.total_sum().kernels[0])
    (local, outer) = total.body[:2]
    inner = outer.body[0]
    inner.body[0].value = inner.body[0].value * 2.0     # acc = (acc + x) * 2: not a fold
    _raises(lambda: reorder(total, ("m", "k")), "cannot reorder", "acc")


def test_reorder_of_overwrites_keeps_the_last_writer_unless_a_store_is_conditional():
    x = kernels.Buffer("x", kernels.f32, (3, 4), kernels.IN)
    out = kernels.Buffer("out", kernels.f32, (1,), kernels.OUT)
    a, b = Var("a"), Var("b")

    def program(body):
        nest = [Loop(a, 0, 3, [Loop(b, 0, 4, body)])]
        return kernels.Program("last", [x], [out], [Kernel("last", nest, [x, out])])

    last = program([Store(out, (0,), x[a, b])])
    swapped = with_kernel(last, 0, reorder(last.kernels[0], ("b", "a")))
    feeds = random_inputs(last)
    np.testing.assert_array_equal(run_program(swapped, feeds)[0], run_program(last, feeds)[0])
    positive = Compare("gt", x[a, b], Const(0.0, kernels.f32))
    guarded = program([If(positive, [Store(out, (0,), x[a, b])])])
    _raises(lambda: reorder(guarded.kernels[0], ("b", "a")), "cannot reorder", "%out[0]")


def test_no_nested_parallel_loops_and_no_symbolic_full_unroll():
    k = parallelize(kernels.elementwise().kernels[0], "i")
    _raises(lambda: parallelize(k, "j"), "loop i", "parallel already")
    _raises(lambda: parallelize(parallelize(kernels.elementwise().kernels[0], "j"), "i"),
            "loop j")
    _raises(lambda: unroll(kernels.symbolic().kernels[0], "i"), "not a constant")
    unroll(kernels.symbolic().kernels[0], "i", 4)


def test_inline_rejects_what_it_cannot_substitute():
    before = kernels.producer_consumer()
    produce, consume = before.kernels
    x, t = produce.buffers
    p, q = Var("p"), Var("q")
    shifted = Kernel("shifted", [Loop(p, 0, 2, [Store(t, (p + 1, Const(0)), x[p, 0])])], [x, t])
    _raises(lambda: inline(shifted, consume), "indexed by its loop variables")
    two = Kernel("two", [Loop(p, 0, 3, [Store(t, (p, 0), x[p, 0]), Store(t, (p, 1), x[p, 1])])],
                 [x, t])
    _raises(lambda: inline(two, consume), "one Store")
    selfish = Kernel("selfish", [Loop(p, 0, 3, [Loop(q, 0, 5, [Store(t, (p, q), t[p, q])])])],
                     [t])
    _raises(lambda: inline(selfish, consume), "reads the buffer %t")
    i = Var("i")
    writer = Kernel("writer", [Loop(i, 0, 3, [Store(t, (i, 0), Const(0.0, kernels.f32))])], [t])
    _raises(lambda: inline(produce, writer), "writes %t too")


# native code -----------------------------------------------------------------------------------

def _compile_program():
    if importlib.util.find_spec("kiln.codegen") is None:
        pytest.skip("kiln.codegen does not exist yet: no native code to compare with")
    import kiln.codegen
    if not hasattr(kiln.codegen, "compile_program"):
        pytest.skip("kiln.codegen.compile_program does not exist yet")
    return kiln.codegen.compile_program


@pytest.mark.parametrize("name", sorted(CASES) + ["inline"])
def test_native_matches_interpreter(name):
    compile_program = _compile_program()
    if name == "inline":
        before, sizes_list = kernels.producer_consumer(), [None]
        after = _inlined(before)
    else:
        before, after = _transformed(name)
        sizes_list = CASES[name][3]
    native = compile_program(after)
    for sizes in sizes_list:
        feeds = random_inputs(before, sizes)
        want = run_program(after, feeds)
        got = native.run(feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
