"""kiln_parallel_for as generated code sees it: bodies compiled with llvmlite call it by name."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
import threading
import time

import llvmlite.binding as llvm
import numpy as np
import pytest

from kiln.codegen.target import host_target
from kiln.codegen.threadpool import allowed_cpus, ensure_thread_pool

# Bodies writing f(i) = 7 i + 3 and counting every write; each chunk logs
# (pthread_self, cpu, begin, end). fill ctx: [counts*, values*, log* or null, log cursor].
BODIES_IR = r"""
declare void @kiln_parallel_for(ptr, ptr, i64)
declare i32 @kiln_num_threads()
declare i64 @pthread_self()
declare i32 @sched_getcpu()

define void @fill_body(ptr %ctx, i64 %begin, i64 %end) {
entry:
  %counts = load ptr, ptr %ctx
  %values.p = getelementptr ptr, ptr %ctx, i64 1
  %values = load ptr, ptr %values.p
  %log.p = getelementptr ptr, ptr %ctx, i64 2
  %log = load ptr, ptr %log.p
  %has.log = icmp ne ptr %log, null
  br i1 %has.log, label %record, label %check
record:
  %cursor = getelementptr i64, ptr %ctx, i64 3
  %slot = atomicrmw add ptr %cursor, i64 1 seq_cst
  %tid = call i64 @pthread_self()
  %cpu = call i32 @sched_getcpu()
  %cpu64 = sext i32 %cpu to i64
  %at = mul i64 %slot, 4
  %e0 = getelementptr i64, ptr %log, i64 %at
  store i64 %tid, ptr %e0
  %e1 = getelementptr i64, ptr %e0, i64 1
  store i64 %cpu64, ptr %e1
  %e2 = getelementptr i64, ptr %e0, i64 2
  store i64 %begin, ptr %e2
  %e3 = getelementptr i64, ptr %e0, i64 3
  store i64 %end, ptr %e3
  br label %check
check:
  %nonempty = icmp slt i64 %begin, %end
  br i1 %nonempty, label %loop, label %exit
loop:
  %i = phi i64 [ %begin, %check ], [ %next, %loop ]
  %count = getelementptr i64, ptr %counts, i64 %i
  %old = atomicrmw add ptr %count, i64 1 monotonic
  %seven = mul i64 %i, 7
  %value = add i64 %seven, 3
  %slot.v = getelementptr i64, ptr %values, i64 %i
  store i64 %value, ptr %slot.v
  %next = add i64 %i, 1
  %more = icmp slt i64 %next, %end
  br i1 %more, label %loop, label %exit
exit:
  ret void
}

define void @fill(ptr %ctx, i64 %n, i64 %reps) {
entry:
  br label %loop
loop:
  %k = phi i64 [ 0, %entry ], [ %next, %loop ]
  call void @kiln_parallel_for(ptr @fill_body, ptr %ctx, i64 %n)
  %next = add i64 %k, 1
  %more = icmp slt i64 %next, %reps
  br i1 %more, label %loop, label %exit
exit:
  ret void
}

define void @empty_body(ptr %ctx, i64 %begin, i64 %end) {
  ret void
}

define void @empty(i64 %n, i64 %reps) {
entry:
  br label %loop
loop:
  %k = phi i64 [ 0, %entry ], [ %next, %loop ]
  call void @kiln_parallel_for(ptr @empty_body, ptr null, i64 %n)
  %next = add i64 %k, 1
  %more = icmp slt i64 %next, %reps
  br i1 %more, label %loop, label %exit
exit:
  ret void
}

; nested ctx: [counts* (rows x m), m, inner call count]; inner ctx: [row*, outer ctx*]
define void @inner_body(ptr %ictx, i64 %begin, i64 %end) {
entry:
  %row = load ptr, ptr %ictx
  %outer.p = getelementptr ptr, ptr %ictx, i64 1
  %outer = load ptr, ptr %outer.p
  %calls = getelementptr i64, ptr %outer, i64 2
  %old.calls = atomicrmw add ptr %calls, i64 1 seq_cst
  br label %loop
loop:
  %j = phi i64 [ %begin, %entry ], [ %next, %loop ]
  %count = getelementptr i64, ptr %row, i64 %j
  %old = atomicrmw add ptr %count, i64 1 monotonic
  %next = add i64 %j, 1
  %more = icmp slt i64 %next, %end
  br i1 %more, label %loop, label %exit
exit:
  ret void
}

