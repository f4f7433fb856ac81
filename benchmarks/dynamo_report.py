"""torch.compile(backend="kiln") with and without `freeze`, on the model suite's PyTorch ports.

    python -m benchmarks.dynamo_report                     # every model, small inputs
    python -m benchmarks.dynamo_report --models bert --repeat 20
    python -m benchmarks.dynamo_report --guard-cost        # what the weight guard costs

For each model: how many graphs Dynamo handed kiln, the first call (Dynamo tracing plus kiln
compiling every graph), and the median latency with the weights as inputs of each call
(`options={"freeze": False}`) and compiled in as constants (the default, `freeze`), measured
interleaved (benchmarks/timing.py). Inputs are smaller than `make bench`'s so that the report
runs in a few minutes; nothing here asserts on speed.

`--guard-cost`: the frozen graph's per-call weight check (kiln/frontends/torch/guards.py) on
small models, where it weighs most: the median call with the guard and with the guard taken
out (the same compiled code), interleaved, and the check alone (`WeightGuard.holds`, timeit).
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit

import torch

from .bench import format_seconds, tiny
from .models import SUITE, example_inputs
from .timing import interleave
from .torch_models import from_graph

SIZES = {"mlp": ({}, 64, 1), "resnet18": ({"image": 64}, 1, 1), "bert": ({}, 1, 64),
         "gpt2": ({}, 1, 64)}      # builder arguments, batch, sequence


def prepare(name: str, freeze: bool):
    """(call, first-call seconds, graphs compiled) for suite model `name`."""
    from kiln.frontends.torch.dynamo import kiln_backend
    kwargs, batch, seq = SIZES[name]
    graph = SUITE[name](**kwargs)
    feeds = example_inputs(graph, batch=batch, seq=seq)
    args = [torch.from_numpy(feeds[v.name]) for v in graph.inputs]
    graphs = []

    def backend(gm, inputs):
        graphs.append(gm)
        return kiln_backend(gm, inputs, options={"freeze": freeze})
    compiled = torch.compile(from_graph(name, graph), backend=backend)

    def call():
        with torch.inference_mode():
            return compiled(*args)
    t0 = time.perf_counter()
    call()
    return call, time.perf_counter() - t0, len(graphs)


GUARD_MODELS = ("tiny", "linear", "mlp")


def prepare_guarded(name: str):
    """(guarded call, unguarded call, check alone, frozen tensors) for `name`: two compiles of
    the same module; the second's guards are taken out after its first call."""
    from kiln.frontends.torch import dynamo
    if name == "linear":
        torch.manual_seed(0)
        module, args = torch.nn.Linear(16, 16).eval(), [torch.randn(1, 16)]
    elif name == "tiny":                # one Add, no weights: nothing to guard
        module, args = from_graph(name, tiny()), [torch.randn(1), torch.randn(1)]
    else:
        kwargs, batch, seq = SIZES[name]
        graph = SUITE[name](**kwargs)
        module = from_graph(name, graph)
        feeds = example_inputs(graph, batch=batch, seq=seq)
        args = [torch.from_numpy(feeds[v.name]) for v in graph.inputs]
    made = []
    original = dynamo.KilnGraphFunction.compile

    def compile(*a, **k):
        made.append(original(*a, **k))
        return made[-1]
    dynamo.KilnGraphFunction.compile = compile
    try:
        calls = []
        for _ in range(2):
            torch._dynamo.reset()           # a compile of its own, not Dynamo's cached one
            compiled = torch.compile(module, backend="kiln")

            def call(compiled=compiled):
                with torch.inference_mode():
                    return compiled(*args)
            call()
            calls.append(call)
    finally:
        dynamo.KilnGraphFunction.compile = original
    guarded, unguarded = made         # one graph each
    unguarded.guard = None
    guard = guarded.guard
    check_args = [None] * (max(guard.tensors) + 1) if guard else []
    for i, t in (guard.tensors.items() if guard else []):
        check_args[i] = t
    n = 20000
    check = (timeit.timeit(lambda: guard.holds(check_args), number=n) / n) if guard else 0.0
    return calls[0], calls[1], check, len(guard.tensors) if guard else 0


def guard_cost(names, rounds: int) -> None:
    print("| model | frozen tensors | median, guarded | median, unguarded | guarded / unguarded "
          "| the check alone |")
    print("|---|---|---|---|---|---|")
    for name in names:
        guarded, unguarded, check, n = prepare_guarded(name)
        stats = interleave({"guarded": guarded, "unguarded": unguarded}, rounds=rounds)
        a, b = stats["guarded"].median, stats["unguarded"].median
        print(f"| {name} | {n} | {format_seconds(a)} | {format_seconds(b)} | {a / b:.3f}× "
              f"| {format_seconds(check) if n else '-'} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dynamo_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(SIZES))
    parser.add_argument("--repeat", type=int, default=10, metavar="N")
    parser.add_argument("--guard-cost", action="store_true",
                        help="time the frozen graphs' weight guard on small models instead")
    args = parser.parse_args(argv)
    if args.guard_cost:
        guard_cost(GUARD_MODELS, max(args.repeat, 30))
        return 0
    print("| model | graphs | first call (weights as inputs / frozen) "
          "| median (weights as inputs) | median (frozen, guarded) | frozen / inputs |")
    print("|---|---|---|---|---|---|")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        torch._dynamo.reset()
        loose, t_loose, n = prepare(name, freeze=False)
        frozen, t_frozen, _ = prepare(name, freeze=True)
        stats = interleave({"inputs": loose, "frozen": frozen}, rounds=args.repeat)
        a, b = stats["inputs"].median, stats["frozen"].median
        print(f"| {name} | {n} | {format_seconds(t_loose)} / {format_seconds(t_frozen)} "
              f"| {format_seconds(a)} | {format_seconds(b)} | {b / a:.2f}× |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
