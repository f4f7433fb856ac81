"""Schedule transforms: change how a kernel's loops run, never what it computes.

Each transform takes a kernel and returns a new one (the input is left untouched); those that
make loops also return their variables. Loops are addressed by their Var (or its name):

    k, io, ii = split(k, i, 8)
    k, (io, jo), (ii, ji) = tile(k, (i, j), (32, 32))
    k = reorder(k, (io, jo, ii, ji))
    k, ij = fuse(k, i, j)
    k = vectorize(parallelize(k, io), ji, 8)
    k = unroll(k, ii, 4)
    consumer = inline(producer, consumer)            # kiln/loops/inline.py
    k = lower_reductions(k)                          # kiln/loops/reductions.py

A transform raises ScheduleError (naming the kernel and the loops) when the loops are not
shaped as it needs or when the change could alter results; see kiln/loops/dependence.py for
what "could alter results" means.
"""

from __future__ import annotations

from ..errors import ScheduleError
from .dependence import check_independent, check_reorder
from .expr import Binary, Const, Var, free_vars
from .inline import inline
from .nest import (walk, ceildiv, copy_kernel, find_loop, fresh_var, names_in, perfect_chain,
                   simplify, substitute_body)
from .reductions import lower_reductions
from .stmt import Kernel, Loop, LoopKind

__all__ = ["split", "tile", "reorder", "fuse", "vectorize", "unroll", "parallelize", "inline",
           "lower_reductions"]


def split(kernel: Kernel, var, factor: int) -> tuple[Kernel, Var, Var]:
    """`for v in s..e` becomes `for v_o in 0..ceil((e-s)/factor)` around
    `for v_i in 0..min(factor, e - s - v_o*factor)`, with v = s + v_o*factor + v_i.

    A trip count the factor does not divide is handled by a shorter last inner loop (the
    `min`), not by an If around the body: the body stays unguarded, so the inner loop can
    still be vectorized (its tail is the code generator's job) and reordered. When the trip
    count is a constant the factor divides (or one no larger than the factor) the inner stop is
    a plain constant. A PARALLEL loop's kind goes to the outer loop; a VECTORIZED or UNROLLED
    loop's kind and width go to the inner one."""
    if not isinstance(factor, int) or factor < 1:
        raise ScheduleError(f"kernel {kernel.name}: split factor must be a positive integer, "
                            f"got {factor!r}")
    new = copy_kernel(kernel)
    site = find_loop(new, var)
    loop = site.loop
    taken = names_in(new)
    outer_var = fresh_var(f"{loop.var.name}_o", taken, loop.var.dtype)
    inner_var = fresh_var(f"{loop.var.name}_i", taken, loop.var.dtype)
    trips = simplify(loop.stop - loop.start)
    if isinstance(trips, Const) and (trips.value % factor == 0 or trips.value <= factor):
        inner_stop = Const(min(factor, max(trips.value, 0)), trips.dtype)
    else:
        inner_stop = Binary("min", Const(factor, trips.dtype),
                            simplify(trips - outer_var * factor))
    body = substitute_body(loop.body,
                           {loop.var: simplify(loop.start + outer_var * factor + inner_var)})
    inner_kind, inner_width = (loop.kind, loop.width) if loop.kind in (
        LoopKind.VECTORIZED, LoopKind.UNROLLED) else (LoopKind.SERIAL, 0)
    outer_kind = LoopKind.PARALLEL if loop.kind is LoopKind.PARALLEL else LoopKind.SERIAL
    inner = Loop(inner_var, Const(0), inner_stop, body, inner_kind, inner_width)
    site.replace(Loop(outer_var, Const(0), ceildiv(trips, factor), [inner], outer_kind))
    return new, outer_var, inner_var


def tile(kernel: Kernel, vars, factors) -> tuple[Kernel, tuple, tuple]:
    """Split each of the perfectly nested loops `vars` (outermost first) by its factor and move
    all the outer loops outside all the inner ones: (i, j) by (a, b) gives i_o, j_o, i_i, j_i."""
    vars, factors = tuple(vars), tuple(factors)
    if len(vars) != len(factors) or not vars:
        raise ScheduleError(f"kernel {kernel.name}: tile needs one factor per loop, got "
                            f"{len(vars)} loops and {len(factors)} factors")
    sites = [find_loop(kernel, v) for v in vars]
    chain = perfect_chain(kernel, sites[0].loop, sites[-1].loop)
    if [lp.var.name for lp in chain] != [s.loop.var.name for s in sites]:
        raise ScheduleError(
            f"kernel {kernel.name}: tile needs consecutive perfectly nested loops, outermost "
            f"first; the nest from {sites[0].loop.var.name} is "
            f"{', '.join(lp.var.name for lp in chain)}")
    outers, inners = [], []
    for v, f in zip(vars, factors):
        kernel, o, i = split(kernel, v, f)
        outers.append(o)
        inners.append(i)
    return reorder(kernel, outers + inners), tuple(outers), tuple(inners)


