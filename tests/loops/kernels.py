"""Small Loop IR programs the verifier, schedule and printer tests share.

Sizes are tiny and odd on purpose: the Loop IR interpreter runs element by element, and odd
sizes are the ones a split or a vector width does not divide.
"""

from __future__ import annotations

import numpy as np

from kiln.ir.dtypes import DType
from kiln.loops import (Binary, Buffer, BufferKind, Const, Kernel, Load, Loop, Program, Reduce,
                        Store, Unary, Var)
from kiln.loops.stmt import loop_nest

f32, i32, i64 = DType.float32, DType.int32, DType.int64
IN, OUT, TEMP = BufferKind.INPUT, BufferKind.OUTPUT, BufferKind.TEMP
i, j, k, n = Var("i"), Var("j"), Var("k"), Var("n")


def elementwise(rows: int = 5, cols: int = 7) -> Program:
    """out[i, j] = x[i, j] * y[i, j] + 1"""
    x, y = Buffer("x", f32, (rows, cols), IN), Buffer("y", f32, (rows, cols), IN)
    out = Buffer("out", f32, (rows, cols), OUT)
    body = loop_nest([(i, rows), (j, cols)], [Store(out, (i, j), x[i, j] * y[i, j] + 1.0)])
    return Program("elementwise", [x, y], [out], [Kernel("mul_add", body, [x, y, out])])


def row_sum(rows: int = 5, cols: int = 7, dtype: DType = f32) -> Program:
    """out[i] = sum over k of x[i, k], as a Reduce expression"""
    x, out = Buffer("x", dtype, (rows, cols), IN), Buffer("out", dtype, (rows,), OUT)
    total = Reduce("add", Const(0, dtype) if dtype.is_int else Const(0.0, dtype),
                   ((k, Const(0), Const(cols)),), x[i, k])
    body = loop_nest([(i, rows)], [Store(out, (i,), total)])
    return Program("row_sum", [x], [out], [Kernel("row_sum", body, [x, out])])


def softmax_rows(rows: int = 3, cols: int = 5) -> Program:
    """out[i, j] = exp(x[i, j] - max_k x[i, k]) / sum_k exp(x[i, k] - max_m x[i, m])"""
    x, out = Buffer("x", f32, (rows, cols), IN), Buffer("out", f32, (rows, cols), OUT)
    m = Var("m")
    top = Reduce("max", Const(float("-inf"), f32), ((k, Const(0), Const(cols)),), x[i, k])
    inner_top = Reduce("max", Const(float("-inf"), f32), ((m, Const(0), Const(cols)),), x[i, m])
    total = Reduce("add", Const(0.0, f32), ((k, Const(0), Const(cols)),),
                   Unary("exp", x[i, k] - inner_top))
    body = loop_nest([(i, rows), (j, cols)],
                     [Store(out, (i, j), Unary("exp", x[i, j] - top) / total)])
    return Program("softmax", [x], [out], [Kernel("softmax", body, [x, out])])


def matmul(m: int = 3, kk: int = 5, nn: int = 4, dtype: DType = f32) -> Program:
    """c = a @ b as two kernels: c[i, j] = 0, then the triple nest c[i, j] += a[i, k] * b[k, j]"""
    a, b = Buffer("a", dtype, (m, kk), IN), Buffer("b", dtype, (kk, nn), IN)
    c = Buffer("c", dtype, (m, nn), OUT)
    zero = Const(0, dtype) if dtype.is_int else Const(0.0, dtype)
    init = Kernel("zero", loop_nest([(Var("i0"), m), (Var("j0"), nn)],
                                    [Store(c, (Var("i0"), Var("j0")), zero)]), [c])
    update = Store(c, (i, j), c[i, j] + a[i, k] * b[k, j])
    acc = Kernel("matmul", loop_nest([(i, m), (j, nn), (k, kk)], [update]), [a, b, c])
    return Program("matmul", [a, b], [c], [init, acc])


def symbolic(cols: int = 3) -> Program:
    """out[i, j] = exp(x[i, j]) - x[i, j] over x: f32[n, cols]; n is bound by x's axis 0"""
    x, out = Buffer("x", f32, (n, cols), IN), Buffer("out", f32, (n, cols), OUT)
    body = loop_nest([(i, n), (j, cols)], [Store(out, (i, j), Unary("exp", x[i, j]) - x[i, j])])
    return Program("symbolic", [x], [out], [Kernel("exp_sub", body, [x, out])],
                   sizes={"n": (x, 0)})


