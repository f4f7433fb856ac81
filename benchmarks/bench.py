"""kiln's native code against ONNX Runtime, PyTorch eager and torch.compile on the model suite,
in one process.

    python -m benchmarks.bench                              # every model; a Markdown table
    python -m benchmarks.bench --models tiny,mlp --repeat 50 --threads 2
    python -m benchmarks.bench --write-docs                 # also update docs/performance.md

For each model of benchmarks/models.py (plus `tiny`, one Add of two [1] tensors, which shows
what a call costs apart from the work) the same seeded weights run in six runtimes:

    kiln-native     kiln.compile(the exported ONNX model) -> one native entry point
    kiln unfused    the same without the fusion passes (one kernel per op): what fusion buys
    ONNX Runtime    InferenceSession on the same ONNX bytes, CPUExecutionProvider,
                    every graph optimization, intra-op threads = --threads
    PyTorch eager   benchmarks/torch_models.py (the same weights, looked up by name),
                    torch.inference_mode, torch.set_num_threads(--threads)
    torch.compile kiln      that module through torch.compile(backend="kiln") (Dynamo, then
                            kiln/frontends/torch/dynamo.py), options freeze=True (kiln's
                            default: frozen, with the per-call weight guard): n/a if any
                            graph fell back to eager
    torch.compile Inductor  that module through torch.compile (Inductor's C++ code; needs a C++
                            compiler at run time), options freezing=True, its caches off

Both torch.compile runtimes freeze the weights into the compiled code, as kiln-native and
ONNX Runtime have them, and Inductor compiles from scratch (no cache of earlier runs).

Setup time is what it takes to get a runtime ready: the compile or session creation, and for
torch.compile the first call, which is when Dynamo traces and the backend compiles.
Latencies are measured interleaved (benchmarks/timing.py): median and p90 per call after
warmup; a ratio below 1 means kiln is faster. Each runtime's first outputs are compared with
kiln's reference interpreter (max abs diff). A runtime that cannot run a model (torch not
installed, an op kiln cannot compile yet) gets "n/a (reason)" in its column; nothing here
asserts on speed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kiln.frontends.onnx import export_model
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.graph import Graph
from kiln.ir.interpreter import interpret

from .models import SUITE, example_inputs
from .timing import Stats, interleave

RUNTIMES = ("kiln-native", "kiln unfused", "ONNX Runtime", "PyTorch eager",
            "torch.compile kiln", "torch.compile Inductor")
# latency ratios in the table: (numerator, denominator, heading)
RATIOS = (("kiln-native", "kiln unfused", "kiln / kiln unfused"),
          ("kiln-native", "ONNX Runtime", "kiln / ORT"),
          ("kiln-native", "PyTorch eager", "kiln / PyTorch"),
          ("kiln-native", "torch.compile Inductor", "kiln / Inductor"),
          ("torch.compile kiln", "kiln-native", "torch.compile kiln / kiln"))
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def tiny() -> Graph:
    """One Add of two [1] float32 tensors: a call's cost with (almost) no work in it."""
    b = GraphBuilder("tiny")
    x = b.input("x", tensor(DType.float32, 1))
    y = b.input("y", tensor(DType.float32, 1))
    b.output(b.Add(x, y))
    return b.graph


@dataclass(frozen=True)
class Config:
    build: Callable[[], Graph]
    batch: int
    seq: int
    label: str


CONFIGS = {
    "tiny": Config(tiny, 1, 1, "x, y: [1]"),
    "mlp": Config(SUITE["mlp"], 64, 1, "batch 64 × 784"),
    "resnet18": Config(SUITE["resnet18"], 1, 1, "batch 1 × 3×224×224"),
    "bert": Config(SUITE["bert"], 1, 128, "batch 1, seq 128"),
    "gpt2": Config(SUITE["gpt2"], 1, 128, "batch 1, seq 128"),
}


