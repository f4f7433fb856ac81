"""The ONNX backend conformance suite, run against kiln.

    python -m kiln.frontends.onnx.conformance [--backend interpreter|native] [--filter SUBSTR]...
        [--category node] [-v] [--jobs N] [--timeout SEC] [--strict] [--write-docs]

Cases come from onnx's own backend test data: 'node' cases carry their model and data in memory;
'simple', 'pytorch-converted' and 'pytorch-operator' cases are folders with model.onnx and
test_data_set_*/{input,output}_*.pb; 'real' cases run onnx's light models (shipped in the onnx
package) on its fixed dummy input, or a downloaded model under ONNX_HOME when one is there,
and are skipped otherwise.
Outputs are compared the way onnx's runner compares them (shape, dtype, then values with the
case's rtol/atol; sequences and optionals element by element).

A full run writes build/conformance-<backend>.json; a filtered run writes
build/conformance-<backend>-filtered.json. Expected failures (expected_failures.py) are reported
apart from unexpected failures and unexpected passes. The exit status is non-zero when a full
run collects fewer than MIN_CASES cases (an empty suite must not look green), when a filter
matches nothing, or, with --strict, when a case fails unexpectedly.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES = ("node", "simple", "pytorch-converted", "pytorch-operator", "real")
MIN_CASES = 2000
DEFAULT_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Case:
    name: str
    category: str
    rtol: float
    atol: float
    model_dir: str | None = None       # folder cases
    url: str | None = None             # 'real' cases
    model_bytes: bytes | None = None   # node cases
    data_sets: list | None = None      # node cases: [(inputs, outputs), ...]


@dataclass
class Result:
    name: str
    category: str
    status: str                        # "pass" | "fail" | "skip"
    message: str = ""
    seconds: float = 0.0
    execution: str = ""                # what ran it: "interpreter", "native", "native-specialized"


# --- collecting cases ---------------------------------------------------------------------------

def collect(categories=CATEGORIES) -> list[Case]:
    from onnx.backend.test.loader import load_model_tests
    cases = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for cat in categories:
            for t in load_model_tests(kind=cat):
                case = Case(t.name, cat, float(t.rtol), float(t.atol), t.model_dir, t.url)
                if t.model is not None:
                    case.model_bytes = t.model.SerializeToString()
                    case.data_sets = [([_normalize(x) for x in ins], [_normalize(x) for x in outs])
                                      for ins, outs in t.data_sets]
                cases.append(case)
    return cases


def _normalize(x):
    import onnx
    from onnx import numpy_helper
    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    if isinstance(x, onnx.SequenceProto):
        return numpy_helper.to_list(x)
    if isinstance(x, onnx.OptionalProto):
        return numpy_helper.to_optional(x)
    return x


def select(cases: list[Case], filters=(), categories=None) -> list[Case]:
    out = []
    for c in cases:
        if categories and c.category not in categories:
            continue
        if filters and not any(f in c.name for f in filters):
            continue
        out.append(c)
    return out


# --- running one case ---------------------------------------------------------------------------

class CaseTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CaseTimeout()


def run_case(case: Case, backend: str = "interpreter", timeout: float = DEFAULT_TIMEOUT,
             opt_level: int = 0) -> Result:
    """Run one case; never raises (errors become a failed Result)."""
    start = time.perf_counter()
    use_alarm = timeout and timeout > 0 and hasattr(signal, "setitimer")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            status, message, execution = _run(case, backend, opt_level)
    except CaseTimeout:
        status, message, execution = "fail", f"timed out after {timeout:g} s", ""
    except Exception as e:  # the case failed: keep the error's first line
        status, message, execution = "fail", first_line(e), ""
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return Result(case.name, case.category, status, message, time.perf_counter() - start,
                  execution)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def _run(case: Case, backend: str, opt_level: int = 0) -> tuple[str, str, str]:
    import onnx
    from .backend import KilnBackend
    if case.model_bytes is not None:
        model = onnx.ModelProto.FromString(case.model_bytes)
        rep = KilnBackend.prepare(model, backend=backend, opt_level=opt_level)
        for inputs, expected in case.data_sets:
            got = rep.run(list(inputs))
            compare_outputs(expected, got, case.rtol, case.atol)
        return ("pass", *_executed(rep))
    model_dir = case.model_dir
    if model_dir is None and case.url and case.url.startswith(LIGHT_PREFIX):
        return _run_light(case, backend, opt_level)
    if model_dir is None:
        model_dir = _downloaded_model_dir(case)
        if model_dir is None:
            return "skip", "needs a download (offline)", ""
    from .load import load_model
    model_path = os.path.join(model_dir, "model.onnx")
    model = load_model(model_path)
    rep = KilnBackend.prepare(model, backend=backend, opt_level=opt_level)
    sets = sorted(glob.glob(os.path.join(model_dir, "test_data_set*")))
    if not sets:
        return "skip", "no test data", ""
    for d in sets:
        n_in = len(glob.glob(os.path.join(d, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(d, "output_*.pb")))
        inputs = [read_pb(os.path.join(d, f"input_{i}.pb"), model.graph.input[i].type)
                  for i in range(n_in)]
        expected = [read_pb(os.path.join(d, f"output_{i}.pb"), model.graph.output[i].type)
                    for i in range(n_out)]
        got = rep.run(inputs)
        compare_outputs(expected, got, case.rtol, case.atol)
    return ("pass", *_executed(rep))


def _executed(rep) -> tuple[str, str]:
    """(a note on how the case ran, what ran it): the executor's `note` and `execution`
    ("native", or "native-specialized" when shape-deciding inputs were fixed to their values)."""
    ex = rep.executor
    return getattr(ex, "note", ""), getattr(ex, "execution", "interpreter")


LIGHT_PREFIX = "onnx/backend/test/data/light/"


def _run_light(case: Case, backend: str, opt_level: int = 0) -> tuple[str, str, str]:
    """A 'real' model shipped in light form (weights made by ConstantOfShape), run on the same
    deterministic input onnx's runner feeds it and checked against the stored output."""
    import onnx

    from .backend import KilnBackend
    from .load import load_model
    path = Path(onnx.__file__).parent.parent / case.url
    if not path.exists():
        return "skip", f"light model {case.url} is not installed", ""
    model = load_model(path)
    inits = {t.name for t in model.graph.initializer}
    inputs = []
    for x in model.graph.input:
        if x.name in inits:
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                      for d in x.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        inputs.append((np.arange(n).reshape(shape) / n).astype(np.float32))
    prefix = str(path)[: -len(".onnx")]
    expected = [read_pb(f"{prefix}_output_{i}.pb", out.type)
                for i, out in enumerate(model.graph.output)]
    rep = KilnBackend.prepare(model, backend=backend, opt_level=opt_level)
    compare_outputs(expected, rep.run(inputs), case.rtol, case.atol)
    return ("pass", *_executed(rep))


