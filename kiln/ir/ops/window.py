"""Sliding-window geometry shared by the convolution and pooling ops.

One window sweep over the spatial axes of an N x C x D1 x ... x Dn tensor is described by its
kernel, strides, dilations and padding (explicit `pads` or an `auto_pad` mode). This module is
the one place that knows how those attributes turn into output sizes and begin/end pads, for
static sizes (references) and for symbolic ones (inference), and how to view a padded tensor as
its windows without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import AttributeValueError
from ..dtypes import DType
from ..opdef import InferContext
from ..types import Dim
from .common import INTS, STRING

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
FLOAT_TYPES = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})


def auto_pad_attr():
    return STRING("auto_pad", "NOTSET", choices=AUTO_PADS)


def window_attrs(*, dilations: bool = True, kernel_required: bool = False):
    """kernel_shape, strides, pads (and dilations): an empty tuple means "the default"."""
    kernel = INTS("kernel_shape") if kernel_required else INTS("kernel_shape", ())
    attrs = [kernel, INTS("strides", ()), INTS("pads", ())]
    if dilations:
        attrs.append(INTS("dilations", ()))
    return attrs


def effective_size(k: int, d: int) -> int:
    """Extent of a kernel of k taps spaced d apart."""
    return (k - 1) * d + 1


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]        # ONNX order: all begins, then all ends
    auto_pad: str = "NOTSET"
    ceil_mode: bool = False

    @property
    def rank(self) -> int:
        return len(self.kernel)

    def out_dim(self, i: int, n: Dim) -> Dim:
        """Output size along spatial axis i for input size n (symbolic n gives a symbol or None)."""
        k, s, d = self.kernel[i], self.strides[i], self.dilations[i]
        eff = effective_size(k, d)
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if isinstance(n, int):
                return -(-n // s)
            return n if s == 1 else None
        pb, pe = (0, 0) if self.auto_pad == "VALID" else (self.pads[i], self.pads[self.rank + i])
        if not isinstance(n, int):
            return n if s == 1 and pb + pe + 1 == eff else None
        span = n + pb + pe - eff
        if not self.ceil_mode:
            return span // s + 1
        out = -(-span // s) + 1
        if (out - 1) * s >= n + pb:   # the last window would start in the end padding
            out -= 1
        return out

    def out_shape(self, spatial: Sequence[Dim]) -> tuple[Dim, ...]:
        return tuple(self.out_dim(i, n) for i, n in enumerate(spatial))

    def resolve(self, spatial: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...],
                                                       tuple[int, ...]]:
        """(output sizes, begin pads, end pads) for static input sizes; auto_pad applied."""
        out = self.out_shape(spatial)
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            begin, end = [], []
            for i, n in enumerate(spatial):
                eff = effective_size(self.kernel[i], self.dilations[i])
                total = max(0, (out[i] - 1) * self.strides[i] + eff - n)
                lo = total // 2 if self.auto_pad == "SAME_UPPER" else total - total // 2
                begin.append(lo)
                end.append(total - lo)
            return out, tuple(begin), tuple(end)
        if self.auto_pad == "VALID":
            return out, (0,) * self.rank, (0,) * self.rank
        return out, self.pads[:self.rank], self.pads[self.rank:]


def make_window(attrs, rank: int, kernel: Sequence[int], node=None, *,
                ceil_mode: bool = False) -> Window:
    """A Window from a node's attributes, defaults filled in and lengths checked against rank."""
    def vector(name: str, default: int, length: int) -> tuple[int, ...]:
        v = tuple(attrs.get(name, ()) or ())
        if not v:
            return (default,) * length
        if len(v) != length:
            raise AttributeValueError(
                f"'{name}' has {len(v)} values but the input has {rank} spatial axes "
                f"(expected {length})", node=node)
        return v

    kernel = tuple(int(k) for k in kernel)
    if len(kernel) != rank:
        raise AttributeValueError(
            f"kernel_shape {list(kernel)} has {len(kernel)} axes but the input has {rank} "
            f"spatial axes", node=node)
    strides = vector("strides", 1, rank)
    dilations = vector("dilations", 1, rank)
    pads = vector("pads", 0, 2 * rank)
    for name, v, lo in (("kernel_shape", kernel, 1), ("strides", strides, 1),
                        ("dilations", dilations, 1), ("pads", pads, 0)):
        if any(x < lo for x in v):
            raise AttributeValueError(f"'{name}' must be >= {lo}, got {list(v)}", node=node)
    return Window(kernel, strides, dilations, pads, attrs.get("auto_pad", "NOTSET"),
                  bool(ceil_mode))


