"""The process-wide thread pool that generated code calls: `ensure_thread_pool() -> addresses`.

The pool itself is LLVM IR (kiln/codegen/threadpool_ir.py, where the protocol is described). This
module compiles it once per process with MCJIT, registers `kiln_parallel_for` and
`kiln_num_threads` with `llvm.add_symbol` so every module compiled later can declare and call them,
and owns the pool's lifetime: workers start on the first parallel call, are joined at interpreter
exit before the engine holding their code is released, and are forgotten in a forked child (the
child's first parallel call starts its own). Call `ensure_thread_pool()` before finalizing a module
that declares `kiln_parallel_for`: that is when MCJIT resolves the symbol.

The pool is process state by nature (threads, one engine): it lives in `_pool` below, guarded by a
lock, and is the only mutable module-level state of the back end.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
from dataclasses import dataclass

import llvmlite.binding as llvm

from kiln.codegen.target import host_target
from kiln.codegen.threadpool_ir import CPU_SET_BYTES, MAX_THREADS, build_pool_module

EXPORTED = ("kiln_parallel_for", "kiln_num_threads")
# Waking a sleeping worker costs ~100 µs on the development machine; spinning this long before
# sleeping keeps back-to-back parallel loops hot (DESIGN.md, "Thread runtime").
SPIN_NS = 500_000

_CONFIGURE = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int64,
                              ctypes.POINTER(ctypes.c_int32), ctypes.c_int32)
_VOID = ctypes.CFUNCTYPE(None)


@dataclass
class _Pool:
    engine: llvm.ExecutionEngine
    addresses: dict[str, int]
    configure: ctypes._CFuncPtr
    shutdown: ctypes._CFuncPtr
    after_fork: ctypes._CFuncPtr
    num_threads: int = 0           # 0: not configured yet


_lock = threading.Lock()
_pool: _Pool | None = None
_hooks_installed = False
_shut_down = False


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask), in increasing order."""
    return sorted(os.sched_getaffinity(0))


def ensure_thread_pool(num_threads: int | None = None) -> dict[str, int]:
    """Compile the pool once per process and return {symbol name: address} of its entry points.

    `num_threads` counts the calling thread (worker 0). None keeps the current setting, which is
    at first the number of CPUs this process may use; another count stops the workers (waiting
    for a running parallel loop to finish) and the next parallel call starts that many.
    """
    global _pool
    if num_threads is not None and not 1 <= num_threads <= MAX_THREADS:
        raise ValueError(f"num_threads must be in [1, {MAX_THREADS}], got {num_threads}")
    with _lock:
        if _shut_down:
            raise RuntimeError("kiln's thread pool was shut down (the interpreter is exiting)")
        if _pool is None:
            _pool = _compile_pool()
            _install_hooks()
        if num_threads is None:
            num_threads = _pool.num_threads or len(allowed_cpus())
        if num_threads != _pool.num_threads:
            _configure(_pool, num_threads)
        return dict(_pool.addresses)


def _configure(pool: _Pool, num_threads: int) -> None:
    cpus = [c for c in allowed_cpus() if c < CPU_SET_BYTES * 8][:MAX_THREADS]
    # More threads than CPUs (tests): neither pin (threads would share a core) nor spin (a
    # spinning thread would hold the core another one needs).
    fits = num_threads <= len(cpus)
    table = (ctypes.c_int32 * max(len(cpus), 1))(*cpus)
    pool.configure(num_threads, SPIN_NS if fits else 0, table, len(cpus) if fits else 0)
    pool.num_threads = num_threads


def _compile_pool() -> _Pool:
    target = host_target()
    machine = target.create_target_machine()          # the engine below takes ownership of it
    module = llvm.parse_assembly(str(build_pool_module(target.triple)))
    module.triple = target.triple
    module.data_layout = target.data_layout
    module.verify()
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(2))
    builder.getModulePassManager().run(module, builder)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    addresses = {name: engine.get_function_address(name) for name in EXPORTED}
    for name, address in addresses.items():
        llvm.add_symbol(name, address)
    return _Pool(engine=engine, addresses=addresses,
                 configure=_CONFIGURE(engine.get_function_address("kiln_pool_configure")),
                 shutdown=_VOID(engine.get_function_address("kiln_pool_shutdown")),
                 after_fork=_VOID(engine.get_function_address("kiln_pool_after_fork")))


def _install_hooks() -> None:
    global _hooks_installed
    if not _hooks_installed:
        atexit.register(shutdown_thread_pool)
        os.register_at_fork(before=lambda: _lock.acquire(),
                            after_in_parent=lambda: _lock.release(),
                            after_in_child=_after_fork_in_child)
        _hooks_installed = True


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    if _pool is not None:
        _pool.after_fork()


def shutdown_thread_pool() -> None:
    """Join the workers, then release the engine that holds their code (run at interpreter exit).

    Generated code must not call `kiln_parallel_for` afterwards, and `ensure_thread_pool` raises.
    """
    global _pool, _shut_down
    with _lock:
        _shut_down = True
        if _pool is not None:
            _pool.shutdown()
            _pool.engine.close()
            _pool = None
