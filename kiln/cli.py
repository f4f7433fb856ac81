"""The `kiln` command line.

    kiln show model.onnx                      print the Graph IR
    kiln run model.onnx [--input x=x.npy]     run it natively (random inputs when none are given)
    kiln run model.onnx --backend interpreter run it with the reference interpreter
    kiln opt model.onnx -O2 --stats           optimize: print the IR and what each pass did
    kiln compile model.onnx --emit loops      compile; print the graph, loop, LLVM IR or assembly
    kiln compile model.onnx --stats           ... and the memory plan (arena vs naive vs bound)
    kiln bench [model.onnx]                   interpreter vs native latency (no model: the cost
                                              of one call, on a model doing one tiny Add)

Errors a user can cause (a bad file, an unsupported op, a wrong input) print one clear message
and exit with status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import InputNameError, KilnError, ModelLoadError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except KilnError as e:
        print(f"kiln: error: {e}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiln", description="kiln, a deep-learning compiler for CPUs.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    show = sub.add_parser("show", help="print a model's Graph IR")
    show.add_argument("model", help="an ONNX model file")
    show.add_argument("--verify", action="store_true", help="also run the IR verifier")
    show.set_defaults(func=cmd_show)

    run = sub.add_parser("run", help="run a model and summarize its outputs")
    run.add_argument("model", help="an ONNX model file")
    run.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                     help="an input from a .npy file (repeatable); missing inputs are random")
    run.add_argument("--backend", choices=["native", "interpreter"], default="native",
                     help="what runs the model (default: native, compiled to machine code)")
    run.add_argument("-O", dest="level", type=int, choices=[0, 1, 2, 3], default=2,
                     help="graph optimization level before compiling natively (default 2)")
    run.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    run.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                     help="size of a symbolic dimension for random inputs (default 1)")
    run.set_defaults(func=cmd_run)

    comp = sub.add_parser("compile", help="compile a model natively and print one of its IRs")
    comp.add_argument("model", help="an ONNX model file")
    comp.add_argument("--emit", choices=list(EMITS), default=None,
                      help="print this form: " + "; ".join(f"{k}: {v}" for k, v in EMITS.items())
                      + " (default: a summary of the compilation)")
    comp.add_argument("-O", dest="level", type=int, choices=[0, 1, 2, 3], default=2,
                      help="graph optimization level (default 2); LLVM always runs at -O3")
    comp.add_argument("-o", "--output", help="write the printed form to this file")
    comp.add_argument("--stats", action="store_true",
                      help="print ops, kernels and fused groups, and the memory plan: arena, "
                           "naive sum and lower bound in bytes")
    comp.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                      help="size of a symbolic dimension for --stats (default 1)")
    comp.set_defaults(func=cmd_compile)

    bench = sub.add_parser("bench", help="time the interpreter and native code on a model")
    bench.add_argument("model", nargs="?",
                       help="an ONNX model file (default: the cost of one call of a model "
                            "doing one Add of two f32[1] tensors)")
    bench.add_argument("--runs", type=int, default=20, help="timed runs per back end (median)")
    bench.add_argument("-O", dest="level", type=int, choices=[0, 1, 2, 3], default=2)
    bench.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    bench.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                       help="size of a symbolic dimension for random inputs (default 1)")
    bench.set_defaults(func=cmd_bench)

    opt = sub.add_parser("opt", help="optimize a model's graph and print it")
    opt.add_argument("model", help="an ONNX model file")
    opt.add_argument("-O", dest="level", type=int, choices=[0, 1, 2, 3], default=2,
                     help="optimization level (default 2)")
    opt.add_argument("--passes", help="run these passes instead of a level, comma-separated")
    opt.add_argument("--print-after-all", action="store_true", help="print the IR after every pass")
    opt.add_argument("--print-after", action="append", default=[], metavar="PASS",
                     help="print the IR after the named pass (repeatable)")
    opt.add_argument("--print-before", action="append", default=[], metavar="PASS")
    opt.add_argument("--stats", action="store_true", help="per pass: time, nodes, rules fired")
    opt.add_argument("--verify-each", action="store_true", help="run the verifier after every pass")
    opt.add_argument("--fast-math", action="store_true",
                     help="allow rewrites that change results for NaN/Inf/-0 or rounding")
    opt.add_argument("-o", "--output", help="write the optimized model as ONNX")
    opt.add_argument("-q", "--quiet", action="store_true", help="do not print the final IR")
    opt.set_defaults(func=cmd_opt)
    return p


def _load(path: str):
    from .frontends.onnx import import_model
    return import_model(path)


def cmd_show(args) -> int:
    from .ir.printer import print_graph
    from .ir.verifier import verify
    graph = _load(args.model)
    if args.verify:
        verify(graph)
    sys.stdout.write(print_graph(graph))
    return 0


def cmd_run(args) -> int:
    graph = _load(args.model)
    given = {}
    for item in args.input:
        name, file = _pair(item, "--input")
        given[name] = _read_npy(file)
    names = [v.name for v in graph.inputs]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InputNameError(f"unknown input(s) {unknown}", hint=f"the model's inputs are {names}")
    feeds = random_feeds(graph, given, _dims(args), args.seed)
    output_names = [v.name for v in graph.outputs]      # as the model names them
    if args.backend == "interpreter":
        from .ir.interpreter import interpret
        outputs = interpret(graph, feeds)
    else:
        outputs = _compile_native(graph, args.level).run(feeds)
    for name, x in zip(output_names, outputs):
        print(f"{name}: {summarize(x)}")
    return 0


def _compile_native(graph, level: int):
    from .api import optimize_graph
    from .options import CompileOptions
    from .runtime import compile_graph
    return compile_graph(optimize_graph(graph, CompileOptions(opt_level=level)))


def _dims(args) -> dict[str, int]:
    dims = {}
    for item in args.dim:
        name, value = _pair(item, "--dim")
        if not value.isdigit():
            raise InputNameError(f"--dim {item}: the size must be a non-negative integer")
        dims[name] = int(value)
    return dims


# what `kiln compile --emit` prints
EMITS = {
    "graph": "the optimized Graph IR",
    "loops": "the Loop IR",
    "llvm": "the LLVM IR kiln emits",
    "llvm-opt": "the LLVM IR after LLVM -O3",
    "asm": "the machine code as assembly",
}


def cmd_compile(args) -> int:
    import time
    from .api import optimize_graph
    from .options import CompileOptions
    start = time.perf_counter()
    graph = optimize_graph(_load(args.model), CompileOptions(opt_level=args.level))
    if args.emit == "graph":
        from .ir.printer import print_graph
        return _emit(print_graph(graph), args.output)
    if args.emit == "loops":
        from .loops.printer import print_program
        from .lowering import lower_graph
        return _emit(print_program(lower_graph(graph)), args.output)
    from .runtime import compile_graph
    model = compile_graph(graph)
    if args.emit and args.stats:
        _print_memory_stats(model.program, args, sys.stderr)
    if args.emit == "llvm":
        return _emit(model.llvm_ir, args.output)
    if args.emit == "llvm-opt":
        return _emit(model.optimized_llvm_ir, args.output)
    if args.emit == "asm":
        return _emit(model.asm, args.output)
    t = model.timings
    print(f"compiled {args.model} at -O{args.level} in {time.perf_counter() - start:.2f} s "
          f"(lowering {t['lower']:.2f} s, LLVM {t['codegen']:.2f} s)")
    print(f"  graph: {len(graph.nodes)} nodes; loops: {len(model.program.kernels)} kernels; "
          f"LLVM IR: {model.llvm_ir.count(chr(10))} lines")
    print(f"  {model!r}")
    if args.stats:
        _print_fusion_stats(graph, model.program, sys.stdout)
        _print_memory_stats(model.program, args, sys.stdout)
    print("  print a stage with --emit " + "|".join(EMITS))
    return 0


def _print_fusion_stats(graph, program, stream) -> None:
    """Ops after the optimizer, kernels after fusion, and each fused group's ops."""
    from .ir import ops
    groups = [n for n in graph.nodes if n.op is ops.Fused]
    n_ops = sum(len(n.attrs["body"].nodes) if n.op is ops.Fused else 1 for n in graph.nodes)
    kernels = len(program.kernels)
    print(f"  ops after the optimizer: {n_ops}; kernels after fusion: {kernels} "
          f"({100 * kernels / max(n_ops, 1):.0f}% of the ops); {len(groups)} fused groups",
          file=stream)
    for n in groups:
        body_ops = ", ".join(m.op.name for m in n.attrs["body"].nodes)
        print(f"    {n.name or n.outputs[0].name}: {body_ops}", file=stream)