def _downloaded_model_dir(case: Case) -> str | None:
    home = os.path.expanduser(os.getenv("ONNX_HOME", os.path.join("~", ".onnx")))
    models = os.getenv("ONNX_MODELS", os.path.join(home, "models"))
    d = os.path.join(models, case.name[len("test_"):] if case.name.startswith("test_") else case.name)
    return d if os.path.exists(os.path.join(d, "model.onnx")) else None


def read_pb(path: str, type_proto) -> Any:
    """A test data file as an array, list (sequence) or None/array (optional)."""
    import onnx
    from onnx import numpy_helper
    data = Path(path).read_bytes()
    if type_proto.HasField("sequence_type"):
        return numpy_helper.to_list(onnx.SequenceProto.FromString(data))
    if type_proto.HasField("optional_type"):
        return numpy_helper.to_optional(onnx.OptionalProto.FromString(data))
    return numpy_helper.to_array(onnx.TensorProto.FromString(data))


# --- comparing outputs --------------------------------------------------------------------------

def compare_outputs(expected, got, rtol: float, atol: float) -> None:
    """Raise AssertionError when `got` differs from `expected` as onnx's runner judges it."""
    got = list(got)
    if len(got) != len(expected):
        raise AssertionError(f"{len(got)} outputs, expected {len(expected)}")
    for i, (e, g) in enumerate(zip(expected, got)):
        _compare(e, g, rtol, atol, f"output {i}")