class Unavailable(Exception):
    """A runtime cannot run this model here; the message is the table's reason."""


@dataclass
class Prepared:
    call: Callable[[], object]                       # one inference: what is timed
    outputs: Callable[[object], list[np.ndarray]]    # a call's result as NumPy arrays
    setup_seconds: float                             # compile / session creation
    close: Callable[[], None] = lambda: None


@dataclass
class Cell:
    """One runtime on one model."""
    stats: Stats | None = None
    max_abs_diff: float | None = None
    setup_seconds: float | None = None
    reason: str = ""                                 # why there is no measurement


@dataclass
class Row:
    model: str
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)


# --- the three runtimes ----------------------------------------------------------------------

def prepare_kiln(name: str, graph: Graph, onnx_bytes: bytes, feeds: dict,
                 threads: int, fuse: bool = True) -> Prepared:
    try:
        import kiln
        from kiln.codegen.threadpool import ensure_thread_pool
        ensure_thread_pool(threads)
        compile_model = kiln.compile
    except (ImportError, AttributeError) as e:
        raise Unavailable(f"kiln.compile unavailable: {e}") from e
    t0 = time.perf_counter()
    model = compile_model(onnx_bytes, kiln.CompileOptions(fuse=fuse))
    setup = time.perf_counter() - t0
    args = [feeds[v.name] for v in graph.inputs]
    return Prepared(lambda: model.run(args), list, setup, model.close)


def prepare_kiln_unfused(name: str, graph: Graph, onnx_bytes: bytes, feeds: dict,
                         threads: int) -> Prepared:
    """kiln without its fusion passes (one kernel per op): what fusion buys, side by side."""
    return prepare_kiln(name, graph, onnx_bytes, feeds, threads, fuse=False)


def prepare_ort(name: str, graph: Graph, onnx_bytes: bytes, feeds: dict,
                threads: int) -> Prepared:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise Unavailable("onnxruntime not installed (pip install -e '.[bench]')") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    t0 = time.perf_counter()
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    setup = time.perf_counter() - t0
    return Prepared(lambda: session.run(None, feeds), list, setup)


def prepare_torch(name: str, graph: Graph, onnx_bytes: bytes, feeds: dict,
                  threads: int) -> Prepared:
    try:
        from . import torch_models
    except ImportError as e:
        raise Unavailable("torch not installed (pip install -e '.[torch]')") from e
    torch_models.set_threads(threads)
    t0 = time.perf_counter()
    module = torch_models.from_graph(name, graph)
    setup = time.perf_counter() - t0
    call = torch_models.eager_call(module, feeds, [v.name for v in graph.inputs])
    return Prepared(call, torch_models.to_numpy, setup)


def prepare_torch_compile(backend: str, name: str, graph: Graph, onnx_bytes: bytes,
                          feeds: dict, threads: int) -> Prepared:
    """The PyTorch module through torch.compile(backend=...); the first call, which traces
    and compiles, is part of the setup time."""
    try:
        import torch
        from . import torch_models
    except ImportError as e:
        raise Unavailable("torch not installed (pip install -e '.[torch]')") from e
    torch_models.set_threads(threads)
    if backend == "kiln":
        from kiln.codegen.threadpool import ensure_thread_pool
        from kiln.frontends.torch.dynamo import KilnFallbackWarning
        ensure_thread_pool(threads)
    module = torch_models.from_graph(name, graph)
    options = TORCH_COMPILE_OPTIONS[backend]
    t0 = time.perf_counter()
    call = torch_models.eager_call(torch.compile(module, backend=backend, options=options),
                                   feeds, [v.name for v in graph.inputs])
    with warnings.catch_warnings(record=True) as caught, _fresh_compile(backend):
        warnings.simplefilter("always")
        call()
    setup = time.perf_counter() - t0
    if backend == "kiln":
        fallbacks = [w for w in caught if issubclass(w.category, KilnFallbackWarning)]
        if fallbacks:
            raise Unavailable(f"{len(fallbacks)} graph(s) ran eagerly: "
                              + str(fallbacks[0].message).split(":", 2)[-1].strip())
    return Prepared(call, torch_models.to_numpy, setup)


