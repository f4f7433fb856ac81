"""kiln as a `torch.compile` backend.

    model = torch.compile(module, backend="kiln")              # registered as an entry point
    with torch.no_grad():
        y = model(x)                                           # torch tensors in and out

    torch.compile(module, backend="kiln", dynamic=True)        # one compile for every batch size
    torch.compile(module, backend="kiln", options={"opt_level": 3})
    torch.compile(module, backend="kiln", options={"freeze": False})   # weights as inputs

What happens to each graph Dynamo captures (`kiln_backend(gm, example_inputs)`):

    aot_module_simplified      the Dynamo graph, functionalized and decomposed to core ATen
      (core_aten_decompositions, except ops kiln converts whole: `decompositions()`);
      parameters and buffers are inputs of that graph, in order
    import_fx                  ATen graph -> kiln Graph IR (kiln/frontends/torch/fx_import.py);
      a SymInt input (dynamic=True) becomes a symbolic dim of the tensors it sizes
    optimize_graph             the graph passes of `opt_level` (kiln/pipeline.py)
    compile_graph              Loop IR -> LLVM -> machine code: one CompiledModel
    KilnGraphFunction          what Dynamo calls: tensors in (shared with NumPy, no copy), ONE
                               native call, NumPy outputs back as tensors (no copy)

Graph breaks give several graphs; each is compiled on its own. A graph kiln cannot compile (an
op without a converter or a lowering, a dtype kiln lacks, a tensor not on the CPU) is never
dropped silently and never crashes the program: a `KilnFallbackWarning` names the op and its
source line, and that graph runs eagerly in PyTorch (`gm.forward`). Graphs that need
gradients (an input requires grad and grad mode is on) run eagerly too, with the same warning:
kiln compiles inference; call the model under `torch.no_grad()` or `torch.inference_mode()`.

Options (`torch.compile(..., options={...})`): every field of kiln.CompileOptions
(opt_level, fast_math, fuse, ...) and `freeze` (default True).

Freezing, guarded (the default): parameters and buffers are compiled into the native code as
constants (weights pre-transposed, BatchNorm and constants folded, GEMM weights packed at
compile time). A `WeightGuard` (guards.py) records what identifies each frozen tensor's value
and checks it on every call; when a weight changed (written in place, replaced, reloaded) the
graph is compiled again with the new values, once (`FROZEN_COMPILES`); if weights change
after that, they are taken to keep changing and the graph is compiled with the weights as
inputs, which it keeps from then on. Dynamo shares one graph between instances of a module
class: each instance's weights are a frozen variant of their own, kept side by side (the
guard picks the one that holds), within the same budget. What the guard cannot see (writes
through `p.data`, a NumPy view) is listed in guards.py. A buffer the graph itself writes
(aot_autograd's metadata says which) is never frozen. `freeze=False`: parameters and
buffers are inputs of every call, as with Inductor's default.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import torch

from ...errors import KilnError, UnsupportedOpError
from ...options import CompileOptions
from .guards import WeightGuard, guardable

FALLBACK_NOTE = "this graph runs eagerly in PyTorch"


# frozen compiles of one graph at most: the first, and one more when its weights change (or a
# second module instance shares the graph); past that the graph takes its weights as inputs
FROZEN_COMPILES = 2


class KilnFallbackWarning(UserWarning):
    """A graph Dynamo captured runs eagerly in PyTorch because kiln cannot compile it."""


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    compile: CompileOptions = CompileOptions()
    freeze: bool = True

    @classmethod
    def parse(cls, options) -> "BackendOptions":
        options = dict(options or {})
        freeze = bool(options.pop("freeze", True))
        known = {f.name for f in dataclasses.fields(CompileOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise KilnError(f"unknown torch.compile option(s) for kiln: {unknown}",
                            hint=f"kiln's options are {sorted(known | {'freeze'})}")
        return cls(CompileOptions(**options), freeze)


def kiln_backend(gm: torch.fx.GraphModule, example_inputs, *, options=None):
    """A Dynamo backend: returns a callable equivalent to `gm` (see the module docstring)."""
    opts = BackendOptions.parse(options)
    reason = _eager_reason(gm, example_inputs)
    if reason:
        return _fall_back(gm, reason)
    from torch._functorch.aot_autograd import aot_module_simplified

    frozen = _frozen_inputs(gm, example_inputs) if opts.freeze else {}

    def compile_aten(aten_gm, aten_inputs):
        # the ATen graph's inputs are Dynamo's in order unless aot_autograd lifted more
        aligned = len(aten_inputs) == len(example_inputs)
        mutated = _mutated_inputs()
        try:
            return KilnGraphFunction.compile(
                aten_gm, aten_inputs, opts.compile,
                {i: x for i, x in frozen.items() if i not in mutated} if aligned else {})
        except KilnError as e:
            raise _CannotCompile(explain(e, aten_gm)) from e
        except Exception as e:      # a kiln bug must not take the user's program down
            raise _CannotCompile(f"internal error {type(e).__name__}: {e} "
                                 "(please report it with the model)") from e

    try:
        with torch.no_grad():
            return aot_module_simplified(gm, example_inputs, fw_compiler=compile_aten,
                                         decompositions=decompositions(),
                                         keep_inference_input_mutations=False)
    except _CannotCompile as e:
        return _fall_back(gm, str(e))


class _CannotCompile(Exception):
    pass


def decompositions() -> dict:
    """torch's core ATen decompositions, less those of ops kiln converts whole (attention,
    layer norm, softmax, activations, ...): kiln lowers those as one op, which makes a smaller
    graph that compiles faster (a BERT-style encoder: 5.6 s -> 2.5 s, same speed)."""
    from torch._decomp import core_aten_decompositions
    from .aten_table import ATEN_CONVERTERS
    return {op: fn for op, fn in core_aten_decompositions().items() if op not in ATEN_CONVERTERS}


def explain(e: KilnError, aten_gm) -> str:
    """The warning's text for a kiln error on `aten_gm`: what went wrong and, for an error on
    one kiln node (a LoweringError), the ATen op and source line it came from. Graph IR nodes
    are named after the FX node they were converted from ("addmm", "addmm.cast")."""
    from ...errors import describe_node
    from .context import source_line
    from .fx_import import op_name
    text = e.message
    name = getattr(e.node, "name", None) or ""
    fx_nodes = {n.name: n for n in aten_gm.graph.nodes}
    while name and name not in fx_nodes:
        name = name.rpartition(".")[0]
    if e.node is not None:
        text = f"{describe_node(e.node)}: {text}"
    if name:
        where = source_line(fx_nodes[name])
        text += f" (from {op_name(fx_nodes[name].target)}" + (f" at {where})" if where else ")")
    if isinstance(e, UnsupportedOpError) and e.node is None:
        return text + ("\n  kiln.frontends.torch.supported_ops() lists the ATen ops kiln "
                       "converts")
    return text + (f"\n  hint: {e.hint}" if e.hint else "")


def _fall_back(gm, reason: str):
    warnings.warn(f"kiln: {FALLBACK_NOTE}: {reason}", KilnFallbackWarning)
    return gm.forward


def _eager_reason(gm, example_inputs) -> str:
    """Why `gm` must run eagerly before any conversion is tried, or ''."""
    tensors = [x for x in example_inputs if isinstance(x, torch.Tensor)]
    devices = sorted({x.device.type for x in tensors} - {"cpu"})
    if devices:
        return f"kiln compiles for the CPU; the graph has {', '.join(devices)} tensors"
    if torch.is_grad_enabled() and any(x.requires_grad for x in tensors):
        return ("kiln compiles inference graphs and this one needs gradients; call the model "
                "under torch.no_grad() or torch.inference_mode()")
    return ""


def _mutated_inputs() -> set[int]:
    """Positions of the graph inputs the graph itself writes (a buffer updated in forward),
    from aot_autograd's metadata of the graph being compiled: those are never frozen (they
    would fail the weight guard on every call). Empty if torch does not say."""
    context = torch._guards.TracingContext.try_get()
    meta = getattr(context, "fw_metadata", None)
    try:
        return {i for i, info in enumerate(meta.input_info)
                if info.mutates_data or info.mutates_metadata}
    except AttributeError:
        return set()


def _frozen_inputs(gm, example_inputs) -> dict[int, torch.Tensor]:
    """Positions of `example_inputs` that are parameters or buffers (Dynamo marks them as
    static inputs), with the tensors: the constants `freeze` compiles in. Inference tensors
    (made under torch.inference_mode) have no version counter to guard: they stay inputs."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    frozen = {}
    for i, (node, x) in enumerate(zip(placeholders, example_inputs)):
        static = node.meta.get("tensor_dict", {}).get("_dynamo_static_input_type")
        if isinstance(x, torch.Tensor) and (isinstance(x, torch.nn.Parameter) or static) \
                and guardable(x):
            frozen[i] = x
    return frozen


