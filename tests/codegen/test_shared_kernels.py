"""Kernels with the same Loop IR up to buffer and variable names share one LLVM function
(kiln/codegen/kernel_key.py): the results match the interpreter, and kernels that differ in
anything code generation reads (a constant, a shape, where a buffer lives) keep their own."""

from __future__ import annotations

import re

import numpy as np

from kiln.ir.dtypes import DType
from kiln.loops import Buffer, BufferKind, Kernel, Loop, LoopKind, Program, Store, Var

from .loopkit import assert_same, run_both

f32 = DType.float32
n = Var("n")


def scale_kernel(name: str, src: Buffer, w: Buffer, dst: Buffer, add: float = 1.0) -> Kernel:
    """dst[i] = src[i] * w[i] + add, as a parallel loop over vector chunks."""
    i, j = Var(f"i_{name}"), Var(f"j_{name}")
    inner = [Loop(i, 0, n, [Store(dst, (i,), src[i] * w[i] + add)], LoopKind.VECTORIZED)]
    return Kernel(name, [Loop(j, 0, 1, inner, LoopKind.PARALLEL)])


def chain(adds: list[float], sizes: list[int] | None = None):
    """x -> t0 -> t1 -> ... -> y, kernel k scaling by its own constant w_k and adding adds[k]."""
    rng = np.random.default_rng(0)
    x = Buffer("x", f32, (n,), BufferKind.INPUT)
    y = Buffer("y", f32, (n,), BufferKind.OUTPUT)
    bufs = [x] + [Buffer(f"t{k}", f32, (n,), BufferKind.TEMP) for k in range(len(adds) - 1)] + [y]
    ws, kernels = [], []
    for k, add in enumerate(adds):
        w = Buffer(f"w{k}", f32, (64,), BufferKind.CONSTANT,
                   data=rng.standard_normal(64).astype(np.float32))
        ws.append(w)
        kernels.append(scale_kernel(f"k{k}", bufs[k], w, bufs[k + 1], add))
    program = Program("chain", [x], [y], kernels, bufs + ws, {"n": (x, 0)})
    return program, {"x": rng.standard_normal(64).astype(np.float32)}


def kernel_functions(llvm_ir: str) -> int:
    return len(re.findall(r'^define internal void @"?k\d+\.k\d+"?\(', llvm_ir, re.M))


def test_repeated_kernels_share_one_function_and_match_the_interpreter():
    # k0 reads the input and k3 writes the output; k1 and k2 (temp -> temp) are the same code
    program, inputs = chain([1.0, 1.0, 1.0, 1.0])
    native, got, want = run_both(program, inputs)
    assert native.shared_kernels == 1
    assert kernel_functions(native.llvm_ir) == 3
    assert_same("y", got[0], want[0], rtol=1e-5, atol=1e-5)   # a*b+c fused into FMAs


def test_kernels_differing_in_a_constant_keep_their_own_functions():
    program, inputs = chain([1.0, 1.0, 2.0, 1.0])
    native, got, want = run_both(program, inputs)
    assert native.shared_kernels == 0
    assert kernel_functions(native.llvm_ir) == 4
    assert_same("y", got[0], want[0], rtol=1e-5, atol=1e-5)   # a*b+c fused into FMAs


def test_shared_kernel_reads_its_own_buffers():
    """Five same-code kernels over temps: each call reads its own weights and arena slot."""
    program, inputs = chain([1.0] * 7)
    native, got, want = run_both(program, inputs)
    assert native.shared_kernels == 4
    assert_same("y", got[0], want[0], rtol=1e-5, atol=1e-5)   # a*b+c fused into FMAs
