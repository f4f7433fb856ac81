"""When may loops run in another order, or at once? The checks behind reorder, parallelize and
vectorize.

The question is asked of a *region* (the body of a loop nest) and the *band* of loop variables
being changed. For every buffer the region writes (and every outer Local it assigns), the
accesses decide:

- A band variable is *pinned* by the buffer when every access to it agrees on an index
  component that uses the variable (and nothing bound inside the region, nor a loaded value):
  different values of the variable then touch different elements. Iterations that differ in
  pinned variables never meet, so their order does not matter.
- Iterations that differ only in the unpinned ("free") variables touch the same elements. Their
  order is kept when the free variables keep their relative order; otherwise the change is
  allowed only when every access is the same element and the region either only overwrites it,
  unconditionally (the last iteration, which writes last in every order, wins), or folds into
  it with one associative, commutative update `x = x op e` (a reduction: float sums then agree
  up to rounding, since they are added in another order).

A loop may run in parallel (or as vector lanes) when its variable is pinned by every buffer it
writes and it assigns no outer Local. Index expressions are assumed to map distinct values of
their loop variables to distinct elements (true of every index lowering and these transforms
write); an index read from memory (a scatter) pins nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ScheduleError
from .expr import COMBINERS, Binary, Load, Reduce, Var, free_vars
from .nest import all_exprs, walk, subexprs
from .printer import format_expr
from .stmt import Assign, If, Kernel, Local, Loop, Store


@dataclass
class Target:
    """One buffer root (or outer Local) written in a region, and every access to it there."""

    name: str
    stores: list = field(default_factory=list)    # Store or Assign statements
    loads: list = field(default_factory=list)     # Load or Var expressions
    conditional: bool = False                     # some store sits under an If

    @property
    def accesses(self) -> list:
        return [(_buffer_of(s), _index_of(s)) for s in self.stores + self.loads]

    def identical(self) -> bool:
        first = self.accesses[0]
        return all(a[0] is first[0] and a[1] == first[1] for a in self.accesses)

    def pinned(self, band: set, inside: set) -> set:
        """Band variable names that separate the elements different iterations touch."""
        accesses = self.accesses
        buffer = accesses[0][0]
        if any(b is not buffer for b, _ in accesses):
            return set()
        same = self.identical()
        out = set()
        for p in range(len(accesses[0][1])):
            component = accesses[0][1][p]
            if any(idx[p] != component for _, idx in accesses):
                continue
            if any(isinstance(x, Load) for x in subexprs(component)):
                continue        # a data-dependent index: distinct iterations may meet
            names = {v.name for v in free_vars(component)}
            if not same and names & inside:
                continue
            out |= names & band
        return out

    def folds(self) -> bool:
        """One update `x = x op e` (op associative and commutative) and no other access."""
        if len(self.stores) != 1 or len(self.loads) != 1:
            return False
        update = self.stores[0]
        value = update.value
        if not isinstance(value, Binary) or value.op not in COMBINERS:
            return False
        mine = self.loads[0]
        return (value.a is mine or value.b is mine) and value.a is not value.b

    def describe(self) -> str:
        b, idx = self.accesses[0]
        if b is None:
            return self.name
        return f"%{b.name}[{', '.join(format_expr(i) for i in idx)}]"


def _buffer_of(x):
    return x.buffer if isinstance(x, (Store, Load)) else None


def _index_of(x):
    return tuple(x.index) if isinstance(x, (Store, Load)) else ()


def targets(body: list) -> tuple[list, set]:
    """The buffers and outer Locals written in `body`, and the names bound inside it."""
    inside, by_key = set(), {}
    for s in walk(body):
        if isinstance(s, (Loop, Local)):
            inside.add(s.var.name)
    for e in all_exprs(body):
        if isinstance(e, Reduce):
            inside |= {v.name for v, _, _ in e.axes}
    guarded = {id(s) for g in walk(body) if isinstance(g, If)
               for s in walk(g.then + g.orelse)}
    for s in walk(body):
        if isinstance(s, Store):
            t = by_key.setdefault(s.buffer.root, Target(f"%{s.buffer.root.name}"))
        elif isinstance(s, Assign) and s.var.name not in inside:
            t = by_key.setdefault(s.var.name, Target(s.var.name))
        else:
            continue
        t.stores.append(s)
        t.conditional |= id(s) in guarded
    for e in all_exprs(body):
        if isinstance(e, Load) and e.buffer.root in by_key:
            by_key[e.buffer.root].loads.append(e)
        elif isinstance(e, Var) and e.name in by_key:
            by_key[e.name].loads.append(e)
    return list(by_key.values()), inside


def check_reorder(kernel: Kernel, old: list, new: list, body: list) -> None:
    """May the perfectly nested band `old` (loop variable names, outermost first) run in the
    order `new` around `body`? Raises ScheduleError when that could change results."""
    band = set(old)
    found, inside = targets(body)
    for t in found:
        free = band - t.pinned(band, inside)
        if [v for v in old if v in free] == [v for v in new if v in free]:
            continue        # iterations that meet keep their order
        if t.identical() and (t.folds() or not (t.loads or t.conditional)):
            continue        # a reduction whose order does not matter, or an overwrite
        raise ScheduleError(
            f"kernel {kernel.name}: cannot reorder {', '.join(old)} as {', '.join(new)}: "
            f"iterations differing in {', '.join(v for v in old if v in free)} all touch "
            f"{t.describe()}, and the new order would change what they read",
            hint="reorder only loops whose iterations write distinct elements, or whose "
                 "common element is a single reduction `x = x op e`")


def check_independent(kernel: Kernel, loop: Loop, what: str) -> None:
    """May the iterations of `loop` run at once (`what`: "parallelize" or "vectorize")?"""
    v = loop.var.name
    found, inside = targets(loop.body)
    for t in found:
        if v not in t.pinned({v}, inside):
            raise ScheduleError(
                f"kernel {kernel.name}: cannot {what} loop {v}: its iterations all touch "
                f"{t.describe()}",
                hint=f"only a loop whose iterations write distinct elements can run at once; "
                     f"a reduction over {v} must stay serial (or be split and combined)")


def buffers_read(body: list) -> set:
    return {e.buffer.root for e in all_exprs(body) if isinstance(e, Load)}


def buffers_written(body: list) -> set:
    return {s.buffer.root for s in walk(body) if isinstance(s, Store)}

