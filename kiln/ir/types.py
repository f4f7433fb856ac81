"""Types of Graph IR values: tensors with (possibly symbolic) shapes, sequences and optionals.

A dimension is an `int` (static), a `str` (a named symbolic dimension such as "batch", equal
wherever the same name appears in one graph) or `None` (unknown: nothing is promised). A tensor
type whose `shape` is None has unknown rank.

Text forms (used by the printer and parser):  f32[batch,3,224,224]   i64[]   f32[?,4]   f32[*]
seq<f32[?]>   opt<i64[2]>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

from .dtypes import DType

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: tuple[Dim, ...] | None = ()

    def __post_init__(self):
        if self.shape is not None and not isinstance(self.shape, tuple):
            object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def numel(self) -> int | None:
        """Number of elements when every dimension is static, else None."""
        if not self.is_static:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_shape(self, shape: Iterable[Dim] | None) -> "TensorType":
        return TensorType(self.dtype, None if shape is None else tuple(shape))

    def with_dtype(self, dtype: DType) -> "TensorType":
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        if self.shape is None:
            return f"{self.dtype.short}[*]"
        return f"{self.dtype.short}[{','.join(format_dim(d) for d in self.shape)}]"


@dataclass(frozen=True)
class SequenceType:
    elem: "Type"

    def __str__(self) -> str:
        return f"seq<{self.elem}>"


@dataclass(frozen=True)
class OptionalType:
    elem: "Type"

    def __str__(self) -> str:
        return f"opt<{self.elem}>"


Type = Union[TensorType, SequenceType, OptionalType]


def format_dim(d: Dim) -> str:
    return "?" if d is None else str(d)


def tensor(dtype: DType, *shape: Dim) -> TensorType:
    """Shorthand: tensor(f32, "batch", 4)."""
    return TensorType(dtype, tuple(shape))


def dims_compatible(a: Dim, b: Dim) -> bool:
    """Could a and b be the same dimension at run time?"""
    if a is None or b is None:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return True  # two names may bind to the same size
    return True  # a symbol may bind to any integer


def types_compatible(declared: Type, inferred: Type) -> bool:
    """True when `inferred` does not contradict `declared` (unknowns on either side are fine)."""
    if isinstance(declared, TensorType) and isinstance(inferred, TensorType):
        if declared.dtype != inferred.dtype:
            return False
        if declared.shape is None or inferred.shape is None:
            return True
        if len(declared.shape) != len(inferred.shape):
            return False
        for a, b in zip(declared.shape, inferred.shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                return False
            if isinstance(a, str) and isinstance(b, str) and a != b:
                # distinct names are allowed only if one of them is a derived placeholder
                continue
        return True
    if type(declared) is not type(inferred):
        return False
    return types_compatible(declared.elem, inferred.elem)


def refine(declared: Type, inferred: Type) -> Type:
    """The more precise of two compatible types, dimension by dimension."""
    if isinstance(declared, TensorType) and isinstance(inferred, TensorType):
        if declared.shape is None:
            return inferred
        if inferred.shape is None:
            return declared
        dims = []
        for a, b in zip(declared.shape, inferred.shape):
            if a is None:
                dims.append(b)
            elif isinstance(a, str) and isinstance(b, int):
                dims.append(b)
            else:
                dims.append(a)
        return TensorType(declared.dtype, tuple(dims))
    if isinstance(declared, (SequenceType, OptionalType)) and type(declared) is type(inferred):
        return type(declared)(refine(declared.elem, inferred.elem))
    return declared
