"""Options of the native back end, and the error it raises for Loop IR it cannot compile."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import KilnError


@dataclass(frozen=True)
class CodegenOptions:
    # LLVM's optimization level for the module (the new pass manager's default pipeline).
    opt_level: int = 3
    # Lanes of a VECTORIZED loop whose own `width` is 0; 0 = the target's vector register
    # size over the loop's widest element (16 for float32 with AVX-512).
    vector_width: int = 0
    # PARALLEL loops run on the thread pool; False runs them serially (same code, one thread).
    parallel: bool = True
    # Let LLVM reorder float add/mul reductions (so it can vectorize them) and fuse a*b+c
    # into FMAs. Results then differ from the interpreter's strict order by rounding only.
    reassociate: bool = True
    # Override the host CPU name / feature string (for testing other targets' code paths).
    cpu: str | None = None
    features: str | None = None
    # Debug: poison each arena region when its tensor dies (NaN / 0xA5 bytes), so a read of
    # dead memory shows in the results (kiln/passes/plan_memory.py).
    poison_dead: bool = False


class CodegenError(KilnError):
    """Loop IR that the native back end cannot compile (or a malformed program)."""
