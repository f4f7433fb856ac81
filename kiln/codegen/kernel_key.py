"""Kernels that compile to the same code: the key under which one LLVM function serves them all.

Two kernels whose Loop IR is the same up to the names of their buffers (the two layers of a
transformer, the repeated blocks of a ResNet) differ in code only in where their root buffers'
pointers come from. Kernels therefore read those places from a slot table (one private constant
per call, kiln/codegen/emit_program.py), and a kernel whose key was seen before calls the
function emitted for the first one with its own table: LLVM optimizes and compiles it once.

The key is the kernel body's text (kiln/loops/printer.py) with each buffer named by its
position of first use and each variable the kernel binds (loop, local, reduction axis) by its
position of first binding, plus, per buffer, everything code generation reads from it: dtype,
shape, strides, offset, its root's position, and per root its kind, the ABI table it lives in
and which earlier root it shares alias scopes with (an output written in place over an input).
"""

from __future__ import annotations

import re

from ..loops.buffer import BufferKind
from ..loops.expr import Reduce, children
from ..loops.printer import _body, format_expr
from ..loops.stmt import Local, Loop, exprs_of, walk


def _text(e) -> str:
    return format_expr(e) if not isinstance(e, (int, str)) else str(e)


def kernel_key(kernel, used: list, layout) -> tuple | None:
    """The dedup key of `kernel` (`used`: its buffers in order of first use, views included);
    None when it must get a function of its own."""
    names = [b.name for b in used]
    if len(set(names)) != len(names):
        return None
    roots = list(dict.fromkeys(b.root for b in used))
    at = {r: j for j, r in enumerate(roots)}
    aliases = [layout.memory.alias_root(r) if r.kind is not BufferKind.LOCAL else r
               for r in roots]
    root_desc = []
    for j, r in enumerate(roots):
        if r.kind is BufferKind.LOCAL:
            where = "local"
        elif r.kind is BufferKind.TEMP:
            where = "temp"
        else:
            where = f"table{layout.pointer_slot(r)[0]}"
        root_desc.append((where, r.kind.value, aliases.index(aliases[j])))
    buf_desc = tuple((b.dtype.short, b.kind.value, at[b.root],
                      tuple(_text(d) for d in b.shape), tuple(_text(s) for s in b.strides),
                      _text(b.offset)) for b in used)
    lines: list = []
    _body(kernel.body, "", lines)
    text = "\n".join(lines)
    canonical = {n: f"b{k}" for k, n in enumerate(names)}
    if names:
        pattern = re.compile("%(" + "|".join(re.escape(n) for n in
                                             sorted(names, key=len, reverse=True)) + r")\[")
        text = pattern.sub(lambda m: f"%{canonical[m.group(1)]}[", text)
    bound = _bound_vars(kernel.body)
    renamed = {}
    for v in bound:
        renamed.setdefault(v.name, f"${len(renamed)}")
    text = _IDENT.sub(lambda m: renamed.get(m.group(0), m.group(0)), text)
    var_desc = tuple((renamed[v.name], v.dtype.short) for v in bound)
    return text, buf_desc, tuple(root_desc), var_desc


_IDENT = re.compile(r"(?<![\w.%])[A-Za-z_][\w.]*")


def _bound_vars(body) -> list:
    """The Vars `body` binds, in order: loop and local variables, reduction axes."""
    out: list = []
    seen: set = set()

    def expr(e):
        if id(e) in seen:
            return
        seen.add(id(e))
        if isinstance(e, Reduce):
            out.extend(v for v, _, _ in e.axes)
        for c in children(e):
            expr(c)

    for s in walk(body):
        if isinstance(s, Loop):
            out.append(s.var)
        elif isinstance(s, Local):
            out.append(s.var)
        for e in exprs_of(s):
            expr(e)
    return out


def slot_values(roots: list, layout) -> list[int]:
    """Per root of a kernel (in its order of first use), its position in the ABI table the
    generated code reads it from (0 for LOCAL roots, which live on the stack)."""
    values = []
    for r in roots:
        if r.kind is BufferKind.LOCAL:
            values.append(0)
        elif r.kind is BufferKind.TEMP:
            values.append(layout.temp_offset_slot(layout.temp_index(r)))
        else:
            values.append(layout.pointer_slot(r)[1])
    return values
