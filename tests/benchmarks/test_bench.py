"""The benchmark harness runs end to end on the tiny model (no timing is asserted)."""

import os

import numpy as np
import pytest

from benchmarks import bench
from benchmarks.timing import interleave, summarize


@pytest.fixture(autouse=True)
def no_inductor(monkeypatch):
    """Inductor compiles from scratch (its caches off) for ~20 s: make bench runs it, not CI."""
    def skipped(*args):
        raise bench.Unavailable("skipped")
    monkeypatch.setitem(bench.PREPARE, "torch.compile Inductor", skipped)


def test_harness_runs_the_tiny_model(capsys):
    # default --threads (every CPU): the process-wide thread settings stay at their defaults
    assert bench.main(["--models", "tiny", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in out.splitlines() if line.startswith("| tiny |")]
    assert len(rows) == 2                          # latencies, then setup and accuracy
    latency, setup = rows
    assert len(latency) == 2 + len(bench.RUNTIMES) + len(bench.RATIOS)
    assert len(setup) == 2 + len(bench.RUNTIMES)
    cells = dict(zip(bench.RUNTIMES, latency[2:]))
    assert not cells["ONNX Runtime"].startswith("n/a")   # onnxruntime is a test dependency
    for runtime, cell in cells.items():
        assert cell.startswith("n/a (") or "s (" in cell, runtime
    assert cells["torch.compile Inductor"] == "n/a (skipped)"
    diffs = setup[-1].split(" / ")
    assert len(diffs) == len(bench.RUNTIMES)
    assert diffs[bench.RUNTIMES.index("ONNX Runtime")] == "0.0e+00"
    assert all(d in ("0.0e+00", "n/a") for d in diffs)   # x + y is exact in every runtime
    assert "Command: `python -m benchmarks.bench --models tiny --repeat 2`" in out


def test_unavailable_runtime_is_reported_not_raised(monkeypatch):
    def broken(*args):
        raise RuntimeError("no lowering for Add\nsecond line")
    monkeypatch.setitem(bench.PREPARE, "kiln-native", broken)
    threads = len(os.sched_getaffinity(0))
    row = bench.measure("tiny", rounds=1, threads=threads, log=lambda msg: None)
    cell = row.cells["kiln-native"]
    assert cell.stats is None and cell.reason == "RuntimeError: no lowering for Add"
    assert "n/a (RuntimeError: no lowering for Add)" in bench.format_table([row])
    assert row.cells["ONNX Runtime"].stats is not None


def test_write_docs_replaces_only_the_marked_block(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text(f"intro\n{bench.BEGIN}\nold table\n{bench.END}\noutro\n")
    bench.write_docs("| new |", doc)
    assert doc.read_text() == f"intro\n{bench.BEGIN}\n| new |\n{bench.END}\noutro\n"


def test_interleave_rotates_and_counts_calls():
    order = []
    stats = interleave({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                       rounds=4, burst_seconds=0, settle=0, warmup_seconds=0)
    assert stats["a"].count == stats["b"].count == 4          # one timed call per round
    assert order[:6] == ["a"] * 3 + ["b"] * 3                 # warmup: 3 calls each
    # each round: per runtime an untimed call, then one timed; the first runtime rotates
    assert order[6:] == list("aabb" "bbaa" "aabb" "bbaa")


def test_summarize():
    s = summarize(np.arange(1, 11, dtype=float))
    assert s.median == 5.5 and s.count == 10 and 9 <= s.p90 <= 10
