"""The host target: CPU name and features, a target machine for them, its data layout.

LLVM's native target is initialized once per process (with loop strength reduction off, see
`initialize_llvm`). Every compiled module gets its own
TargetMachine because an MCJIT engine takes ownership of (and frees) the one it is given.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import llvmlite.binding as llvm

from .options import CodegenOptions


@dataclass(frozen=True)
class HostTarget:
    triple: str
    cpu: str
    features: str          # "+avx2,+fma,-avx512fp16,..."
    data_layout: str

    def has(self, feature: str) -> bool:
        return f"+{feature}" in self.features.split(",")

    @property
    def vector_bits(self) -> int:
        """Width of the vector registers code should use."""
        if self.has("avx512f"):
            return 512
        if self.has("avx2") or self.has("avx"):
            return 256
        return 128

    def create_target_machine(self) -> "llvm.TargetMachine":
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                            reloc="default", codemodel="jitdefault")


@functools.lru_cache(maxsize=None)
def initialize_llvm() -> None:
    """Initialize LLVM's native target once (llvmlite 0.50: `llvm.initialize()` raises).

    Loop strength reduction is switched off (`-disable-lsr`, an LLVM option of the process):
    on kiln's code it was the costliest back-end pass (close to half of the machine code
    generation of ResNet-18, a fifth of its whole compile) and the suite's latencies measured
    the same without it (within 1%, side by side in one process)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.set_option("kiln", "-disable-lsr")


@functools.lru_cache(maxsize=None)
def _host(cpu: str | None, features: str | None) -> HostTarget:
    initialize_llvm()
    triple = llvm.get_process_triple()
    cpu = cpu or llvm.get_host_cpu_name()
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    target = llvm.Target.from_triple(triple)
    tm = target.create_target_machine(cpu=cpu, features=features, opt=3, codemodel="jitdefault")
    return HostTarget(triple, cpu, features, str(tm.target_data))


def host_target(options: CodegenOptions | None = None) -> HostTarget:
    options = options or CodegenOptions()
    return _host(options.cpu, options.features)
