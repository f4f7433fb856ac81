"""The `kiln` command line.

    kiln show model.onnx                      print the Graph IR
    kiln run model.onnx [--input x=x.npy]     run it (random inputs when none are given)
    kiln opt model.onnx -O2 --stats           optimize: print the IR and what each pass did

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
    run.add_argument("--backend", choices=["interpreter"], default="interpreter",
                     help="what runs the model (default: interpreter)")
    run.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    run.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                     help="size of a symbolic dimension for random inputs (default 1)")
    run.set_defaults(func=cmd_run)

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
    from .ir.interpreter import interpret
    graph = _load(args.model)
    dims = dict(_pair(d, "--dim") for d in args.dim)
    given = {}
    for item in args.input:
        name, file = _pair(item, "--input")
        given[name] = _read_npy(file)
    names = [v.name for v in graph.inputs]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InputNameError(f"unknown input(s) {unknown}", hint=f"the model's inputs are {names}")
    feeds = random_feeds(graph, given, {k: int(v) for k, v in dims.items()}, args.seed)
    outputs = interpret(graph, feeds)
    for v, x in zip(graph.outputs, outputs):
        print(f"{v.name}: {summarize(x)}")
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
