"""A Loop IR Program -> one LLVM module with one exported entry point.

The ABI (what kiln/codegen/jit.py's NativeProgram and a future AOT header rely on):

    i32 kiln_entry(ptr inputs, ptr outputs, ptr constants, ptr arena, ptr sizes)

    inputs     ptr[]  data of each Program.inputs buffer, in order (C-contiguous, its dtype)
    outputs    ptr[]  data of each Program.outputs buffer, in order (allocated by the caller
                      with the shapes the sizes bind)
    constants  ptr[]  data of each CONSTANT root buffer, in `BufferLayout.constants` order
                      (the caller keeps the arrays alive; they are never copied into the IR)
    arena      ptr    one block holding every TEMP root buffer
    sizes      i64[]  the symbolic sizes in Program.sizes order, then the byte offset in the
                      arena of each TEMP root in `BufferLayout.temps` order (the memory plan's,
                      `BufferLayout.memory`; TEMP roots share memory when their lifetimes do
                      not meet), then, with CodegenOptions.poison_dead, the address of a
                      `void(i64 kernel, ptr arena, ptr sizes)` called before the first kernel
                      (kernel -1) and after each kernel
    returns 0 on success.

Memory is C-contiguous per root buffer; views address their root through their own strides and
offset. bool is one byte, float16 is IEEE half, bfloat16 is the top half of a float32. Distinct
root buffers must not overlap (accesses carry alias-scope metadata saying so), except an output
the memory plan writes in place over its input: both get the input's scope.

Each Kernel is an internal `void(ptr, ptr, ptr, ptr, ptr, ptr slots)` function with the entry's
arguments and its slot table, called in order by the entry. `slots` (a private i64 constant per
call) holds, per root buffer of the kernel in order of first use, its position in the table it
lives in (or its arena offset's slot in `sizes`), so kernels with the same Loop IR up to names
call one function (kiln/codegen/kernel_key.py). Parallel loop bodies are further internal functions
`void(ptr ctx, i64 begin, i64 end)` run by `kiln_parallel_for(body, ctx, n)`: the thread pool's
when it is there (an external symbol), else a serial definition inside the module.
"""

from __future__ import annotations

import re

import llvmlite.ir as ir

from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Load, children
from ..loops.stmt import Assign, If, Local, Loop, Program, Store
from ..passes.plan_memory import MemoryProblem
from .analysis import NameCollector, vector_width
from .emit_stmt import KernelEmitter
from .function import Scope
from .kernel_key import kernel_key, slot_values
from .lltypes import I32, I64, PTR, VOID, check_dtype
from .mathcalls import mathlib_emitter
from .options import CodegenError, CodegenOptions
from .target import HostTarget

ENTRY = "kiln_entry"
PARALLEL_FOR = "kiln_parallel_for"
ENTRY_TYPE = ir.FunctionType(I32, [PTR] * 5)
KERNEL_TYPE = ir.FunctionType(VOID, [PTR] * 6)     # the entry's five, then the slot table
BODY_TYPE = ir.FunctionType(VOID, [PTR, I64, I64])
PARALLEL_FOR_TYPE = ir.FunctionType(VOID, [PTR, PTR, I64])
POISON_TYPE = ir.FunctionType(VOID, [I64, PTR, PTR])


def buffers_used(stmts) -> list:
    """Every buffer loaded or stored in `stmts`, in order of first use."""
    seen_expr: set = set()
    out: dict = {}

    def expr(e):
        if id(e) in seen_expr:
            return
        seen_expr.add(id(e))
        if isinstance(e, Load):
            out.setdefault(e.buffer, None)
        for c in children(e):
            expr(c)

    def body(ss):
        for s in ss:
            if isinstance(s, Store):
                out.setdefault(s.buffer, None)
                expr(s.value)
                for i in s.index:
                    expr(i)
            elif isinstance(s, (Local, Assign)):
                expr(s.init if isinstance(s, Local) else s.value)
            elif isinstance(s, Loop):
                expr(s.start)
                expr(s.stop)
                body(s.body)
            elif isinstance(s, If):
                expr(s.cond)
                body(s.then)
                body(s.orelse)

    body(stmts)
    return list(out)


def roots_of(buffers) -> list:
    return list(dict.fromkeys(b.root for b in buffers))


