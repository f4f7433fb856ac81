"""Loop IR expressions -> LLVM values, in scalar code and in the vector code of VECTORIZED loops.

In vector code a value is a scalar when it is the same in every lane (uniform) and a vector of
`width` lanes when it is not (varying); operations splat a uniform operand against a varying
one. Memory is where vector code earns its keep:

- an address that does not depend on the lane is one scalar load (guarded by "any lane
  active" under a mask, so a masked-off load never touches memory);
- an address that steps by one element per lane is one vector load (masked in the tail);
- any other address is a gather of per-lane pointers (base + lane * step when the step is
  known, else each lane's own index).

Loads are never speculated: a Select whose branches load evaluates each branch only where it
is taken (a branch in scalar code, a narrower mask in vector code), as the interpreter does.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ..ir.dtypes import DType
from ..loops.buffer import Buffer
from ..loops.expr import Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var, lift
from . import narrow
from .analysis import address_step
from .function import FunctionEmitter, Scope, Slot
from .lltypes import (FLOAT, I1, I32, I64, PTR, broadcast, const, intrinsic, lane_indices, lanes,
                      scalar_constant, splat, storage_type, with_lanes)
from .options import CodegenError

# Combiners whose float form may be reassociated so LLVM can vectorize the reduction.
_REASSOCIABLE = {"add", "mul"}


@dataclass
class Access:
    """Where a load or store goes: 'scalar' (one pointer), 'contiguous' (pointer to lane 0)
    or 'gather' (a vector of pointers)."""

    kind: str
    ptr: ir.Value


class ExprEmitter(FunctionEmitter):

    def emit(self, e: Expr, scope: Scope) -> ir.Value:
        hit = scope.cache.get(e)
        if hit is not None:
            return hit
        v = self._emit(e, scope)
        scope.cache.put(e, v)
        return v

    def emit_as(self, e: Expr, dtype: DType, scope: Scope) -> ir.Value:
        """`e` converted to `dtype` (stores and locals convert like NumPy assignment)."""
        return self.arith.cast(self.emit(e, scope), e.dtype, dtype)

    def index(self, e, scope: Scope) -> ir.Value:
        """An index, bound or stride as i64 (narrower integer values are widened)."""
        e = lift(e)
        return self.emit_as(e, DType.int64, scope)

    def condition(self, e: Expr, scope: Scope) -> ir.Value:
        """A condition as i1 (a non-bool value is true when non-zero)."""
        return self.emit_as(e, DType.bool, scope)

    def is_varying(self, e: Expr, scope: Scope) -> bool:
        return scope.width > 1 and bool(self.names.names(e) & scope.varying)

    def _emit(self, e: Expr, scope: Scope) -> ir.Value:
        b, arith = self.b, self.arith
        if isinstance(e, Const):
            return scalar_constant(e.dtype, e.value)
        if isinstance(e, Var):
            return self.lookup(e.name, scope)
        if isinstance(e, Load):
            return self.load(e.buffer, e.index, scope)
        if isinstance(e, Binary):
            x, y = broadcast(b, self.emit(e.a, scope), self.emit_as(e.b, e.a.dtype, scope))
            return arith.binary(e.op, x, y, e.a.dtype)
        if isinstance(e, Unary):
            return arith.unary(e.op, self.emit(e.a, scope), e.a.dtype)
        if isinstance(e, Compare):
            x, y = broadcast(b, self.emit(e.a, scope), self.emit_as(e.b, e.a.dtype, scope))
            return arith.compare(e.op, x, y, e.a.dtype)
        if isinstance(e, Cast):
            return arith.cast(self.emit(e.a, scope), e.a.dtype, e.dtype)
        if isinstance(e, Select):
            return self._select(e, scope)
        if isinstance(e, Reduce):
            return self._reduce(e, scope)
        raise CodegenError(f"not a Loop IR expression: {e!r}")

    def lookup(self, name: str, scope: Scope) -> ir.Value:
        v = scope.env.get(name)
        if v is None:
            return self.size(name)
        if isinstance(v, Slot):
            return self.b.load(v.ptr, typ=v.type)
        return v

    # --- select: never load from the branch not taken --------------------------------------

    def _select(self, e: Select, scope: Scope) -> ir.Value:
        b = self.b
        cond = self.condition(e.cond, scope)
        speculable = not (self.names.has_load(e.a) or self.names.has_load(e.b))
        if speculable:
            x, y = broadcast(b, self.emit_as(e.a, e.dtype, scope),
                             self.emit_as(e.b, e.dtype, scope))
            if lanes(cond) > 1:     # a scalar condition may pick between vectors, not the reverse
                x, y = splat(b, x, lanes(cond)), splat(b, y, lanes(cond))
            return b.select(cond, x, y)
        if lanes(cond) > 1:     # varying condition: each side under its own mask
            notc = b.xor(cond, const(cond.type, 1))
            x = self.emit_as(e.a, e.dtype, scope.child(mask=self._and_mask(scope.mask, cond)))
            y = self.emit_as(e.b, e.dtype, scope.child(mask=self._and_mask(scope.mask, notc)))
            x, y = splat(b, x, scope.width), splat(b, y, scope.width)
            return b.select(cond, x, y)
        width = scope.width if self.is_varying(e, scope) else 1
        then_bb = b.append_basic_block("sel.then")
        else_bb = b.append_basic_block("sel.else")
        merge_bb = b.append_basic_block("sel.end")
        b.cbranch(cond, then_bb, else_bb)
        results = []
        for bb, branch in ((then_bb, e.a), (else_bb, e.b)):
            b.position_at_end(bb)
            v = splat(b, self.emit_as(branch, e.dtype, scope.child()), width)
            results.append((v, b.block))
            b.branch(merge_bb)
        b.position_at_end(merge_bb)
        phi = b.phi(results[0][0].type)
        for v, bb in results:
            phi.add_incoming(v, bb)
        return phi

    def _and_mask(self, mask, cond):
        return cond if mask is None else self.b.and_(mask, cond)

    # --- reductions: an accumulator loop per axis ------------------------------------------

    def _reduce(self, e: Reduce, scope: Scope) -> ir.Value:
        dtype = e.init.dtype
        width = scope.width if self.is_varying(e, scope) else 1
        acc = splat(self.b, self.emit(e.init, scope), width)
        flags = ()
        if self.options.reassociate and dtype.is_float and e.combiner in _REASSOCIABLE:
            flags = ("reassoc", "contract")
        # a fresh cache: the axes may shadow names that cached outer values were computed with
        inner = scope.binding(v.name for v, _, _ in e.axes)
        env = inner.env

        def level(k: int, acc_in):
            if k == len(e.axes):
                value = splat(self.b, self.emit_as(e.body, dtype, inner.child()), width)
                return self._combine(e.combiner, acc_in, value, dtype, flags)
            v, start, stop = e.axes[k]
            lo, hi = self.index(start, scope), self.index(stop, scope)

            def body(i, carried):
                env[v.name] = i
                return [level(k + 1, carried[0])]

            return self.counted_loop(lo, hi, [acc_in], body)[0]

        return level(0, acc)

    def _combine(self, op, acc, value, dtype, flags):
        if flags:
            b = self.b
            r = b.fadd(acc, value, flags=flags) if op == "add" else b.fmul(acc, value, flags=flags)
            return self.arith.round(r, dtype)
        return self.arith.binary(op, acc, value, dtype)

    def counted_loop(self, start, stop, carried: list, body, step: int = 1,
                     hints: tuple = ()) -> list:
        """for (i = start; i < stop; i += step) with loop-carried values as phis; `body(i,
        values)` emits one iteration and returns the next values. Returns the values at exit.
        `hints` are llvm.loop properties for LLVM's loop passes."""
        b = self.b
        pre = b.block
        header = b.append_basic_block("loop")
        body_bb = b.append_basic_block("loop.body")
        exit_bb = b.append_basic_block("loop.end")
        b.branch(header)
        b.position_at_end(header)
        i = b.phi(I64)
        i.add_incoming(start, pre)
        phis = []
        for v in carried:
            phi = b.phi(v.type)
            phi.add_incoming(v, pre)
            phis.append(phi)
        b.cbranch(b.icmp_signed("<", i, stop), body_bb, exit_bb)
        b.position_at_end(body_bb)
        nxt = body(i, phis)
        i_next = b.add(i, ir.Constant(I64, step), flags=("nsw",))
        for phi, v in zip(phis, nxt):
            phi.add_incoming(v, b.block)
        i.add_incoming(i_next, b.block)
        latch = b.branch(header)
        if hints:
            latch.set_metadata("llvm.loop", self.program.loop_hints(hints))
        b.position_at_end(exit_bb)
        return phis

    # --- memory ----------------------------------------------------------------------------

    def linear_index(self, buf: Buffer, index, scope: Scope) -> ir.Value:
        """offset + sum(index[d] * strides[d]), in elements of the root buffer.
        Constant terms are summed here and added once; a product or sum of the same emitted
        values is emitted once per scope (the unrolled accesses of a tile share them)."""
        if len(index) != buf.rank:
            raise CodegenError(f"{buf.name} has rank {buf.rank}, indexed with {len(index)}")
        total, constant = None, 0
        terms = [self.index(buf.offset, scope)]
        terms += [self._mul_index(self.index(i, scope), self.index(s, scope), scope)
                  for i, s in zip(index, buf.strides)]
        for term in terms:
            if _int_constant(term) is not None:
                constant += _int_constant(term)
            else:
                total = term if total is None else self._index_op("add", total, term, scope)
        constant = _wrap64(constant)
        if total is None:
            return ir.Constant(I64, constant)
        if constant:
            total = self._index_op("add", total, ir.Constant(I64, constant), scope)
        return total

    def _mul_index(self, i, s, scope: Scope):
        ci, cs = _int_constant(i), _int_constant(s)
        if ci is not None and cs is not None:
            return ir.Constant(I64, _wrap64(ci * cs))
        if ci == 0 or cs == 0:
            return ir.Constant(I64, 0)
        if cs == 1:
            return i
        if ci == 1:
            return s
        return self._index_op("mul", i, s, scope)

    def _index_op(self, op: str, x, y, scope: Scope):
        """x op y (i64 add or mul, scalars or vectors), emitted once per scope."""
        key = (op, _value_key(x), _value_key(y))
        hit = scope.cache.get_key(key)
        if hit is not None:
            return hit
        b = self.b
        x, y = broadcast(b, x, y)
        v = b.add(x, y) if op == "add" else b.mul(x, y)
        scope.cache.put_key(key, v)
        return v

    def access(self, buf: Buffer, index, scope: Scope) -> Access:
        b = self.b
        index = tuple(index)
        root_ptr = self.root_pointer(buf)
        etype = storage_type(buf.dtype)
        if scope.width == 1 or not self._index_varying(buf, index, scope):
            idx = self.linear_index(buf, index, scope)
            return Access("scalar", b.gep(root_ptr, [idx], source_etype=etype))
        var, base = scope.vector_var or (None, None)
        step = (address_step(buf, index, var, set(scope.varying), self.names)
                if var is not None else None)
        if step is not None:
            at_lane0 = scope.fresh(env={**scope.env, var: base}, varying=frozenset())
            first = self.linear_index(buf, index, at_lane0)
            if step == Const(1):
                return Access("contiguous", b.gep(root_ptr, [first], source_etype=etype))
            stride = self.index(step, at_lane0)
            idx = b.add(splat(b, first, scope.width),
                        b.mul(lane_indices(scope.width), splat(b, stride, scope.width)))
        else:
            idx = splat(b, self.linear_index(buf, index, scope), scope.width)
        ptrs = b.gep(root_ptr, [idx], source_etype=etype)
        ptrs.type = ir.VectorType(PTR, scope.width)   # llvmlite types a vector GEP as scalar
        return Access("gather", ptrs)

    def _index_varying(self, buf, index, scope) -> bool:
        return any(self.names.names(i) & scope.varying for i in index)

    def load(self, buf: Buffer, index, scope: Scope) -> ir.Value:
        b = self.b
        acc = self.access(buf, index, scope)
        st = storage_type(buf.dtype)
        align = buf.dtype.itemsize
        if acc.kind == "scalar":
            if scope.mask is None:
                v = b.load(acc.ptr, typ=st, align=align)
                self.tag(v, buf)
            else:
                v = self._guarded_scalar_load(acc.ptr, st, align, buf, scope.mask)
            return self.to_compute(v, buf.dtype)
        W = scope.width
        vt = ir.VectorType(st, W)
        mask = scope.mask
        if acc.kind == "contiguous" and mask is None:
            v = b.load(acc.ptr, typ=vt, align=align)
        elif acc.kind == "contiguous":
            fn = intrinsic(self.module, "masked.load", vt, [PTR, I32, mask.type, vt], [vt, PTR])
            v = b.call(fn, [acc.ptr, ir.Constant(I32, align), mask, const(vt, 0)])
        else:
            mask = mask if mask is not None else const(ir.VectorType(I1, W), 1)
            fn = intrinsic(self.module, "masked.gather", vt, [acc.ptr.type, I32, mask.type, vt],
                           [vt, acc.ptr.type])
            v = b.call(fn, [acc.ptr, ir.Constant(I32, align), mask, const(vt, 0)])
        self.tag(v, buf)
        return self.to_compute(v, buf.dtype)

    def _guarded_scalar_load(self, ptr, st, align, buf, mask):
        """A uniform load in masked vector code: done only if some lane is active."""
        b = self.b
        anyfn = intrinsic(self.module, "vector.reduce.or", I1, [mask.type], [mask.type])
        active = b.call(anyfn, [mask])
        pre = b.block
        load_bb = b.append_basic_block("guarded.load")
        done_bb = b.append_basic_block("guarded.end")
        b.cbranch(active, load_bb, done_bb)
        b.position_at_end(load_bb)
        v = b.load(ptr, typ=st, align=align)
        self.tag(v, buf)
        b.branch(done_bb)
        b.position_at_end(done_bb)
        phi = b.phi(st)
        phi.add_incoming(v, load_bb)
        phi.add_incoming(const(st, 0), pre)
        return phi

    def store(self, buf: Buffer, index, value: ir.Value, scope: Scope) -> None:
        """Store a compute value (already of buf's dtype); in vector code a uniform address
        keeps the last active lane's value, like the sequential loop would."""
        b = self.b
        acc = self.access(buf, index, scope)
        v = self.to_storage(value, buf.dtype)
        align = buf.dtype.itemsize
        W = scope.width
        if acc.kind == "scalar" and lanes(v) == 1 and scope.mask is None:
            self.tag(b.store(v, acc.ptr, align=align), buf)
            return
        mask = scope.mask
        v = splat(b, v, W)
        if acc.kind == "contiguous":
            if mask is None:
                instr = b.store(v, acc.ptr, align=align)
            else:
                fn = intrinsic(self.module, "masked.store", ir.VoidType(),
                               [v.type, PTR, I32, mask.type], [v.type, PTR])
                instr = b.call(fn, [v, acc.ptr, ir.Constant(I32, align), mask])
        else:
            ptrs = acc.ptr if acc.kind == "gather" else splat(b, acc.ptr, W)
            mask = mask if mask is not None else const(ir.VectorType(I1, W), 1)
            fn = intrinsic(self.module, "masked.scatter", ir.VoidType(),
                           [v.type, ptrs.type, I32, mask.type], [v.type, ptrs.type])
            instr = b.call(fn, [v, ptrs, ir.Constant(I32, align), mask])
        self.tag(instr, buf)

    # --- storage <-> compute ---------------------------------------------------------------

    def to_compute(self, v: ir.Value, dtype: DType) -> ir.Value:
        b, n = self.b, lanes(v)
        if dtype is DType.bool:
            return b.icmp_unsigned("!=", v, const(v.type, 0))
        if dtype is DType.float16:
            self.arith.half()
            return b.fpext(v, with_lanes(FLOAT, n))
        if dtype is DType.bfloat16:
            i32 = with_lanes(I32, n)
            return b.bitcast(b.shl(b.zext(v, i32), const(i32, 16)), with_lanes(FLOAT, n))
        if dtype in narrow.NARROW:
            return narrow.to_compute(b, v, dtype)
        return v

    def to_storage(self, v: ir.Value, dtype: DType) -> ir.Value:
        b, n = self.b, lanes(v)
        if dtype is DType.bool:
            return b.zext(v, with_lanes(ir.IntType(8), n))
        if dtype is DType.float16:
            return b.fptrunc(v, with_lanes(self.arith.half(), n))
        if dtype is DType.bfloat16:
            return self.arith.bf16_bits(v)
        if dtype in narrow.NARROW:
            return narrow.to_storage(b, v, dtype)
        return v


def _int_constant(v) -> int | None:
    """The value of a scalar integer constant, else None."""
    if isinstance(v, ir.Constant) and isinstance(v.type, ir.IntType) and isinstance(v.constant,
                                                                                    int):
        return v.constant
    return None


def _wrap64(x: int) -> int:
    return ((x + (1 << 63)) % (1 << 64)) - (1 << 63)


def _value_key(v):
    """Emitted values by identity (they live as long as the function); constants by value."""
    c = _int_constant(v)
    return ("const", str(v.type), c) if c is not None else id(v)
