"""Compile a Loop IR Program to machine code in this process and run it.

    native = compile_program(program)           # LLVM module -> -O3 -> MCJIT
    outputs = native.run({"x": x})              # one native call

The NativeProgram owns its execution engine (and with it the machine code); dropping the
NativeProgram, or `close()`, frees them, so compiling many programs in one process does not
accumulate code. CONSTANT buffers are passed by pointer to NumPy arrays it keeps alive; TEMP
buffers live in one arena allocated per call (zeroed, as the interpreter's memory is) at the
memory plan's offsets (kiln/passes/plan_memory.py, planned once per binding of the symbolic
sizes); outputs are fresh arrays per call.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import time
import weakref
from typing import Mapping

import llvmlite.binding as llvm
import numpy as np

from ..errors import DTypeMismatchError, ExecutionError, InputNameError, ShapeMismatchError
from ..loops.interpreter import Memory, computed_shapes, with_upper_bounds
from ..loops.stmt import Program
from .emit_program import ENTRY, BufferLayout, ProgramEmitter
from .options import CodegenError, CodegenOptions
from .target import HostTarget, host_target

ARENA_ALIGN = 64
_ENTRY_CTYPE = ctypes.CFUNCTYPE(ctypes.c_int32, *[ctypes.c_void_p] * 5)


def parallel_runtime() -> dict | None:
    """Symbol addresses of the thread pool (kiln/codegen/threadpool.py), or None while that
    module does not exist (modules then carry a serial kiln_parallel_for)."""
    try:
        module = importlib.import_module("kiln.codegen.threadpool")
    except ImportError:
        return None
    return module.ensure_thread_pool()


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection inside (restored on exit, if it was on): emitting a module
    allocates hundreds of thousands of small objects, and the collections that triggers (each
    walking every live object, the Loop IR and graph included) took about half the emitter's
    time on ResNet-18."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def compile_program(program: Program, options: CodegenOptions | None = None) -> "NativeProgram":
    with gc_paused():
        return _compile_program(program, options)


def _compile_program(program: Program, options: CodegenOptions | None) -> "NativeProgram":
    options = options or CodegenOptions()
    target = host_target(options)
    runtime = parallel_runtime() if options.parallel else None
    t0 = time.perf_counter()
    emitter = ProgramEmitter(program, options, target, external_parallel_for=runtime is not None)
    text = str(emitter.emit())
    t1 = time.perf_counter()
    # A context per module: LLVM's global context keeps every type, constant and metadata
    # string it ever saw, which would grow with each compiled program.
    context = llvm.create_context()
    module = llvm.parse_assembly(text, context=context)
    module.verify()
    tm = target.create_target_machine()
    optimize(module, tm, options.opt_level)
    optimized = str(module)
    for name, address in (runtime or {}).items():
        llvm.add_symbol(name, address)
    engine = llvm.create_mcjit_compiler(module, tm)   # the engine now owns module and tm
    engine.finalize_object()
    address = engine.get_function_address(ENTRY)
    t2 = time.perf_counter()
    if not address:
        raise CodegenError(f"{ENTRY} was not emitted")
    timings = {"emit_ir": t1 - t0, "llvm": t2 - t1}
    native = NativeProgram(program, emitter.layout, engine, context, address, target,
                           llvm_ir=text, optimized_ir=optimized, notes=emitter.notes,
                           timings=timings)
    native.options = options
    native.shared_kernels = emitter.shared_kernels
    return native


def _release_code(engine, context) -> None:
    engine.close()                        # the engine frees its module; then the context
    context.close()


def optimize(module: "llvm.ModuleRef", tm: "llvm.TargetMachine", level: int) -> None:
    """LLVM's default module pipeline at `level` (new pass manager)."""
    if level <= 0:
        return
    pto = llvm.create_pipeline_tuning_options(speed_level=min(level, 3))
    pto.loop_vectorization = level >= 2
    pto.slp_vectorization = level >= 2
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


