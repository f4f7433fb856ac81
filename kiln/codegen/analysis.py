"""What codegen needs to know about Loop IR before emitting it: which names an expression reads,
whether an address moves by a fixed step along a vectorized loop, whether a VECTORIZED loop can
become vector code (and which of its locals differ per lane), and how many lanes to use.

Expressions are DAGs (lowering shares sub-expressions), so the walks memoize by node identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.dtypes import DType
from ..loops.buffer import Buffer
from ..loops.expr import (COMBINERS, Binary, Cast, Const, Expr, Load, Reduce, Select, Unary, Var,
                          children, simplify_index)
from ..loops.stmt import Assign, If, Local, Loop, Store


class NameCollector:
    """Names of the Vars each expression reads (Reduce axes excluded), memoized by identity;
    also whether an expression contains a Load (so it must not be evaluated speculatively)."""

    def __init__(self):
        self._names: dict[int, tuple] = {}
        self._loads: dict[int, tuple] = {}

    def names(self, e: Expr) -> frozenset:
        hit = self._names.get(id(e))
        if hit is not None:
            return hit[1]
        if isinstance(e, Var):
            out = frozenset((e.name,))
        else:
            out = frozenset()
            for c in children(e):
                out |= self.names(c)
            if isinstance(e, Load):
                out |= buffer_names(e.buffer, self)
            if isinstance(e, Reduce):
                out -= {v.name for v, _, _ in e.axes}
        self._names[id(e)] = (e, out)
        return out

    def has_load(self, e: Expr) -> bool:
        hit = self._loads.get(id(e))
        if hit is not None:
            return hit[1]
        out = isinstance(e, Load) or any(self.has_load(c) for c in children(e))
        self._loads[id(e)] = (e, out)
        return out


def buffer_names(buf: Buffer, names: NameCollector) -> frozenset:
    """Names an address into `buf` reads through its strides and offset (symbolic sizes)."""
    out = names.names(buf.offset)
    for s in buf.strides:
        out |= names.names(s)
    return out


def stmt_names(stmts, names: NameCollector) -> set:
    """Every name read anywhere in a statement list (loop bounds, indices, values)."""
    out: set = set()
    for s in stmts:
        if isinstance(s, Loop):
            out |= names.names(s.start) | names.names(s.stop) | stmt_names(s.body, names)
        elif isinstance(s, Store):
            out |= names.names(s.value) | buffer_names(s.buffer, names)
            for i in s.index:
                out |= names.names(i)
        elif isinstance(s, (Local, Assign)):
            out |= names.names(s.init if isinstance(s, Local) else s.value)
            out.add(s.var.name)
        elif isinstance(s, If):
            out |= names.names(s.cond) | stmt_names(s.then, names) | stmt_names(s.orelse, names)
    return out


def assigned_names(stmts) -> set:
    """Names given a value by Local or Assign anywhere in `stmts`."""
    out: set = set()
    for s in stmts:
        if isinstance(s, (Local, Assign)):
            out.add(s.var.name)
        elif isinstance(s, Loop):
            out |= assigned_names(s.body)
        elif isinstance(s, If):
            out |= assigned_names(s.then) | assigned_names(s.orelse)
    return out


def declared_names(stmts) -> set:
    out: set = set()
    for s in stmts:
        if isinstance(s, Local):
            out.add(s.var.name)
        elif isinstance(s, Loop):
            out |= declared_names(s.body) | {s.var.name}
        elif isinstance(s, If):
            out |= declared_names(s.then) | declared_names(s.orelse)
    return out


# --- addresses along a vectorized loop -------------------------------------------------------

def linear_step(e: Expr, var: str, varying: set, names: NameCollector) -> Expr | None:
    """How much integer expression `e` grows when `var` grows by one, if that is the same for
    every value of `var` (e is affine in it); None otherwise. 0 when `e` does not depend on any
    varying name."""
    if not (names.names(e) & varying):
        return Const(0)
    if isinstance(e, Var):
        return Const(1) if e.name == var else None
    if isinstance(e, Binary) and e.op in ("add", "sub"):
        a = linear_step(e.a, var, varying, names)
        b = linear_step(e.b, var, varying, names)
        if a is None or b is None:
            return None
        return simplify_index(Binary(e.op, a, b))
    if isinstance(e, Binary) and e.op == "mul":
        a = linear_step(e.a, var, varying, names)
        b = linear_step(e.b, var, varying, names)
        if a is None or b is None:
            return None
        if a == Const(0):
            return simplify_index(Binary("mul", e.a, b))
        if b == Const(0):
            return simplify_index(Binary("mul", a, e.b))
        return None
    if isinstance(e, Cast) and e.dtype in (DType.int64,) and e.a.dtype.is_int:
        return linear_step(e.a, var, varying, names)
    return None


def address_step(buf: Buffer, index, var: str, varying: set, names: NameCollector):
    """Step, in elements of the root buffer, of the address of buf[index] along `var`."""
    total: Expr = Const(0)
    for i, stride in zip(index, buf.strides):
        step = linear_step(i, var, varying, names)
        if step is None:
            return None
        total = simplify_index(Binary("add", total, simplify_index(Binary("mul", step, stride))))
    return total


# --- VECTORIZED loops ------------------------------------------------------------------------

@dataclass
class VectorPlan:
    """Whether a VECTORIZED loop becomes vector code, and the names that differ per lane."""

    ok: bool
    reason: str = ""
    varying: set = field(default_factory=set)
    widest_bits: int = 32
    # locals declared outside the loop that it only updates as `acc = acc <op> e`:
    # name -> (op, dtype); they get per-lane partial results, combined after the loop
    reductions: dict = field(default_factory=dict)


def plan_vector_loop(loop: Loop, names: NameCollector, reassociate: bool) -> VectorPlan:
    declared = declared_names(loop.body)
    reductions = {}
    for name in sorted(assigned_names(loop.body) - declared):
        found = reduction_of(loop.body, name, names)
        if found is None:
            return VectorPlan(False, f"assigns {name}, declared outside the loop, other than "
                                     "as acc = acc <op> value")
        op, dtype = found
        if dtype.is_float and op in ("add", "mul") and not reassociate:
            return VectorPlan(False, f"a float {op} reduction into {name} (needs reassociate)")
        reductions[name] = found
    varying = {loop.var.name} | set(reductions)
    while True:
        before = len(varying)
        reason = _mark_varying(loop.body, varying, False, names)
        if reason:
            return VectorPlan(False, reason)
        if len(varying) == before:
            break
    return VectorPlan(True, varying=varying, widest_bits=_widest_bits(loop.body, names),
                      reductions=reductions)


def reduction_of(stmts, name: str, names: NameCollector):
    """(op, dtype) when every statement in `stmts` that touches local `name` is an update
    `name = name <op> e` (one op, a combiner) with `e` not reading `name`; else None."""
    ops: set = set()
    dtype = None

    def visit(ss) -> bool:
        nonlocal dtype
        for s in ss:
            if isinstance(s, Assign) and s.var.name == name:
                v = s.value
                if not (isinstance(v, Binary) and v.op in COMBINERS):
                    return False
                if v.a == s.var and name not in names.names(v.b):
                    ops.add(v.op)
                elif v.b == s.var and name not in names.names(v.a):
                    ops.add(v.op)
                else:
                    return False
                dtype = s.var.dtype
            elif isinstance(s, Loop):
                if name in names.names(s.start) | names.names(s.stop) or not visit(s.body):
                    return False
            elif isinstance(s, If):
                if name in names.names(s.cond) or not (visit(s.then) and visit(s.orelse)):
                    return False
            elif name in stmt_names([s], names):
                return False
        return True

    if not visit(stmts) or len(ops) != 1:
        return None
    return ops.pop(), dtype


def _mark_varying(stmts, varying: set, masked: bool, names: NameCollector) -> str:
    """Grow `varying` by the locals whose values differ per lane; return why the body cannot
    be vectorized ('' when it can)."""
    for s in stmts:
        if isinstance(s, (Local, Assign)):
            value = s.init if isinstance(s, Local) else s.value
            if masked or names.names(value) & varying:
                varying.add(s.var.name)
            reason = _check_reduces(value, varying, names)
            if reason:
                return reason
        elif isinstance(s, Store):
            for e in (s.value, *s.index):
                reason = _check_reduces(e, varying, names)
                if reason:
                    return reason
        elif isinstance(s, Loop):
            if (names.names(s.start) | names.names(s.stop)) & varying:
                return f"the bounds of loop {s.var.name} differ per lane"
            reason = _mark_varying(s.body, varying, masked, names)
            if reason:
                return reason
        elif isinstance(s, If):
            inner = masked or bool(names.names(s.cond) & varying)
            reason = (_mark_varying(s.then, varying, inner, names) or
                      _mark_varying(s.orelse, varying, inner, names))
            if reason:
                return reason
    return ""


def _check_reduces(e: Expr, varying: set, names: NameCollector, seen=None) -> str:
    """Reduce bounds must be the same in every lane."""
    seen = set() if seen is None else seen
    if id(e) in seen:
        return ""
    seen.add(id(e))
    if isinstance(e, Reduce):
        for v, start, stop in e.axes:
            if (names.names(start) | names.names(stop)) & varying:
                return f"the bounds of reduction axis {v.name} differ per lane"
    for c in children(e):
        reason = _check_reduces(c, varying, names, seen)
        if reason:
            return reason
    return ""


def _dtype_bits(dtype: DType) -> int:
    if dtype in (DType.float16, DType.bfloat16):
        return 32
    if dtype is DType.bool:
        return 8
    return dtype.itemsize * 8


def _widest_bits(stmts, names: NameCollector) -> int:
    """Widest element (in bits, as computed) that the loop loads, stores or computes."""
    bits = [8]
    seen: set = set()

    def expr(e):
        if id(e) in seen:
            return
        seen.add(id(e))
        if isinstance(e, (Load, Cast, Reduce, Unary, Select)) or (
                isinstance(e, (Binary, Const)) and e.dtype.is_float):
            bits.append(_dtype_bits(e.dtype))
        if isinstance(e, Load):
            return          # index arithmetic does not count
        for c in children(e):
            expr(c)

    def body(ss):
        for s in ss:
            if isinstance(s, Store):
                bits.append(_dtype_bits(s.buffer.dtype))
                expr(s.value)
            elif isinstance(s, (Local, Assign)):
                bits.append(_dtype_bits(s.var.dtype))
                expr(s.init if isinstance(s, Local) else s.value)
            elif isinstance(s, Loop):
                body(s.body)
            elif isinstance(s, If):
                body(s.then)
                body(s.orelse)

    body(stmts)
    return max(bits)


def vector_width(loop: Loop, plan: VectorPlan, vector_bits: int, override: int = 0) -> int:
    if loop.width:
        return loop.width
    if override:
        return override
    return max(2, min(64, vector_bits // plan.widest_bits))