def _compare(e, g, rtol, atol, what: str) -> None:
    if e is None:
        if g is not None:
            raise AssertionError(f"{what}: expected an empty optional, got {type(g).__name__}")
        return
    if isinstance(e, (list, tuple)):
        if not isinstance(g, (list, tuple)):
            raise AssertionError(f"{what}: expected a sequence, got {type(g).__name__}")
        if len(g) != len(e):
            raise AssertionError(f"{what}: sequence of {len(g)} elements, expected {len(e)}")
        for j, (ee, gg) in enumerate(zip(e, g)):
            _compare(ee, gg, rtol, atol, f"{what}[{j}]")
        return
    if g is None or isinstance(g, (list, tuple)):
        raise AssertionError(f"{what}: expected a tensor, got {type(g).__name__}")
    e, g = np.asarray(e), np.asarray(g)
    if g.shape != e.shape:
        raise AssertionError(f"{what}: shape {g.shape}, expected {e.shape}")
    if e.dtype == object or e.dtype.kind in "US":
        if g.dtype != object and g.dtype.kind not in "US":
            raise AssertionError(f"{what}: dtype {g.dtype}, expected strings")
        if g.tolist() != e.tolist():
            raise AssertionError(f"{what}: strings differ: {g.tolist()[:5]} vs {e.tolist()[:5]}")
        return
    if g.dtype != e.dtype:
        raise AssertionError(f"{what}: dtype {g.dtype}, expected {e.dtype}")
    rt = rtol
    if e.dtype.name == "bfloat16":
        rt = max(rtol, 2**-6)
    if e.dtype.kind == "V" or e.dtype.name in _ML_DTYPES:
        wide = np.float32 if "float" in e.dtype.name else np.int64
        e, g = e.astype(wide), g.astype(wide)
    try:
        np.testing.assert_allclose(g, e, rtol=rt, atol=atol)
    except AssertionError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = "; ".join(ln for ln in lines if ln.startswith(("Mismatched", "Max abs")))
        raise AssertionError(f"{what}: values differ ({detail or 'mismatch'})") from None


_ML_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
              "float4_e2m1fn", "float8_e8m0fnu", "int4", "uint4", "int2", "uint2"}


# --- running many cases -------------------------------------------------------------------------

def _worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")
    import kiln.ir.ops  # noqa: F401  (build the op table once per worker)


def _worker_loop(conn, backend: str, timeout: float, opt_level: int) -> None:
    _worker_init()
    while True:
        case = conn.recv()
        if case is None:
            return
        conn.send(run_case(case, backend, timeout, opt_level))


class _Worker:
    """One worker process fed one case at a time, so a crash or a hang costs only that case."""

    def __init__(self, mp, backend: str, timeout: float, opt_level: int = 0):
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(target=_worker_loop, args=(child, backend, timeout, opt_level),
                               daemon=True)
        self.proc.start()
        child.close()
        self.case: Case | None = None
        self.started = 0.0

    def give(self, case: Case) -> None:
        self.case, self.started = case, time.perf_counter()
        self.conn.send(case)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.kill()


