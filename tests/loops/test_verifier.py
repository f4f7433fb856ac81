"""The Loop IR verifier: it accepts what lowering and the schedule transforms build, and each
rule rejects the kernel that breaks it (naming the kernel and the rule)."""

import numpy as np
import pytest

from kiln.errors import VerificationError
from kiln.ir.dtypes import DType
from kiln.loops import (Assign, Binary, Buffer, BufferKind, Cast, Compare, Const, If, Kernel, Local,
                        Loop, LoopKind, Program, Reduce, Select, Store, Unary, Var)
from kiln.loops.stmt import loop_nest
from kiln.loops.verifier import verify_kernel, verify_program
from tests.loops import kernels

f32, i32, i64, boolean = DType.float32, DType.int32, DType.int64, DType.bool
i, j, k, n = Var("i"), Var("j"), Var("k"), Var("n")
x = Buffer("x", f32, (4, 3), BufferKind.INPUT)
y = Buffer("y", f32, (4, 3), BufferKind.OUTPUT)


def nest(*body, buffers=(x, y), name="bad"):
    return Kernel(name, loop_nest([(i, 4), (j, 3)], list(body)), list(buffers))


def rejects(kernel_or_program, rule, *words):
    with pytest.raises(VerificationError) as info:
        if isinstance(kernel_or_program, Program):
            verify_program(kernel_or_program)
        else:
            verify_kernel(kernel_or_program)
    assert info.value.rule == rule, str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)
    return info.value


@pytest.mark.parametrize("build", [kernels.elementwise, kernels.row_sum, kernels.softmax_rows,
                                   kernels.matmul, kernels.symbolic, kernels.producer_consumer])
def test_accepts_the_example_programs(build):
    verify_program(build())


def test_accepts_locals_ifs_casts_selects_and_widths():
    acc = Var("acc", f32)
    body = [Local(acc, Const(0.0, f32)),
            Loop(k, 0, 3, [Assign(acc, acc + x[i, k])], LoopKind.UNROLLED, 0),
            If(Compare("gt", acc, Const(0.0, f32)),
               [Store(y, (i, 0), Select(Compare("lt", Cast(i64, acc), Const(5)), acc, -acc))],
               [Store(y, (i, 0), Cast(f32, i * 2))])]
    verify_kernel(Kernel("ok", [Loop(i, 0, 4, body, LoopKind.PARALLEL)], [x, y]))
    for width in (0, 1, 8, 16):
        verify_kernel(Kernel("ok", [Loop(i, 0, 4, [Store(y, (i, 0), x[i, 0])],
                                         LoopKind.VECTORIZED, width)], [x, y]))


def test_kernel_on_its_own_takes_sizes_from_its_buffers_or_the_argument():
    xs = Buffer("xs", f32, (n,), BufferKind.INPUT)
    ys = Buffer("ys", f32, (n,), BufferKind.OUTPUT)
    verify_kernel(Kernel("sym", [Loop(i, 0, n, [Store(ys, (i,), xs[i])])], [xs, ys]))
    m = Var("m")
    bounded = Kernel("sym", [Loop(i, 0, m, [Store(y, (i, 0), x[i, 0])])], [x, y])
    rejects(bounded, "bound", "kernel sym", "m")
    verify_kernel(bounded, sizes=[m])
    verify_kernel(bounded, sizes=["m"])


# bound ---------------------------------------------------------------------------------------

def test_unbound_var_in_a_store_value():
    rejects(nest(Store(y, (i, j), x[i, k])), "bound", "kernel bad", "k")


def test_reduce_axis_is_bound_only_inside_its_body():
    total = Reduce("add", Const(0.0, f32), ((k, Const(0), Const(3)),), x[i, k])
    verify_kernel(nest(Store(y, (i, j), total)))
    rejects(nest(Store(y, (i, j), total + x[i, k])), "bound", "k")


