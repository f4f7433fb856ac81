"""Interleaved latency measurement of several runtimes in one process.

    stats = interleave({"kiln": f, "ort": g}, rounds=30)
    stats["kiln"].median, stats["kiln"].p90              # seconds per call

The machine is shared and noisy, so runtimes are never measured one after the other: every
round runs each runtime once, in an order that rotates from round to round, and a slow spell
of the machine lands on all of them alike. Within a round a runtime gets

    a pause (`settle`)    the previous runtime's worker threads stop spinning on the cores
    one untimed call      its own workers wake up and its caches refill
    a burst of timed calls, each timed alone with perf_counter_ns

The pause is long enough for ONNX Runtime's intra-op workers, which spin for some tens of
milliseconds after a run, to go to sleep: measured back to back, a runtime's spinning workers
took a core from the next runtime and doubled its latency. Python's garbage collector is off
while timing, as in timeit.

The burst is as many calls as fill about `burst_seconds` (at least one), so a tiny model is
timed over many calls per round while a large one costs one call. Statistics are over every
timed call of every round.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Stats:
    median: float           # seconds
    p90: float
    count: int              # timed calls


def summarize(samples) -> Stats:
    s = np.asarray(samples, dtype=np.float64)
    return Stats(float(np.median(s)), float(np.percentile(s, 90)), len(s))


def per_call_estimate(call: Callable[[], object], warmup_seconds: float = 0.2,
                      min_calls: int = 3, max_calls: int = 10_000) -> float:
    """Warm `call` up (at least `min_calls` calls and about `warmup_seconds`) and return the
    fastest call's time, in seconds."""
    best, start, n = float("inf"), time.perf_counter(), 0
    while n < min_calls or (time.perf_counter() - start < warmup_seconds and n < max_calls):
        t0 = time.perf_counter_ns()
        call()
        best = min(best, (time.perf_counter_ns() - t0) * 1e-9)
        n += 1
    return best


def interleave(calls: dict[str, Callable[[], object]], rounds: int = 30,
               burst_seconds: float = 0.005, max_burst: int = 200, settle: float = 0.06,
               warmup_seconds: float = 0.2) -> dict[str, Stats]:
    """Median and p90 latency of each callable, measured round-robin (see module docstring)."""
    names = list(calls)
    burst = {}
    for name in names:
        estimate = per_call_estimate(calls[name], warmup_seconds)
        burst[name] = int(min(max_burst, max(1, burst_seconds // max(estimate, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    collecting = gc.isenabled()
    gc.disable()
    try:
        _rounds(calls, names, burst, rounds, settle, samples)
    finally:
        if collecting:
            gc.enable()
    return {name: summarize(samples[name]) for name in names}


def _rounds(calls, names, burst, rounds, settle, samples) -> None:
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            call, out = calls[name], samples[name]
            if settle:
                time.sleep(settle)
            call()
            for _ in range(burst[name]):
                t0 = time.perf_counter_ns()
                call()
                out.append((time.perf_counter_ns() - t0) * 1e-9)