define void @outer_body(ptr %ctx, i64 %begin, i64 %end) {
entry:
  %counts = load ptr, ptr %ctx
  %m.p = getelementptr i64, ptr %ctx, i64 1
  %m = load i64, ptr %m.p
  %ictx = alloca [2 x ptr]
  %ictx.outer = getelementptr ptr, ptr %ictx, i64 1
  store ptr %ctx, ptr %ictx.outer
  br label %loop
loop:
  %i = phi i64 [ %begin, %entry ], [ %next, %loop ]
  %start = mul i64 %i, %m
  %row = getelementptr i64, ptr %counts, i64 %start
  store ptr %row, ptr %ictx
  call void @kiln_parallel_for(ptr @inner_body, ptr %ictx, i64 %m)
  %next = add i64 %i, 1
  %more = icmp slt i64 %next, %end
  br i1 %more, label %loop, label %exit
exit:
  ret void
}

define void @nested(ptr %ctx, i64 %rows) {
  call void @kiln_parallel_for(ptr @outer_body, ptr %ctx, i64 %rows)
  ret void
}

; handshake ctx: [flag, flag seen by chunk 0, cpu of chunk 1, thread of chunk 1]. Chunk 0 waits
; (up to ~10^10 cycles) for chunk 1 to raise the flag: only a thread running at the same time can.
define void @handshake_body(ptr %ctx, i64 %begin, i64 %end) {
entry:
  %first = icmp eq i64 %begin, 0
  br i1 %first, label %wait, label %signal
signal:
  %cpu = call i32 @sched_getcpu()
  %cpu64 = sext i32 %cpu to i64
  %cpu.p = getelementptr i64, ptr %ctx, i64 2
  store i64 %cpu64, ptr %cpu.p
  %tid = call i64 @pthread_self()
  %tid.p = getelementptr i64, ptr %ctx, i64 3
  store i64 %tid, ptr %tid.p
  store atomic i64 1, ptr %ctx release, align 8
  ret void
wait:
  %t0 = call i64 @llvm.readcyclecounter()
  br label %poll
poll:
  %flag = load atomic i64, ptr %ctx acquire, align 8
  %raised = icmp ne i64 %flag, 0
  br i1 %raised, label %done, label %clock
clock:
  %t = call i64 @llvm.readcyclecounter()
  %elapsed = sub i64 %t, %t0
  %patient = icmp ult i64 %elapsed, 10000000000
  br i1 %patient, label %poll, label %done
done:
  %seen.p = getelementptr i64, ptr %ctx, i64 1
  store i64 %flag, ptr %seen.p
  ret void
}

define void @handshake(ptr %ctx) {
  call void @kiln_parallel_for(ptr @handshake_body, ptr %ctx, i64 2)
  ret void
}

declare i64 @llvm.readcyclecounter()

