"""The JIT's resource handling: engines are freed with their programs, closed programs refuse to
run, programs can run from several threads, and the process exits cleanly with live ones."""

from __future__ import annotations

import gc
import pathlib
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from kiln.codegen import compile_program
from kiln.errors import ExecutionError
from kiln.ir.dtypes import DType
from kiln.loops import Buffer, BufferKind, Kernel, Loop, LoopKind, Program, Store, Unary, Var

n, i, j = Var("n"), Var("i"), Var("j")


def small_program(c: int) -> Program:
    x = Buffer("x", DType.float32, (n,), BufferKind.INPUT)
    y = Buffer("y", DType.float32, (n,), BufferKind.OUTPUT)
    body = [Loop(i, 0, n, [Store(y, (i,), Unary("exp", x[i]) * float(c) + 1.0)],
                 LoopKind.VECTORIZED)]
    kernel = Kernel("k", [Loop(j, 0, 1, body, LoopKind.PARALLEL)])
    return Program(f"p{c}", [x], [y], [kernel], [x, y], {"n": (x, 0)})


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_compiling_many_programs_releases_their_code():
    """50 programs compiled and dropped in a loop: RSS stays bounded. (Kept alive, each costs
    ~1 MB here; dropped, what remains is ~0.1 MB per compile that LLVM's pass pipeline setup
    does not give back.)"""
    data = {"x": np.ones(100, np.float32)}
    for c in range(5):                       # warm up: thread pool, math library, caches
        compile_program(small_program(c)).run(data)
    gc.collect()
    before = rss_mb()
    for c in range(50):
        native = compile_program(small_program(c))
        np.testing.assert_allclose(native.run(data)[0], np.e * c + 1, rtol=1e-6)
        del native
    gc.collect()
    grown = rss_mb() - before
    assert grown < 20, f"RSS grew by {grown:.1f} MB over 50 compiles"


def test_closed_program_refuses_to_run():
    native = compile_program(small_program(1))
    native.close()
    native.close()                            # idempotent
    with pytest.raises(ExecutionError, match="closed"):
        native.run({"x": np.ones(3, np.float32)})


def test_one_program_runs_from_several_threads():
    native = compile_program(small_program(2))
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(20):
            x = rng.standard_normal(int(rng.integers(0, 300))).astype(np.float32)
            got = native.run({"x": x})[0]
            if not np.allclose(got, np.exp(x) * 2 + 1, rtol=1e-5):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_process_exits_cleanly_with_live_programs():
    code = textwrap.dedent("""
        import numpy as np
        from tests.codegen.test_jit import small_program
        from kiln.codegen import compile_program
        keep = [compile_program(small_program(c)) for c in range(3)]
        for p in keep:
            p.run({"x": np.ones(1000, np.float32)})
        _ = keep[0].asm
        print("done")
    """)
    root = pathlib.Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "Exception ignored" not in result.stderr and "Error" not in result.stderr


def test_programs_dying_in_reference_cycles_are_released_safely():
    """The garbage collector finalizes a cycle's objects in any order; the engine must still be
    closed before its LLVM context (run in a subprocess: the failure mode is a segfault)."""
    import subprocess
    import sys
    code = (
        "import gc\n"
        "from kiln.runtime.benchmark import tiny_add_graph\n"
        "from kiln.lowering import lower_graph\n"
        "from kiln.codegen import compile_program\n"
        "for i in range(12):\n"
        "    box = [compile_program(lower_graph(tiny_add_graph()))]\n"
        "    box.append(box)\n"
        "    del box\n"
        "    if i % 4 == 3:\n"
        "        gc.collect()\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