class NativeProgram:
    """A compiled Program: `run(inputs) -> outputs`; `.llvm_ir` (as emitted), `.optimized_ir`
    (after LLVM's pipeline), `.asm`; `.notes` says which loops stayed scalar and why."""

    options = CodegenOptions()       # what compile_program was given
    shared_kernels = 0               # kernels that call an earlier kernel's function

    def __init__(self, program: Program, layout: BufferLayout, engine, context, address: int,
                 target: HostTarget, *, llvm_ir: str, optimized_ir: str, notes: list,
                 timings: dict):
        self.program = program
        self.layout = layout
        self.target = target
        self.llvm_ir = llvm_ir
        self.optimized_ir = optimized_ir
        self.notes = list(notes)
        self.timings = timings
        # The engine must be closed before its context. Held by a weakref.finalize (reachable
        # from its registry), neither is ever finalized on its own by the garbage collector,
        # even when this NativeProgram dies inside a reference cycle.
        self._release = weakref.finalize(self, _release_code, engine, context)
        self._entry = _ENTRY_CTYPE(address)
        self._asm: str | None = None
        self._constants = [_constant_array(b) for b in layout.constants]
        self._constant_ptrs = _pointers(self._constants)
        self._constant_table = self._constant_ptrs.ctypes.data
        self._plans: dict = {}

    @property
    def asm(self) -> str:
        if self._asm is None:
            tm = self.target.create_target_machine()
            context = llvm.create_context()
            self._asm = tm.emit_assembly(llvm.parse_assembly(self.optimized_ir, context=context))
            context.close()
        return self._asm

    def close(self) -> None:
        """Free the machine code now (also done when the NativeProgram is garbage)."""
        self._entry = None
        self._release()

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if self._entry is None:
            raise ExecutionError(f"program {self.program.name} was closed")
        arrays = self._check_inputs(inputs)
        plan = self._plan(arrays)
        outputs = [np.zeros(shape, dtype=b.dtype.np) for b, shape in
                   zip(self.layout.outputs, plan.output_shapes)]
        base = 0
        if plan.arena_bytes:
            arena = np.zeros(plan.arena_bytes + ARENA_ALIGN, dtype=np.uint8)
            base = arena.ctypes.data
            base += -base % ARENA_ALIGN
        in_ptrs, out_ptrs = _pointers(arrays), _pointers(outputs)
        rc = self._entry(in_ptrs.ctypes.data, out_ptrs.ctypes.data, self._constant_table, base,
                         plan.sizes_table)
        if rc != 0:
            raise ExecutionError(f"native code of {self.program.name} returned {rc}")
        if self.program.computed:      # sizes the kernels computed (lowering/dynamic_shape.py)
            counts = [int(o[0]) for o in outputs[len(self.program.graph_outputs()):]]
            shapes = computed_shapes(self.program, plan.input_sizes, counts)
            outputs = [o.reshape(-1)[:int(np.prod(s, dtype=np.int64))].reshape(s)
                       for o, s in zip(outputs, shapes)]
        return outputs

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> list:
        names = [b.name for b in self.layout.inputs]
        missing = [n for n in names if n not in inputs]
        unknown = [n for n in inputs if n not in names]
        if missing or unknown:
            raise InputNameError(f"inputs missing: {missing}, unknown: {unknown}",
                                 hint=f"the program's inputs are {names}")
        arrays = []
        for b in self.layout.inputs:
            a = np.asarray(inputs[b.name])
            if a.dtype != b.dtype.np:
                raise DTypeMismatchError(f"input {b.name} has dtype {a.dtype}, expected "
                                         f"{b.dtype.np}")
            if a.ndim != b.rank:
                raise ShapeMismatchError(f"input {b.name} has rank {a.ndim}, expected {b.rank}")
            arrays.append(a if a.flags.c_contiguous else a.copy(order="C"))  # keeps rank 0
        return arrays

    def _plan(self, arrays: list) -> "_RunPlan":
        key = tuple(a.shape for a in arrays)
        plan = self._plans.get(key)
        if plan is None:
            plan = _RunPlan(self.program, self.layout, arrays, self.options.poison_dead)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        return plan


class _RunPlan:
    """What one set of input shapes binds: symbolic sizes, output shapes, arena offsets."""

    def __init__(self, program: Program, layout: BufferLayout, arrays: list,
                 poison: bool = False):
        by_name = {b.name: a for b, a in zip(layout.inputs, arrays)}
        sizes = {}
        for name, (buf, axis) in program.sizes.items():
            value = int(by_name[buf.name].shape[axis])
            sizes[name] = value
        self.input_sizes = sizes
        sizes = with_upper_bounds(program, sizes)
        mem = Memory(sizes)
        for b, a in zip(layout.inputs, arrays):
            expected = tuple(mem.index_value(d) for d in b.shape)
            if tuple(a.shape) != expected:
                raise ShapeMismatchError(f"input {b.name} has shape {tuple(a.shape)}, expected "
                                         f"{expected} (sizes {sizes})")
        self.output_shapes = [tuple(mem.index_value(d) for d in b.shape) for b in layout.outputs]
        self.memory = layout.memory.plan(sizes)
        self.arena_bytes = self.memory.arena_bytes
        poisoner = [ctypes.cast(self.memory.poisoner, ctypes.c_void_p).value] if poison else []
        self.sizes = np.array([sizes[n] for n in layout.size_names] + self.memory.offsets
                              + poisoner + [0], dtype=np.int64)
        self.sizes_table = self.sizes.ctypes.data


def _constant_array(b) -> np.ndarray:
    a = np.asarray(b.data, dtype=b.dtype.np)
    a = a if a.flags.c_contiguous else a.copy(order="C")
    expected = int(np.prod([Memory().index_value(d) for d in b.shape], dtype=np.int64))
    if a.size != expected:
        raise CodegenError(f"CONSTANT buffer {b.name} holds {a.size} elements, its shape "
                           f"{b.shape} needs {expected}")
    return a


def _pointers(arrays: list) -> np.ndarray:
    return np.array([a.ctypes.data for a in arrays] + [0], dtype=np.uintp)
