"""plan_memory: where each intermediate of a lowered Program lives in the one arena.

    memory = MemoryProblem(program)          # liveness and in-place pairs (any sizes)
    plan = memory.plan({"batch": 8})         # offsets for one binding of the symbolic sizes
    plan.offsets[k], plan.arena_bytes        # per TEMP root, in `memory.temps` order

Liveness is over the kernel order: a TEMP root lives from the first kernel that touches it to
the last. Lifetimes, not names, decide sharing, so two tensors of the same size whose lifetimes
are disjoint end up in one region.

In place: an elementwise kernel may write its output over an input that dies in that kernel,
when both have the same byte size and every read of the input is at the very address the kernel
writes (so each element is read before it is overwritten, by the same loop iteration). If B
feeds both C and F, B is still live after C's kernel, so C does not write over B. An in-place
pair shares its memory on purpose: `alias_root` names one root per shared region, and codegen
gives both buffers that root's alias scope (so LLVM never assumes they are disjoint).

Offsets come from `kiln.memory.arena` (free-list reuse of same-size blocks, and greedy-by-size
best fit); the smaller arena wins. Plans are cached per binding of the symbolic sizes, so a
model called with one batch size plans once.

A TEMP root that a kernel reads in the kernel that first writes it (an accumulator) may rely on
the arena starting zeroed: it gets memory nothing else used before it.

Debug mode (`poison=True`): before the first kernel every region is filled with poison, and
after the last kernel that uses a tensor its region is poisoned again (NaN for floats, the byte
0xA5 for other types), so a read of dead memory shows in the results. The native entry calls
`plan.poisoner` (see kiln/codegen/emit_program.py).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Binary, Const, Load, Var, children, simplify_index
from ..loops.interpreter import Memory, with_upper_bounds
from ..loops.stmt import Assign, If, Local, Loop, Program, Store
from ..memory.arena import Block, best_plan, lower_bound

ALIGN = 64                  # bytes; every region starts on a cache line
POISON_BYTE = 0xA5
MAX_CACHED_PLANS = 64
POISON_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)


@dataclass(eq=False)
class TempLife:
    buffer: Buffer
    first: int | None = None         # kernel indexes; None when no kernel touches it
    last: int | None = None
    needs_zero: bool = False         # read by the kernel that first writes it
    writes_over: Buffer | None = None  # the input whose memory it takes over (in place)


class MemoryProblem:
    """Liveness and in-place pairs of a Program's TEMP roots; `plan(sizes)` places them."""

    def __init__(self, program: Program, temps: list | None = None):
        self.program = program
        self.kernel_count = len(program.kernels)
        accesses = [_accesses(k.body) for k in program.kernels]
        if temps is None:
            temps = _temp_roots(program, accesses)
        self.temps = list(temps)
        self.life = {t: TempLife(t) for t in self.temps}
        for k, (reads, writes, _) in enumerate(accesses):
            for root in list(writes) + list(reads):
                life = self.life.get(root)
                if life is None:
                    continue
                if life.first is None:
                    life.first = k
                    life.needs_zero = root in reads
                life.last = k
        self._alias: dict = {}
        for k, kernel_accesses in enumerate(accesses):
            self._find_in_place(k, kernel_accesses)
        self.groups = self._groups()
        self._plans: dict = {}

    # --- analysis -----------------------------------------------------------------------------

    def _find_in_place(self, k: int, accesses) -> None:
        reads, writes, stores = accesses
        if len(stores) != 1 or len(writes) != 1:
            return
        store, loop_vars = stores[0]
        out = store.buffer.root
        life = self.life.get(out)
        if life is None or life.first != k or life.needs_zero:
            return
        if not _writes_each_element_once(store, loop_vars):
            return
        target = _address(store.buffer, store.index)
        value_loads = _loads(store.value)
        for root in reads:
            src = self.life.get(root)
            if (src is None or root is out or src.last != k or src.first is None
                    or src.first >= k or src.needs_zero or root in self._alias.values()
                    or not _same_bytes(root, out)):
                continue
            if reads[root]:
                continue              # read outside the stored value (a Local, a loop bound)
            if all(_address(l.buffer, l.index) == target
                   for l in value_loads if l.buffer.root is root):
                life.writes_over = root
                self._alias[out] = root
                return

    def alias_root(self, root: Buffer) -> Buffer:
        """The root whose memory `root` shares by design (itself unless it is written in place
        over an input, transitively)."""
        while root in self._alias:
            root = self._alias[root]
        return root

    def in_place_pairs(self) -> list:
        """(output, input) for every output written over its dead input."""
        return list(self._alias.items())

    def _groups(self) -> list:
        """Lists of temps sharing one region (an in-place chain), each in lifetime order."""
        by_root: dict = {}
        for t in self.temps:
            if self.life[t].first is not None:
                by_root.setdefault(self.alias_root(t), []).append(t)
        return list(by_root.values())

    # --- planning -----------------------------------------------------------------------------

    def plan(self, sizes: Mapping[str, int] | None = None) -> "MemoryPlan":
        """Offsets for one binding of the symbolic sizes (cached per binding)."""
        sizes = dict(sizes or {})
        key = tuple(sorted(sizes.items()))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= MAX_CACHED_PLANS:
                self._plans.clear()
            plan = self._plans[key] = MemoryPlan(self, sizes)
        return plan


