"""`make demo`: a small CNN, built in code, compiled by kiln to machine code and checked.

It builds the model and saves it as ONNX, imports the file into kiln's Graph IR, compiles it
(graph passes -> loops -> LLVM -> machine code, all inside this process), runs it on random
images, checks the answer against kiln's reference interpreter (and ONNX Runtime when it is
installed), and times the interpreter and the native code side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .api import compile
from .examples import small_cnn
from .frontends.onnx import export_model, import_model
from .ir.interpreter import interpret
from .ir.printer import print_graph
from .ir.verifier import verify
from .runtime.benchmark import call_overhead, median_seconds

RUNS = 30           # timed runs per back end; the median is reported
TOLERANCE = 1e-5    # largest |difference| accepted between two back ends


def main() -> None:
    out_dir = Path("build/demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "small_cnn.onnx"

    step("1. Build a small CNN in code and save it as ONNX")
    graph = small_cnn()
    path.write_bytes(export_model(graph).SerializeToString())
    say(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(graph.nodes)} ops)")

    step("2. Import it into kiln's Graph IR (types inferred, symbolic batch kept) and verify it")
    imported = import_model(str(path))
    verify(imported)
    say(print_graph(imported))

    step("3. Compile it to machine code: graph passes -> Loop IR -> LLVM IR -> x86 code")
    model = compile(str(path))
    t = model.timings
    say(f"optimize {t['optimize'] * 1e3:.0f} ms, lower to loops {t['lower'] * 1e3:.0f} ms, "
        f"LLVM -O3 to machine code {t['codegen'] * 1e3:.0f} ms")
    say(f"{len(model.graph.nodes)} graph ops -> {len(model.program.kernels)} loop kernels -> "
        f"{model.llvm_ir.count(chr(10))} lines of LLVM IR -> one entry point")
    say("the first kernel as Loop IR (see every level with "
        f"`kiln compile {path} --emit graph|loops|llvm|asm`):")
    say(first_kernel(model.loop_ir))

    step("4. Run both on a batch of 4 random images and compare")
    images = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    (want,) = interpret(imported, {"image": images})
    (probs,) = model(images)
    for i, row in enumerate(probs):
        say(f"image {i}: class {int(row.argmax())} with p={row.max():.3f}  "
            f"(probabilities sum to {row.sum():.4f})")
    check("native", "interpreter", probs, want)

    step(f"5. Speed: median of {RUNS} runs each, same process, same batch")
    interp = median_seconds(lambda: interpret(imported, {"image": images}), runs=RUNS)
    native = median_seconds(lambda: model(images), runs=RUNS)
    say(f"interpreter (NumPy, op by op):  {interp * 1e3:8.3f} ms")
    say(f"native (kiln machine code):     {native * 1e3:8.3f} ms   "
        f"({interp / native:.1f}x faster)")
    cost = call_overhead()
    say(f"cost of one call itself (a model doing one Add of two f32[1] tensors): "
        f"{cost['kiln'] * 1e6:.1f} us  (the bare native call: {cost['entry'] * 1e6:.2f} us)")

    step("6. Check against ONNX Runtime")
    try:
        import onnxruntime as ort
    except ImportError:
        say("onnxruntime is not installed; skipped")
        return
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {sess.get_inputs()[0].name: images})
    check("native", "onnxruntime", probs, ref)


def check(a: str, b: str, x: np.ndarray, y: np.ndarray) -> None:
    err = float(np.abs(x - y).max())
    say(f"max |{a} - {b}| = {err:.2e}  ->  {'match' if err < TOLERANCE else 'MISMATCH'}")
    if err >= TOLERANCE:
        raise SystemExit(1)


def first_kernel(loop_ir: str) -> str:
    lines = loop_ir.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("kernel"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  }"))
    return "\n".join(lines[start:end + 1])


def step(title: str) -> None:
    print(f"\n{title}")


def say(text: str) -> None:
    print("\n".join("   " + line for line in text.rstrip("\n").splitlines()))


if __name__ == "__main__":
    main()
