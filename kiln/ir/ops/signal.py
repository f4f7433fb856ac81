"""Signal processing: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix.

Complex tensors are stored the ONNX way: a trailing axis of length 2 holds (real, imaginary),
and a trailing axis of length 1 holds a real signal. `_to_complex` and `_from_complex` are the
one place that knows this layout.

Kinds: all OPAQUE. A Fourier transform reads its whole axis for every output element and the
generators (windows, mel matrix) take their sizes from tensor values.
"""

from __future__ import annotations

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import TensorType
from .common import DTYPE, INT
from .registry import define

K = FusionKind

# Element types a window or mel matrix may be produced in (ONNX's T2/T3).
_GENERATED_DTYPES = frozenset({
    DType.uint8, DType.uint16, DType.uint32, DType.uint64, DType.int8, DType.int16, DType.int32,
    DType.int64, DType.float16, DType.float32, DType.float64, DType.bfloat16})


def _need_float(ctx: InferContext, i: int) -> DType:
    dtype = ctx.tensor(i).dtype
    if dtype not in (DType.float16, DType.bfloat16, DType.float32, DType.float64):
        ctx.fail(f"input '{ctx.op.inputs[i].name}' must be a float tensor, got {dtype.short}",
                 hint="insert a Cast")
    return dtype


def _int_scalar(ctx: InferContext, i: int) -> int | None:
    """The value of an integer scalar input when it is a constant, else None."""
    if not ctx.has_input(i):
        return None
    t = ctx.tensor(i)
    if not t.dtype.is_int:
        ctx.fail(f"input '{ctx.op.inputs[i].name}' must be an integer, got {t.dtype.short}")
    if t.shape is not None and any(isinstance(d, int) and d != 1 for d in t.shape):
        ctx.fail(f"input '{ctx.op.inputs[i].name}' must be a scalar, got shape {t.shape}")
    c = ctx.const(i)
    return None if c is None else int(np.asarray(c).reshape(-1)[0])


def _value(a) -> int | float:
    a = np.asarray(a)
    if a.size != 1:
        raise ExecutionError(f"expected a scalar, got shape {a.shape}")
    return a.reshape(-1)[0].item()


def _to_complex(x: np.ndarray) -> np.ndarray:
    """[..., 1] (real) or [..., 2] (real, imag) -> complex [...], in the input's precision
    (complex128 for float64, else complex64: numpy's FFT then works in single precision, as
    ONNX's expected outputs were computed)."""
    ctype = np.complex128 if x.dtype == np.float64 else np.complex64
    if x.shape[-1] == 1:
        return x[..., 0].astype(ctype)
    if x.shape[-1] == 2:
        z = np.empty(x.shape[:-1], ctype)
        z.real, z.imag = x[..., 0], x[..., 1]
        return z
    raise ExecutionError(f"the last axis holds (real, imag) and must be 1 or 2, got {x.shape[-1]}")


