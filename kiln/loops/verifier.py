"""The Loop IR verifier: the invariants lowering and every schedule transform must keep.

Rules (each failure names the kernel and the rule):
  bound      every Var is bound where it is used: a loop variable of an enclosing loop, a
             Reduce axis in scope, a Local declared earlier in an enclosing body, or a symbolic
             size; buffer shapes, strides and offsets use symbolic sizes only
  unique     loop variables are distinct in a kernel, and no loop, axis or Local shadows a
             name already in scope
  rank       a load or store has one index per dimension of its buffer
  index      indices, loop bounds, Reduce ranges and buffer shapes are integer expressions
  dtype      Binary and Compare operands share a dtype, Select's arms too; Select and If
             conditions are bool; a Reduce's body has its init's dtype; a Store's value has its
             buffer's dtype; Local and Assign values have their variable's dtype; bitwise ops
             take integers or bools, float math takes floats
  width      a VECTORIZED loop's width is 0 (the target chooses) or a power of two; an
             UNROLLED loop's factor is >= 0
  parallel   no PARALLEL loop runs inside another one (the thread pool is not re-entrant)
  readonly   nothing is stored into an INPUT or CONSTANT buffer (or a view of one)
  buffers    a kernel touches only buffers it lists (a view counts as its base buffer)
  local      a LOCAL buffer is used by one kernel only (program)
  node       statements and expressions are Loop IR nodes
  declared   every buffer a kernel touches is an input, output or buffer of the program, and
             every symbolic size is bound by an input axis (program)
"""

from __future__ import annotations

from typing import Iterable

from ..errors import VerificationError
from ..ir.dtypes import DType
from .buffer import Buffer, BufferKind
from .expr import (Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var, children,
                   free_vars)
from .stmt import Assign, If, Kernel, Local, Loop, LoopKind, Program, Store

BITWISE = frozenset({"and", "or", "xor", "shl", "shr"})
FLOAT_MATH = frozenset({
    "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "isnan", "isinf", "atan2",
})


def verify_program(program: Program) -> None:
    """Raise VerificationError at the first broken invariant of any kernel or of the program."""
    sizes = set(program.sizes) | set(program.computed)
    declared = {b.root for b in (*program.inputs, *program.outputs, *program.buffers)}
    for name, (buffer, axis) in program.sizes.items():
        if buffer not in program.inputs or not 0 <= axis < buffer.rank:
            raise VerificationError(f"program @{program.name}: symbolic size {name} is bound to "
                                    f"axis {axis} of %{buffer.name}, which is not an input axis",
                                    rule="declared")
    owner: dict[Buffer, Kernel] = {}
    for k in program.kernels:
        for b in verify_kernel(k, sizes):
            unbound = sorted(v.name for v in _layout_vars(b) if v.name not in sizes)
            if unbound:
                raise VerificationError(
                    f"kernel {k.name}: the layout of %{b.name} uses {', '.join(unbound)}, which "
                    f"program @{program.name} does not bind", rule="bound",
                    hint="bind every symbolic size to an input axis in Program.sizes")
            root = b.root
            if root.kind is BufferKind.LOCAL:
                if owner.setdefault(root, k) is not k:
                    raise VerificationError(
                        f"kernel {k.name}: LOCAL buffer %{root.name} belongs to kernel "
                        f"{owner[root].name}", rule="local",
                        hint="a LOCAL buffer lives on one kernel's stack; use a TEMP buffer to "
                             "pass data between kernels")
            elif root not in declared:
                raise VerificationError(
                    f"kernel {k.name}: buffer %{root.name} is not an input, output or buffer of "
                    f"program @{program.name}", rule="declared")


def verify_kernel(kernel: Kernel, sizes: Iterable = ()) -> set:
    """Raise VerificationError at the first broken invariant; return the buffers it touches.

    `sizes` are the symbolic sizes in scope (names or Vars); the Vars in the shapes of the
    kernel's buffers count as sizes too (verify_program checks the program binds them)."""
    names = {s.name if isinstance(s, Var) else str(s) for s in sizes}
    checker = _KernelChecker(kernel)
    for b in kernel.buffers:
        names |= {v.name for v in _layout_vars(b)}
    scope = {n: (DType.int64, "size") for n in names}
    for b in kernel.buffers:
        checker.check_layout(b, scope)
    checker.body(kernel.body, scope)
    return checker.used


