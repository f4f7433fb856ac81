"""torch.compile(backend="kiln") with and without `freeze`, on the model suite's PyTorch ports.

    python -m benchmarks.dynamo_report                     # every model, small inputs
    python -m benchmarks.dynamo_report --models bert --repeat 20

For each model: how many graphs Dynamo handed kiln, the first call (Dynamo tracing plus kiln
compiling every graph), and the median latency with the weights as inputs of each call (the
default) and compiled in as constants (`options={"freeze": True}`), measured interleaved
(benchmarks/timing.py). Inputs are smaller than `make bench`'s so that the report runs in a
few minutes; nothing here asserts on speed.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .bench import format_seconds
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dynamo_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(SIZES))
    parser.add_argument("--repeat", type=int, default=10, metavar="N")
    args = parser.parse_args(argv)
    print("| model | graphs | first call (weights as inputs / frozen) "
          "| median (weights as inputs) | median (frozen) | frozen / inputs |")
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
