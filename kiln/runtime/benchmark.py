"""Timing compiled models: median latencies, and the fixed cost of one call.

    median_seconds(lambda: model(x), runs=50)      # median of 50 timed calls, after warm-up
    call_overhead()                                # per-call cost of a model doing one tiny Add

The per-call overhead is what a call costs beyond the model's own arithmetic: checking the
inputs, planning (cached per shape), allocating the outputs, filling the pointer tables and the
one ctypes call into the entry. It is measured on a model that adds two f32[1] tensors, where
the arithmetic is a single instruction.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def median_seconds(fn: Callable[[], object], runs: int = 30, warmup: int = 3,
                   batch: int = 1) -> float:
    """The median over `runs` samples of the time of one call of `fn` (each sample times
    `batch` calls back to back, for calls too short to time one by one)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def tiny_add_graph():
    """z = x + y on f32[1]: a model whose arithmetic is negligible."""
    from ..ir import GraphBuilder, tensor
    from ..ir.dtypes import DType
    b = GraphBuilder("tiny_add")
    x = b.input("x", tensor(DType.float32, 1))
    y = b.input("y", tensor(DType.float32, 1))
    b.output(b.Add(x, y, outputs=["z"], name="add"))
    return b.graph


def call_overhead(runs: int = 25, batch: int = 2000) -> dict[str, float]:
    """Seconds per call of the tiny Add model: `kiln` through CompiledModel (inputs checked,
    outputs allocated) and `entry` the bare ctypes call with prepared tables."""
    from .compiled_model import compile_graph
    with compile_graph(tiny_add_graph()) as model:
        x = np.ones(1, np.float32)
        y = np.full(1, 2.0, np.float32)
        assert model(x, y)[0][0] == 3.0
        kiln = median_seconds(lambda: model(x, y), runs=runs, batch=batch)
        entry = model._entry
        z = np.zeros(1, np.float32)
        ins, outs = entry._in_type(x.ctypes.data, y.ctypes.data), entry._out_type(z.ctypes.data)
        plan = entry.plan(((1,), (1,)))
        fn, constants = entry._function, entry._constants_ptr
        bare = median_seconds(lambda: fn(ins, outs, constants, 0, plan.sizes_ptr),
                              runs=runs, batch=batch)
    return {"kiln": kiln, "entry": bare}
