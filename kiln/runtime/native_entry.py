"""The one native call per inference: pointer tables, symbolic sizes and the arena.

A NativeProgram (kiln/codegen/jit.py) holds one compiled entry point (its ABI is described in
kiln/codegen/emit_program.py). `NativeEntry` is the runtime's hot path into it:

    entry = NativeEntry(native)
    outputs = entry(arrays)              # checked arrays, in Program.inputs order
    outputs = entry.call(plan, arrays)   # with a CallPlan from entry.plan(shapes), kept

Everything that depends only on the input shapes (symbolic sizes, output shapes, where each
temporary lives in the arena) is worked out once per distinct set of shapes, in a `CallPlan`.
A call then costs one data pointer per array, the output allocations and one ctypes call, which
releases the GIL while the native code runs (~4.5 us per call of a one-Add model through
CompiledModel, ~0.5 us of it the bare ctypes call: `kiln bench`).

Memory: the entry owns one arena, grown to the largest plan it has run and zeroed before each
call, as the Loop IR interpreter's memory is (no kernel is known to need it: the ONNX
conformance cases give the same results on arenas and outputs filled with garbage; it costs
~0.6% of a small CNN's call). A call made while another thread is inside the same entry uses
its own thread's arena instead (made once, kept for that thread's later calls), so concurrent
calls are safe (the thread pool serializes their parallel loops). Where each temporary lives in
an arena is the memory plan's (kiln/passes/plan_memory.py): temporaries share memory when their
lifetimes do not meet.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from ..errors import ExecutionError, ShapeMismatchError
from ..loops.interpreter import Memory, computed_shapes, with_upper_bounds
from ..loops.stmt import Program

ARENA_ALIGN = 64          # bytes; every temporary starts on a cache line
MAX_PLANS = 64            # distinct input shape sets remembered per entry


class CallPlan:
    """What one set of input shapes binds: the ABI's sizes table (symbolic sizes, then each
    temporary's byte offset in the arena), the output shapes and the arena size."""

    def __init__(self, program: Program, layout, shapes: tuple, poison: bool = False):
        by_name = {b.name: s for b, s in zip(layout.inputs, shapes)}
        sizes = {name: int(by_name[buf.name][axis])
                 for name, (buf, axis) in program.sizes.items()}
        self.input_sizes = sizes
        sizes = with_upper_bounds(program, sizes)   # computed sizes: memory for the bound
        mem = Memory(sizes)
        for b, shape in zip(layout.inputs, shapes):
            want = tuple(mem.index_value(d) for d in b.shape)
            if tuple(shape) != want:
                raise ShapeMismatchError(f"input '{b.name}' has shape {tuple(shape)}, the "
                                         f"compiled program expects {want} (sizes {sizes})")
        self.output_shapes = [tuple(mem.index_value(d) for d in b.shape) for b in layout.outputs]
        self.output_dtypes = [b.dtype.np for b in layout.outputs]
        # offsets from the memory plan (kiln/passes/plan_memory.py), made once per binding
        self.memory = layout.memory.plan(sizes)
        self.arena_bytes = self.memory.arena_bytes
        poisoner = [ctypes.cast(self.memory.poisoner, ctypes.c_void_p).value] if poison else []
        self.sizes = np.array([sizes[n] for n in layout.size_names] + self.memory.offsets
                              + poisoner + [0], dtype=np.int64)
        self.sizes_ptr = self.sizes.ctypes.data


