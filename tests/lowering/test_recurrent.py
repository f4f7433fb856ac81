"""RNN, GRU and LSTM lowered, against the Graph IR interpreter: every direction, both layouts,
sequence_lens, initial states, biases, peepholes, clip, linear_before_reset, input_forget,
activations with alpha/beta, absent outputs, float64/float16 and a symbolic batch."""

import numpy as np
import pytest

from kiln.ir import DType, GraphBuilder
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType

from .harness import check_graph, rand

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUTPUTS = {"RNN": 2, "GRU": 2, "LSTM": 3}


def _graph(op, seq=5, batch=3, size=4, hidden=3, *, direction="forward", layout=0,
           bias=True, lens=None, init=False, peep=False, dtype=np.float32, attrs=None,
           symbolic_batch=False, drop_y=False, fed_weights=False, seed=0):
    nd = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    b = GraphBuilder(op.lower())
    feeds = {}
    xshape = (batch, seq, size) if layout else (seq, batch, size)

    def inp(name, arr, shape=None):
        v = b.input(name, TensorType(DType.from_numpy(arr.dtype), shape or arr.shape))
        feeds[name] = arr
        return v

    bdim = "batch" if symbolic_batch else batch
    x = inp("x", rand(xshape, dtype, seed=seed, low=-1, high=1),
            (bdim, seq, size) if layout else (seq, bdim, size))
    weight = inp if fed_weights else (lambda name, arr: b.constant(arr, name))
    w = weight("w", rand((nd, g * hidden, size), dtype, seed=seed + 1, low=-0.7, high=0.7))
    r = weight("r", rand((nd, g * hidden, hidden), dtype, seed=seed + 2, low=-0.7, high=0.7))
    args = [x, w, r]
    args.append(b.constant(rand((nd, 2 * g * hidden), dtype, seed=seed + 3, low=-0.5, high=0.5),
                           "b") if bias else None)
    args.append(None if lens is None else inp("lens", np.array(lens, np.int32)))
    sshape = (batch, nd, hidden) if layout else (nd, batch, hidden)
    args.append(inp("h0", rand(sshape, dtype, seed=seed + 4, low=-1, high=1)) if init else None)
    if op == "LSTM":
        args.append(inp("c0", rand(sshape, dtype, seed=seed + 5, low=-1, high=1))
                    if init else None)
        args.append(b.constant(rand((nd, 3 * hidden), dtype, seed=seed + 6, low=-0.5, high=0.5),
                               "p") if peep else None)
    while args and args[-1] is None:
        args.pop()
    outs = b.add(get_op(op), args, {"direction": direction, "layout": layout,
                                    "hidden_size": hidden, **(attrs or {})},
                 outputs=OUTPUTS[op])
    outs = list(outs)
    if drop_y:
        b.output(*outs[1:])
    else:
        b.output(*outs)
    return b.graph, feeds


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_directions_with_lengths_and_initial_state(backend, op, direction):
    graph, feeds = _graph(op, direction=direction, lens=[5, 2, 4], init=True, peep=True)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_batch_major_layout_without_bias(backend, op):
    graph, feeds = _graph(op, seq=4, batch=2, size=5, hidden=5, layout=1, bias=False,
                          direction="bidirectional", init=True, lens=[3, 4])
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attrs", [
    {"linear_before_reset": 1},
    {"linear_before_reset": 1, "clip": 0.6},
    {"activations": ["HardSigmoid", "Softsign"], "activation_alpha": [0.3],
     "activation_beta": [0.4]},
    {"activations": ["Sigmoid", "Elu", "LeakyRelu", "Softplus"], "activation_alpha": [0.7, 0.2],
     "linear_before_reset": 1},
])
def test_gru_attributes(backend, attrs):
    direction = "bidirectional" if len(attrs.get("activations", ())) == 4 else "forward"
    graph, feeds = _graph("GRU", direction=direction, attrs=attrs, init=True, seed=3)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attrs", [
    {"input_forget": 1},
    {"clip": 0.5},
    {"activations": ["Affine", "ScaledTanh", "ThresholdedRelu"],
     "activation_alpha": [0.8, 1.3, 0.1], "activation_beta": [0.1, 0.9]},
])
def test_lstm_attributes(backend, attrs):
    graph, feeds = _graph("LSTM", attrs=attrs, peep=True, init=True, lens=[5, 1, 3], seed=5)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("acts", [["Relu"], ["Tanh", "Sigmoid"]])