class BufferLayout:
    """Where each root buffer's pointer comes from (the ABI's tables, in order)."""

    def __init__(self, program: Program):
        self.inputs = list(program.inputs)
        self.outputs = list(program.outputs)
        self.size_names = list(program.sizes)
        for b in self.inputs + self.outputs:
            if b.base is not None:
                raise CodegenError(f"program {'input' if b in self.inputs else 'output'} "
                                   f"{b.name} is a view; inputs and outputs must be root buffers")
        used = roots_of(b for k in program.kernels for b in buffers_used(k.body))
        declared = [b.root for b in program.buffers]
        roots = list(dict.fromkeys(declared + used))
        self.constants = [r for r in roots if r.kind is BufferKind.CONSTANT]
        self.temps = [r for r in roots if r.kind is BufferKind.TEMP]
        self.memory = MemoryProblem(program, self.temps)
        for r in roots:
            check_dtype(r.dtype)
            if r.kind is BufferKind.INPUT and r not in self.inputs:
                raise CodegenError(f"INPUT buffer {r.name} is not one of the program's inputs")
            if r.kind is BufferKind.OUTPUT and r not in self.outputs:
                raise CodegenError(f"OUTPUT buffer {r.name} is not one of the program's outputs")
            if r.kind is BufferKind.CONSTANT and r.data is None:
                raise CodegenError(f"CONSTANT buffer {r.name} has no data")
        self._index = {}
        for table, buffers in ((0, self.inputs), (1, self.outputs), (2, self.constants)):
            for k, r in enumerate(buffers):
                self._index.setdefault(r, (table, k))
        self._temp = {r: k for k, r in enumerate(self.temps)}
        self._size = {n: k for k, n in enumerate(self.size_names)}

    def pointer_slot(self, root: Buffer) -> tuple:
        """(which ABI table, position in it) for an input, output or constant root."""
        try:
            return self._index[root]
        except KeyError:
            raise CodegenError(f"buffer {root.name} ({root.kind.value}) has no place in the "
                               "program") from None

    def temp_index(self, root: Buffer) -> int:
        return self._temp[root]

    def temp_offset_slot(self, k: int) -> int:
        return len(self.size_names) + k

    def size_index(self, name: str) -> int | None:
        return self._size.get(name)

    def poison_slot(self) -> int:
        return len(self.size_names) + len(self.temps)


