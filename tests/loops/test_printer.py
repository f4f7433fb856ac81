"""Golden text of a few Loop IR kernels: what lowering writes, and what schedules make of it."""

import textwrap

import numpy as np

from kiln.ir.dtypes import DType
from kiln.loops import (Buffer, BufferKind, Cast, Compare, Const, If, Kernel, Loop, LoopKind,
                        Select, Store, Unary, Var)
from kiln.loops.printer import print_kernel, print_program
from kiln.loops.schedule import (inline, lower_reductions, parallelize, split, tile, unroll,
                                 vectorize)
from tests.loops import kernels


def golden(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_symbolic_program():
    assert print_program(kernels.symbolic()) == golden("""
        program @symbolic(%x: f32[n,3] in) -> (%out: f32[n,3] out)
          kernel exp_sub(%x: f32[n,3] in, %out: f32[n,3] out) {
            for i in 0..n {
              for j in 0..3 {
                %out[i, j] = exp(%x[i, j]) - %x[i, j]
              }
            }
          }
        """)


def test_program_with_a_temp_and_reduce():
    assert print_program(kernels.producer_consumer()) == golden("""
        program @producer_consumer(%x: f32[3,5] in) -> (%out: f32[3] out)
          buffer %t: f32[3,5] temp
          kernel double(%x: f32[3,5] in, %t: f32[3,5] temp) {
            for p in 0..3 {
              for q in 0..5 {
                %t[p, q] = %x[p, q] * 2.0
              }
            }
          }
          kernel sum_mirror(%t: f32[3,5] temp, %out: f32[3] out) {
            for i in 0..3 {
              %out[i] = sum(k in 0..5: %t[i, k]; init 0.0) + %t[i, 4 - i % 5]
            }
          }
        """)


def test_inlined_consumer():
    assert print_kernel(inline(*kernels.producer_consumer().kernels)) == golden("""
        kernel sum_mirror(%x: f32[3,5] in, %out: f32[3] out) {
          for i in 0..3 {
            %out[i] = sum(k in 0..5: %x[i, k] * 2.0; init 0.0) + %x[i, 4 - i % 5] * 2.0
          }
        }
        """)


def test_lowered_and_scheduled_reduction():
    k = lower_reductions(kernels.row_sum().kernels[0])
    k, io, ii = split(k, "i", 2)
    assert print_kernel(unroll(parallelize(k, io), "k")) == golden("""
        kernel row_sum(%x: f32[5,7] in, %out: f32[5] out) {
          parallel for i_o in 0..3 {
            for i_i in 0..min(2, 5 - i_o * 2) {
              local acc: f32 = 0.0
              unrolled<all> for k in 0..7 {
                acc = acc + %x[i_o * 2 + i_i, k]
              }
              %out[i_o * 2 + i_i] = acc
            }
          }
        }
        """)


def test_tiled_symbolic_kernel():
    k, (io, jo), (ii, ji) = tile(kernels.symbolic().kernels[0], ("i", "j"), (4, 2))
    assert print_kernel(vectorize(parallelize(k, io), ji, 8)) == golden("""
        kernel exp_sub(%x: f32[n,3] in, %out: f32[n,3] out) {
          parallel for i_o in 0..(n + 3) // 4 {
            for j_o in 0..2 {
              for i_i in 0..min(4, n - i_o * 4) {
                vector<8> for j_i in 0..min(2, 3 - j_o * 2) {
                  %out[i_o * 4 + i_i, j_o * 2 + j_i] = exp(%x[i_o * 4 + i_i, j_o * 2 + j_i]) - %x[i_o * 4 + i_i, j_o * 2 + j_i]
                }
              }
            }
          }
        }
        """)


def test_views_constants_ifs_selects_and_casts():
    f32, i = DType.float32, Var("i")
    x = Buffer("x", f32, (2, 3), BufferKind.INPUT)
    flat = x.view("xf", (6,))
    w = Buffer("w", DType.int32, (6,), BufferKind.CONSTANT, data=np.arange(6, dtype=np.int32))
    y = Buffer("y", f32, (6,), BufferKind.OUTPUT)
    positive = Compare("gt", flat[i], Const(0.0, f32))
    body = [If(Compare("lt", i, Const(3)),
               [Store(y, (i,), Select(positive, Cast(f32, w[i]), Unary("neg", flat[i])))],
               [Store(y, (i,), Const(0.5, f32))])]
    k = Kernel("mixed", [Loop(i, 0, 6, body, LoopKind.VECTORIZED, 4)], [x, w, y])
    assert print_kernel(k) == golden("""
        kernel mixed(%x: f32[2,3] in, %w: i32[6] const, %y: f32[6] out) {
          vector<4> for i in 0..6 {
            if i < 3 {
              %y[i] = select(%xf[i] > 0.0, f32(%w[i]), -%xf[i])
            } else {
              %y[i] = 0.5
            }
          }
        }
        """)
