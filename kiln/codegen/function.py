"""The state of one LLVM function being emitted (a kernel or an outlined parallel body): its
builder, its prologue (the entry block, where allocas, buffer pointers and symbolic sizes are
loaded once so they dominate everything), the names in scope, and per-expression caches.

The entry block ends in a branch to the body; the prologue builder inserts before that branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import llvmlite.ir as ir
import numpy as np

from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const
from .arith import Arith
from .lltypes import I64, PTR, storage_type
from .options import CodegenError


@dataclass
class Slot:
    """A local scalar (or per-lane vector) variable living in an alloca."""

    ptr: ir.Value
    type: ir.Type
    dtype: object


class Cache:
    """Emitted values by expression identity. A child layer sees its parents' values (they
    dominate it) while what it adds is dropped with it (code in a branch or loop body does not
    dominate what follows)."""

    def __init__(self, parent: "Cache | None" = None):
        self.parent = parent
        self.values: dict[int, tuple] = {}

    def get(self, e):
        c = self
        while c is not None:
            hit = c.values.get(id(e))
            if hit is not None:
                return hit[1]
            c = c.parent
        return None

    def put(self, e, value) -> None:
        self.values[id(e)] = (e, value)

    def get_key(self, key: tuple):
        """A value cached under a tuple `key` (index arithmetic on emitted values)."""
        c = self
        while c is not None:
            hit = c.values.get(key)
            if hit is not None:
                return hit
            c = c.parent
        return None

    def put_key(self, key: tuple, value) -> None:
        self.values[key] = value


@dataclass
class Scope:
    """Where an expression or statement is emitted.

    env: name -> ir.Value (loop variables, captured values) or Slot (locals).
    width: lanes of vector code (1 for scalar code); mask: the active lanes (<width x i1>) or
    None for all; vector_var: (name, scalar value of lane 0) of the vectorized loop; varying:
    the names whose value differs per lane. in_parallel: inside an outlined parallel body.
    """

    env: dict
    cache: Cache = field(default_factory=Cache)
    width: int = 1
    mask: ir.Value | None = None
    vector_var: tuple | None = None
    varying: frozenset = frozenset()
    in_parallel: bool = False

    def child(self, **changes) -> "Scope":
        return replace(self, cache=Cache(self.cache), **changes)

    def fresh(self, **changes) -> "Scope":
        return replace(self, cache=Cache(), **changes)

    def binding(self, names) -> "Scope":
        """A fresh scope in which `names` are rebound to uniform values (loop or reduction
        variables that may shadow the vectorized variable or a per-lane local)."""
        names = set(names)
        vector_var = self.vector_var
        if vector_var is not None and vector_var[0] in names:
            vector_var = None
        return replace(self, cache=Cache(), env=dict(self.env), varying=self.varying - names,
                       vector_var=vector_var)


class FunctionEmitter:
    """`program` is the ProgramEmitter (module, buffer layout, options, shared analyses);
    `abi` the function's values of the entry ABI's five pointers."""

    def __init__(self, program, fn: ir.Function, kernel_roots: list):
        self.program = program
        self.module: ir.Module = program.module
        self.options = program.options
        self.names = program.names
        self.fn = fn
        entry = fn.append_basic_block("entry")
        body = fn.append_basic_block("body")
        self.prologue = ir.IRBuilder(entry)
        terminator = self.prologue.branch(body)
        self.prologue.position_before(terminator)
        self.b = ir.IRBuilder(body)
        self.arith = Arith(self.b, program.math, contract=self.options.reassociate,
                           f16c=program.target.has("f16c"))
        self.kernel_roots = kernel_roots
        # root -> position in the kernel's slot table (abi[5]): where its pointer comes from
        self.slots: dict = program.kernel_slots
        self.abi: tuple = ()
        self._roots: dict = {}
        self._sizes: dict = {}

    # --- prologue values --------------------------------------------------------------------

    def alloca(self, t: ir.Type, align: int | None = None, count=None) -> ir.Value:
        ptr = self.prologue.alloca(t, size=count)
        ptr.type = PTR          # llvmlite types allocas as typed pointers; LLVM 22 has none
        if align:
            ptr.align = align
        return ptr

    def size(self, name: str) -> ir.Value:
        """The value of a symbolic size, loaded once from the `sizes` array."""
        v = self._sizes.get(name)
        if v is None:
            k = self.program.layout.size_index(name)
            computed = self.program.program.computed.get(name)
            if k is None and computed is not None:   # a size an earlier kernel computed
                v = self.prologue.load(self.root_pointer(computed.buffer), typ=I64)
                self._sizes[name] = v
                return v
            if k is None:
                raise CodegenError(f"Loop IR variable {name} is not bound",
                                   hint="bind symbolic sizes in Program.sizes")
            p = self.prologue
            v = p.load(p.gep(self.abi[4], [ir.Constant(I64, k)], source_etype=I64), typ=I64)
            self._sizes[name] = v
        return v

    def root_pointer(self, buf: Buffer) -> ir.Value:
        """Pointer to the first element of `buf`'s root memory in this function."""
        root = buf.root
        ptr = self._roots.get(root)
        if ptr is not None:
            return ptr
        layout, p = self.program.layout, self.prologue
        if root.kind is BufferKind.LOCAL:
            count = _static_count(root)
            ptr = self.alloca(ir.ArrayType(storage_type(root.dtype), max(count, 1)), align=64)
        elif root.kind is BufferKind.TEMP:
            k = self._slot(root, layout.temp_offset_slot(layout.temp_index(root)))
            off = p.load(p.gep(self.abi[4], [k], source_etype=I64), typ=I64)
            ptr = p.gep(self.abi[3], [off], source_etype=ir.IntType(8))
        else:
            table, k = layout.pointer_slot(root)
            k = self._slot(root, k)
            ptr = p.load(p.gep(self.abi[table], [k], source_etype=PTR), typ=PTR)
        self._roots[root] = ptr
        return ptr

    def _slot(self, root: Buffer, k: int) -> ir.Value:
        """The table position `k` of `root`: read from the kernel's slot table when the root
        has a place there (kernels of the same code share one function), else a constant."""
        j = self.slots.get(root)
        if j is None or len(self.abi) < 6:
            return ir.Constant(I64, k)
        p = self.prologue
        return p.load(p.gep(self.abi[5], [ir.Constant(I64, j)], source_etype=I64), typ=I64)

    def tag(self, instr, buf: Buffer) -> None:
        """Alias metadata: accesses to different root buffers never overlap."""
        self.program.tag_access(instr, buf.root, self.kernel_roots)


def _static_count(root: Buffer) -> int:
    dims = []
    for d in root.shape:
        if not isinstance(d, Const):
            raise CodegenError(f"LOCAL buffer {root.name} needs a static shape, has {root.shape}",
                               hint="tile LOCAL buffers with constant sizes")
        dims.append(int(d.value))
    return int(np.prod(dims, dtype=np.int64))
