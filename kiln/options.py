"""Compile options: one dataclass, passed down explicitly (no globals, no environment variables)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompileOptions:
    opt_level: int = 2
    # Rewrites that change results for NaN, Inf or -0 (x*0 -> 0, x-x -> 0) only when set.
    fast_math: bool = False
    # Constant folding leaves results larger than this unmaterialized (Expand/Tile of many MB).
    fold_size_limit_bytes: int = 1 << 20
    # Group ops into fused kernels at -O2 and up; False keeps one kernel per op (to compare).
    fuse: bool = True
