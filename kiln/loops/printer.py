"""Loop IR → text, for `kiln compile --emit loops` and for reading what lowering produced.

    kernel add_relu(%x: f32[n,4] in, %y: f32[n,4] out) {
      parallel for i0 in 0..n {
        vector<8> for i1 in 0..4 {
          %y[i0, i1] = max(%x[i0, i1] + 1.0, 0.0)
        }
      }
    }
"""

from __future__ import annotations

from ..ir.dtypes import DType
from ..ir.printer import format_float
from .buffer import Buffer
from .expr import Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var
from .stmt import Assign, If, Kernel, Local, Loop, LoopKind, Program, Store

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_REDUCE = {"add": "sum", "mul": "prod", "max": "max", "min": "min", "and": "all", "or": "any",
           "xor": "xor"}


def print_program(p: Program) -> str:
    lines = [f"program @{p.name}(" + ", ".join(_buffer_decl(b) for b in p.inputs) + ") -> (" +
             ", ".join(_buffer_decl(b) for b in p.outputs) + ")"]
    for b in p.buffers:
        if b not in p.inputs and b not in p.outputs:
            lines.append(f"  buffer {_buffer_decl(b)}")
    for k in p.kernels:
        lines.extend("  " + line for line in print_kernel(k).splitlines())
    return "\n".join(lines) + "\n"


def print_kernel(k: Kernel) -> str:
    params = ", ".join(_buffer_decl(b) for b in k.buffers)
    lines = [f"kernel {k.name}({params}) {{"]
    _body(k.body, "  ", lines)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _buffer_decl(b: Buffer) -> str:
    dims = ",".join(format_expr(d) for d in b.shape)
    text = f"%{b.name}: {b.dtype.short}[{dims}] {b.kind.value}"
    if b.base is not None:
        strides = ",".join(format_expr(s) for s in b.strides)
        text += f" view of %{b.base.name} strides [{strides}] offset {format_expr(b.offset)}"
    return text


def _body(stmts, indent: str, lines: list) -> None:
    for s in stmts:
        if isinstance(s, Loop):
            kind = s.kind.value
            if s.kind is LoopKind.VECTORIZED:
                kind = f"vector<{s.width}> for"
            elif s.kind is LoopKind.UNROLLED:
                kind = f"unrolled<{s.width or 'all'}> for"
            lines.append(f"{indent}{kind} {s.var.name} in {format_expr(s.start)}..{format_expr(s.stop)} {{")
            _body(s.body, indent + "  ", lines)
            lines.append(f"{indent}}}")
        elif isinstance(s, Store):
            lines.append(f"{indent}{_ref(s.buffer, s.index)} = {format_expr(s.value)}")
        elif isinstance(s, Local):
            lines.append(f"{indent}local {s.var.name}: {s.var.dtype.short} = {format_expr(s.init)}")
        elif isinstance(s, Assign):
            lines.append(f"{indent}{s.var.name} = {format_expr(s.value)}")
        elif isinstance(s, If):
            lines.append(f"{indent}if {format_expr(s.cond)} {{")
            _body(s.then, indent + "  ", lines)
            if s.orelse:
                lines.append(f"{indent}}} else {{")
                _body(s.orelse, indent + "  ", lines)
            lines.append(f"{indent}}}")
        else:
            raise TypeError(f"not a Loop IR statement: {s!r}")


def _ref(b: Buffer, index) -> str:
    return f"%{b.name}[{', '.join(format_expr(i) for i in index)}]"


def format_expr(e: Expr, parent_prec: int = 0) -> str:
    if isinstance(e, Const):
        if e.dtype is DType.bool:
            return "true" if e.value else "false"
        if e.dtype.is_float:
            text = format_float(e.value)
            return text if e.dtype is DType.float32 else f"{text}:{e.dtype.short}"
        return str(e.value) if e.dtype is DType.int64 else f"{e.value}:{e.dtype.short}"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Load):
        return _ref(e.buffer, e.index)
    if isinstance(e, Binary):
        if e.op in _INFIX:
            prec = 1 if e.op in ("add", "sub") else 2
            text = f"{format_expr(e.a, prec)} {_INFIX[e.op]} {format_expr(e.b, prec + 1)}"
            return f"({text})" if prec < parent_prec else text
        return f"{e.op}({format_expr(e.a)}, {format_expr(e.b)})"
    if isinstance(e, Compare):
        text = f"{format_expr(e.a, 1)} {_CMP[e.op]} {format_expr(e.b, 1)}"
        return f"({text})" if parent_prec else text
    if isinstance(e, Unary):
        return f"-{format_expr(e.a, 3)}" if e.op == "neg" else f"{e.op}({format_expr(e.a)})"
    if isinstance(e, Select):
        return f"select({format_expr(e.cond)}, {format_expr(e.a)}, {format_expr(e.b)})"
    if isinstance(e, Cast):
        return f"{e.dtype.short}({format_expr(e.a)})"
    if isinstance(e, Reduce):
        axes = ", ".join(f"{v.name} in {format_expr(s)}..{format_expr(t)}" for v, s, t in e.axes)
        return f"{_REDUCE[e.combiner]}({axes}: {format_expr(e.body)}; init {format_expr(e.init)})"
    raise TypeError(f"not a Loop IR expression: {e!r}")