class NativeEntry:
    """Calls a NativeProgram's entry point with prepared tables; see the module docstring."""

    def __init__(self, native):
        self.native = native
        self.program = native.program
        self.layout = native.layout
        # The NativeProgram's ctypes entry and its table of constant pointers (arrays it keeps
        # alive): the two pieces of the ABI that only it has.
        self._function = native._entry
        self._constants_ptr = native._constant_ptrs.ctypes.data
        self._plans: dict[tuple, CallPlan] = {}
        self._in_type = ctypes.c_void_p * (len(self.layout.inputs) + 1)
        self._out_type = ctypes.c_void_p * (len(self.layout.outputs) + 1)
        # the entry's own pointer tables and arena, used by one caller at a time
        self._lock = threading.Lock()
        self._in_table, self._out_table = self._in_type(), self._out_type()
        self._arena = np.zeros(0, np.uint8)
        self._local = threading.local()     # arenas of threads that find the entry busy
        self.calls = 0

    def plan(self, shapes: tuple) -> CallPlan:
        plan = self._plans.get(shapes)
        if plan is None:
            plan = CallPlan(self.program, self.layout, shapes,
                            getattr(getattr(self.native, "options", None), "poison_dead", False))
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            self._plans[shapes] = plan
        return plan

    def __call__(self, arrays: list) -> list[np.ndarray]:
        """Run on `arrays` (C-contiguous, aligned, dtypes already checked). Returns the outputs."""
        return self.call(self.plan(tuple(a.shape for a in arrays)), arrays)

    def call(self, plan: CallPlan, arrays: list) -> list[np.ndarray]:
        """Run on `arrays` whose shapes `plan` was made for."""
        if self._function is None:
            raise ExecutionError(f"compiled model {self.program.name} was closed",
                                 hint="compile it again")
        outputs = [np.zeros(s, d) for s, d in zip(plan.output_shapes, plan.output_dtypes)]
        owned = self._lock.acquire(blocking=False)
        try:
            if owned:
                ins, outs = self._in_table, self._out_table
            else:
                ins, outs = self._in_type(), self._out_type()
            for k, a in enumerate(arrays):
                ins[k] = _address(a)
            for k, o in enumerate(outputs):
                outs[k] = _address(o)
            arena, address = self._arena_for(plan.arena_bytes, owned)
            rc = self._function(ins, outs, self._constants_ptr, address, plan.sizes_ptr)
        finally:
            if owned:
                self._lock.release()
        if rc != 0:
            raise ExecutionError(f"native code of {self.program.name} returned {rc}")
        self.calls += 1
        if self.program.computed:
            return _trimmed(self.program, plan, outputs)
        return outputs

    def _arena_for(self, nbytes: int, owned: bool) -> tuple:
        """(the array to keep alive during the call, the aligned address of `nbytes` zeroed
        bytes in it); the entry's own arena when `owned`, else the calling thread's own (kept
        for its next call)."""
        if nbytes == 0:
            return None, 0
        if not owned:
            arena = getattr(self._local, "arena", None)
            if arena is None or arena.size < nbytes + ARENA_ALIGN:
                arena = self._local.arena = np.zeros(nbytes + ARENA_ALIGN, np.uint8)
        else:
            if self._arena.size < nbytes + ARENA_ALIGN:
                self._arena = np.zeros(nbytes + ARENA_ALIGN, np.uint8)
            arena = self._arena
        base = arena.ctypes.data
        start = -base % ARENA_ALIGN
        arena[start:start + nbytes].fill(0)
        return arena, base + start

    def close(self) -> None:
        self._function = None
        self._plans.clear()
        self._arena = np.zeros(0, np.uint8)
        self._local = threading.local()


def _trimmed(program: Program, plan: CallPlan, outputs: list) -> list[np.ndarray]:
    """The graph outputs at the sizes the kernels computed (kiln/lowering/dynamic_shape.py):
    each was allocated at its upper bound and written row-major at its real shape, so its
    elements are the first ones of the allocation."""
    n = len(program.computed)
    counts = [int(c[0]) for c in outputs[len(outputs) - n:]]
    shapes = computed_shapes(program, plan.input_sizes, counts)
    return [o if o.shape == s else o.reshape(-1)[:int(np.prod(s, dtype=np.int64))].reshape(s)
            for o, s in zip(outputs, shapes)]


_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def _address(a: np.ndarray) -> int:
    """The address of an array's data (the quick way needs a writable, non-empty buffer)."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError):
        return a.ctypes.data