def test_rnn_activations(backend, acts):
    graph, feeds = _graph("RNN", direction="bidirectional" if len(acts) == 2 else "forward",
                          attrs={"activations": acts}, seed=7)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float16, 1e-2)])
def test_other_float_types(backend, dtype, tol):
    graph, feeds = _graph("LSTM", dtype=dtype, direction="bidirectional", init=True, peep=True,
                          lens=[4, 5, 1])
    check_graph(backend, graph, feeds, rtol=tol, atol=tol)


def test_symbolic_batch_and_state_outputs_only(backend):
    graph, feeds = _graph("GRU", symbolic_batch=True, drop_y=True, direction="reverse",
                          batch=4)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)
    graph, feeds = _graph("LSTM", symbolic_batch=True, batch=1, layout=1)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_fed_weights_and_more_than_one_column_block(backend, op):
    """Weights that are inputs are packed by a kernel (constants when compiling); 65 hidden
    units make gate blocks end in a partial column block. (The Loop IR interpreter runs the
    smaller form.)"""
    native = backend == "native"
    lbr = {"linear_before_reset": 1} if op == "GRU" else None
    graph, feeds = _graph(op, seq=2, batch=2, size=3, hidden=65, fed_weights=True,
                          direction="bidirectional" if native else "reverse", lens=[2, 1],
                          init=True, peep=True, attrs=lbr)
    check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)
    if native:
        graph, feeds = _graph(op, seq=3, batch=5, size=6, hidden=70, seed=9)
        check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)


def test_states_whose_batch_may_differ_from_x_are_an_error():
    from kiln.errors import LoweringError
    from kiln.lowering import lower_graph
    b = GraphBuilder("lstm")
    x = b.input("x", TensorType(DType.float32, (4, "batch", 3)))
    h0 = b.input("h0", TensorType(DType.float32, (1, "other", 2)))
    w = b.constant(rand((1, 8, 3), seed=1), "w")
    r = b.constant(rand((1, 8, 2), seed=2), "r")
    outs = b.add(get_op("LSTM"), [x, w, r, None, None, h0], {"hidden_size": 2}, outputs=3)
    b.output(*outs)
    with pytest.raises(LoweringError, match="initial_h has dims"):
        lower_graph(b.graph)


def test_pytorch_exported_stacked_lstm_and_gru():
    """nn.LSTM (2 layers, bidirectional, batch_first) then nn.GRU, exported by torch.onnx with
    symbolic batch and sequence, compiled by kiln.compile: matches PyTorch for several shapes."""
    torch = pytest.importorskip("torch")
    import io
    import warnings

    import onnx

    import kiln

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(12, 20, num_layers=2, bidirectional=True, batch_first=True)
            self.gru = torch.nn.GRU(40, 16, batch_first=True)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.gru(y)

    torch.manual_seed(0)
    module = Model().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(3, 7, 12),), buf, dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch", 1: "seq"}})
    model = kiln.compile(onnx.load_from_string(buf.getvalue()))
    for shape, seed in (((3, 7, 12), 1), ((1, 4, 12), 2), ((5, 11, 12), 3)):
        x = rand(shape, seed=seed)
        with torch.no_grad():
            want = [t.numpy() for t in module(torch.from_numpy(x))]
        for got, w in zip(model.run({"x": x}), want):
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