# --- the compiled graph ------------------------------------------------------------------------

# dtypes NumPy lacks: moved through an integer view of the same width, then ml_dtypes
_VIEWS = {torch.bfloat16: (torch.int16, "bfloat16"),
          torch.float8_e4m3fn: (torch.int8, "float8_e4m3fn"),
          torch.float8_e5m2: (torch.int8, "float8_e5m2")}


class KilnGraphFunction:
    """One ATen graph compiled by kiln, called the way aot_autograd calls a compiled forward:
    `f(*args)` with every graph input (tensors and SymInt values) -> tuple of tensors.

    With frozen inputs, every call first checks the `WeightGuard` of the code in use; when it
    fails, another frozen variant whose guard holds is used, or the graph is compiled again
    (module docstring): `recompiles` counts those compiles, `frozen` is empty once the graph
    takes its weights as inputs."""

    def __init__(self, aten_gm, aten_inputs, options: CompileOptions, frozen: dict):
        self.aten_gm = aten_gm
        self.aten_inputs = list(aten_inputs)
        self.options = options
        self.recompiles = 0                     # compiles after the first
        self.switches = 0                       # changes to another frozen variant, no compile
        self.compile_seconds = 0.0
        self.variants: list[tuple] = []         # (guard, model, positions) per set of weights
        self._use(self._build(frozen))

    @classmethod
    def compile(cls, aten_gm, aten_inputs, options: CompileOptions,
                frozen: dict) -> "KilnGraphFunction":
        return cls(aten_gm, aten_inputs, options, frozen)

    @property
    def frozen(self) -> dict:
        """The frozen tensors of the code in use (position -> tensor); {} for weights as inputs."""
        return dict(self.guard.tensors) if self.guard is not None else {}

    def _build(self, frozen: dict) -> tuple:
        """Compile the ATen graph with `frozen` (position -> tensor) as constants: a variant."""
        from ...api import optimize_graph
        from ...runtime.compiled_model import compile_graph
        from torch._subclasses.fake_tensor import unset_fake_temporarily
        from .fx_import import import_fx
        t0 = time.perf_counter()
        placeholders = [n for n in self.aten_gm.graph.nodes if n.op == "placeholder"]
        constants = {placeholders[i].name: x for i, x in frozen.items()}
        with unset_fake_temporarily():      # aot_autograd compiles under its FakeTensorMode
            graph = import_fx(self.aten_gm, name="dynamo", constants=constants)
        compiled = compile_graph(optimize_graph(graph, self.options))
        compiled.options = self.options
        positions = [i for i, x in enumerate(self.aten_inputs)
                     if i not in frozen and isinstance(x, torch.Tensor)]
        if len(positions) != len(compiled.input_names):
            raise KilnError(f"the ATen graph has {len(positions)} tensor inputs, the kiln graph "
                            f"{len(compiled.input_names)}")
        self.compile_seconds += time.perf_counter() - t0
        return (WeightGuard(frozen) if frozen else None, compiled, positions)

    def _use(self, variant: tuple) -> None:
        self.guard, self.model, self.tensor_positions = variant   # model: the CompiledModel
        self._run = self.model.run
        if self.guard is not None and variant not in self.variants:
            self.variants.append(variant)

    def _weights_changed(self, args) -> None:
        """The guard failed: another frozen variant's weights (a second module instance sharing
        this graph), else compile again with the new weights, or with weights as inputs."""
        for variant in self.variants:
            if variant[0].holds(args):
                self.switches += 1
                return self._use(variant)
        positions = list(self.guard.tensors)
        self.recompiles += 1
        try:
            if 1 + self.recompiles <= FROZEN_COMPILES:     # the first compile was frozen
                new = {i: args[i] for i in positions}
                # a variant with the same tensor objects holds stale values: it goes
                self.variants = [v for v in self.variants
                                 if any(v[0].tensors[i] is not t for i, t in new.items())]
                self._use(self._build(new))
            else:
                self.variants = []
                self._use(self._build({}))
        except Exception as e:      # compiled once already: not expected, but never a crash
            text = explain(e, self.aten_gm) if isinstance(e, KilnError) else \
                f"internal error {type(e).__name__}: {e} (please report it with the model)"
            warnings.warn(f"kiln: {FALLBACK_NOTE}: the weights changed and compiling the graph "
                          f"again failed: {text}", KilnFallbackWarning)
            self.guard, self._run, self.variants = None, None, []

    def __call__(self, *args):
        if self.guard is not None and not self.guard.holds(args):
            self._weights_changed(args)
        if self._run is None:
            return tuple(self.aten_gm(*args))
        arrays = []
        for i in self.tensor_positions:
            t = args[i]
            if t.requires_grad:
                t = t.detach()
            arrays.append(t.numpy() if t.dtype not in _VIEWS else _numpy_view(t))
        return tuple([torch.from_numpy(a) if a.dtype.kind != "V" else _tensor_view(a)
                      for a in self._run(arrays)])


def _numpy_view(t: torch.Tensor) -> np.ndarray:
    import ml_dtypes
    as_int, name = _VIEWS[t.dtype]
    return t.contiguous().view(as_int).numpy().view(getattr(ml_dtypes, name))


def _tensor_view(a: np.ndarray) -> torch.Tensor:
    for dtype, (as_int, name) in _VIEWS.items():
        if a.dtype.name == name:
            return torch.from_numpy(a.view(f"i{a.dtype.itemsize}")).view(dtype)
    raise UnsupportedOpError(f"kiln returned {a.dtype}, which torch has no dtype for")
