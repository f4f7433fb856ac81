"""kiln's Loop IR: buffers, loop nests, loads/stores and scalar expressions; printer, verifier,
interpreter and schedule transforms. Graph IR is lowered to it (kiln/lowering) and it is
compiled to LLVM IR (kiln/codegen)."""

from .buffer import Buffer, BufferKind
from .expr import Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var
from .stmt import Assign, If, Kernel, Local, Loop, LoopKind, Program, Store

__all__ = ["Buffer", "BufferKind", "Binary", "Cast", "Compare", "Const", "Expr", "Load", "Reduce",
           "Select", "Unary", "Var", "Assign", "If", "Kernel", "Local", "Loop", "LoopKind",
           "Program", "Store"]
