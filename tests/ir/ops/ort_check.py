"""Checking one op of kiln's table against ONNX Runtime, for cases where onnx.reference is wrong
or incomplete (MaxPool indices and SAME_LOWER, LpPool with ceil_mode, grouped ConvTranspose, RNN
sequence_lens, clip and activations).

    check_op_ort("MaxPool", [x], {"kernel_shape": [3, 3]}, num_outputs=2)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from tests.ir.ops.harness import OPSET, _onnx_attr, assert_same, run_kiln


def run_ort(op_name: str, inputs: Sequence[Any], attrs: dict | None = None,
            num_outputs: int = 1, opset: int = 22) -> list:
    import onnxruntime as ort

    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"y{i}" for i in range(num_outputs)]
    node = helper.make_node(op_name, names, outs,
                            **{k: _onnx_attr(v) for k, v in (attrs or {}).items()})
    feeds = {n: np.asarray(x) for n, x in zip(names, inputs) if x is not None}
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype),
                                                  x.shape) for n, x in feeds.items()]
    graph_outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in outs]
    model = helper.make_model(helper.make_graph([node], "t", graph_inputs, graph_outputs),
                              opset_imports=[helper.make_opsetid("", min(OPSET, opset))])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_op_ort(op_name: str, inputs: Sequence[Any], attrs: dict | None = None, *,
                 num_outputs: int = 1, rtol: float = 1e-5, atol: float = 1e-5,
                 const_inputs: Sequence[int] = (), opset: int = 22) -> list:
    """kiln's interpreter and ONNX Runtime agree on values, dtypes and shapes.

    `opset` picks an older opset for ops whose newest version onnxruntime lacks but whose
    semantics did not change."""
    got = run_kiln(op_name, inputs, attrs, num_outputs, const_inputs)
    want = run_ort(op_name, inputs, attrs, num_outputs, opset)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_same(g, w, rtol=rtol, atol=atol, what=f"{op_name} output {i} (vs onnxruntime)")
    return got