def _fresh_compile(backend: str):
    """Inductor's on-disk caches off for the compile (kiln keeps none): compile times from
    scratch."""
    if backend != "inductor":
        return contextlib.nullcontext()
    import torch._inductor.config
    return torch._inductor.config.patch(force_disable_caches=True)


TORCH_COMPILE_OPTIONS = {"kiln": {"freeze": True}, "inductor": {"freezing": True}}


def prepare_torch_kiln(*args) -> Prepared:
    return prepare_torch_compile("kiln", *args)


def prepare_inductor(*args) -> Prepared:
    return prepare_torch_compile("inductor", *args)


PREPARE = dict(zip(RUNTIMES, (prepare_kiln, prepare_kiln_unfused, prepare_ort, prepare_torch,
                              prepare_torch_kiln, prepare_inductor)))


# --- measuring -------------------------------------------------------------------------------

def max_abs_diff(outputs: list[np.ndarray], reference: list[np.ndarray]) -> float:
    if len(outputs) != len(reference):
        raise Unavailable(f"{len(outputs)} outputs, the interpreter gives {len(reference)}")
    worst = 0.0
    for got, want in zip(outputs, reference):
        got = np.asarray(got)
        if got.shape != want.shape:
            raise Unavailable(f"output shape {got.shape}, the interpreter gives {want.shape}")
        if got.size:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            worst = max(worst, float(np.max(diff)))
    return worst


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text if isinstance(e, Unavailable) else f"{type(e).__name__}: {text}"
    return text[:100].replace("|", "/")


def measure(model: str, rounds: int, threads: int, log=print) -> Row:
    config = CONFIGS[model]
    graph = config.build()
    feeds = example_inputs(graph, batch=config.batch, seq=config.seq)
    reference = interpret(graph, feeds)
    onnx_bytes = export_model(graph).SerializeToString()
    row, ready = Row(model, config.label), {}
    for runtime in RUNTIMES:
        cell, prepared = row.cells.setdefault(runtime, Cell()), None
        try:
            prepared = PREPARE[runtime](model, graph, onnx_bytes, feeds, threads)
            cell.setup_seconds = prepared.setup_seconds
            cell.max_abs_diff = max_abs_diff(prepared.outputs(prepared.call()), reference)
            ready[runtime] = prepared
            log(f"{model}: {runtime} ready in {prepared.setup_seconds:.2f} s, "
                f"max abs diff {cell.max_abs_diff:.1e}")
        except Exception as e:            # any failure is reported in the table, not raised
            cell.reason = _reason(e)
            log(f"{model}: {runtime} n/a ({cell.reason})")
            if prepared is not None:
                prepared.close()
    try:
        stats = interleave({r: p.call for r, p in ready.items()}, rounds=rounds) if ready else {}
        for runtime, s in stats.items():
            row.cells[runtime].stats = s
    finally:
        for p in ready.values():
            p.close()
    return row


# --- the table -------------------------------------------------------------------------------

def format_seconds(s: float) -> str:
    """Three significant digits in µs, ms or s."""
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def _latency(cell: Cell) -> str:
    if cell.stats is None:
        return f"n/a ({cell.reason})" if cell.reason else "n/a"
    return f"{format_seconds(cell.stats.median)} ({format_seconds(cell.stats.p90)})"


def _ratio(row: Row, top: str, bottom: str) -> str:
    a, b = row.cells[top].stats, row.cells[bottom].stats
    return f"{a.median / b.median:.2f}×" if a and b else "n/a"


def _diffs(row: Row) -> str:
    return " / ".join("n/a" if c.max_abs_diff is None else f"{c.max_abs_diff:.1e}"
                      for c in row.cells.values())


