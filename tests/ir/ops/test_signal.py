import itertools

import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(5)
TOL = {"rtol": 1e-5, "atol": 1e-4}


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def scalar(v, dtype=np.int64):
    return np.array(v, dtype)


def infer(op, types, attrs=None, consts=None):
    b = GraphBuilder("t")
    vals = []
    for i, t in enumerate(types):
        if consts and i in consts:
            vals.append(b.constant(consts[i], f"c{i}"))
        else:
            vals.append(None if t is None else b.input(f"x{i}", t))
    return b.add(get_op(op), vals, dict(attrs or {}))[0].type


def f32t(*shape):
    return TensorType(DType.float32, shape)


# --- DFT ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("inverse,onesided", list(itertools.product([0, 1], [0, 1])))
@pytest.mark.parametrize("last", [1, 2])
@pytest.mark.parametrize("axis", [0, 1, 2, -2, -3])
@pytest.mark.parametrize("length", [None, 4, 9])
def test_dft(inverse, onesided, last, axis, length):
    x = randn(3, 7, 5, last)
    inputs = [x, None if length is None else scalar(length), scalar(axis)]
    got = check_op("DFT", inputs, {"inverse": inverse, "onesided": onesided},
                   const_inputs=[1, 2], **TOL)
    assert got[0].shape[-1] == (1 if inverse and onesided else 2)


def test_dft_default_axis_runtime_operands_and_dtypes():
    x = randn(2, 11, 1)
    check_op("DFT", [x], **TOL)                                  # axis -2, full spectrum
    check_op("DFT", [x, scalar(6, np.int32), scalar(1)], {"onesided": 1}, **TOL)   # not constants
    check_op("DFT", [randn(8, 2, dtype=np.float64)], {"inverse": 1}, rtol=1e-10, atol=1e-10)
    got = check_op("DFT", [randn(1, 1)], **TOL)                  # length-1 signal
    assert got[0].shape == (1, 2)


def test_dft_matches_numpy_fft_and_round_trips():
    z = rng.standard_normal((4, 6)) + 1j * rng.standard_normal((4, 6))
    x = np.stack([z.real, z.imag], -1)
    y = run_kiln("DFT", [x, None, scalar(1)])[0]
    np.testing.assert_allclose(y[..., 0] + 1j * y[..., 1], np.fft.fft(z, axis=1), atol=1e-10)
    back = run_kiln("DFT", [y, None, scalar(1)], {"inverse": 1})[0]
    np.testing.assert_allclose(back, x, atol=1e-10)
    real = rng.standard_normal((1, 10, 1))
    half = run_kiln("DFT", [real], {"onesided": 1})[0]
    assert half.shape == (1, 6, 2)
    np.testing.assert_allclose(run_kiln("DFT", [half], {"onesided": 1, "inverse": 1})[0], real,
                               atol=1e-10)


def test_dft_inference():
    assert infer("DFT", [f32t("B", 16, 1)]).shape == ("B", 16, 2)
    assert infer("DFT", [f32t("B", 16, 1)], {"onesided": 1}).shape == ("B", 9, 2)
    assert infer("DFT", [f32t("B", 9, 2)], {"onesided": 1, "inverse": 1}).shape == ("B", 16, 1)
    assert infer("DFT", [f32t(4, 16, 2), None, None], consts={1: scalar(5), 2: scalar(0)}).shape == \
        (5, 16, 2)
    # axis known only at run time: with no length change the shape is still known
    axis = TensorType(DType.int64, ())
    assert infer("DFT", [f32t(4, 16, 2), None, axis]).shape == (4, 16, 2)
    assert infer("DFT", [f32t(4, 16, 2), None, axis], {"onesided": 1}).shape == (None, None, 2)
    assert infer("DFT", [f32t(4, 16, 1), TensorType(DType.int64, ())]).shape == (4, None, 2)
    assert infer("DFT", [TensorType(DType.float32, None)]).shape is None