define i32 @num_threads() {
  %t = call i32 @kiln_num_threads()
  ret i32 %t
}
"""

DEFAULT_THREADS = len(allowed_cpus())
LOG_FIELDS = 4
MAX_CHUNKS = 64                         # log rows for one call (at most 4 threads here)


class Bodies:
    """The compiled test module; keeps its engine alive while its functions are in use."""

    def __init__(self):
        ensure_thread_pool()             # registers kiln_parallel_for before linking
        target = host_target()
        module = llvm.parse_assembly(BODIES_IR)
        module.triple = target.triple
        module.data_layout = target.data_layout
        self.engine = llvm.create_mcjit_compiler(module, target.create_target_machine())
        self.engine.finalize_object()
        address = self.engine.get_function_address
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        self.fill = ctypes.CFUNCTYPE(None, ptr, i64, i64)(address("fill"))
        self.empty = ctypes.CFUNCTYPE(None, i64, i64)(address("empty"))
        self.nested = ctypes.CFUNCTYPE(None, ptr, i64)(address("nested"))
        self.handshake = ctypes.CFUNCTYPE(None, ptr)(address("handshake"))
        self.num_threads = ctypes.CFUNCTYPE(ctypes.c_int32)(address("num_threads"))


class Fill:
    """Buffers for one fill: counts, values and a chunk log, and the ctx pointing at them."""

    def __init__(self, n: int, log_rows: int | None = MAX_CHUNKS):
        self.counts = np.zeros(n, np.int64)
        self.values = np.full(n, -1, np.int64)
        self.log = None if log_rows is None else np.zeros((log_rows, LOG_FIELDS), np.int64)
        log_address = 0 if self.log is None else self.log.ctypes.data
        self.ctx = np.array([self.counts.ctypes.data, self.values.ctypes.data, log_address, 0],
                            np.uint64)

    def run(self, bodies: Bodies, reps: int = 1) -> None:
        bodies.fill(self.ctx.ctypes.data, len(self.counts), reps)

    def chunks(self) -> np.ndarray:
        """Logged (thread, cpu, begin, end) rows, sorted by begin."""
        rows = self.log[: int(self.ctx[3])]
        return rows[np.argsort(rows[:, 2], kind="stable")]


@pytest.fixture(scope="module")
def bodies():
    compiled = Bodies()
    yield compiled
    ensure_thread_pool(DEFAULT_THREADS)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 1000, 10**6])
def test_every_index_written_exactly_once(bodies, threads, n):
    ensure_thread_pool(threads)
    assert bodies.num_threads() == threads
    fill = Fill(n)
    fill.run(bodies)
    assert np.array_equal(fill.counts, np.ones(n, np.int64))
    assert np.array_equal(fill.values, 7 * np.arange(n, dtype=np.int64) + 3)
    chunks = fill.chunks()
    # Contiguous, non-empty chunks tiling [0, n), one per thread, sizes within one. (The
    # caller runs chunks whose worker has not started them, so threads may repeat.)
    assert len(chunks) == min(n, threads if n > 1 else 1)
    if n:
        assert chunks[0, 2] == 0 and chunks[-1, 3] == n
        assert np.array_equal(chunks[1:, 2], chunks[:-1, 3])
        sizes = chunks[:, 3] - chunks[:, 2]
        assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1
        assert chunks[0, 0] == threading.get_ident()          # chunk 0 runs on the caller


def test_workers_run_chunks_in_parallel(bodies):
    """Chunk 0 (the caller) waits for chunk 1 to signal: it can only come from a worker."""
    ensure_thread_pool(2)
    ctx = np.zeros(4, np.int64)
    bodies.handshake(ctx.ctypes.data)
    assert ctx[1] == 1, "chunk 0 never saw chunk 1 run at the same time"
    assert ctx[3] != threading.get_ident()
    if DEFAULT_THREADS >= 2:                                   # the worker is pinned to cpus[1]
        assert ctx[2] == allowed_cpus()[1]


def test_caller_runs_the_chunk_of_a_sleeping_worker(bodies):
    """After an idle pause the worker sleeps (~100 µs to wake): the caller, done with its own
    tiny chunk, runs the worker's instead of waiting (retried: the worker may be quick)."""
    ensure_thread_pool(2)
    Fill(2).run(bodies)                                       # the worker exists now
    for _ in range(20):
        time.sleep(0.01)                                      # > the 0.5 ms spin: it sleeps
        fill = Fill(2)
        fill.run(bodies)
        if set(fill.chunks()[:, 0].tolist()) == {threading.get_ident()}:
            break
    else:
        pytest.fail("the caller never ran a chunk its sleeping worker had not started")
    assert np.array_equal(fill.counts, [1, 1])


def test_large_loop_uses_two_threads(bodies):
    """On a large loop a worker usually runs its own chunk (retried: on a loaded machine a
    descheduled worker leaves its chunk to the caller)."""
    ensure_thread_pool(2)
    for _ in range(50):
        fill = Fill(10**6)
        fill.run(bodies)
        if len(set(fill.chunks()[:, 0].tolist())) == 2:
            break
    else:
        pytest.fail("in 50 loops of 10^6, no worker ever started its chunk")