def reorder(kernel: Kernel, vars) -> Kernel:
    """Put the loops `vars` in this order (first = outermost), in the positions they occupy.
    The loops from the outermost to the innermost of them must be perfectly nested; loops in
    between that are not listed stay where they are. Raises ScheduleError when a loop's bounds
    would use a variable of a loop moved inside it, or when the new order could change what
    iterations read (see kiln/loops/dependence.py)."""
    names = [v.name if isinstance(v, Var) else str(v) for v in vars]
    if len(set(names)) != len(names):
        raise ScheduleError(f"kernel {kernel.name}: reorder lists a loop twice: {names}")
    new = copy_kernel(kernel)
    sites = {n: find_loop(new, n) for n in names}
    by_depth = sorted(sites.values(), key=lambda s: len(s.enclosing))
    top, bottom = by_depth[0], by_depth[-1]
    chain = perfect_chain(new, top.loop, bottom.loop)
    chain_names = [lp.var.name for lp in chain]
    if missing := [n for n in names if n not in chain_names]:
        raise ScheduleError(f"kernel {kernel.name}: loops {', '.join(missing)} are not in the "
                            f"nest {' > '.join(chain_names)}")
    slots = [p for p, n in enumerate(chain_names) if n in sites]
    order = list(chain)
    for p, n in zip(slots, names):
        order[p] = sites[n].loop
    new_names = [lp.var.name for lp in order]
    for depth, lp in enumerate(order):
        inner = set(new_names[depth + 1:])
        used = {v.name for v in free_vars(lp.start) | free_vars(lp.stop)} & inner
        if used:
            raise ScheduleError(
                f"kernel {kernel.name}: cannot move loop {lp.var.name} outside "
                f"{', '.join(sorted(used))}: its bounds use them",
                hint="a loop's bounds may only use variables of loops around it")
    innermost_body = chain[-1].body
    check_reorder(new, chain_names, new_names, innermost_body)
    for outer, inner in zip(order, order[1:]):
        outer.body = [inner]
    order[-1].body = innermost_body
    top.replace(order[0])
    return new


def fuse(kernel: Kernel, outer, inner) -> tuple[Kernel, Var]:
    """Merge `outer` and the loop `inner` that is its whole body into one loop over the
    product of their trip counts; v_outer and v_inner are recovered with // and %. The fused
    loop is SERIAL (parallelize or vectorize it afterwards). Trip counts are assumed >= 0."""
    new = copy_kernel(kernel)
    site = find_loop(new, outer)
    o = site.loop
    inner_name = inner.name if isinstance(inner, Var) else str(inner)
    if len(o.body) != 1 or not isinstance(o.body[0], Loop) or o.body[0].var.name != inner_name:
        raise ScheduleError(f"kernel {kernel.name}: cannot fuse {o.var.name} and {inner_name}: "
                            f"loop {inner_name} must be the whole body of loop {o.var.name}")
    i = o.body[0]
    if o.var in free_vars(i.start) | free_vars(i.stop):
        raise ScheduleError(f"kernel {kernel.name}: cannot fuse {o.var.name} and {i.var.name}: "
                            f"the bounds of {i.var.name} depend on {o.var.name}")
    outer_trips = _trips(o)
    inner_trips = _trips(i)
    fused = fresh_var(f"{o.var.name}_{i.var.name}", names_in(new), o.var.dtype)
    mapping = {o.var: simplify(o.start + fused // inner_trips),
               i.var: simplify(i.start + fused % inner_trips)}
    body = substitute_body(i.body, mapping)
    site.replace(Loop(fused, Const(0), simplify(outer_trips * inner_trips), body))
    return new, fused


def _trips(loop: Loop):
    trips = simplify(loop.stop - loop.start)
    return Const(max(trips.value, 0), trips.dtype) if isinstance(trips, Const) else trips


def vectorize(kernel: Kernel, var, width: int = 0) -> Kernel:
    """Run loop `var` `width` lanes at a time (0: the target's natural width). Its iterations
    must write distinct elements (see check_independent)."""
    if not isinstance(width, int) or width < 0 or width & (width - 1):
        raise ScheduleError(f"kernel {kernel.name}: vector width must be 0 (the target's "
                            f"choice) or a power of two, got {width!r}")
    new = copy_kernel(kernel)
    loop = find_loop(new, var).loop
    check_independent(new, loop, "vectorize")
    loop.kind, loop.width = LoopKind.VECTORIZED, width
    return new


def unroll(kernel: Kernel, var, factor: int = 0) -> Kernel:
    """Unroll loop `var` by `factor` (0: fully, which needs constant bounds). Always legal:
    iterations keep their order."""
    if not isinstance(factor, int) or factor < 0:
        raise ScheduleError(f"kernel {kernel.name}: unroll factor must be >= 0, got {factor!r}")
    new = copy_kernel(kernel)
    loop = find_loop(new, var).loop
    if factor == 0 and not isinstance(simplify(loop.stop - loop.start), Const):
        raise ScheduleError(f"kernel {kernel.name}: cannot fully unroll loop {loop.var.name}: "
                            f"its trip count is not a constant",
                            hint="give a factor, or split the loop by a constant first")
    loop.kind, loop.width = LoopKind.UNROLLED, factor
    return new


def parallelize(kernel: Kernel, var) -> Kernel:
    """Run the iterations of loop `var` across the thread pool. They must write distinct
    elements, and no loop around or inside it may be PARALLEL already."""
    new = copy_kernel(kernel)
    site = find_loop(new, var)
    loop = site.loop
    nested = [lp.var.name for lp in site.enclosing if lp.kind is LoopKind.PARALLEL]
    nested += [s.var.name for s in _loops(loop.body) if s.kind is LoopKind.PARALLEL]
    if nested:
        raise ScheduleError(f"kernel {kernel.name}: cannot parallelize loop {loop.var.name}: "
                            f"loop {nested[0]} in the same nest is parallel already",
                            hint="one PARALLEL loop per nest; fuse loops to get more iterations")
    check_independent(new, loop, "parallelize")
    loop.kind, loop.width = LoopKind.PARALLEL, 0
    return new


def _loops(body: list):
    return (s for s in walk(body) if isinstance(s, Loop))
