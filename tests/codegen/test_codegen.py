"""Loop IR programs compiled natively vs the Loop IR interpreter: loop kinds, vector tails,
symbolic sizes, non-contiguous memory, views, reductions, parallel loops, locals and ifs, the
buffer kinds, and what the module exposes (LLVM IR, assembly, notes)."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.codegen import CodegenError, CodegenOptions, compile_program, host_target
from kiln.errors import DTypeMismatchError, InputNameError, ShapeMismatchError
from kiln.ir.dtypes import DType
from kiln.loops import (Assign, Binary, Buffer, BufferKind, Cast, Compare, Const, If, Kernel,
                        Local, Loop, LoopKind, Program, Reduce, Select, Store, Unary, Var)
from kiln.loops.interpreter import run_program

from .loopkit import assert_same

f32, f64, i32, i64 = DType.float32, DType.float64, DType.int32, DType.int64
SER, PAR, VEC, UNR = LoopKind.SERIAL, LoopKind.PARALLEL, LoopKind.VECTORIZED, LoopKind.UNROLLED
i, j, k, n, m = Var("i"), Var("j"), Var("k"), Var("n"), Var("m")
RNG = np.random.default_rng(7)


def inp(name, shape, dtype=f32):
    return Buffer(name, dtype, shape, BufferKind.INPUT)


def out(name, shape, dtype=f32):
    return Buffer(name, dtype, shape, BufferKind.OUTPUT)


def program(name, inputs, outputs, kernels, sizes=None, temps=()):
    return Program(name, inputs, outputs, kernels, [*inputs, *outputs, *temps], sizes or {})


def rand(shape, dtype=f32):
    if np.dtype(dtype.np).kind in "iu":
        return RNG.integers(-50, 50, shape).astype(dtype.np)
    return RNG.standard_normal(shape).astype(dtype.np)


def check(prog, inputs_list, options=None, rtol=0.0, atol=0.0):
    """Compile once, run on each input set, compare every output with the interpreter."""
    native = compile_program(prog, options)
    for inputs in inputs_list:
        got, want = native.run(inputs), run_program(prog, inputs)
        for b, g, w in zip(prog.outputs, got, want):
            assert_same(b.name, g, w, rtol, atol)
    return native


# --- vector loops: tails, widths, bounds ----------------------------------------------------

def test_vector_tails_and_symbolic_sizes():
    x = inp("x", (n,))
    ys = [out(f"y{w}", (n,)) for w in (0, 4, 8, 3)]
    kernels = [Kernel(f"k{w}", [Loop(i, 0, n, [Store(y, (i,), x[i] * 2.0 + 1.0)], VEC, w)])
               for w, y in zip((0, 4, 8, 3), ys)]
    # a loop starting past 0 and an empty one (start > stop when n < 5)
    z = out("z", (n,))
    kernels.append(Kernel("offset", [Loop(i, 0, n, [Store(z, (i,), Const(-1.0, f32))], SER),
                                     Loop(i, 5, n, [Store(z, (i,), x[i] - x[i - 5])], VEC)]))
    prog = program("tails", [x], ys + [z], kernels, {"n": (x, 0)})
    check(prog, [{"x": rand((s,))} for s in (0, 1, 7, 16, 17, 33, 64)])


def test_parallel_outer_vector_inner_with_broadcast():
    a, bias = inp("a", (n, m)), inp("bias", (m,))
    y = out("y", (n, m))
    body = [Loop(j, 0, m, [Store(y, (i, j), Unary("tanh", a[i, j]) + bias[j] * Cast(f32, i))],
                 VEC)]
    prog = program("bcast", [a, bias], [y], [Kernel("k", [Loop(i, 0, n, body, PAR)])],
                   {"n": (a, 0), "m": (a, 1)})
    check(prog, [{"a": rand((r, c)), "bias": rand((c,))} for r, c in
                 ((1, 1), (3, 17), (5, 33), (0, 4), (4, 0), (64, 3))], rtol=2e-6, atol=1e-6)


# --- non-contiguous memory ------------------------------------------------------------------

def test_strided_transposed_gathered_and_nonaffine_loads():
    x = inp("x", (m, n))
    xt = x.view("xt", (n, m), strides=(1, n))            # transpose: symbolic stride
    idx = inp("idx", (n,), i64)
    v = inp("v", (n * 2 + 1,))
    t_out, s_out, g_out, d_out = (out("t", (n, m)), out("s", (n,)), out("g", (n,)),
                                  out("d", (n,)))
    kernels = [
        Kernel("transpose", [Loop(i, 0, n, [Loop(j, 0, m, [Store(t_out, (i, j), xt[i, j])],
                                                 VEC)], SER)]),
        Kernel("strided", [Loop(i, 0, n, [Store(s_out, (i,), v[i * 2 + 1])], VEC)]),
        Kernel("gather", [Loop(i, 0, n, [Store(g_out, (i,), v[idx[i]])], VEC)]),
        Kernel("nonaffine", [Loop(i, 0, n, [Store(d_out, (i,), v[i // 2] + v[i % 3])], VEC)]),
    ]
    prog = program("gathers", [x, idx, v], [t_out, s_out, g_out, d_out], kernels,
                   {"n": (idx, 0), "m": (x, 0)})
    runs = []
    for r, c in ((1, 1), (3, 7), (17, 5), (2, 33)):
        runs.append({"x": rand((r, c)), "idx": RNG.integers(0, 2 * c + 1, c).astype(np.int64),
                     "v": rand((2 * c + 1,))})
    check(prog, runs)


def test_views_with_strides_and_offsets():
    """Reading a slice x[1:, 2:] and a reversed view; writing a temp through a view and
    reading it back through another."""
    x = inp("x", (6, 9))
    sl = x.view("sl", (5, 7), strides=(9, 1), offset=11)
    rev = x.view("rev", (9,), strides=(-1,), offset=8)     # row 0 reversed
    tmp = Buffer("tmp", f32, (4, 8), BufferKind.TEMP)
    tmp_t = tmp.view("tmp_t", (8, 4), strides=(1, 8))
    a, b, c = out("a", (5, 7)), out("b", (9,)), out("c", (4, 8))
    kernels = [
        Kernel("slice", [Loop(i, 0, 5, [Loop(j, 0, 7, [Store(a, (i, j), sl[i, j] * 3.0)], VEC)],
                              SER)]),
        Kernel("reverse", [Loop(i, 0, 9, [Store(b, (i,), rev[i])], VEC, 4)]),
        Kernel("write_t", [Loop(i, 0, 8, [Loop(j, 0, 4, [Store(tmp_t, (i, j), x[j, i] + 1.0)],
                                               VEC)], SER)]),
        Kernel("read", [Loop(i, 0, 4, [Loop(j, 0, 8, [Store(c, (i, j), tmp[i, j])], VEC)], PAR)]),
    ]
    check(program("views", [x], [a, b, c], kernels, temps=[tmp]), [{"x": rand((6, 9))}])


# --- reductions -----------------------------------------------------------------------------

def test_reductions_all_combiners_including_empty_ranges():
    x, xi, xb = inp("x", (n, m)), inp("xi", (n, m), i32), inp("xb", (n, m), DType.bool)
    outs, kernels = [], []
    cases = [("add", x, Const(0.0, f32)), ("mul", x, Const(1.0, f32)),
             ("max", x, Const(-np.inf, f32)), ("min", x, Const(np.inf, f32)),
             ("add", xi, Const(0, i32)), ("max", xi, Const(-(2**31), i32)),
             ("xor", xi, Const(0, i32)), ("and", xb, Const(True, DType.bool)),
             ("or", xb, Const(False, DType.bool))]
    for c, (comb, buf, init) in enumerate(cases):
        for kind in (SER, VEC):
            o = out(f"r{c}_{comb}_{kind.name.lower()}", (n,), buf.dtype)
            red = Reduce(comb, init, ((k, Const(0), m),), buf[i, k])
            kernels.append(Kernel(o.name, [Loop(i, 0, n, [Store(o, (i,), red)], kind)]))
            outs.append(o)
        # the whole array in one reduction over two axes, in scalar code
        o = out(f"all{c}_{comb}", (), buf.dtype)
        whole = Reduce(comb, init, ((i, Const(0), n), (k, Const(0), m)), buf[i, k])
        kernels.append(Kernel(o.name, [Store(o, (), whole)]))
        outs.append(o)
    prog = program("reduce", [x, xi, xb], outs, kernels, {"n": (x, 0), "m": (x, 1)})
    runs = []
    for r, c in ((3, 0), (0, 3), (1, 1), (5, 7), (17, 9)):
        runs.append({"x": rand((r, c)) * 0.5 + 1, "xi": rand((r, c), i32),
                     "xb": RNG.integers(0, 8, (r, c)) > 0})
    check(prog, runs, rtol=1e-5, atol=1e-5)


def test_matmul_vector_lanes_each_reduce():
    """A reduction inside vector code: each lane (column j) accumulates its own sum over k."""
    kk = Var("kk")
    a, b = inp("a", (n, kk)), inp("b", (kk, m))
    c = out("c", (n, m))
    body = [Loop(j, 0, m, [Store(c, (i, j), Reduce("add", Const(0.0, f32), ((k, Const(0), kk),),
                                                   a[i, k] * b[k, j]))], VEC)]
    prog = program("matmul", [a, b], [c], [Kernel("mm", [Loop(i, 0, n, body, PAR)])],
                   {"n": (a, 0), "kk": (a, 1), "m": (b, 1)})
    check(prog, [{"a": rand((r, q)), "b": rand((q, s))} for r, q, s in
                 ((1, 1, 1), (5, 0, 3), (7, 13, 33), (16, 8, 16))], rtol=1e-5, atol=1e-5)


def test_reassociation_can_be_turned_off():
    x = inp("x", (n,))
    s = out("s", ())
    prog = program("sum", [x], [s], [Kernel("k", [Store(s, (), Reduce(
        "add", Const(0.0, f32), ((i, Const(0), n),), x[i]))])], {"n": (x, 0)})
    data = {"x": (RNG.standard_normal(1000) * 1e4).astype(np.float32)}
    strict = compile_program(prog, CodegenOptions(reassociate=False))
    assert strict.run(data)[0] == run_program(prog, data)[0]      # same order, same bits
    assert "reassoc" not in strict.llvm_ir


# --- parallel loops -------------------------------------------------------------------------

def test_parallel_loops_capture_outer_values():
    """The outlined body reads an enclosing loop variable, a local and a symbolic size; a
    nested parallel loop runs serially inside it."""
    x = inp("x", (m, n))
    y = out("y", (m, n))
    scale = Var("scale", f32)
    inner = Loop(j, 0, n, [Store(y, (i, j), x[i, j] * scale + Cast(f32, i * 1000 + j + n))], PAR)
    kernel = Kernel("k", [Loop(i, 0, m, [Local(scale, Cast(f32, i) + 0.5), inner], PAR)])
    prog = program("par", [x], [y], [kernel], {"n": (x, 1), "m": (x, 0)})
    runs = [{"x": rand((r, c))} for r, c in ((0, 3), (1, 1), (3, 1000), (37, 5))]
    check(prog, runs, rtol=1e-6)                     # x * scale + c may become an FMA
    check(prog, runs, CodegenOptions(parallel=False, reassociate=False))


def test_parallel_loop_assigning_outer_local_is_rejected():
    x, y = inp("x", (4,)), out("y", (4,))
    acc = Var("acc", f32)
    kernel = Kernel("k", [Local(acc, Const(0.0, f32)),
                          Loop(i, 0, 4, [Assign(acc, acc + x[i])], PAR),
                          Store(y, (0,), acc)])
    with pytest.raises(CodegenError, match="assigns"):
        compile_program(program("bad", [x], [y], [kernel]))


# --- locals, ifs, selects -------------------------------------------------------------------

def test_locals_ifs_and_masked_vector_code():
    x = inp("x", (n,))
    y, z, w = out("y", (n,)), out("z", (n,)), out("w", (n,))
    t, acc = Var("t", f32), Var("acc", f32)
    vec_body = [Local(t, x[i] * 2.0),
                If(Compare("gt", t, Const(0.0, f32)),
                   [Assign(t, t + 10.0), Store(y, (i,), t)],
                   [Store(y, (i,), Const(-1.0, f32))]),
                If(Compare("lt", i, Const(3)), [Assign(t, Const(0.0, f32))]),
                Store(z, (i,), t)]
    serial = [Local(acc, Const(0.0, f32)),
              Loop(i, 0, n, [If(Compare("gt", x[i], Const(0.0, f32)),
                                [Assign(acc, acc + x[i])]),
                             Store(w, (i,), acc)], VEC)]      # assigns outer local: scalar
    prog = program("ifs", [x], [y, z, w], [Kernel("vec", [Loop(i, 0, n, vec_body, VEC)]),
                                           Kernel("serial", serial)], {"n": (x, 0)})
    native = check(prog, [{"x": rand((s,))} for s in (0, 1, 5, 16, 19, 40)])
    assert any("stays scalar" in note for note in native.notes)


def test_untaken_branches_never_load():
    """Loads far out of bounds in branches that are not taken must not run (they would
    crash): scalar selects, per-lane selects, uniform loads under an all-false mask, ifs."""
    x = inp("x", (n,))
    far = Const(10**12)
    y1, y2, y3, y4 = (out(f"y{q}", (n,)) for q in range(1, 5))
    in_range = Compare("lt", i, n)
    kernels = [
        Kernel("scalar", [Loop(i, 0, n, [Store(y1, (i,), Select(in_range, x[i], x[i + far]))],
                               SER)]),
        Kernel("lanes", [Loop(i, 0, n, [Store(y2, (i,), Select(
            Compare("ge", x[i], Const(0.0, f32)), x[i], x[i * far]))], VEC)]),
        Kernel("uniform", [Loop(i, 0, n, [Store(y3, (i,), Select(
            Compare("lt", i, Const(0)), x[far], x[i] + 1.0))], VEC)]),
        Kernel("if", [Loop(i, 0, n, [If(Compare("ge", i, n), [Store(y4, (i,), x[far])],
                                         [Store(y4, (i,), x[i])])], VEC)]),
    ]
    data = [{"x": np.abs(rand((s,)))} for s in (1, 7, 33)]
    prog = program("guards", [x], [y1, y2, y3, y4], kernels, {"n": (x, 0)})
    native = compile_program(prog)
    for d in data:
        got = native.run(d)
        for g in (got[0], got[1], got[3]):
            np.testing.assert_array_equal(g, d["x"])
        np.testing.assert_array_equal(got[2], d["x"] + 1)


def test_unrolled_loops():
    x = inp("x", (n,))
    c = inp("c", (5,))
    a, b, d = out("a", (5,)), out("b", (n,)), out("d", (7,))
    kernels = [Kernel("full", [Loop(i, 0, 5, [Store(a, (i,), c[i] * Cast(f32, i))], UNR)]),
               Kernel("by4", [Loop(i, 0, n, [Store(b, (i,), x[i] + 1.0)], UNR, 4)]),
               Kernel("by3", [Loop(i, 0, 7, [Store(d, (i,), c[i % 5] - 1.0)], UNR, 3)])]
    prog = program("unroll", [x, c], [a, b, d], kernels, {"n": (x, 0)})
    native = check(prog, [{"x": rand((s,)), "c": rand((5,))} for s in (0, 3, 4, 9)])
    assert "loop" not in native.llvm_ir.split("k0.full")[1].split("define")[0]


# --- buffer kinds ---------------------------------------------------------------------------

def test_constants_temps_and_locals():
    big = RNG.standard_normal(50_000).astype(np.float32)
    w = Buffer("w", f32, (50_000,), BufferKind.CONSTANT, data=big)
    x = inp("x", (n,))
    t1 = Buffer("t1", f32, (n,), BufferKind.TEMP)
    t2 = Buffer("t2", i64, (n, 3), BufferKind.TEMP)
    tile = Buffer("tile", f32, (8,), BufferKind.LOCAL)
    y, z = out("y", (n,)), out("z", (n,))
    kernels = [
        Kernel("k1", [Loop(i, 0, n, [Store(t1, (i,), x[i] * w[i * 7 % 50_000])], VEC)]),
        Kernel("k2", [Loop(i, 0, n, [Loop(j, 0, 3, [Store(t2, (i, j), Cast(i64, t1[i]) + j)],
                                          SER)], PAR)]),
        Kernel("k3", [Loop(i, 0, n, [Store(y, (i,), Cast(f32, t2[i, 2]) + t1[i])], VEC)]),
        Kernel("k4", [Loop(i, 0, n, [
            Loop(j, 0, 8, [Store(tile, (j,), x[i] + Cast(f32, j))], VEC),
            Store(z, (i,), Reduce("add", Const(0.0, f32), ((k, Const(0), Const(8)),), tile[k]))],
            PAR)],
               buffers=[x, tile, z]),
    ]
    prog = program("kinds", [x], [y, z], kernels, {"n": (x, 0)}, temps=[w, t1, t2])
    native = check(prog, [{"x": rand((s,)) * 10} for s in (0, 1, 30, 100)], rtol=1e-6)
    assert len(native.llvm_ir) < 100_000          # the constant is passed by pointer


def test_size_zero_buffers():
    x = inp("x", (0,))
    e = inp("e", (n, 0))
    y, z = out("y", (0, 5)), out("z", (n,))
    kernels = [Kernel("empty", [Loop(i, 0, 0, [Loop(j, 0, 5, [Store(y, (i, j), x[i])], VEC)],
                                     PAR)]),
               Kernel("rows", [Loop(i, 0, n, [Store(z, (i,), Reduce(
                   "max", Const(-1.0, f32), ((j, Const(0), Const(0)),), e[i, j]))], VEC)])]
    prog = program("zero", [x, e], [y, z], kernels, {"n": (e, 0)})
    check(prog, [{"x": np.zeros(0, np.float32), "e": np.zeros((s, 0), np.float32)}
                 for s in (0, 3)])


# --- what the module shows ------------------------------------------------------------------

def test_llvm_ir_and_asm_show_vector_code():
    x, y = inp("x", (n,)), out("y", (n,))
    prog = program("show", [x], [y], [Kernel("k", [Loop(i, 0, n, [Store(y, (i,), x[i] + 1.0)],
                                                        VEC)])], {"n": (x, 0)})
    native = compile_program(prog)
    assert "define i32 @\"kiln_entry\"(ptr %\"inputs\"" in native.llvm_ir
    assert "masked.store" in native.llvm_ir                  # the tail
    if host_target().has("avx512f"):
        assert "<16 x float>" in native.llvm_ir
        assert "zmm" in native.asm
    else:
        assert "x float>" in native.llvm_ir
    assert native.timings["llvm"] > 0


def test_errors_name_the_problem():
    x, y = inp("x", (n,)), out("y", (n,))
    ok = program("ok", [x], [y], [Kernel("k", [Loop(i, 0, n, [Store(y, (i,), x[i])], VEC)])],
                 {"n": (x, 0)})
    native = compile_program(ok)
    with pytest.raises(DTypeMismatchError):
        native.run({"x": np.zeros(3, np.float64)})
    with pytest.raises(ShapeMismatchError):
        native.run({"x": np.zeros((3, 1), np.float32)})
    with pytest.raises(InputNameError):
        native.run({"y": np.zeros(3, np.float32)})
    unbound = program("unbound", [x], [y], [Kernel("k", [Loop(i, 0, n, [Store(y, (i,), x[i])],
                                                              SER)])])
    with pytest.raises(CodegenError, match="not bound"):
        compile_program(unbound)
    stray = inp("stray", (3,))
    with pytest.raises(CodegenError, match="not one of the program's inputs"):
        compile_program(program("stray", [x], [y], [Kernel("k", [Store(y, (0,), stray[0])])],
                                {"n": (x, 0)}))
    v, s = inp("v", (4,)), out("s", (4,))
    fixed = program("fixed", [v], [s], [Kernel("k", [Loop(i, 0, 4, [Store(s, (i,), v[i])])])])
    with pytest.raises(ShapeMismatchError):
        compile_program(fixed).run({"v": np.zeros(5, np.float32)})


def test_bool_and_integer_loads_stores_in_vector_code():
    x = inp("x", (n,), DType.uint8)
    y = out("y", (n,), DType.bool)
    z = out("z", (n,), DType.int16)
    kernels = [Kernel("b", [Loop(i, 0, n, [Store(y, (i,), Compare("gt", x[i],
                                                                  Const(100, DType.uint8)))],
                                 VEC)]),
               Kernel("s", [Loop(i, 0, n, [Store(z, (i,), Select(y[i], Cast(DType.int16, x[i]),
                                                                  Const(-1, DType.int16)))],
                                 VEC)])]
    prog = program("bools", [x], [y, z], kernels, {"n": (x, 0)})
    check(prog, [{"x": RNG.integers(0, 256, s).astype(np.uint8)} for s in (1, 63, 64, 65, 130)])


@pytest.mark.parametrize("dtype", [DType.float16, DType.bfloat16, f64])
def test_other_float_types_in_vector_code(dtype):
    x = inp("x", (n,), dtype)
    y = out("y", (n,), dtype)
    s = out("s", (), dtype)
    kernels = [Kernel("e", [Loop(i, 0, n, [Store(y, (i,), Binary("max", x[i] * x[i] - 1.0,
                                                                   Const(0.25, dtype)))], VEC)]),
               Kernel("r", [Store(s, (), Reduce("add", Const(0.0, dtype), ((i, Const(0), n),),
                                                x[i]))])]
    prog = program(f"ft_{dtype.short}", [x], [y, s], kernels, {"n": (x, 0)})
    native = compile_program(prog)
    for size in (1, 9, 40):
        data = {"x": rand((size,), f32).astype(dtype.np)}
        got, want = native.run(data), run_program(prog, data)
        assert_same("y", got[0], want[0])
        assert_same("s", got[1], want[1], rtol=2e-2 if dtype is not f64 else 1e-12, atol=0.05)


def test_narrow_integer_indices_bounds_and_conditions():
    """Indices, loop bounds and conditions of other integer types are widened / tested != 0."""
    v = inp("v", (n,))
    idx = inp("idx", (n,), DType.int32)
    cnt = inp("cnt", (1,), DType.uint8)
    flag = inp("flag", (n,), DType.int16)
    g, c = out("g", (n,)), out("c", (n,))
    kernels = [Kernel("g", [Loop(i, 0, n, [Store(g, (i,), Select(flag[i], v[idx[i]],
                                                                 Const(-1.0, f32)))], VEC)]),
               Kernel("c", [Loop(i, 0, n, [Store(c, (i,), Const(0.0, f32))], SER),
                            Loop(i, 0, cnt[0], [If(flag[i], [Store(c, (i,), v[i])])], VEC)])]
    prog = program("narrow", [v, idx, cnt, flag], [g, c], kernels, {"n": (v, 0)})
    runs = []
    for s in (1, 9, 40):
        runs.append({"v": rand((s,)), "idx": RNG.integers(0, s, s).astype(np.int32),
                     "cnt": np.array([s // 2 + 1], np.uint8),
                     "flag": RNG.integers(-2, 3, s).astype(np.int16)})
    check(prog, runs)


def test_vector_loops_reducing_into_outer_locals():
    """`acc = acc <op> x[i]` in a VECTORIZED loop: per-lane partials from the op's identity,
    combined after the loop (masked lanes and untaken ifs contribute nothing)."""
    x, xi = inp("x", (n,)), inp("xi", (n,), i32)
    cases = [("add", x, 0.0), ("mul", x, 1.0), ("max", x, -5.0), ("min", x, 5.0),
             ("add", xi, 3), ("max", xi, -(2**31)), ("min", xi, 7), ("xor", xi, 0),
             ("and", xi, -1), ("or", xi, 0)]
    outs, kernels = [], []
    for c, (op, buf, init) in enumerate(cases):
        acc = Var(f"acc{c}", buf.dtype)
        o = out(f"o{c}_{op}", (), buf.dtype)
        value = buf[i] if op != "mul" else buf[i] * 0.01 + 1.0
        update = Assign(acc, Binary(op, acc, value))
        body = [If(Compare("ne", i, Const(2)), [update])] if c % 2 else [update]
        kernels.append(Kernel(o.name, [Local(acc, Const(init, buf.dtype)),
                                       Loop(i, 0, n, body, VEC), Store(o, (), acc)]))
        outs.append(o)
    prog = program("vred", [x, xi], outs, kernels, {"n": (x, 0)})
    runs = [{"x": rand((s,)), "xi": rand((s,), i32)} for s in (0, 1, 2, 3, 17, 33, 100)]
    native = check(prog, runs, rtol=1e-5, atol=1e-5)
    assert not native.notes
    strict = compile_program(prog, CodegenOptions(reassociate=False))
    assert sum("stays scalar" in note for note in strict.notes) == 2     # float add and mul
    for r in runs:
        for g, w in zip(strict.run(r), run_program(prog, r)):
            assert_same("strict", g, w)


def test_rank_zero_inputs_outputs_and_non_contiguous_inputs():
    s, x = inp("s", ()), inp("x", (2, 3))
    y, t = out("y", ()), out("t", (2, 3))
    kernels = [Kernel("y", [Store(y, (), s[()] * 2.0)]),
               Kernel("t", [Loop(i, 0, 2, [Loop(j, 0, 3, [Store(t, (i, j), x[i, j] + s[()])],
                                                VEC)], SER)])]
    prog = program("rank0", [s, x], [y, t], kernels)
    check(prog, [{"s": np.array(1.5, np.float32),
                  "x": np.arange(6, dtype=np.float32).reshape(3, 2).T}])   # a transposed view


@pytest.mark.parametrize("dtype", [DType.float16, DType.bfloat16, DType.bool, DType.int8, f64])
def test_gathers_and_scatters_of_every_storage_type(dtype):
    """Strided loads and stores (gather / scatter) in vector code, with a masked tail."""
    x = inp("x", (n,), dtype)                   # n = 3 * rows
    rows = n // 3
    y = out("y", (rows * 2,), dtype)
    kernels = [Kernel("fill", [Loop(i, 0, rows * 2, [Store(y, (i,), x[i])], VEC)]),
               Kernel("strided", [Loop(i, 0, rows, [Store(y, (i * 2 + 1,), x[i * 3])], VEC)])]
    prog = program(f"gs_{dtype.short}", [x], [y], kernels, {"n": (x, 0)})
    check(prog, [{"x": rand((r * 3,), f32).astype(dtype.np)} for r in (1, 7, 17, 40)])


def test_uniform_stores_loops_and_unrolling_inside_vector_code():
    """In vector code: a store to one address keeps the last lane's value (as the serial loop
    would), an inner serial loop and an unrolled loop run per vector of lanes."""
    x = inp("x", (n, 4))
    last, col = out("last", (1,)), out("col", (4, n))
    u = out("u", (n,))
    kernels = [
        Kernel("last", [Loop(i, 0, n, [Store(last, (0,), x[i, 0] * 2.0)], VEC)]),
        Kernel("cols", [Loop(i, 0, n, [Loop(k, 0, 4, [Store(col, (k, i), x[i, k] + 1.0)], SER)],
                             VEC)]),
        Kernel("unr", [Loop(i, 0, n, [Store(u, (i,), Const(0.0, f32)),
                                      Loop(k, 0, 4, [Store(u, (i,), u[i] + x[i, k])], UNR)],
                            VEC)]),
    ]
    prog = program("uniform", [x], [last, col, u], kernels, {"n": (x, 0)})
    check(prog, [{"x": rand((s, 4))} for s in (1, 5, 16, 21)])


def test_reduction_axis_shadowing_an_outer_loop_variable():
    """The same expression object inside and outside a Reduce whose axis reuses the name of the
    enclosing loop variable must see each binding."""
    x = inp("x", (n,))
    y = out("y", (n,))
    xi = x[i]
    value = xi + Reduce("add", Const(0.0, f32), ((i, Const(0), n),), xi)
    z = out("z", (n,))
    kernels = [Kernel("k", [Loop(i, 0, n, [Store(y, (i,), value)])]),
               Kernel("v", [Loop(i, 0, n, [Store(z, (i,), value)], VEC)])]
    prog = program("shadow", [x], [y, z], kernels, {"n": (x, 0)})
    check(prog, [{"x": rand((s,))} for s in (1, 6, 20)], rtol=1e-6, atol=1e-6)


def test_full_unroll_of_a_long_loop_is_capped():
    x, y = inp("x", (1000,)), out("y", (1000,))
    prog = program("long", [x], [y], [Kernel("k", [Loop(i, 0, 1000, [Store(y, (i,), x[i] * 3.0)],
                                                        UNR)])])
    native = check(prog, [{"x": rand((1000,))}])
    assert any("unrolled by 8" in note for note in native.notes)


def test_float16_needs_f16c():
    x, y = inp("x", (4,), DType.float16), out("y", (4,), DType.float16)
    prog = program("half", [x], [y], [Kernel("k", [Loop(i, 0, 4, [Store(y, (i,), x[i])])])])
    features = host_target().features.replace("+f16c", "-f16c")
    with pytest.raises(CodegenError, match="F16C"):
        compile_program(prog, CodegenOptions(features=features))