# --- inference -------------------------------------------------------------------------------

def check_dtype(ctx: InferContext, i: int, allowed, what: str) -> DType:
    dt = ctx.tensor(i).dtype
    if dt not in allowed:
        ctx.fail(f"{ctx.op.name} {what} must be one of "
                 f"{', '.join(sorted(d.short for d in allowed))}, got {dt.short}")
    return dt


def image_rank(ctx: InferContext, *indices: int) -> int | None:
    """The common rank (>= 3) of the listed image/weight inputs, or None when all are unknown."""
    rank = None
    for i in indices:
        shape = ctx.tensor(i).shape
        if shape is None:
            continue
        if len(shape) < 3:
            ctx.fail(f"input {i} of {ctx.op.name} must have rank >= 3 (N x C x spatial...), "
                     f"got shape {list(shape)}")
        if rank is not None and len(shape) != rank:
            ctx.fail(f"input {i} has rank {len(shape)} but the image has rank {rank}",
                     hint="the weights have one spatial axis per image spatial axis")
        rank = len(shape) if rank is None else rank
    return rank


def check_out_shape(ctx: InferContext, win: Window, spatial: Sequence[Dim],
                    out: Sequence[Dim]) -> None:
    """A known output size below 1 means the kernel does not fit the padded input."""
    for i, (n, o) in enumerate(zip(spatial, out)):
        if isinstance(o, int) and o < 1:
            eff = effective_size(win.kernel[i], win.dilations[i])
            pads = (win.pads[i], win.pads[win.rank + i])
            ctx.fail(f"the kernel (extent {eff} along spatial axis {i}) does not fit the input "
                     f"size {n} with pads {list(pads)}: the output would be empty",
                     hint="use a smaller kernel or dilation, or more padding")


# --- references ------------------------------------------------------------------------------

def accumulator(dtype: np.dtype) -> np.dtype:
    """The dtype references compute in: float64 stays, other floats widen to float32."""
    if dtype == np.float64:
        return np.dtype(np.float64)
    if dtype.kind in "iub":
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def pad_spatial(x: np.ndarray, begin: Sequence[int], end: Sequence[int], value=0) -> np.ndarray:
    """Pad (or, for negative amounts, crop) the trailing len(begin) axes of x."""
    lead = x.ndim - len(begin)
    crop = tuple([slice(None)] * lead + [slice(max(0, -b), x.shape[lead + i] - max(0, -e))
                                         for i, (b, e) in enumerate(zip(begin, end))])
    x = x[crop]
    widths = [(0, 0)] * lead + [(max(0, b), max(0, e)) for b, e in zip(begin, end)]
    if not any(w != (0, 0) for w in widths):
        return x
    return np.pad(x, widths, mode="constant", constant_values=value)


def windows(x: np.ndarray, win: Window, out: Sequence[int], begin: Sequence[int],
            value=0) -> np.ndarray:
    """View x (N, C, *spatial) as its windows (N, C, *out, *kernel); taps outside x read `value`.

    The input is padded by `begin` in front and by whatever the last window needs at the end
    (ceil_mode may need more than `pads`; a surplus is cropped)."""
    nd = win.rank
    spatial = x.shape[2:]
    ends = []
    for i in range(nd):
        need = (out[i] - 1) * win.strides[i] + effective_size(win.kernel[i], win.dilations[i])
        ends.append(need - begin[i] - spatial[i])
    xp = pad_spatial(x, begin, ends, value)
    axes = tuple(range(2, 2 + nd))
    extents = tuple(effective_size(k, d) for k, d in zip(win.kernel, win.dilations))
    v = sliding_window_view(xp, extents, axis=axes)
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in win.strides) + \
        tuple(slice(None, None, d) for d in win.dilations)
    return v[index]


def tap_positions(win: Window, out: Sequence[int], begin: Sequence[int]) -> list[np.ndarray]:
    """Per spatial axis i, the input coordinate of each (output index, tap): shape (out_i, k_i)."""
    return [np.arange(out[i])[:, None] * win.strides[i] - begin[i]
            + np.arange(win.kernel[i])[None, :] * win.dilations[i] for i in range(win.rank)]


def outer_mask(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Combine per-axis (out_i, k_i) masks into one (*out, *kernel) mask."""
    nd = len(masks)
    total = np.ones((1,) * (2 * nd), dtype=bool)
    for i, m in enumerate(masks):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = m.shape
        total = total & m.reshape(shape)
    return total