@dataclass(eq=False)
class MemoryPlan:
    """Offsets (bytes, one per temp in `problem.temps` order) and the numbers that judge them."""

    problem: MemoryProblem
    sizes: dict
    offsets: list = field(init=False)
    nbytes: list = field(init=False)       # each temp's size, rounded up to ALIGN
    blocks: list = field(init=False)       # one Block per group
    arena_bytes: int = field(init=False)
    naive_bytes: int = field(init=False)   # every temp in its own region
    lower_bound_bytes: int = field(init=False)
    algorithm: str = field(init=False)

    def __post_init__(self):
        p = self.problem
        mem = Memory(self.sizes)
        self.nbytes = [_aligned(_count(t, mem) * t.dtype.itemsize) for t in p.temps]
        size_of = dict(zip(p.temps, self.nbytes))
        self.blocks = []
        for group in p.groups:
            first = 0 if any(p.life[t].needs_zero for t in group) else p.life[group[0]].first
            self.blocks.append(Block(max(size_of[t] for t in group), first,
                                     max(p.life[t].last for t in group)))
        arena = best_plan(self.blocks)
        offset_of = {}
        for group, offset in zip(p.groups, arena.offsets):
            for t in group:
                offset_of[t] = offset
        self.offsets = [offset_of.get(t, 0) for t in p.temps]
        self.arena_bytes = arena.size
        self.algorithm = arena.algorithm
        self.naive_bytes = sum(self.nbytes)
        self.lower_bound_bytes = lower_bound(self.blocks)
        self._poisoner = None

    def stats(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "naive_bytes": self.naive_bytes,
                "lower_bound_bytes": self.lower_bound_bytes, "algorithm": self.algorithm,
                "temps": len(self.problem.temps),
                "in_place": len(self.problem.in_place_pairs())}

    @property
    def poisoner(self) -> "ctypes._CFuncPtr":
        """The debug-mode callback `void(i64 kernel, ptr arena, ptr sizes)` (kernel -1: before
        the first kernel). Kept alive by the plan."""
        if self._poisoner is None:
            self._poisoner = POISON_CALLBACK(self._poison)
        return self._poisoner

    def _poison(self, kernel: int, arena: int | None, _sizes: int) -> None:
        if not arena:                       # an empty arena is passed as a null pointer
            return
        p = self.problem
        for group, block, offset in zip(p.groups, self.blocks,
                                        (self.offsets[p.temps.index(g[0])] for g in p.groups)):
            if kernel < 0:
                if not any(p.life[t].needs_zero for t in group):
                    poison(arena + offset, block.size, group[0].dtype)
            elif block.end == kernel:
                dead = max(group, key=lambda t: p.life[t].last)
                poison(arena + offset, block.size, dead.dtype)


def poison(address: int, nbytes: int, dtype) -> None:
    """Fill `nbytes` at `address` with NaN of `dtype` (floats) or the byte POISON_BYTE."""
    if nbytes <= 0:
        return
    raw = np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype=np.uint8)
    raw.fill(POISON_BYTE)
    if dtype.is_float and nbytes % dtype.itemsize == 0:
        try:
            nan = np.array(np.nan, dtype=np.float64).astype(dtype.np)
        except (TypeError, ValueError):
            return
        if np.isnan(nan.astype(np.float64)):
            raw.view(dtype.np).fill(nan)


def memory_stats(program: Program, sizes: Mapping[str, int] | None = None) -> dict:
    """Arena bytes, the naive sum of intermediate sizes and the lower bound (most bytes live at
    one kernel) for `program`; symbolic sizes not given are taken as 1."""
    bound = {name: 1 for name in program.sizes}
    bound.update(sizes or {})
    bound = with_upper_bounds(program, bound)
    return MemoryProblem(program).plan(bound).stats()


