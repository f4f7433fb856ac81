"""`make demo`: a small CNN, built in code, through kiln's ONNX front end and interpreter.

It builds the model, saves it as ONNX, imports the file back into kiln's Graph IR, prints the IR,
runs it on random images and checks the answer against ONNX Runtime when it is installed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .examples import small_cnn
from .frontends.onnx import export_model, import_model
from .ir.interpreter import interpret
from .ir.printer import print_graph
from .ir.verifier import verify


def main() -> None:
    out_dir = Path("build/demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "small_cnn.onnx"

    print("1. Build a small CNN in code and save it as ONNX")
    graph = small_cnn()
    model = export_model(graph)
    path.write_bytes(model.SerializeToString())
    print(f"   wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(graph.nodes)} ops)\n")

    print("2. Import it into kiln's Graph IR (types inferred, symbolic batch kept) and verify it")
    imported = import_model(str(path))
    verify(imported)
    print("\n".join("   " + line for line in print_graph(imported).splitlines()), "\n")

    print("3. Run it with the reference interpreter on a batch of 4 random images")
    images = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    start = time.perf_counter()
    (probs,) = interpret(imported, {imported.inputs[0].name: images})
    elapsed = (time.perf_counter() - start) * 1e3
    for i, row in enumerate(probs):
        print(f"   image {i}: class {int(row.argmax())} with p={row.max():.3f}  (probabilities sum to {row.sum():.4f})")
    print(f"   interpreter: {elapsed:.1f} ms\n")

    print("4. Check against ONNX Runtime")
    try:
        import onnxruntime as ort
    except ImportError:
        print("   onnxruntime is not installed; skipped")
        return
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {sess.get_inputs()[0].name: images})
    err = float(np.abs(probs - want).max())
    print(f"   max |kiln - onnxruntime| = {err:.2e}  ->  {'match' if err < 1e-5 else 'MISMATCH'}")
    if err >= 1e-5:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