class ProgramEmitter:
    def __init__(self, program: Program, options: CodegenOptions, target: HostTarget,
                 external_parallel_for: bool):
        self.program = program
        self.options = options
        self.target = target
        self.module = ir.Module(name=_symbol(program.name) or "kiln")
        self.module.triple = target.triple
        self.module.data_layout = target.data_layout
        self.layout = BufferLayout(program)
        self.names = NameCollector()
        self.math = mathlib_emitter()
        self.notes: list[str] = []
        self._kernel_name = ""
        self._outlined = 0
        self._alias_domain = None
        self._alias: dict = {}
        self.parallel_for = self._parallel_for(external_parallel_for)
        self.kernel_slots: dict = {}     # root -> slot of the kernel being emitted
        self.shared_kernels = 0          # kernels that reuse an earlier kernel's function

    def emit(self) -> ir.Module:
        kernels = []
        by_key: dict = {}
        for k, kernel in enumerate(self.program.kernels):
            used = buffers_used(kernel.body)
            roots = roots_of(used)
            key = kernel_key(kernel, used, self.layout) if not self.program.computed else None
            slots = self._slot_table(k, slot_values(roots, self.layout))
            if key is not None and key in by_key:
                kernels.append((by_key[key], slots))
                self.shared_kernels += 1
                continue
            self._kernel_name = f"k{k}.{_symbol(kernel.name)}"
            fn = ir.Function(self.module, KERNEL_TYPE, name=self._kernel_name)
            fn.linkage = "internal"
            fn.attributes.add("nounwind")
            fn.attributes.add("noinline")
            self.kernel_slots = {r: j for j, r in enumerate(roots)}
            em = KernelEmitter(self, fn, roots)
            em.abi = tuple(fn.args)
            em.emit_body(kernel.body, Scope(env={}))
            em.b.ret_void()
            self.kernel_slots = {}
            if key is not None:
                by_key[key] = fn
            kernels.append((fn, slots))
        entry = ir.Function(self.module, ENTRY_TYPE, name=ENTRY)
        for arg, name in zip(entry.args, ("inputs", "outputs", "constants", "arena", "sizes")):
            arg.name = name
        b = ir.IRBuilder(entry.append_basic_block("entry"))
        poison = self._poison_call(b, entry.args) if self.options.poison_dead else None
        if poison:
            poison(-1)
        for k, (fn, slots) in enumerate(kernels):
            b.call(fn, [*entry.args, slots])
            if poison:
                poison(k)
        b.ret(ir.Constant(I32, 0))
        return self.module

    def _slot_table(self, k: int, values: list) -> ir.Value:
        """A private constant i64 array: where each root of kernel `k` lives in the tables."""
        t = ir.ArrayType(I64, max(len(values), 1))
        g = ir.GlobalVariable(self.module, t, name=f"k{k}.slots")
        g.linkage = "private"
        g.global_constant = True
        g.unnamed_addr = True
        g.initializer = ir.Constant(t, values or [0])
        return g

    # --- services for the function emitters ---------------------------------------------------

    def outline(self, loop: Loop, captured: list, ctx_type) -> ir.Function:
        self._outlined += 1
        fn = ir.Function(self.module, BODY_TYPE,
                         name=f"{self._kernel_name}.par{self._outlined}.{_symbol(loop.var.name)}")
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        em = KernelEmitter(self, fn, roots_of(buffers_used(loop.body)))
        em.emit_outlined_body(loop, captured, ctx_type)
        return fn

    def vector_width(self, loop, plan) -> int:
        return vector_width(loop, plan, self.target.vector_bits, self.options.vector_width)

    def loop_hints(self, hints: tuple):
        """A loop ID node (self-referential, as LLVM wants) carrying `hints`, e.g.
        ("llvm.loop.unroll.disable",) or (("llvm.loop.vectorize.enable", False),)."""
        key = ("loop", hints)
        md = self._alias.get(key)
        if md is None:
            m = self.module
            props = []
            for h in hints:
                name, *value = h if isinstance(h, tuple) else (h,)
                ops = [ir.MetaDataString(m, name)]
                ops += [ir.Constant(ir.IntType(1) if isinstance(v, bool) else I32, int(v))
                        for v in value]
                props.append(m.add_metadata(ops))
            md = m.add_metadata([*props, ir.MetaDataString(m, f"kiln.loop.{len(self._alias)}")])
            md.operands = (md, *props)
            self._alias[key] = md
        return md

    def note(self, message: str) -> None:
        self.notes.append(f"{self._kernel_name}: {message}")

    def tag_access(self, instr, root: Buffer, kernel_roots: list) -> None:
        """alias.scope / noalias metadata: this access touches `root` and no other root
        buffer of the function."""
        key = (root, id(kernel_roots))
        md = self._alias.get(key)
        if md is None or md[2] is not kernel_roots:
            if root not in kernel_roots:
                return
            scopes = [self._scope(r) for r in kernel_roots]
            own = scopes[kernel_roots.index(root)]
            others = [s for s in scopes if s is not own]
            md = (self.module.add_metadata([own]),
                  self.module.add_metadata(others) if others else None, kernel_roots)
            self._alias[key] = md
        instr.set_metadata("alias.scope", md[0])
        if md[1] is not None:
            instr.set_metadata("noalias", md[1])

    def _poison_call(self, b: ir.IRBuilder, args):
        """Debug mode: `poison(k)` emits a call of the sizes table's poison callback."""
        trampoline = ir.Function(self.module, ir.FunctionType(VOID, [PTR, I64, PTR, PTR]),
                                 name="kiln_poison")
        trampoline.linkage = "internal"
        callee, *rest = trampoline.args
        callee.type = POISON_TYPE.as_pointer()   # llvmlite finds an indirect callee's type here
        tb = ir.IRBuilder(trampoline.append_basic_block("entry"))
        tb.call(callee, rest)
        tb.ret_void()
        slot = b.gep(args[4], [ir.Constant(I64, self.layout.poison_slot())], source_etype=I64)
        fn = b.inttoptr(b.load(slot, typ=I64), PTR)
        return lambda k: b.call(trampoline, [fn, ir.Constant(I64, k), args[3], args[4]])

    def _scope(self, root: Buffer):
        root = self.layout.memory.alias_root(root)   # an in-place pair shares one scope
        m = self.module
        if self._alias_domain is None:
            self._alias_domain = m.add_metadata([ir.MetaDataString(m, "kiln.buffers")])
        key = ("scope", root)
        if key not in self._alias:
            name = f"kiln.buffer.{len(self._alias)}.{root.name}"
            self._alias[key] = m.add_metadata([ir.MetaDataString(m, name), self._alias_domain])
        return self._alias[key]

    def _parallel_for(self, external: bool) -> ir.Function:
        fn = ir.Function(self.module, PARALLEL_FOR_TYPE, name=PARALLEL_FOR)
        if external:
            return fn
        # serial stand-in: body(ctx, 0, n)
        fn.linkage = "internal"
        body, ctx, n = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        run = fn.append_basic_block("run")
        done = fn.append_basic_block("done")
        b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), run, done)
        b.position_at_end(run)
        body.type = BODY_TYPE.as_pointer()   # llvmlite finds an indirect callee's type here
        b.call(body, [ctx, ir.Constant(I64, 0), n])
        b.branch(done)
        b.position_at_end(done)
        b.ret_void()
        return fn


def _symbol(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", name or "")