def _print_memory_stats(program, args, stream) -> None:
    from .passes.plan_memory import memory_stats
    dims = _dims(args)
    s = memory_stats(program, dims)
    bound = ", ".join(f"{n}={dims.get(n, 1)}" for n in program.sizes) or "static"
    print(f"  memory ({bound}): arena {s['arena_bytes']:,} B ({s['algorithm']}), "
          f"naive {s['naive_bytes']:,} B, lower bound {s['lower_bound_bytes']:,} B; "
          f"{s['temps']} intermediates, {s['in_place']} written in place", file=stream)


def _emit(text: str, output: str | None) -> int:
    if output:
        Path(output).write_text(text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_bench(args) -> int:
    from .runtime.benchmark import call_overhead, median_seconds
    if args.model is None:
        cost = call_overhead()
        print("one call of a model doing one Add of two f32[1] tensors (median):")
        print(f"  kiln CompiledModel call: {cost['kiln'] * 1e6:7.2f} us  "
              "(inputs checked, outputs allocated, one native call)")
        print(f"  bare ctypes entry call:  {cost['entry'] * 1e6:7.2f} us")
        return 0
    from .ir.interpreter import interpret
    graph = _load(args.model)
    feeds = random_feeds(graph, {}, _dims(args), args.seed)
    model = _compile_native(graph, args.level)
    want = interpret(graph, feeds)
    got = model.run(feeds)
    err = max((float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
               for a, b in zip(got, want) if np.asarray(a).size), default=0.0)
    interp = median_seconds(lambda: interpret(graph, feeds), runs=args.runs)
    native = median_seconds(lambda: model.run(feeds), runs=args.runs)
    print(f"{args.model}: median of {args.runs} runs")
    print(f"  interpreter: {interp * 1e3:9.3f} ms")
    print(f"  native:      {native * 1e3:9.3f} ms   ({interp / native:.1f}x faster)")
    print(f"  max |native - interpreter| = {err:.2e}")
    return 0


def cmd_opt(args) -> int:
    from .ir.printer import print_graph
    from .options import CompileOptions
    from .pipeline import ALL_PASSES, pipeline
    from .rewrite.instruments import PrintIR, VerifyEach, format_statistics
    from .rewrite.pass_manager import PassContext, PassManager
    graph = _load(args.model)
    if args.passes:
        names = [n.strip() for n in args.passes.split(",") if n.strip()]
        unknown = [n for n in names if n not in ALL_PASSES]
        if unknown:
            raise KilnError(f"unknown pass(es) {unknown}", hint=f"passes: {', '.join(ALL_PASSES)}")
        passes = [ALL_PASSES[n]() for n in names]
    else:
        passes = pipeline(args.level)
    instruments = []
    if args.print_after_all or args.print_after or args.print_before:
        instruments.append(PrintIR(before=set(args.print_before),
                                   after=True if args.print_after_all else set(args.print_after)))
    if args.verify_each:
        instruments.append(VerifyEach())
    ctx = PassContext(CompileOptions(opt_level=args.level, fast_math=args.fast_math), instruments)
    graph = PassManager(passes).run(graph, ctx)
    if not args.quiet:
        sys.stdout.write(print_graph(graph))
    if args.stats:
        print(format_statistics(ctx.records))
    if args.output:
        from .frontends.onnx import save_model
        save_model(graph, args.output)
        print(f"wrote {args.output}")
    return 0


def random_feeds(graph, given: dict, dims: dict, seed: int) -> dict:
    """Given inputs as they are; the others random, symbolic dims sized from `dims` (default 1)."""
    from .ir.types import TensorType
    rng = np.random.default_rng(seed)
    feeds = dict(given)
    for v in graph.inputs:
        if v.name in feeds:
            continue
        t = v.type
        if not isinstance(t, TensorType) or t.shape is None:
            raise InputNameError(f"input '{v.name}' of type {t} needs a value",
                                 hint=f"pass it with --input {v.name}=FILE.npy")
        shape = [d if isinstance(d, int) else dims.get(d, 1) if isinstance(d, str) else 1
                 for d in t.shape]
        if t.dtype.is_float:
            x = rng.standard_normal(shape).astype(t.dtype.np)
        elif t.dtype.name == "bool":
            x = rng.random(shape) < 0.5
        elif t.dtype.is_int:
            x = rng.integers(0, 10, shape).astype(t.dtype.np)
        else:
            raise InputNameError(f"cannot make a random {t.dtype.name} input '{v.name}'",
                                 hint=f"pass it with --input {v.name}=FILE.npy")
        feeds[v.name] = x
    return feeds


def summarize(x) -> str:
    if isinstance(x, list):
        return f"sequence of {len(x)}" + (f" [{summarize(x[0])}, ...]" if x else "")
    if x is None:
        return "empty optional"
    x = np.asarray(x)
    head = f"shape {list(x.shape)} {x.dtype}"
    if x.size == 0 or x.dtype.kind not in "biuf":
        return head
    v = x.astype(np.float64)
    return f"{head}  min {v.min():.6g}  max {v.max():.6g}  mean {v.mean():.6g}"


def _pair(item: str, flag: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise InputNameError(f"{flag} expects NAME=VALUE, got {item!r}")
    return name, value


def _read_npy(file: str) -> np.ndarray:
    path = Path(file)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ModelLoadError(f"input file {file} does not exist") from None
    except ValueError as e:
        raise ModelLoadError(f"input file {file} is not a plain .npy array ({e})",
                             hint="save it with np.save; pickled objects are refused") from None


if __name__ == "__main__":
    sys.exit(main())