# --- helpers ------------------------------------------------------------------------------------

def _temp_roots(program: Program, accesses) -> list:
    """TEMP roots in the order codegen's BufferLayout lists them (declared, then used)."""
    roots = [b.root for b in program.buffers]
    for reads, writes, _ in accesses:
        roots += list(writes) + list(reads)
    return [r for r in dict.fromkeys(roots) if r.kind is BufferKind.TEMP]


def _accesses(body) -> tuple:
    """(reads: roots loaded -> True when loaded anywhere but in a stored value (a Local, an
    index, a loop bound, a condition), writes: roots stored, stores: (Store, the variables
    of the loops around it)))."""
    reads: dict = {}
    writes: dict = {}
    stores: list = []
    seen: set = set()

    def expr(e, side=True):
        if (id(e), side) in seen:
            return
        seen.add((id(e), side))
        if isinstance(e, Load):
            reads[e.buffer.root] = reads.get(e.buffer.root, False) or side
        for c in children(e):
            expr(c, side)

    def walk(ss, loop_vars=()):
        for s in ss:
            if isinstance(s, Store):
                stores.append((s, loop_vars))
                writes.setdefault(s.buffer.root, None)
                expr(s.value, side=False)
                for i in s.index:
                    expr(i)
            elif isinstance(s, Local):
                expr(s.init)
            elif isinstance(s, Assign):
                expr(s.value)
            elif isinstance(s, Loop):
                expr(s.start)
                expr(s.stop)
                walk(s.body, loop_vars + (s.var,))
            elif isinstance(s, If):
                expr(s.cond)
                walk(s.then, loop_vars)
                walk(s.orelse, loop_vars)

    walk(body)
    return reads, writes, stores


def _writes_each_element_once(store: Store, loop_vars: tuple) -> bool:
    """The store's index is the loops' variables, each once: every element is written by one
    iteration only (so reading an input at the same address first is safe in place)."""
    index = store.index
    return (all(isinstance(i, Var) for i in index) and len(set(index)) == len(index)
            and set(index) == set(loop_vars) and len(set(loop_vars)) == len(loop_vars))


def _loads(e) -> list:
    """Every Load in `e` (a node shared within `e` once)."""
    out, seen = [], set()

    def visit(x):
        if id(x) in seen:
            return
        seen.add(id(x))
        if isinstance(x, Load):
            out.append(x)
        for c in children(x):
            visit(c)

    visit(e)
    return out


def _address(buf: Buffer, index) -> object:
    """The element address `offset + sum(index * stride)` in the root's memory."""
    addr = buf.offset
    for i, s in zip(index, buf.strides):
        addr = Binary("add", addr, Binary("mul", i, s))
    return simplify_index(addr)


def _same_bytes(a: Buffer, b: Buffer) -> bool:
    if a.dtype.itemsize != b.dtype.itemsize:
        return False
    if tuple(a.shape) == tuple(b.shape):
        return True
    return _static_count(a) is not None and _static_count(a) == _static_count(b)


def _static_count(b: Buffer) -> int | None:
    if all(isinstance(d, Const) for d in b.shape):
        return int(np.prod([d.value for d in b.shape], dtype=np.int64))
    return None


def _count(b: Buffer, mem: Memory) -> int:
    return int(np.prod([mem.index_value(d) for d in b.shape], dtype=np.int64))


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def reorder_kernels(program: Program, sizes: Mapping[str, int] | None = None) -> Program:
    """`program` with its independent kernels reordered to need a smaller arena (judged at
    `sizes`, symbolic sizes not given taken as 1), or `program` itself when no order found by
    `kiln.memory.reorder` is smaller. Kernels keep their order wherever they share a buffer
    that one of them writes."""
    from dataclasses import replace

    from ..memory.reorder import order_for_memory
    if program.computed:     # kernels read computed sizes without a Load saying so
        return program
    bound = {name: 1 for name in program.sizes}
    bound.update(sizes or {})
    accesses = [_accesses(k.body)[:2] for k in program.kernels]
    before = MemoryProblem(program)
    mem = Memory(bound)
    nbytes = {t: _aligned(_count(t, mem) * t.dtype.itemsize) for t in before.temps}
    order = order_for_memory([(set(r), set(w)) for r, w in accesses], nbytes)
    if order == list(range(len(program.kernels))):
        return program
    candidate = replace(program, kernels=[program.kernels[k] for k in order])
    if MemoryProblem(candidate, before.temps).plan(bound).arena_bytes < \
            before.plan(bound).arena_bytes:
        return candidate
    return program