def _layout_vars(b: Buffer) -> set:
    out = set()
    while b is not None:
        for e in (*b.shape, *b.strides, b.offset):
            out |= free_vars(e)
        b = b.base
    return out


class _KernelChecker:
    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.listed = set(kernel.buffers)
        self.loop_vars: set[str] = set()
        self.used: set[Buffer] = set()
        self.checked_layouts: set[Buffer] = set()

    def fail(self, message: str, rule: str, hint: str | None = None):
        raise VerificationError(f"kernel {self.kernel.name}: {message}", rule=rule, hint=hint)

    # statements ---------------------------------------------------------------------------

    def body(self, stmts, scope: dict, in_parallel: bool = False) -> None:
        """`scope` maps each name in scope to (dtype, "size" | "loop" | "axis" | "local")."""
        scope = dict(scope)     # Locals declared here end with this body
        for s in stmts:
            if isinstance(s, Loop):
                self.loop(s, scope, in_parallel)
            elif isinstance(s, Store):
                self.store(s, scope)
            elif isinstance(s, Local):
                self.bind(s.var, scope, "local")
                self.expect(s.init, s.var.dtype, scope, f"local {s.var.name}'s initial value")
                scope[s.var.name] = (s.var.dtype, "local")
            elif isinstance(s, Assign):
                if scope.get(s.var.name, (None, None))[1] != "local":
                    self.fail(f"{s.var.name} is assigned but is not a Local in scope", "bound",
                              hint="declare it with Local(var, init) in an enclosing body")
                if scope[s.var.name][0] is not s.var.dtype:
                    self.fail(f"{s.var.name} is assigned as {s.var.dtype.short} but declared "
                              f"{scope[s.var.name][0].short}", "dtype")
                self.expect(s.value, s.var.dtype, scope, f"the value assigned to {s.var.name}")
            elif isinstance(s, If):
                self.expect(s.cond, DType.bool, scope, "an If condition")
                self.body(s.then, scope, in_parallel)
                self.body(s.orelse, scope, in_parallel)
            else:
                self.fail(f"{s!r} is not a Loop IR statement", "node")

    def loop(self, s: Loop, scope: dict, in_parallel: bool) -> None:
        name = s.var.name
        if name in self.loop_vars:
            self.fail(f"loop variable {name} is used by two loops", "unique",
                      hint="give every loop of a kernel its own variable")
        self.bind(s.var, scope, "loop")
        self.loop_vars.add(name)
        self.index(s.start, scope, f"the start of loop {name}")
        self.index(s.stop, scope, f"the stop of loop {name}")
        if s.kind is LoopKind.VECTORIZED and (s.width < 0 or s.width & (s.width - 1)):
            self.fail(f"vector loop {name} has width {s.width}; it must be 0 (target's choice) "
                      f"or a power of two", "width")
        if s.kind is LoopKind.UNROLLED and s.width < 0:
            self.fail(f"unrolled loop {name} has factor {s.width}; it must be >= 0", "width")
        if s.kind is LoopKind.PARALLEL and in_parallel:
            self.fail(f"parallel loop {name} is nested in another parallel loop", "parallel",
                      hint="keep one PARALLEL loop per nest; make the other SERIAL")
        self.body(s.body, {**scope, name: (s.var.dtype, "loop")},
                  in_parallel or s.kind is LoopKind.PARALLEL)

    def store(self, s: Store, scope: dict) -> None:
        b = s.buffer
        self.access(b, s.index, scope, "store")
        if b.root.kind in (BufferKind.INPUT, BufferKind.CONSTANT):
            self.fail(f"store into {b.root.kind.name} buffer %{b.root.name}", "readonly")
        self.expect(s.value, b.dtype, scope, f"the value stored into %{b.name}")

    def bind(self, var: Var, scope: dict, what: str) -> None:
        if var.name in scope:
            self.fail(f"{what} {var.name} shadows a name already in scope", "unique")
        if what != "local" and not var.dtype.is_int:
            self.fail(f"{what} variable {var.name} is {var.dtype.short}; it must be an integer",
                      "index")

    # buffers ------------------------------------------------------------------------------

    def access(self, b: Buffer, index, scope: dict, what: str) -> None:
        if not self._listed(b):
            self.fail(f"{what} of %{b.name}, which is not among the kernel's buffers", "buffers",
                      hint="add the buffer (or the buffer it is a view of) to Kernel.buffers")
        self.check_layout(b, scope)
        self.used.add(b)
        if len(index) != b.rank:
            self.fail(f"{what} of %{b.name} has {len(index)} indices; the buffer has rank "
                      f"{b.rank}", "rank")
        for k, i in enumerate(index):
            self.index(i, scope, f"index #{k} of a {what} of %{b.name}")

    def _listed(self, b: Buffer) -> bool:
        while b is not None:
            if b in self.listed:
                return True
            b = b.base
        return False

    def check_layout(self, b: Buffer, scope: dict) -> None:
        while b is not None and b not in self.checked_layouts:
            self.checked_layouts.add(b)
            for what, exprs in (("shape", b.shape), ("strides", b.strides),
                                ("offset", (b.offset,))):
                for e in exprs:
                    for v in _vars(e):
                        if scope.get(v.name, (None, None))[1] != "size":
                            self.fail(f"the {what} of %{b.name} uses {v.name}, which is not a "
                                      f"symbolic size", "bound")
                    self.index(e, scope, f"the {what} of %{b.name}")
            b = b.base

    # expressions --------------------------------------------------------------------------

    def index(self, e: Expr, scope: dict, where: str) -> None:
        self.expr(e, scope)
        if not e.dtype.is_int:
            self.fail(f"{where} is {e.dtype.short}; index expressions must be integers", "index")

    def expect(self, e: Expr, dtype: DType, scope: dict, where: str) -> None:
        self.expr(e, scope)
        if e.dtype is not dtype:
            self.fail(f"{where} is {e.dtype.short}, expected {dtype.short}", "dtype")

    def expr(self, e: Expr, scope: dict) -> None:
        if isinstance(e, Var):
            if e.name not in scope:
                self.fail(f"{e.name} is used but not bound here", "bound",
                          hint="a Var must be an enclosing loop's variable, a Reduce axis, a "
                               "Local declared before, or a symbolic size")
            if scope[e.name][0] is not e.dtype:
                self.fail(f"{e.name} is used as {e.dtype.short} but bound as "
                          f"{scope[e.name][0].short}", "dtype")
            return
        if isinstance(e, Const):
            return
        if isinstance(e, Load):
            self.access(e.buffer, e.index, scope, "load")
            return
        if isinstance(e, Reduce):
            self.reduce(e, scope)
            return
        if not isinstance(e, (Binary, Compare, Unary, Select, Cast)):
            self.fail(f"{e!r} is not a Loop IR expression", "node")
        for c in children(e):
            self.expr(c, scope)
        if isinstance(e, (Binary, Compare)) and e.a.dtype is not e.b.dtype:
            self.fail(f"{e.op} of {e.a.dtype.short} and {e.b.dtype.short}; operands must share "
                      f"a dtype", "dtype", hint="insert a Cast")
        if isinstance(e, (Binary, Unary)):
            self.operator(e.op, e.a.dtype)
        if isinstance(e, Select):
            if e.cond.dtype is not DType.bool:
                self.fail(f"a select condition is {e.cond.dtype.short}; it must be bool", "dtype")
            if e.a.dtype is not e.b.dtype:
                self.fail(f"select of {e.a.dtype.short} and {e.b.dtype.short}; both arms must "
                          f"share a dtype", "dtype")

    def operator(self, op: str, dtype: DType) -> None:
        if op in BITWISE and not (dtype.is_int or dtype is DType.bool):
            self.fail(f"bitwise {op} of {dtype.short}; it takes integers or bools", "dtype")
        if op in ("shl", "shr") and not dtype.is_int:
            self.fail(f"{op} of {dtype.short}; shifts take integers", "dtype")
        if op in FLOAT_MATH and not dtype.is_float:
            self.fail(f"{op} of {dtype.short}; it takes floats", "dtype", hint="Cast first")

    def reduce(self, e: Reduce, scope: dict) -> None:
        self.expr(e.init, scope)
        inner = dict(scope)
        for v, start, stop in e.axes:
            self.index(start, inner, f"the start of reduce axis {v.name}")
            self.index(stop, inner, f"the stop of reduce axis {v.name}")
            self.bind(v, inner, "reduce axis")
            inner[v.name] = (v.dtype, "axis")
        self.expect(e.body, e.init.dtype, inner, f"the body of a {e.combiner} reduction")
        self.operator(e.combiner, e.init.dtype)


def _vars(e: Expr):
    if isinstance(e, Var):
        yield e
    for c in children(e):
        yield from _vars(c)