def _setup(cell: Cell) -> str:
    return "n/a" if cell.setup_seconds is None else format_seconds(cell.setup_seconds)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def format_table(rows: list[Row]) -> str:
    """Two Markdown tables: latencies with their ratios; then setup times and accuracy."""
    head = ["model", "input", *(f"{r} median (p90)" for r in RUNTIMES),
            *(heading for _, _, heading in RATIOS)]
    lines = [_row(head), "|" + "---|" * len(head)]
    for r in rows:
        lines.append(_row([r.model, r.label, *(_latency(r.cells[k]) for k in RUNTIMES),
                           *(_ratio(r, a, b) for a, b, _ in RATIOS)]))
    short = " / ".join(SHORT[k] for k in RUNTIMES)
    head = ["model", *(SETUP[k] for k in RUNTIMES), f"max abs diff vs interpreter ({short})"]
    lines += ["", _row(head), "|" + "---|" * len(head)]
    for r in rows:
        lines.append(_row([r.model, *(_setup(r.cells[k]) for k in RUNTIMES), _diffs(r)]))
    return "\n".join(lines)


SETUP = {"kiln-native": "kiln compile", "kiln unfused": "kiln unfused compile",
         "ONNX Runtime": "ORT session", "PyTorch eager": "PyTorch module",
         "torch.compile kiln": "torch.compile kiln first call",
         "torch.compile Inductor": "torch.compile Inductor first call"}
SHORT = {"kiln-native": "kiln", "kiln unfused": "unfused", "ONNX Runtime": "ORT",
         "PyTorch eager": "PyTorch", "torch.compile kiln": "tc-kiln",
         "torch.compile Inductor": "Inductor"}


def describe_machine(threads: int, rounds: int, load_before, load_after) -> str:
    """What the numbers were measured on, as one Markdown paragraph."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = [f"kiln {_git_revision()}", f"numpy {np.__version__}"]
    try:
        import onnxruntime
        versions.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    try:
        from . import torch_models
        versions.append(f"torch {torch_models.version()}")
    except ImportError:
        pass
    per_runtime = f"{threads} thread{'s' if threads > 1 else ''} per runtime"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {per_runtime}; "
            f"{', '.join(versions)}; Python {platform.python_version()}. {rounds} interleaved "
            f"rounds; load average {load_before:.1f} before, {load_after:.1f} after; "
            f"{time.strftime('%Y-%m-%d')}.")


def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=10)
        return out.stdout.strip() or "(unknown revision)"
    except (OSError, subprocess.SubprocessError):
        return "(unknown revision)"


def write_docs(block: str, path: Path = DOCS) -> None:
    """Replace what lies between the bench markers of `path` with `block`."""
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers to replace")
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text, count=1))


# --- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(CONFIGS),
                        help=f"comma-separated, from {', '.join(CONFIGS)} (default: all)")
    parser.add_argument("--repeat", type=int, default=30, metavar="N",
                        help="interleaved rounds per model (default 30)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads per runtime (default: every CPU this process may use)")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"also replace the table in {DOCS.relative_to(DOCS.parent.parent)}")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in CONFIGS]
    if unknown or args.repeat < 1 or args.threads < 1:
        parser.error(f"unknown model(s) {unknown}; choose from {list(CONFIGS)}" if unknown else
                     "--repeat and --threads must be at least 1")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    rows = [measure(m, args.repeat, args.threads, log) for m in models]
    table = format_table(rows)
    command = " ".join(["python -m benchmarks.bench", *(sys.argv[1:] if argv is None else argv)])
    machine = describe_machine(args.threads, args.repeat, load_before, os.getloadavg()[0])
    block = f"{table}\n\n{machine}\n\nCommand: `{command}`"
    print(block)
    if args.write_docs:
        write_docs(block)
        log(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