def run_cases(cases: list[Case], backend: str, jobs: int, timeout: float,
              on_result=None, grace: float = 10.0, opt_level: int = 0) -> list[Result]:
    """Run cases in `jobs` worker processes (in this process when jobs is 1).

    A worker that dies, or outlives the case's time cap by `grace` seconds and more (stuck in
    native code, where the in-process alarm cannot reach), is replaced and its case fails."""
    results: list[Result] = []

    def done(r: Result) -> None:
        results.append(r)
        if on_result:
            on_result(r)

    if jobs <= 1:
        import kiln.ir.ops  # noqa: F401
        for c in cases:
            done(run_case(c, backend, timeout, opt_level))
        return results
    from multiprocessing.connection import wait
    mp = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pending = list(reversed(cases))
    hard_limit = timeout * 1.5 + grace if timeout and timeout > 0 else None
    workers = [_Worker(mp, backend, timeout, opt_level) for _ in range(min(jobs, len(cases)))]
    try:
        for w in workers:
            if pending:
                w.give(pending.pop())
        while any(w.case is not None for w in workers):
            busy = [w for w in workers if w.case is not None]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
            now = time.perf_counter()
            for i, w in enumerate(workers):
                if w.case is None:
                    continue
                failure = None
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        done(w.conn.recv())
                    except (EOFError, OSError):
                        failure = f"worker process died (exit code {w.proc.exitcode})"
                    else:
                        w.case = None
                elif hard_limit is not None and now - w.started > hard_limit:
                    failure = f"timed out after {now - w.started:.0f} s (worker killed)"
                if failure is not None:
                    case = w.case
                    done(Result(case.name, case.category, "fail", failure, now - w.started))
                    w.kill()
                    workers[i] = w = _Worker(mp, backend, timeout, opt_level)
                if w.case is None and pending:
                    w.give(pending.pop())
    finally:
        for w in workers:
            w.stop()
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kiln.frontends.onnx.conformance",
                                description="Run onnx's backend conformance cases against kiln.")
    p.add_argument("--backend", default="interpreter", choices=["interpreter", "native"])
    p.add_argument("--filter", action="append", default=[], metavar="SUBSTR",
                   help="run only cases whose name contains SUBSTR (repeatable)")
    p.add_argument("--category", action="append", choices=CATEGORIES,
                   help="run only this category (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case and its error")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--opt-level", "-O", type=int, default=0, choices=[0, 1, 2, 3],
                   help="run kiln's pass pipeline of this level before executing (default 0)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per case")
    p.add_argument("--strict", action="store_true", help="exit non-zero on unexpected failures")
    p.add_argument("--write-docs", action="store_true", help="regenerate docs/conformance.md")
    p.add_argument("--json", type=Path, help="where to write the results (default build/...)")
    args = p.parse_args(argv)

    from .backend import backend_available
    problem = backend_available(args.backend)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    all_cases = collect()
    cases = select(all_cases, args.filter, args.category)
    filtered = bool(args.filter or args.category)
    if not cases:
        print(f"no conformance case matches {args.filter or args.category}", file=sys.stderr)
        return 2

    def show(r: Result):
        if args.verbose:
            tag = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[r.status]
            msg = f": {r.message}" if r.message else ""
            print(f"{tag} {r.category}/{r.name} ({r.seconds:.2f}s){msg}", flush=True)

    results = run_cases(cases, args.backend, max(1, args.jobs), args.timeout, show,
                        opt_level=args.opt_level)
    from .conformance_report import Report, write_docs
    report = Report(args.backend, sorted(results, key=lambda r: (r.category, r.name)),
                    args.filter, time.perf_counter() - start, args.opt_level)
    data = report.to_json()

    for cat in CATEGORIES:
        c = report.counts(cat)
        if c["total"]:
            print(f"{cat:>18}: {c['passed']:5d} passed {c['failed']:5d} failed "
                  f"{c['skipped']:4d} skipped  (of {c['total']})")
    fails, passes = data["unexpected_failures"], data["unexpected_passes"]
    if passes:
        print(f"unexpected passes ({len(passes)}): {' '.join(passes[:50])}"
              + (" ..." if len(passes) > 50 else ""))
    print(f"unexpected failures: {len(fails)}; expected failures that failed: "
          f"{data['failed'] - len(fails)}")
    if args.backend != "interpreter":
        ran = data["execution"]
        print("passed cases by what ran them: " +
              ", ".join(f"{n} {how}" for how, n in sorted(ran.items())))
    label = args.backend + (f"-O{args.opt_level}" if args.opt_level else "")
    json_path = args.json or ROOT / "build" / (
        f"conformance-{label}-filtered.json" if filtered else f"conformance-{label}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1))
    if args.write_docs:
        if filtered or args.opt_level:
            print("--write-docs needs a full -O0 run (no --filter/--category); docs not written",
                  file=sys.stderr)
        else:
            others = {}
            for other in ("interpreter", "native"):
                recorded = ROOT / "build" / f"conformance-{other}.json"
                if other != args.backend and recorded.exists():
                    others[other] = json.loads(recorded.read_text())
            write_docs(report, ROOT / "docs" / "conformance.md", others)
    rate = 100 * data["pass_rate"]
    print(f"conformance ({label}): {data['passed']}/{data['total']} cases pass "
          f"({rate:.1f}% of those run), {data['failed']} fail, {data['skipped']} skipped, "
          f"{data['seconds']:.0f} s; results in {json_path}")
    if not filtered and len(all_cases) < MIN_CASES:
        print(f"error: collected only {len(all_cases)} cases (expected at least {MIN_CASES}); "
              "is the onnx package's test data installed?", file=sys.stderr)
        return 3
    if args.strict and fails:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