def test_dft_errors():
    with pytest.raises(TypeInferenceError):                      # the last axis is (re, im)
        run_kiln("DFT", [randn(4, 3)])
    with pytest.raises(TypeInferenceError):
        run_kiln("DFT", [randn(4, 2), None, scalar(1)], const_inputs=[2])
    with pytest.raises(TypeInferenceError):
        run_kiln("DFT", [randn(4, 5, 2), None, scalar(-1)], const_inputs=[2])
    with pytest.raises(TypeInferenceError):
        run_kiln("DFT", [randn(4, 2), scalar(0)], const_inputs=[1])
    with pytest.raises(TypeInferenceError):
        run_kiln("DFT", [np.ones((4, 2), np.int32)])
    with pytest.raises(TypeInferenceError):
        run_kiln("DFT", [randn(4, 2), scalar([3, 4])], const_inputs=[1])
    with pytest.raises(ExecutionError):
        run_kiln("DFT", [randn(4, 5, 2), None, scalar(2)])
    with pytest.raises(AttributeValueError):
        run_kiln("DFT", [randn(4, 2)], {"inverse": 2})


# --- STFT --------------------------------------------------------------------------------------

@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("last", [1, 2])
def test_stft(onesided, last):
    sig = randn(2, 31, last)
    attrs = {"onesided": onesided}
    check_op("STFT", [sig, scalar(4), None, scalar(8)], attrs, const_inputs=[1, 3], **TOL)
    check_op("STFT", [sig, scalar(3), randn(7)], attrs, const_inputs=[1], **TOL)
    check_op("STFT", [sig, scalar(5), randn(9), scalar(9)], attrs, **TOL)
    check_op("STFT", [sig, scalar(1, np.int32), randn(1)], attrs, **TOL)


def test_stft_conformance_style_and_whole_signal_frame():
    sig = np.arange(128, dtype=np.float32).reshape(1, 128, 1)
    window = (0.5 + 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)
    got = check_op("STFT", [sig, scalar(8), window], const_inputs=[1], **TOL)
    assert got[0].shape == (1, 15, 9, 2)
    got = check_op("STFT", [randn(3, 10, 1), scalar(2)], const_inputs=[1], **TOL)
    assert got[0].shape == (3, 1, 6, 2)                # no window, no frame_length: one frame


def test_stft_inference_and_errors():
    t = infer("STFT", [f32t("B", 100, 1), None, None, None],
              consts={1: scalar(10), 3: scalar(25)})
    assert t.shape == ("B", 8, 13, 2)
    t = infer("STFT", [f32t("B", "L", 2), TensorType(DType.int64, ()), f32t(16)], {"onesided": 0})
    assert t.shape == ("B", None, 16, 2)
    with pytest.raises(TypeInferenceError):          # window and frame_length disagree
        run_kiln("STFT", [randn(1, 20, 1), scalar(2), randn(6), scalar(8)], const_inputs=[3])
    with pytest.raises(TypeInferenceError):          # frame longer than the signal
        run_kiln("STFT", [randn(1, 5, 1), scalar(2), None, scalar(8)], const_inputs=[1, 3])
    with pytest.raises(TypeInferenceError):
        run_kiln("STFT", [randn(20, 1), scalar(2)])
    with pytest.raises(TypeInferenceError):
        run_kiln("STFT", [randn(1, 20, 1), scalar(0)], const_inputs=[1])
    with pytest.raises(TypeInferenceError):
        run_kiln("STFT", [randn(1, 20, 1), scalar(2), randn(4, dtype=np.float64)])
    with pytest.raises(ExecutionError):
        run_kiln("STFT", [randn(1, 5, 1), scalar(2), None, scalar(8)])


# --- windows -----------------------------------------------------------------------------------

WINDOWS = ["HannWindow", "HammingWindow", "BlackmanWindow"]


