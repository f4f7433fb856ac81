"""The named optimization pipelines: what runs, in which order, and why.

The order is the textbook's (and every production graph compiler's):
  1. fold_constants first — it turns shape computations and constant subgraphs into constants,
     which is what lets the later passes see through them;
  2. eliminate_common_subexpressions and simplify iterate together to a fixed point — each
     exposes work for the other (a simplification makes two nodes identical; a merge makes a
     pattern match) and folding runs inside the loop so new constant subgraphs collapse;
  3. fold_batchnorm after simplification, when Conv/Gemm → BatchNormalization chains are plain;
  4. eliminate_dead_code last — every pass before it leaves unused nodes behind;
  5. fuse last among the graph passes: it groups what the passes above left into kernels, and
     needs the final ops (a recognized LayerNorm, a folded Conv) to group them well. Layout
     transformation and memory planning follow it (memory planning works on the lowered
     program's kernel order).
"""

from __future__ import annotations

from .rewrite.pass_manager import FixedPoint, Pass
from .passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
from .passes.eliminate_dead_code import EliminateDeadCode
from .passes.fold_batchnorm import FoldBatchNorm
from .passes.fold_constants import FoldConstants
from .passes.fuse import Fuse
from .passes.fuse_horizontal import FuseHorizontal
from .passes.simplify import Simplify


def pipeline(level: int, fuse: bool = True) -> list[Pass]:
    """The passes of optimization level `level` (0..3), in order; `fuse=False` leaves out the
    fusion passes (one kernel per op, for comparison)."""
    if level <= 0:
        return []                                   # O0: the graph as imported
    if level == 1:
        return [FoldConstants(), EliminateDeadCode()]
    passes = [
        FoldConstants(),
        FixedPoint((EliminateCommonSubexpressions(), Simplify(), FoldConstants())),
        FoldBatchNorm(),
        # after CSE/simplify (siblings then read one Value, biases are plain Adds of constants),
        # before DCE (which drops the weights it replaced) and Fuse (which gives the merged
        # product its bias epilogue and leaves the Split a view)
        FuseHorizontal(),
        EliminateDeadCode(),
        Fuse(),
        # slots: transform_layout -> plan_memory
    ]
    if not fuse:
        passes = [p for p in passes if not isinstance(p, (FuseHorizontal, Fuse))]
    return passes


ALL_PASSES: dict[str, type[Pass]] = {
    p.name: p for p in (FoldConstants, EliminateCommonSubexpressions, Simplify, FoldBatchNorm,
                        FuseHorizontal, EliminateDeadCode, Fuse)
}