def producer_consumer(rows: int = 3, cols: int = 5) -> Program:
    """t[i, j] = x[i, j] * 2 (TEMP); out[i] = sum_k t[i, k] + t[i, cols - 1 - i % cols]"""
    x, out = Buffer("x", f32, (rows, cols), IN), Buffer("out", f32, (rows,), OUT)
    t = Buffer("t", f32, (rows, cols), TEMP)
    p, q = Var("p"), Var("q")
    produce = Kernel("double", loop_nest([(p, rows), (q, cols)],
                                         [Store(t, (p, q), x[p, q] * 2.0)]), [x, t])
    total = Reduce("add", Const(0.0, f32), ((k, Const(0), Const(cols)),), t[i, k])
    mirrored = Load(t, (i, Binary("sub", Const(cols - 1), i % cols)))
    consume = Kernel("sum_mirror", loop_nest([(i, rows)], [Store(out, (i,), total + mirrored)]),
                     [t, out])
    return Program("producer_consumer", [x], [out], [produce, consume], buffers=[t])


def random_inputs(program: Program, sizes: dict | None = None, seed: int = 0) -> dict:
    """Inputs for every input buffer; symbolic dims take their value from `sizes`."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for b in program.inputs:
        shape = tuple(d.value if isinstance(d, Const) else sizes[d.name] for d in b.shape)
        if b.dtype.is_int:
            feeds[b.name] = rng.integers(-9, 10, size=shape).astype(b.dtype.np)
        else:
            feeds[b.name] = rng.standard_normal(shape).astype(b.dtype.np)
    return feeds


def with_kernel(program: Program, index: int, kernel: Kernel) -> Program:
    """`program` with its kernel #index replaced."""
    kernels = list(program.kernels)
    kernels[index] = kernel
    return Program(program.name, program.inputs, program.outputs, kernels, program.buffers,
                   program.sizes)


def total_sum(rows: int = 3, cols: int = 5, dtype: DType = f32) -> Program:
    """out[0] = sum over (k, m) of x[k, m]: a two-axis Reduce"""
    x, out = Buffer("x", dtype, (rows, cols), IN), Buffer("out", dtype, (1,), OUT)
    m = Var("m")
    zero = Const(0, dtype) if dtype.is_int else Const(0.0, dtype)
    total = Reduce("add", zero, ((k, Const(0), Const(rows)), (m, Const(0), Const(cols))), x[k, m])
    return Program("total_sum", [x], [out], [Kernel("total", [Store(out, (0,), total)], [x, out])])


def stencil(rows: int = 4, cols: int = 5) -> Program:
    """a[i, j] = a[i - 1, j + 1] + x[i, j] for i >= 1 (row 0 copied): an anti-diagonal
    dependence, so i and j may not be interchanged."""
    x, a = Buffer("x", f32, (rows, cols), IN), Buffer("a", f32, (rows, cols), OUT)
    copy = Kernel("copy_row", [Loop(j, 0, cols, [Store(a, (0, j), x[0, j])])], [x, a])
    jj = Var("jj")
    body = [Store(a, (i, jj), a[i - 1, jj + 1] + x[i, jj])]
    sweep = Kernel("sweep", [Loop(i, 1, rows, [Loop(jj, 0, cols - 1, body)])], [x, a])
    return Program("stencil", [x], [a], [copy, sweep])


def scratch_rows(rows: int = 3, cols: int = 4) -> Program:
    """Per row: t[i, j] = exp(x[i, j]), then out[i, j2] = t[i, j2] / sum_k t[i, k]. The scratch
    row is written and read at other columns inside one iteration of i only."""
    x, out = Buffer("x", f32, (rows, cols), IN), Buffer("out", f32, (rows, cols), OUT)
    t = Buffer("t", f32, (rows, cols), TEMP)
    j2 = Var("j2")
    total = Reduce("add", Const(0.0, f32), ((k, Const(0), Const(cols)),), t[i, k])
    body = [Loop(i, 0, rows, [Loop(j, 0, cols, [Store(t, (i, j), Unary("exp", x[i, j]))]),
                              Loop(j2, 0, cols, [Store(out, (i, j2), t[i, j2] / total)])])]
    return Program("scratch_rows", [x], [out], [Kernel("normalize", body, [x, t, out])], [t])
