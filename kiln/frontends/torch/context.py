"""What an ATen converter sees while one FX node is converted: the builder, the values of the
nodes converted so far, and helpers for constants, dtypes and (symbolic) sizes.

A converter is `fn(cx, *args)`: `args` are the node's arguments in the order of the op's schema
(keyword arguments and defaults filled in), FX nodes left as they are. It reads its tensor
operands with `cx.tensor(arg)` and emits kiln ops with `cx.b.<Op>(...)`; it returns a Value,
or a tuple of Values for an op with several outputs (read back by `operator.getitem`).

A SymInt (a size that is only known at run time) converts to an i64 tensor of shape [1]
(`cx.size(arg)`); sizes lists become one i64 1-D tensor (`cx.sizes(list)`).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from ...errors import UnsupportedOpError
from ...ir.builder import GraphBuilder
from ...ir.dtypes import DType
from ...ir.graph import Value

TORCH_TO_DTYPE = {
    torch.float32: DType.float32, torch.float64: DType.float64, torch.float16: DType.float16,
    torch.bfloat16: DType.bfloat16, torch.int64: DType.int64, torch.int32: DType.int32,
    torch.int16: DType.int16, torch.int8: DType.int8, torch.uint8: DType.uint8,
    torch.bool: DType.bool,
}


def kiln_dtype(dtype: torch.dtype, where: str = "") -> DType:
    try:
        return TORCH_TO_DTYPE[dtype]
    except KeyError:
        raise UnsupportedOpError(f"{where}: tensors of {dtype} are not supported" if where else
                                 f"tensors of {dtype} are not supported", ops=[str(dtype)],
                                 hint="cast the model to float32 (or another supported dtype)")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a NumPy array (the same memory when it can be); bfloat16 becomes
    ml_dtypes.bfloat16, which NumPy lacks."""
    t = t.detach().cpu().resolve_conj()
    if t.dtype == torch.bfloat16:
        import ml_dtypes
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A NumPy array as a tensor sharing its memory (ml_dtypes.bfloat16 -> torch.bfloat16)."""
    if a.dtype == DType.bfloat16.np:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def dim_of(d) -> int | str | None:
    """A kiln dimension for one dimension of a FakeTensor: an int, the name of a plain symbol
    ("s0"), or None for a size that is an expression of symbols (s0*s1)."""
    if isinstance(d, int):
        return d
    expr = d.node.expr
    if expr.is_Integer:
        return int(expr)
    if expr.is_Symbol:
        return str(expr)
    return None


def same_dim(a, b) -> bool:
    """Are two FakeTensor dimensions provably the same size (same int or same expression)?"""
    if isinstance(a, int) or isinstance(b, int):
        return isinstance(a, int) and isinstance(b, int) and a == b
    return a.node.expr == b.node.expr


def source_line(fx_node) -> str:
    """`file.py:12` of the user's code that made `fx_node`, from its stack trace ("" if none)."""
    trace = fx_node.meta.get("stack_trace") or ""
    found = re.findall(r'File "([^"]+)", line (\d+)', trace)
    if not found:
        return ""
    path, line = found[-1]
    return f"{path}:{line}"


class FxContext:
    def __init__(self, builder: GraphBuilder):
        self.b = builder
        self.env: dict = {}         # fx.Node -> Value | tuple of Values | (for SymInts) Value
        self.node = None            # the FX node being converted

    # --- operands ---------------------------------------------------------------------------
    def tensor(self, arg, dtype: DType | None = None) -> Value:
        """The kiln Value of a tensor operand; a Python number becomes a 0-d constant of
        `dtype` (required then). With `dtype`, a tensor of another dtype is cast to it."""
        if isinstance(arg, torch.fx.Node):
            if isinstance(arg.meta.get("val"), (int, torch.SymInt)):   # a size used as a number
                return self.scalar_of_size(arg, dtype or DType.int64)
            v = self.env[arg]
            if isinstance(v, tuple):
                raise TypeError(f"{arg.name} has several outputs")
            return self.cast(v, dtype) if dtype is not None else v
        if isinstance(arg, (bool, int, float)):
            if dtype is None:
                raise TypeError("a Python number needs a dtype to become a tensor")
            return self.const(np.asarray(arg, dtype.np))
        raise TypeError(f"not a tensor operand: {arg!r}")

    def fake(self, arg):
        """The FakeTensor (or SymInt / number) torch recorded for an FX node's value."""
        if isinstance(arg, torch.fx.Node):
            return arg.meta.get("val")
        return arg

    def out(self):
        """The FakeTensor of the node being converted."""
        return self.node.meta.get("val")

    def dtype(self, arg) -> DType:
        """The kiln dtype of an FX node's tensor value."""
        if isinstance(arg, torch.fx.Node) and arg in self.env and isinstance(self.env[arg], Value):
            return self.env[arg].type.dtype
        return kiln_dtype(self.fake(arg).dtype, self.node.name if self.node else "")

    def out_dtype(self) -> DType:
        return kiln_dtype(self.out().dtype, self.node.name)

    def rank(self, arg) -> int:
        return len(self.fake(arg).shape)

    # --- making values ----------------------------------------------------------------------
    def const(self, array, hint: str = "c") -> Value:
        return self.b.constant(np.asarray(array), f"{self.node.name}.{hint}" if self.node else hint)

    def ints(self, values) -> Value:
        return self.const(np.asarray(list(values), np.int64), "ints")

    def transpose(self, x: Value, perm) -> Value:
        """Transpose; a weight (a constant, like the nn.Linear weight before addmm) is
        transposed now, so no transpose of it runs per call, however big it is."""
        if x.is_constant:
            return self.const(np.ascontiguousarray(np.transpose(x.data, perm)), "t")
        return self.b.Transpose(x, perm=list(perm), name=self.node.name)

    def cast(self, v: Value, dtype: DType) -> Value:
        if v.type.dtype == dtype:
            return v
        return self.b.Cast(v, to=dtype, name=self.name("cast"))

    def name(self, suffix: str = "") -> str:
        base = self.node.name if self.node is not None else "t"
        return f"{base}.{suffix}" if suffix else base

    # --- sizes ------------------------------------------------------------------------------
    def size(self, arg) -> Value:
        """An int or SymInt as an i64 tensor of shape [1]."""
        if isinstance(arg, torch.fx.Node):
            return self.env[arg]
        if isinstance(arg, (int, np.integer)):
            return self.ints([int(arg)])
        if isinstance(arg, torch.SymInt) and arg.node.expr.is_Integer:
            return self.ints([int(arg.node.expr)])
        raise TypeError(f"not a size: {arg!r}")

    def sizes(self, values) -> Value:
        """A list of ints and SymInt nodes as one i64 1-D tensor (a constant when static)."""
        values = list(values)
        if all(isinstance(v, (int, np.integer)) for v in values):
            return self.ints(values)
        parts = [self.size(v) for v in values]
        return self.b.Concat(*parts, axis=0, name=self.name("sizes"))

    def scalar_of_size(self, arg, dtype: DType = DType.int64) -> Value:
        """An int or SymInt as a 0-d tensor of `dtype`."""
        if not isinstance(arg, torch.fx.Node):
            return self.const(np.asarray(int(arg), dtype.np))
        v = self.b.Reshape(self.size(arg), self.ints([]), name=self.name("scalar"))
        return self.cast(v, dtype)

    def dim_size(self, x: Value, axis: int) -> Value:
        """The run-time size of `x` along `axis`, as i64[1]."""
        return self.b.Shape(x, start=axis, end=axis + 1 if axis != -1 else None,
                            name=self.name("dim"))