@pytest.mark.parametrize("op", WINDOWS)
@pytest.mark.parametrize("size", [0, 2, 7, 10, 64])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("dtype", [DType.float32, DType.float64, DType.int32, DType.uint8])
def test_windows(op, size, periodic, dtype):
    got = check_op(op, [scalar(size)], {"periodic": periodic, "output_datatype": dtype},
                   const_inputs=[0], rtol=1e-5, atol=1e-6)
    assert got[0].dtype == dtype.np and got[0].shape == (size,)


@pytest.mark.parametrize("op,numpy_fn", [("HannWindow", np.hanning), ("HammingWindow", None),
                                         ("BlackmanWindow", np.blackman)])
def test_symmetric_windows_match_numpy(op, numpy_fn):
    got = run_kiln(op, [scalar(11, np.int32)], {"periodic": 0, "output_datatype": DType.float64})[0]
    if numpy_fn is None:                              # ONNX's Hamming uses 25/46, not 0.54
        want = 25 / 46 - 21 / 46 * np.cos(2 * np.pi * np.arange(11) / 10)
    else:
        want = numpy_fn(11)
    np.testing.assert_allclose(got, want, atol=1e-12)
    # a symmetric window of one sample is [1], not 0/0
    assert run_kiln(op, [scalar(1)], {"periodic": 0})[0].tolist() == [1.0]


@pytest.mark.parametrize("op", WINDOWS)
def test_window_inference_and_errors(op):
    assert infer(op, [TensorType(DType.int64, ())]) == TensorType(DType.float32, (None,))
    assert infer(op, [None], {"output_datatype": DType.float16}, consts={0: scalar(5)}) == \
        TensorType(DType.float16, (5,))
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [scalar(4)], {"output_datatype": DType.bool})
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [np.float32(4)])
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [scalar(-3)], const_inputs=[0])
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [scalar([3, 4])])
    with pytest.raises(AttributeValueError):
        run_kiln(op, [scalar(4)], {"periodic": 3})


# --- MelWeightMatrix ---------------------------------------------------------------------------

@pytest.mark.parametrize("bins,n_fft,rate,low,high", [
    (8, 16, 8192, 0, 4096), (10, 64, 16000, 20, 8000), (3, 31, 8000, 100.5, 3000),
    (13, 512, 22050, 0, 11025), (1, 1, 100, 0, 50)])
@pytest.mark.parametrize("dtype", [DType.float32, DType.float64, DType.int64])
def test_mel_weight_matrix(bins, n_fft, rate, low, high, dtype):
    inputs = [np.int32(bins), np.int32(n_fft), np.int32(rate), np.float32(low), np.float32(high)]
    got = check_op("MelWeightMatrix", inputs, {"output_datatype": dtype}, const_inputs=[0, 1],
                   rtol=1e-6, atol=1e-6)
    assert got[0].shape == (n_fft // 2 + 1, bins)


def test_mel_weight_matrix_filters_are_triangles_peaking_at_one():
    m = run_kiln("MelWeightMatrix", [scalar(20), scalar(512), scalar(16000), np.float32(30),
                                     np.float32(7000)])[0]
    assert m.shape == (257, 20)
    np.testing.assert_allclose(m.max(axis=0), 1.0)
    peaks = m.argmax(axis=0)
    assert (np.diff(peaks) > 0).all()                 # one band after another, low to high


def test_mel_weight_matrix_inference_and_errors():
    t = infer("MelWeightMatrix", [TensorType(DType.int64, ())] * 3 + [f32t(), f32t()])
    assert t == TensorType(DType.float32, (None, None))
    with pytest.raises(TypeInferenceError):
        run_kiln("MelWeightMatrix", [scalar(8), scalar(16), scalar(8000), scalar(0), scalar(4000)])
    with pytest.raises(TypeInferenceError):
        run_kiln("MelWeightMatrix", [scalar(0), scalar(16), scalar(8000), np.float32(0),
                                     np.float32(4000)], const_inputs=[0])
    with pytest.raises(TypeInferenceError):
        run_kiln("MelWeightMatrix", [scalar(8), scalar(16), scalar(8000), np.float32(0),
                                     np.float32(4000)], {"output_datatype": DType.string})
