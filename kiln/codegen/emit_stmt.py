"""Loop IR statements -> LLVM: stores, locals, ifs, and the four kinds of loop.

- SERIAL: a counted loop (the loop variable is a phi).
- UNROLLED: the body repeated `width` times per iteration (all of it when the bounds are
  constant and width is 0), then a remainder loop.
- VECTORIZED: explicit vector code of `width` lanes (0: from the target) over the multiple-of-
  width part, then one masked iteration for the tail (none when constant bounds leave no
  tail). A local declared outside the loop and only updated as `acc = acc <op> e` becomes
  per-lane partials combined after the loop (float add/mul only with `reassociate`). A loop that cannot be vector code (another use of an outer
  local, an inner bound that differs per lane) is emitted serial, with a note saying why.
- PARALLEL: the body is outlined into `void body(ptr ctx, i64 begin, i64 end)`; the values it
  reads (loop variables, locals, the loop start, the entry's five pointers) travel in a ctx
  struct; `kiln_parallel_for(body, ctx, n)` runs it over [0, n). A parallel loop inside another
  one, or inside vector code, runs serially.

In vector code an If with a per-lane condition runs both arms under masks; stores are masked
and assignments blend, so inactive lanes keep their values.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ..loops.expr import Const
from ..loops.stmt import Assign, If, Local, Loop, LoopKind, Store, walk
from .analysis import VectorPlan, assigned_names, declared_names, plan_vector_loop, stmt_names
from .emit_expr import ExprEmitter
from .function import Scope, Slot
from .lltypes import I64, PTR, compute_type, const, lane_indices, lanes, splat
from .options import CodegenError


# Explicit vector loops are already vectorized; LLVM's unroller adds little to loops of whole
# vector registers but costs compile time.
VECTOR_LOOP_HINTS = ("llvm.loop.unroll.disable", ("llvm.loop.vectorize.enable", False))
# A serial loop around a vector loop: copies of it would only repeat the vector loop's code
# (LLVM unrolled such loops of few iterations fully, multiplying the code of padded copies).
OUTER_LOOP_HINTS = ("llvm.loop.unroll.disable",)
# An UNROLLED loop with width 0 is unrolled fully up to this many iterations, else by
# PARTIAL_UNROLL (a compile-time guard: the body is emitted once per copy).
MAX_FULL_UNROLL = 256
PARTIAL_UNROLL = 8


class KernelEmitter(ExprEmitter):

    def emit_body(self, stmts, scope: Scope) -> None:
        for s in stmts:
            self.emit_stmt(s, scope)

    def emit_stmt(self, s, scope: Scope) -> None:
        if isinstance(s, Store):
            value = self.emit_as(s.value, s.buffer.dtype, scope.child())
            self.store(s.buffer, s.index, value, scope.child())
        elif isinstance(s, Local):
            varying = scope.width > 1 and s.var.name in scope.varying
            t = compute_type(s.var.dtype, scope.width if varying else 1)
            slot = Slot(self.alloca(t), t, s.var.dtype)
            scope.env[s.var.name] = slot
            self._assign(slot, s.init, scope)
        elif isinstance(s, Assign):
            slot = scope.env.get(s.var.name)
            if not isinstance(slot, Slot):
                raise CodegenError(f"Assign to {s.var.name}, which is not a local in scope here",
                                   hint="declare it with Local (a parallel loop cannot assign "
                                        "locals declared outside it)")
            self._assign(slot, s.value, scope)
        elif isinstance(s, If):
            self._if(s, scope)
        elif isinstance(s, Loop):
            self._loop(s, scope)
        else:
            raise CodegenError(f"not a Loop IR statement: {s!r}")

    def _assign(self, slot: Slot, value_expr, scope: Scope) -> None:
        """Store into a local; under a mask, inactive lanes keep their value."""
        b = self.b
        v = splat(b, self.emit_as(value_expr, slot.dtype, scope.child()), lanes(slot.type))
        if lanes(v) != lanes(slot.type):
            raise CodegenError("a per-lane value assigned to a uniform local (codegen bug)")
        if scope.mask is not None and lanes(v) > 1:
            v = b.select(scope.mask, v, b.load(slot.ptr, typ=slot.type))
        b.store(v, slot.ptr)

    def _if(self, s: If, scope: Scope) -> None:
        b = self.b
        cond = self.condition(s.cond, scope.child())
        if lanes(cond) > 1:
            notc = b.xor(cond, const(cond.type, 1))
            self.emit_body(s.then, scope.child(mask=self._and_mask(scope.mask, cond)))
            if s.orelse:
                self.emit_body(s.orelse, scope.child(mask=self._and_mask(scope.mask, notc)))
            return
        then_bb = b.append_basic_block("if.then")
        else_bb = b.append_basic_block("if.else") if s.orelse else None
        end_bb = b.append_basic_block("if.end")
        b.cbranch(cond, then_bb, else_bb or end_bb)
        b.position_at_end(then_bb)
        self.emit_body(s.then, scope.child())
        b.branch(end_bb)
        if else_bb is not None:
            b.position_at_end(else_bb)
            self.emit_body(s.orelse, scope.child())
            b.branch(end_bb)
        b.position_at_end(end_bb)

    # --- loops -------------------------------------------------------------------------------

    def _loop(self, loop: Loop, scope: Scope) -> None:
        kind = loop.kind
        if kind is LoopKind.PARALLEL and (scope.in_parallel or scope.width > 1):
            kind = LoopKind.SERIAL
        if kind is LoopKind.VECTORIZED and scope.width > 1:
            kind = LoopKind.SERIAL
        if kind is LoopKind.PARALLEL:
            return self._parallel_loop(loop, scope)
        if kind is LoopKind.VECTORIZED:
            plan = plan_vector_loop(loop, self.names, self.options.reassociate)
            if plan.ok:
                return self._vector_loop(loop, plan, scope)
            self.program.note(f"loop {loop.var.name} stays scalar: {plan.reason}")
        if kind is LoopKind.UNROLLED:
            return self._unrolled_loop(loop, scope)
        self._serial_loop(loop, scope)

    def _bounds(self, loop: Loop, scope: Scope):
        return self.index(loop.start, scope.child()), self.index(loop.stop, scope.child())

    def _serial_loop(self, loop: Loop, scope: Scope) -> None:
        start, stop = self._bounds(loop, scope)
        inner = scope.binding([loop.var.name])
        env = inner.env

        def body(i, _):
            env[loop.var.name] = i
            self.emit_body(loop.body, inner.child())
            return []

        hints = OUTER_LOOP_HINTS if _holds_vector_loop(loop.body) else ()
        self.counted_loop(start, stop, [], body, hints=hints)

    def _unrolled_loop(self, loop: Loop, scope: Scope) -> None:
        inner = scope.binding([loop.var.name])
        env = inner.env
        width = loop.width
        if isinstance(loop.start, Const) and isinstance(loop.stop, Const):
            trip = int(loop.stop.value) - int(loop.start.value)
            if (width == 0 and trip <= MAX_FULL_UNROLL) or 0 < trip <= width:
                for k in range(max(trip, 0)):
                    env[loop.var.name] = ir.Constant(I64, int(loop.start.value) + k)
                    self.emit_body(loop.body, inner.child())
                return
            if width == 0:
                self.program.note(f"loop {loop.var.name}: {trip} iterations are too many to "
                                  f"unroll fully; unrolled by {PARTIAL_UNROLL}")
                width = PARTIAL_UNROLL
        if width <= 1:
            return self._serial_loop(loop, scope)
        b, w = self.b, width
        start, stop = self._bounds(loop, scope)
        main_end = self._round_down(start, stop, w)

        def body(i, _):
            for k in range(w):
                env[loop.var.name] = b.add(i, ir.Constant(I64, k)) if k else i
                self.emit_body(loop.body, inner.child())
            return []

        self.counted_loop(start, main_end, [], body, step=w)

        def rest(i, _):
            env[loop.var.name] = i
            self.emit_body(loop.body, inner.child())
            return []

        self.counted_loop(main_end, stop, [], rest)

    def _round_down(self, start, stop, w: int):
        """start + (max(stop - start, 0) rounded down to a multiple of w)."""
        b = self.b
        n = b.sub(stop, start)
        n = b.select(b.icmp_signed("<", n, ir.Constant(I64, 0)), ir.Constant(I64, 0), n)
        return b.add(start, b.mul(b.sdiv(n, ir.Constant(I64, w)), ir.Constant(I64, w)))

    def _vector_loop(self, loop: Loop, plan: VectorPlan, scope: Scope) -> None:
        b = self.b
        width = self.program.vector_width(loop, plan)
        start, stop = self._bounds(loop, scope)
        main_end = self._round_down(start, stop, width)
        name = loop.var.name
        env = dict(scope.env)
        varying = frozenset(plan.varying)
        partials = self._start_partials(plan, env, width)

        def body(v0, _):
            env[name] = b.add(splat(b, v0, width), lane_indices(width))
            inner = scope.child(env=env, width=width, vector_var=(name, v0), varying=varying)
            self.emit_body(loop.body, inner)
            return []

        self.counted_loop(start, main_end, [], body, step=width, hints=VECTOR_LOOP_HINTS)
        if _whole_vectors(loop, width):
            self._finish_partials(partials)
            return
        # the tail: one masked iteration for the last stop - main_end (< width) lanes
        tail_bb = b.append_basic_block("vec.tail")
        end_bb = b.append_basic_block("vec.end")
        b.cbranch(b.icmp_signed("<", main_end, stop), tail_bb, end_bb)
        b.position_at_end(tail_bb)
        idx = b.add(splat(b, main_end, width), lane_indices(width))
        mask = b.icmp_signed("<", idx, splat(b, stop, width))
        env[name] = idx
        inner = scope.child(env=env, width=width, vector_var=(name, main_end), varying=varying,
                            mask=mask)
        self.emit_body(loop.body, inner)
        b.branch(end_bb)
        b.position_at_end(end_bb)
        self._finish_partials(partials)

    def _start_partials(self, plan: VectorPlan, env: dict, width: int) -> list:
        """Per-lane accumulators for the loop's reductions into outer locals, starting at the
        operation's identity (so masked-off lanes never contribute)."""
        partials = []
        for acc, (op, dtype) in plan.reductions.items():
            outer = env.get(acc)
            if not isinstance(outer, Slot):
                raise CodegenError(f"the loop reduces into {acc}, which is not a local here")
            t = compute_type(dtype, width)
            slot = Slot(self.alloca(t), t, dtype)
            self.b.store(self.arith.identity(op, dtype, t), slot.ptr)
            env[acc] = slot
            partials.append((outer, slot, op, dtype))
        return partials

    def _finish_partials(self, partials: list) -> None:
        b = self.b
        for outer, slot, op, dtype in partials:
            lanes_value = b.load(slot.ptr, typ=slot.type)
            total = self.arith.reduce_lanes(op, lanes_value, dtype, self.options.reassociate)
            before = b.load(outer.ptr, typ=outer.type)
            b.store(self.arith.binary(op, before, total, dtype), outer.ptr)

    def _parallel_loop(self, loop: Loop, scope: Scope) -> None:
        b = self.b
        start, stop = self._bounds(loop, scope)
        declared_inside = declared_names(loop.body)
        reads = stmt_names(loop.body, self.names) - {loop.var.name}
        captured = sorted(n for n in reads if n in scope.env)
        clobbered = (assigned_names(loop.body) - declared_inside) & set(captured)
        if clobbered:
            raise CodegenError(f"parallel loop {loop.var.name} assigns {sorted(clobbered)}, "
                               "declared outside it", hint="make the loop SERIAL, or declare "
                               "the local inside the loop body")
        values = [self.lookup(n, scope) for n in captured]
        fields = [PTR] * len(self.abi) + [I64] + [v.type for v in values]
        ctx_type = ir.LiteralStructType(fields)
        body_fn = self.program.outline(loop, captured, ctx_type)
        ctx = self.alloca(ctx_type, align=16)
        for k, v in enumerate([*self.abi, start, *values]):
            b.store(v, field_pointer(b, ctx, ctx_type, k))
        n = b.sub(stop, start)
        n = b.select(b.icmp_signed("<", n, ir.Constant(I64, 0)), ir.Constant(I64, 0), n)
        b.call(self.program.parallel_for, [body_fn, ctx, n])

    def emit_outlined_body(self, loop: Loop, captured: list, ctx_type) -> None:
        """The body of an outlined parallel loop: unpack ctx, run [begin, end)."""
        ctx, begin, end = self.fn.args
        p = self.prologue
        fields = []
        for k, t in enumerate(ctx_type.elements):
            fields.append(p.load(field_pointer(p, ctx, ctx_type, k), typ=t))
        n_abi = len(ctx_type.elements) - 1 - len(captured)
        self.abi = tuple(fields[:n_abi])
        start = fields[n_abi]
        env = dict(zip(captured, fields[n_abi + 1:]))
        scope = Scope(env=env, in_parallel=True)
        b = self.b

        def body(i, _):
            env[loop.var.name] = b.add(start, i)
            self.emit_body(loop.body, scope.child())
            return []

        self.counted_loop(begin, end, [], body)
        b.ret_void()


def _whole_vectors(loop: Loop, width: int) -> bool:
    """Constant bounds a multiple of `width` apart: the loop has no tail to emit."""
    return isinstance(loop.start, Const) and isinstance(loop.stop, Const) and \
        (int(loop.stop.value) - int(loop.start.value)) % width == 0


def field_pointer(b: ir.IRBuilder, ptr, struct_type, k: int):
    """Address of field k of the struct at `ptr` (an opaque pointer)."""
    field = b.gep(ptr, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), k)],
                  source_etype=struct_type)
    field.type = PTR
    return field


def _holds_vector_loop(body) -> bool:
    return any(isinstance(s, Loop) and s.kind is LoopKind.VECTORIZED for s in walk(body))