def _from_complex(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


def _check_complex_axis(ctx: InferContext, shape) -> None:
    if shape is not None and isinstance(shape[-1], int) and shape[-1] not in (1, 2):
        ctx.fail(f"the last axis holds (real, imag) and must be 1 or 2, got shape {shape}")


# --- DFT -----------------------------------------------------------------------------------------

def _dft_axis(axis: int, rank: int) -> int | None:
    """axis in [-r, -2] or [0, r-2] -> [0, r-2]; None when out of range."""
    if 0 <= axis <= rank - 2:
        return axis
    if -rank <= axis <= -2:
        return axis + rank
    return None


def _dft_out_len(n_in, length, inverse: int, onesided: int):
    """Output length along the DFT axis; `length` is dft_length (None when not given)."""
    if length is None:
        if not isinstance(n_in, int):
            return None if onesided else n_in
        length = 2 * (n_in - 1) if inverse and onesided else n_in
    return length // 2 + 1 if onesided and not inverse else length


def _infer_dft(ctx: InferContext):
    dtype = _need_float(ctx, 0)
    shape = ctx.tensor(0).shape
    length = _int_scalar(ctx, 1)
    if length is not None and length < 1:
        ctx.fail(f"dft_length must be >= 1, got {length}")
    axis = _int_scalar(ctx, 2) if ctx.has_input(2) else -2
    inverse, onesided = ctx.attrs.inverse, ctx.attrs.onesided
    if shape is None:
        return [TensorType(dtype, None)]
    rank = len(shape)
    if rank < 2:
        ctx.fail(f"DFT input must be [..., signal, 1 or 2], got shape {shape}")
    _check_complex_axis(ctx, shape)
    last = 1 if inverse and onesided else 2
    length_known = length is not None or not ctx.has_input(1)
    if axis is None:                     # which axis changes is only known at run time
        same = not ctx.has_input(1) and not onesided
        return [TensorType(dtype, (*(shape[:-1] if same else [None] * (rank - 1)), last))]
    a = _dft_axis(axis, rank)
    if a is None:
        ctx.fail(f"DFT axis {axis} is out of range for rank {rank}",
                 hint=f"use an axis in [{-rank}, -2] or [0, {rank - 2}]; the last axis is (real, imag)")
    out = list(shape[:-1]) + [last]
    out[a] = _dft_out_len(shape[a], length, inverse, onesided) if length_known else None
    return [TensorType(dtype, out)]


def _dft(ctx, x, dft_length=None, axis=None):
    rank = x.ndim
    a = _dft_axis(int(_value(axis)) if axis is not None else -2, rank)
    if a is None:
        raise ExecutionError(f"DFT axis {int(_value(axis))} is out of range for rank {rank}")
    inverse, onesided = ctx.attrs.inverse, ctx.attrs.onesided
    z = _to_complex(x)
    n = int(_value(dft_length)) if dft_length is not None else \
        2 * (x.shape[a] - 1) if inverse and onesided else x.shape[a]
    if inverse and onesided:
        return np.fft.irfft(z, n=n, axis=a)[..., None].astype(x.dtype)
    y = np.fft.ifft(z, n=n, axis=a) if inverse else np.fft.fft(z, n=n, axis=a)
    if onesided and not inverse:
        y = np.take(y, np.arange(n // 2 + 1), axis=a)
    return _from_complex(y, x.dtype)


DFT = define(
    "DFT", ["input", "dft_length?", "axis?"], ["output"], kind=K.OPAQUE, since_version=20,
    attrs=[INT("inverse", 0, choices=(0, 1)), INT("onesided", 0, choices=(0, 1))],
    infer=_infer_dft, reference=_dft,
    doc="Discrete Fourier transform along one axis (forward/inverse, full or one-sided).")


# --- STFT ----------------------------------------------------------------------------------------

def _infer_stft(ctx: InferContext):
    dtype = _need_float(ctx, 0)
    shape = ctx.tensor(0).shape
    if shape is not None and len(shape) != 3:
        ctx.fail(f"STFT signal must be [batch, length, 1 or 2], got shape {shape}")
    _check_complex_axis(ctx, shape)
    step = _int_scalar(ctx, 1)
    if step is not None and step < 1:
        ctx.fail(f"frame_step must be >= 1, got {step}")
    frame = _int_scalar(ctx, 3)
    if ctx.has_input(2):
        if ctx.tensor(2).dtype is not dtype:
            ctx.fail(f"window must have the signal's type {dtype.short}, got {ctx.tensor(2).dtype.short}")
        wshape = ctx.tensor(2).shape
        if wshape is not None and len(wshape) != 1:
            ctx.fail(f"window must be 1-D, got shape {wshape}")
        wlen = wshape[0] if wshape is not None else None
        if isinstance(wlen, int) and frame is not None and wlen != frame:
            ctx.fail(f"window has {wlen} entries but frame_length is {frame}",
                     hint="they must be equal; or omit frame_length")
        frame = frame if frame is not None else wlen if isinstance(wlen, int) else None
    elif not ctx.has_input(3) and shape is not None and isinstance(shape[1], int):
        frame = shape[1]
    batch, length = (shape[0], shape[1]) if shape is not None else (None, None)
    frames = None
    if isinstance(length, int) and frame is not None and step is not None:
        if frame > length:
            ctx.fail(f"frame_length {frame} is longer than the signal ({length})")
        frames = (length - frame) // step + 1
    bins = None if frame is None else frame // 2 + 1 if ctx.attrs.onesided else frame
    return [TensorType(dtype, (batch, frames, bins, 2))]


def _stft(ctx, signal, frame_step, window=None, frame_length=None):
    step = int(_value(frame_step))
    length = signal.shape[1]
    frame = int(_value(frame_length)) if frame_length is not None else \
        window.shape[0] if window is not None else length
    if window is not None and window.shape[0] != frame:
        raise ExecutionError(f"window has {window.shape[0]} entries but frame_length is {frame}")
    if step < 1 or not 0 < frame <= length:
        raise ExecutionError(f"cannot cut frames of {frame} every {step} from a signal of {length}")
    frames = (length - frame) // step + 1
    starts = np.arange(frames) * step
    z = _to_complex(signal)[:, starts[:, None] + np.arange(frame)[None, :]]   # [batch, frames, frame]
    if window is not None:
        z = z * window.astype(z.real.dtype)
    y = np.fft.fft(z, axis=-1)
    if ctx.attrs.onesided:
        y = y[..., :frame // 2 + 1]
    return _from_complex(y, signal.dtype)


STFT = define(
    "STFT", ["signal", "frame_step", "window?", "frame_length?"], ["output"], kind=K.OPAQUE,
    since_version=17, attrs=[INT("onesided", 1, choices=(0, 1))],
    infer=_infer_stft, reference=_stft,
    doc="Short-time Fourier transform: the DFT of each (windowed) frame of the signal.")


# --- windows -------------------------------------------------------------------------------------

def _infer_generated(ctx: InferContext, shape):
    dtype = ctx.attrs.output_datatype
    if dtype not in _GENERATED_DTYPES:
        ctx.fail(f"output_datatype {dtype.short} is not allowed",
                 hint=f"use one of {', '.join(sorted(d.short for d in _GENERATED_DTYPES))}")
    return [TensorType(dtype, shape)]


def _infer_window(ctx: InferContext):
    size = _int_scalar(ctx, 0)
    if size is not None and size < 0:
        ctx.fail(f"window size must be >= 0, got {size}")
    return _infer_generated(ctx, (size,))


def _cosine_window(*coeffs: float):
    """w[n] = sum_k (-1)^k coeffs[k] cos(2 pi k n / N), N = size (periodic) or size - 1."""
    def reference(ctx, size):
        size = int(_value(size))
        if size < 0:
            raise ExecutionError(f"window size must be >= 0, got {size}")
        denom = size if ctx.attrs.periodic else size - 1
        n = np.arange(size, dtype=np.float64)
        if denom == 0:
            w = np.ones(size)
        else:
            w = np.zeros(size)           # the constant term last, as ONNX's reference sums
            for k, c in enumerate(coeffs[1:], start=1):
                w += (-1) ** k * c * np.cos(2 * np.pi * k * n / denom)
            w += coeffs[0]
        return w.astype(ctx.attrs.output_datatype.np)
    return reference


def _define_window(name: str, coeffs, doc: str):
    return define(
        name, ["size"], ["output"], kind=K.OPAQUE, since_version=17,
        attrs=[DTYPE("output_datatype", DType.float32), INT("periodic", 1, choices=(0, 1))],
        infer=_infer_window, reference=_cosine_window(*coeffs), doc=doc)


HannWindow = _define_window("HannWindow", (0.5, 0.5), "Hann window: 0.5 - 0.5 cos(2 pi n / N).")
HammingWindow = _define_window("HammingWindow", (25 / 46, 21 / 46),
                               "Hamming window: 25/46 - 21/46 cos(2 pi n / N).")
BlackmanWindow = _define_window("BlackmanWindow", (0.42, 0.5, 0.08),
                                "Blackman window: 0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N).")


# --- MelWeightMatrix -----------------------------------------------------------------------------

def _infer_mel(ctx: InferContext):
    for i in (0, 1, 2):
        _int_scalar(ctx, i)
    for i in (3, 4):
        _need_float(ctx, i)
    bins, dft_length = _int_scalar(ctx, 0), _int_scalar(ctx, 1)
    for name, v in (("num_mel_bins", bins), ("dft_length", dft_length)):
        if v is not None and v < 1:
            ctx.fail(f"{name} must be >= 1, got {v}")
    return _infer_generated(ctx, (None if dft_length is None else dft_length // 2 + 1, bins))


def _hz_to_mel(f):
    return 2595 * np.log1p(f / 700) / np.log(10)


def _mel_weight_matrix(ctx, num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
                       upper_edge_hertz):
    bins, n_fft, rate = int(_value(num_mel_bins)), int(_value(dft_length)), int(_value(sample_rate))
    # the edges stay in their own float type (as ONNX's reference computes them)
    low, high = (_hz_to_mel(np.asarray(e).reshape(-1)[0]) for e in (lower_edge_hertz, upper_edge_hertz))
    # bins + 2 edges evenly spaced in mel, mapped back to Hz and then to DFT bin indices
    mel = np.arange(bins + 2) * ((high - low) / (bins + 2)) + low
    edges = ((n_fft + 1) * (700 * np.expm1(mel / 2595 * np.log(10))) // rate).astype(np.int64)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    j = np.arange(n_fft // 2 + 1)[:, None]
    with np.errstate(all="ignore"):
        rising = np.where(centre == left, (j == centre) * 1.0, (j - left) / (centre - left))
        falling = (right - j) / (right - centre)
    out = np.where((j >= left) & (j <= centre), rising, 0.0)
    out = np.where((j >= centre) & (j < right), falling, out)
    return out.astype(ctx.attrs.output_datatype.np)


MelWeightMatrix = define(
    "MelWeightMatrix", ["num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz",
                        "upper_edge_hertz"], ["output"], kind=K.OPAQUE, since_version=17,
    attrs=[DTYPE("output_datatype", DType.float32)],
    infer=_infer_mel, reference=_mel_weight_matrix,
    doc="Triangular mel filterbank: a [dft_length/2 + 1, num_mel_bins] weight matrix.")