def test_nested_call_runs_serially_on_the_calling_thread(bodies):
    ensure_thread_pool(DEFAULT_THREADS)
    rows, m = 37, 101
    counts = np.zeros(rows * m, np.int64)
    ctx = np.array([counts.ctypes.data, m, 0], np.uint64)
    bodies.nested(ctx.ctypes.data, rows)
    assert np.array_equal(counts, np.ones(rows * m, np.int64))
    assert ctx[2] == rows                                     # one whole inner call per row


def test_back_to_back_calls(bodies):
    """10^4 loops in a row complete; the overhead of an empty loop is printed, not asserted."""
    ensure_thread_pool(DEFAULT_THREADS)
    reps, n = 10**4, 64
    fill = Fill(n, log_rows=None)
    fill.run(bodies, reps)
    assert np.array_equal(fill.counts, np.full(n, reps, np.int64))
    start = time.perf_counter()
    bodies.empty(DEFAULT_THREADS, 10**5)
    per_region = (time.perf_counter() - start) / 10**5
    calls = 1000
    start = time.perf_counter()
    for _ in range(calls):
        bodies.empty(DEFAULT_THREADS, 50)
    per_call = (time.perf_counter() - start) / calls
    print(f"\n{DEFAULT_THREADS} threads, empty kiln_parallel_for: {per_region * 1e9:.0f} ns per "
          f"loop (10^5 in one native call); {per_call * 1e6:.1f} us per native call of 50")


def test_two_python_threads_call_at_once(bodies):
    ensure_thread_pool(DEFAULT_THREADS)
    reps, n = 300, 1000
    fills = [Fill(n, log_rows=None) for _ in range(2)]
    callers = [threading.Thread(target=fill.run, args=(bodies, reps)) for fill in fills]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    for fill in fills:
        assert np.array_equal(fill.counts, np.full(n, reps, np.int64))
        assert np.array_equal(fill.values, 7 * np.arange(n, dtype=np.int64) + 3)


def test_reconfigure_while_another_thread_calls(bodies):
    reps, n = 200, 1000
    fill = Fill(n, log_rows=None)
    caller = threading.Thread(target=fill.run, args=(bodies, reps))
    caller.start()
    for threads in (1, 3, 2, DEFAULT_THREADS):
        ensure_thread_pool(threads)
    caller.join()
    assert np.array_equal(fill.counts, np.full(n, reps, np.int64))


def test_addresses_are_registered_and_stable():
    first = ensure_thread_pool()
    assert set(first) == {"kiln_parallel_for", "kiln_num_threads"}
    assert ensure_thread_pool() == first
    for name, address in first.items():
        assert llvm.address_of_symbol(name) == address


@pytest.mark.parametrize("bad", [0, -1, 257])
def test_bad_thread_count(bad):
    with pytest.raises(ValueError, match="num_threads"):
        ensure_thread_pool(bad)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_starts_its_own_workers(bodies):
    ensure_thread_pool(2)
    Fill(1000).run(bodies)                      # the parent's workers exist now
    pid = os.fork()
    if pid == 0:
        fill = Fill(10**5)
        fill.run(bodies)
        ok = np.array_equal(fill.counts, np.ones(10**5, np.int64)) and len(fill.chunks()) == 2
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while (status := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in kiln_parallel_for")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status[1]) == 0


def test_interpreter_exit_joins_the_workers():
    """Workers still spinning (or asleep) at exit are joined before the engine goes away; the
    pool refuses to start again afterwards (an exit handler registered earlier runs later)."""
    script = textwrap.dedent("""
        import atexit, ctypes
        from kiln.codegen.threadpool import ensure_thread_pool

        def after_shutdown():
            try:
                ensure_thread_pool()
            except RuntimeError:
                print("refused after shutdown")

        atexit.register(after_shutdown)
        address = ensure_thread_pool(2)["kiln_parallel_for"]
        seen = []
        BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
        body = BODY(lambda ctx, begin, end: seen.append((begin, end)))
        run = ctypes.CFUNCTYPE(None, BODY, ctypes.c_void_p, ctypes.c_int64)(address)
        run(body, None, 10)
        print(sorted(seen))
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[(0, 5), (5, 10)]", "refused after shutdown"]
