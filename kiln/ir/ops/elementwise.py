"""Elementwise and broadcasting ops: arithmetic, comparisons, logic, math functions, activations."""

from __future__ import annotations

import numpy as np

from ..opdef import FusionKind, Trait
from .common import FLOAT, broadcast_infer, same_as_input
from .registry import define

K = FusionKind

Add = define(
    "Add", ["A", "B"], ["C"], kind=K.BROADCAST, since_version=14,
    traits=[Trait.COMMUTATIVE, Trait.ASSOCIATIVE],
    infer=broadcast_infer(), reference=lambda ctx, a, b: np.add(a, b),
    doc="C = A + B with NumPy broadcasting.")

Relu = define(
    "Relu", ["X"], ["Y"], kind=K.ELEMENTWISE, since_version=14, traits=[Trait.IDEMPOTENT],
    infer=same_as_input(0), reference=lambda ctx, x: np.maximum(x, np.zeros((), x.dtype)),
    doc="Y = max(X, 0).")

LeakyRelu = define(
    "LeakyRelu", ["X"], ["Y"], kind=K.ELEMENTWISE, since_version=16, attrs=[FLOAT("alpha", 0.01)],
    infer=same_as_input(0),
    reference=lambda ctx, x: np.where(x >= 0, x, x * x.dtype.type(ctx.attrs.alpha)),
    doc="Y = X if X >= 0 else alpha * X.")
