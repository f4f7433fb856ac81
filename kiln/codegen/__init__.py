"""kiln's native back end: Loop IR -> LLVM IR (llvmlite) -> machine code in this process.

    from kiln.codegen import compile_program
    native = compile_program(program)      # one LLVM module, one entry point, -O3, host CPU
    outputs = native.run({"x": x})
    print(native.llvm_ir, native.asm)

emit_program.py documents the entry point's ABI; emit_stmt.py and emit_expr.py how loops and
expressions become (vector) code; arith.py the scalar semantics; target.py the host CPU;
kernel_key.py which kernels share one function.
"""

from .emit_program import ENTRY, BufferLayout
from .jit import NativeProgram, compile_program
from .options import CodegenError, CodegenOptions
from .target import host_target

__all__ = ["ENTRY", "BufferLayout", "NativeProgram", "compile_program", "CodegenError",
           "CodegenOptions", "host_target"]