def test_local_is_bound_after_its_declaration_and_only_in_its_body():
    acc = Var("acc", f32)
    rejects(nest(Store(y, (i, j), acc), Local(acc, Const(0.0, f32))), "bound", "acc")
    scoped = [Loop(i, 0, 4, [Local(acc, Const(1.0, f32))]), Store(y, (0, 0), acc)]
    rejects(Kernel("scoped", scoped, [x, y]), "bound", "kernel scoped", "acc")


def test_assign_needs_a_local():
    rejects(nest(Assign(Var("acc", f32), Const(1.0, f32))), "bound", "acc")
    rejects(nest(Assign(i, Const(1))), "bound", "i")


def test_program_binds_every_symbolic_size_of_its_buffers():
    p = kernels.symbolic()
    p.sizes = {}
    rejects(p, "bound", "n")
    p = kernels.symbolic()
    p.sizes = {"n": (p.outputs[0], 0)}
    rejects(p, "declared", "n")


# unique --------------------------------------------------------------------------------------

def test_loop_vars_are_unique_in_a_kernel():
    body = [Loop(i, 0, 4, [Store(y, (i, 0), x[i, 0])]), Loop(i, 0, 4, [Store(y, (i, 1), x[i, 1])])]
    rejects(Kernel("twice", body, [x, y]), "unique", "kernel twice", "i")


def test_no_binding_shadows_a_name_in_scope():
    total = Reduce("add", Const(0.0, f32), ((i, Const(0), Const(3)),), x[0, i])
    rejects(nest(Store(y, (i, j), total)), "unique", "i")
    rejects(nest(Local(Var("j", f32), Const(0.0, f32))), "unique", "j")
    p = kernels.symbolic()
    shadow_size = Kernel("shadow", [Loop(n, 0, 3, [Store(p.outputs[0], (n, 0), Const(0.0, f32))])],
                         [p.outputs[0]])
    rejects(shadow_size, "unique", "n")


# rank and index ------------------------------------------------------------------------------

def test_loads_and_stores_index_every_dimension():
    rejects(nest(Store(y, (i, j), x[i])), "rank", "load of %x", "rank 2")
    rejects(nest(Store(y, (i, j, 0), x[i, j])), "rank", "store of %y")


def test_indices_and_bounds_are_integers():
    rejects(nest(Store(y, (i, j), x[i, Const(1.0, f32)])), "index", "index #1")
    rejects(Kernel("fb", [Loop(i, 0, Const(4.0, f32), [])], []), "index", "stop of loop i")
    rejects(Kernel("fv", [Loop(Var("i", f32), 0, 4, [])], []), "index", "loop variable i")
    verify_kernel(nest(Store(y, (Cast(i32, i), j), x[i, j])))   # any integer dtype indexes


# dtype ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, words", [
    (Binary("add", Const(1.0, f32), Const(1)), "add of f32 and i64"),
    (Select(Const(1), Const(1.0, f32), Const(2.0, f32)), "select condition is i64"),
    (Select(Const(True, boolean), Const(1.0, f32), Const(2)), "both arms"),
    (Cast(f32, Compare("lt", i, Const(1.0, f32))), "lt of i64 and f32"),
    (Cast(f32, Unary("exp", i)), "exp of i64"),
    (Cast(f32, Binary("xor", i, i)) + Binary("and", Const(1.0, f32), Const(2.0, f32)),
     "bitwise and of f32"),
    (Reduce("add", Const(0.0, f32), ((k, Const(0), Const(3)),), Const(1)), "body of a add"),
    (Reduce("max", Const(0), ((k, Const(0), Const(3)),), Const(1)), "value stored"),
])
def test_dtype_rules(value, words):
    rejects(nest(Store(y, (i, j), value)), "dtype", words)


