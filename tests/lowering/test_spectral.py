"""STFT, MelWeightMatrix and the windows against the Graph IR interpreter: real and complex signals, with and
without a window, one-sided and full, steps that leave a tail, frame_length without a window;
the mel matrix for constant operands, and a clear error when an operand is only known at run
time."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir.dtypes import DType
from kiln.lowering import lower_graph

from .harness import check_op, one_node_graph, rand

I64 = np.int64


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("with_window", [False, True])
def test_stft(backend, parts, onesided, with_window):
    x = rand((2, 23, parts), seed=1)
    window = np.hanning(8).astype(np.float32) if with_window else None
    ins = [x, np.array(3, I64), window, None if with_window else np.array(8, I64)]
    check_op(backend, "STFT", ins, {"onesided": onesided}, consts=[1, 3], rtol=1e-4, atol=1e-4)


def test_stft_whole_signal_float64(backend):
    x = rand((1, 9, 1), np.float64, seed=2)
    check_op(backend, "STFT", [x, np.array(4, I64)], {"onesided": 0}, consts=[1], rtol=1e-9,
             atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bins,n_fft,rate,low,high", [(8, 16, 8192, 0.0, 4096.0),
                                                      (5, 33, 16000, 100.0, 7000.0)])
def test_mel_weight_matrix(backend, dtype, bins, n_fft, rate, low, high):
    ins = [np.array(bins, I64), np.array(n_fft, I64), np.array(rate, I64), np.float32(low),
           np.float32(high)]
    check_op(backend, "MelWeightMatrix", ins, {"output_datatype": DType.from_numpy(dtype)},
             consts=[0, 1, 2, 3, 4])


def test_mel_weight_matrix_needs_constants():
    graph, _ = one_node_graph("MelWeightMatrix", [np.array(8, I64), np.array(16, I64),
                                                  np.array(8000, I64), np.float32(0),
                                                  np.float32(4000)], consts=[0, 1, 2, 3])
    with pytest.raises(LoweringError, match="known when compiling"):
        lower_graph(graph)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("size,periodic,dtype", [
    (1, 0, DType.float32), (0, 1, DType.float32), (10, 1, DType.float64), (7, 0, DType.float32),
    (7, 1, DType.int32), (10, 0, DType.uint8)])
def test_windows(backend, op, size, periodic, dtype):
    check_op(backend, op, [np.array(size, I64)], {"periodic": periodic, "output_datatype": dtype},
             consts=[0])


def test_window_size_must_be_known():
    graph, _ = one_node_graph("HannWindow", [np.array(8, I64)])
    with pytest.raises(LoweringError, match="known when compiling"):
        lower_graph(graph)


def test_stft_symbolic_batch(backend):
    x = rand((3, 16, 1), seed=5)
    check_op(backend, "STFT", [x, np.array(4, I64), np.hanning(6).astype(np.float32)],
             consts=[1], dims={0: ("n", 16, 1)}, rtol=1e-4, atol=1e-4)
