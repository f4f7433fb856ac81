"""Walking and rebuilding loop nests: what every schedule transform needs.

Transforms never edit the kernel they are given: they `copy_kernel` it, find loops in the copy
by variable name, and rearrange the copy's statements. Expressions are immutable and shared;
buffers are shared (a buffer is identified by the object).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ScheduleError
from .expr import (Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var, children,
                   free_vars, simplify_index, substitute)
from .stmt import Assign, If, Kernel, Local, Loop, Store, exprs_of, walk  # noqa: F401 (re-exported)


# expressions ---------------------------------------------------------------------------------

def rebuild(e: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """`e` with `fn` applied to each of its direct children (a Reduce's axis Vars stay)."""
    if isinstance(e, (Const, Var)):
        return e
    if isinstance(e, Load):
        return Load(e.buffer, tuple(fn(i) for i in e.index))
    if isinstance(e, Binary):
        return Binary(e.op, fn(e.a), fn(e.b))
    if isinstance(e, Compare):
        return Compare(e.op, fn(e.a), fn(e.b))
    if isinstance(e, Unary):
        return Unary(e.op, fn(e.a))
    if isinstance(e, Cast):
        return Cast(e.dtype, fn(e.a))
    if isinstance(e, Select):
        return Select(fn(e.cond), fn(e.a), fn(e.b))
    if isinstance(e, Reduce):
        axes = tuple((v, fn(s), fn(t)) for v, s, t in e.axes)
        return Reduce(e.combiner, fn(e.init), axes, fn(e.body))
    raise TypeError(f"not a Loop IR expression: {e!r}")


def map_expr(e: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """Rebuild `e` bottom-up, applying `fn` to every node after its children."""
    return fn(rebuild(e, lambda c: map_expr(c, fn)))


def simplify(e: Expr) -> Expr:
    """`simplify_index` on every integer sub-expression (indices inside float values too)."""
    return map_expr(e, lambda x: simplify_index(x) if isinstance(x, Binary) else x)


def ceildiv(n: Expr, f: int) -> Expr:
    return simplify((n + (f - 1)) // f) if f > 1 else n


def subexprs(e: Expr):
    """`e` and every expression inside it, depth first."""
    yield e
    for c in children(e):
        yield from subexprs(c)


# statements ----------------------------------------------------------------------------------

def map_body(body: list, fn: Callable[[Expr], Expr]) -> list:
    """A deep copy of `body` with `fn` applied to every expression a statement holds."""
    out = []
    for s in body:
        if isinstance(s, Loop):
            out.append(Loop(s.var, fn(s.start), fn(s.stop), map_body(s.body, fn), s.kind,
                            s.width))
        elif isinstance(s, Store):
            out.append(Store(s.buffer, tuple(fn(i) for i in s.index), fn(s.value)))
        elif isinstance(s, Local):
            out.append(Local(s.var, fn(s.init)))
        elif isinstance(s, Assign):
            out.append(Assign(s.var, fn(s.value)))
        elif isinstance(s, If):
            out.append(If(fn(s.cond), map_body(s.then, fn), map_body(s.orelse, fn)))
        else:
            raise TypeError(f"not a Loop IR statement: {s!r}")
    return out


def substitute_body(body: list, mapping: dict) -> list:
    """A copy of `body` with Vars replaced (index arithmetic simplified afterwards)."""
    return map_body(body, lambda e: simplify(substitute(e, mapping)))


def copy_kernel(kernel: Kernel) -> Kernel:
    return Kernel(kernel.name, map_body(kernel.body, lambda e: e), list(kernel.buffers))


def all_exprs(body: list):
    """Every expression node in `body` (statements' own expressions and everything inside)."""
    for s in walk(body):
        for e in exprs_of(s):
            yield from subexprs(e)


# finding loops -------------------------------------------------------------------------------

@dataclass
class Site:
    """Where a loop sits: the list holding it, its position there, and the enclosing loops
    (outermost first)."""

    loop: Loop
    parent: list
    position: int
    enclosing: list

    def replace(self, stmt) -> None:
        self.parent[self.position] = stmt


def find_loop(kernel: Kernel, var) -> Site:
    """The loop of `kernel` over `var` (a Var or its name)."""
    name = var.name if isinstance(var, Var) else str(var)

    def search(body, enclosing):
        for pos, s in enumerate(body):
            if isinstance(s, Loop):
                if s.var.name == name:
                    return Site(s, body, pos, enclosing)
                found = search(s.body, enclosing + [s])
                if found:
                    return found
            elif isinstance(s, If):
                found = search(s.then, enclosing) or search(s.orelse, enclosing)
                if found:
                    return found
        return None

    site = search(kernel.body, [])
    if site is None:
        loops = ", ".join(s.var.name for s in walk(kernel.body) if isinstance(s, Loop))
        raise ScheduleError(f"kernel {kernel.name} has no loop over {name}",
                            hint=f"its loops are: {loops or 'none'}")
    return site


def perfect_chain(kernel: Kernel, outer: Loop, inner: Loop) -> list:
    """The loops from `outer` down to `inner`, each the only statement of the one before.
    Raises ScheduleError when the nest between them is not perfect."""
    chain = [outer]
    while chain[-1] is not inner:
        body = chain[-1].body
        if len(body) != 1 or not isinstance(body[0], Loop):
            raise ScheduleError(
                f"kernel {kernel.name}: loops {outer.var.name} .. {inner.var.name} are not "
                f"perfectly nested: the body of loop {chain[-1].var.name} holds "
                f"{_describe(body)}, not a single loop",
                hint="only perfectly nested loops can be reordered or fused")
        chain.append(body[0])
    return chain


def _describe(body: list) -> str:
    if not body:
        return "nothing"
    kinds = [type(s).__name__ for s in body]
    return f"{len(body)} statements ({', '.join(kinds)})"


# names ---------------------------------------------------------------------------------------

def names_in(kernel: Kernel, axes: bool = True) -> set:
    """Variable names a kernel binds or uses: loops, locals, symbolic sizes and (unless `axes`
    is False) Reduce axes."""
    names = set()
    for s in walk(kernel.body):
        if isinstance(s, (Loop, Local, Assign)):
            names.add(s.var.name)
        for e in exprs_of(s):
            names |= {v.name for v in free_vars(e)}
    if axes:
        for e in all_exprs(kernel.body):
            if isinstance(e, Reduce):
                names |= {v.name for v, _, _ in e.axes}
    for b in kernel.buffers:
        while b is not None:
            for e in (*b.shape, *b.strides, b.offset):
                names |= {v.name for v in free_vars(e)}
            b = b.base
    return names


def fresh_var(base: str, taken: set, dtype=None) -> Var:
    """A Var named `base` (or `base_1`, `base_2`...) not in `taken`; the name is then taken."""
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return Var(name) if dtype is None else Var(name, dtype)