def test_store_value_local_and_assign_dtypes():
    rejects(nest(Store(y, (i, j), i)), "dtype", "stored into %y is i64, expected f32")
    acc = Var("acc", f32)
    rejects(nest(Local(acc, Const(0))), "dtype", "local acc")
    rejects(nest(Local(acc, Const(0.0, f32)), Assign(acc, Const(1))), "dtype", "assigned")
    wide = Var("acc", DType.float64)
    rejects(nest(Local(acc, Const(0.0, f32)), Assign(wide, Const(1.0, DType.float64))), "dtype",
            "declared f32")
    rejects(nest("not a statement"), "node")
    rejects(nest(If(Const(1), [])), "dtype", "If condition")
    rejects(nest(Store(y, (i, j), Cast(f32, Var("i", i32)))), "dtype", "bound as i64")


# width, parallel, readonly, buffers ----------------------------------------------------------

@pytest.mark.parametrize("kind, width", [(LoopKind.VECTORIZED, 3), (LoopKind.VECTORIZED, 6),
                                         (LoopKind.VECTORIZED, -4), (LoopKind.UNROLLED, -1)])
def test_vector_widths_and_unroll_factors(kind, width):
    rejects(Kernel("w", [Loop(i, 0, 4, [Store(y, (i, 0), x[i, 0])], kind, width)], [x, y]),
            "width", "kernel w", str(width))


def test_no_parallel_loop_inside_another():
    inner = Loop(j, 0, 3, [Store(y, (i, j), x[i, j])], LoopKind.PARALLEL)
    rejects(Kernel("pp", [Loop(i, 0, 4, [inner], LoopKind.PARALLEL)], [x, y]), "parallel", "j")
    verify_kernel(Kernel("ps", [Loop(i, 0, 4, [inner], LoopKind.SERIAL)], [x, y]))


def test_no_store_into_inputs_constants_or_their_views():
    w = Buffer("w", f32, (4, 3), BufferKind.CONSTANT, data=np.ones((4, 3), np.float32))
    rejects(nest(Store(x, (i, j), x[i, j])), "readonly", "INPUT buffer %x")
    rejects(nest(Store(w, (i, j), x[i, j]), buffers=(x, w)), "readonly", "CONSTANT buffer %w")
    flat = x.view("flat", (12,))
    body = [Loop(i, 0, 12, [Store(flat, (i,), Const(0.0, f32))])]
    rejects(Kernel("v", body, [x]), "readonly", "%x")


def test_kernel_lists_the_buffers_it_touches():
    rejects(nest(Store(y, (i, j), x[i, j]), buffers=(y,)), "buffers", "load of %x")
    flat = y.view("flat", (12,))
    verify_kernel(Kernel("view", [Loop(i, 0, 12, [Store(flat, (i,), Const(0.0, f32))])], [y]))


# program rules -------------------------------------------------------------------------------

def test_local_buffers_belong_to_one_kernel():
    tile = Buffer("tile", f32, (3,), BufferKind.LOCAL)
    fill = Kernel("fill", [Loop(j, 0, 3, [Store(tile, (j,), x[0, j])])], [x, tile])
    use = Kernel("use", [Loop(j, 0, 3, [Store(y, (0, j), tile[j])])], [tile, y])
    verify_program(Program("one", [x], [y], [fill], [tile]))
    rejects(Program("two", [x], [y], [fill, use], [tile]), "local", "kernel use", "%tile",
            "fill")


def test_program_declares_every_buffer_its_kernels_touch():
    t = Buffer("t", f32, (4, 3))
    k1 = nest(Store(t, (i, j), x[i, j]), buffers=(x, t), name="hidden")
    rejects(Program("p", [x], [y], [k1]), "declared", "kernel hidden", "%t")
    verify_program(Program("p", [x], [y], [k1], [t]))


def test_error_names_the_kernel_rule_and_gives_a_hint():
    err = rejects(nest(Store(y, (i, j), x[i, k]), name="named"), "bound")
    assert str(err).startswith("[bound] kernel named:")
    assert err.hint
