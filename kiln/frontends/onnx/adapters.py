"""Opset upgrades: turning a node written against an older ONNX schema into the newest form.

kiln's OpDefs follow the newest ONNX signature of each op. A node whose model opset selects an
older schema (its `since_version` is lower) is rewritten here before it becomes a kiln node:
attributes that became inputs turn into constants, dropped attributes go away, renamed ops get
their new name, old semantics are rebuilt from newer ops.

The table `ADAPTERS` is the whole story: each entry names the ops, the first schema version that
has the new form (`below`), and the conversion. Entries for one op apply oldest first. An entry
with no conversion marks an old form kiln cannot upgrade; the importer reports it as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx

from ...ir.dtypes import DType
from ...ir.types import TensorType



@dataclass
class NodeDraft:
    """A node on its way into kiln: ONNX op name and attributes (decoded), kiln input Values."""

    op_type: str
    domain: str
    inputs: list                      # kiln Values, None for an absent optional input
    attrs: dict[str, Any]             # decoded attribute values (GraphProto stays a proto)
    outputs: list[str]                # ONNX output names, "" for an absent one
    name: str = ""
    # Called with the converted node's outputs; returns the Values to bind to `outputs`.
    finish: Callable | None = None
    attr_types: dict[str, int] = field(default_factory=dict)   # ONNX attribute type codes


@dataclass(frozen=True)
class Adapter:
    ops: tuple[str, ...]              # op names, or ("*",) for every op of the domain
    below: int                        # schema versions older than this get converted
    convert: Callable | None          # convert(ctx, draft) -> None; None: form not supported
    doc: str
    domain: str = ""                  # "" is ai.onnx


# --- conversions -----------------------------------------------------------------------------

def drop_attrs(*names: str) -> Callable:
    def convert(ctx, d: NodeDraft) -> None:
        for n in names:
            d.attrs.pop(n, None)
    convert.__name__ = f"drop_{'_'.join(names)}"
    return convert


def _set_input(d: NodeDraft, i: int, v) -> None:
    while len(d.inputs) <= i:
        d.inputs.append(None)
    d.inputs[i] = v


def attr_to_input(attr: str, index: int, dtype=np.int64, *, like_input: int | None = None,
                  shape: str = "list") -> Callable:
    """Move attribute `attr` into input slot `index` as a constant (absent attr: slot left absent).

    like_input: take the constant's dtype from that input. shape: "list" (1-D), "scalar"."""
    def convert(ctx, d: NodeDraft) -> None:
        if attr not in d.attrs:
            return
        value = d.attrs.pop(attr)
        dt = ctx.dtype(d.inputs[like_input]).np if like_input is not None else dtype
        arr = np.asarray(value, dtype=dt)
        arr = arr.reshape(()) if shape == "scalar" else arr.reshape(-1)
        _set_input(d, index, ctx.const(arr, f"{d.name or d.op_type}_{attr}"))
    convert.__name__ = f"{attr}_to_input{index}"
    return convert


def default_attr(name: str, value) -> Callable:
    """The old form behaved as if `name` were `value`, which is no longer the default."""
    def convert(ctx, d: NodeDraft) -> None:
        d.attrs.setdefault(name, value)
    convert.__name__ = f"default_{name}"
    return convert


def rename_attr(old: str, new: str) -> Callable:
    def convert(ctx, d: NodeDraft) -> None:
        if old in d.attrs:
            d.attrs[new] = d.attrs.pop(old)
    convert.__name__ = f"rename_{old}_to_{new}"
    return convert


def chain(*converts: Callable) -> Callable:
    def convert(ctx, d: NodeDraft) -> None:
        for c in converts:
            c(ctx, d)
    return convert


def legacy_broadcast(ctx, d: NodeDraft) -> None:
    """Before opset 7, `broadcast=1, axis=k` aligned B with A starting at axis k."""
    broadcast = d.attrs.pop("broadcast", 0)
    axis = d.attrs.pop("axis", None)
    if not broadcast or axis is None or len(d.inputs) < 2:
        return
    ra, rb = ctx.rank(d.inputs[0]), ctx.rank(d.inputs[1])
    if ra is None or rb is None:
        ctx.fail("legacy broadcasting with an axis needs inputs of known rank")
    axis = axis + ra if axis < 0 else axis
    trailing = ra - axis - rb
    if trailing > 0:
        d.inputs[1] = ctx.append_unit_dims(d.inputs[1], trailing)


def prelu_channel_slope(ctx, d: NodeDraft) -> None:
    """Before opset 7, PRelu's slope lined up with the channel axis (1), not the last axes."""
    rx, rs = ctx.rank(d.inputs[0]), ctx.rank(d.inputs[1])
    if rx is not None and rs is not None and rs >= 1 and rx - 1 - rs > 0:
        d.inputs[1] = ctx.append_unit_dims(d.inputs[1], rx - 1 - rs)


def softmax_coerced_2d(ctx, d: NodeDraft) -> None:
    """Before opset 13, Softmax/LogSoftmax/Hardmax flattened the input to 2-D at `axis`."""
    axis = d.attrs.pop("axis", 1)
    x = d.inputs[0]
    rank = ctx.rank(x)
    if rank is not None:
        norm = axis + rank if axis < 0 else axis
        if norm >= rank - 1 or rank <= 1:
            d.attrs["axis"] = -1      # one trailing axis: the same as the new form
            return
    shape = ctx.emit("Shape", [x])[0]
    d.inputs[0] = ctx.emit("Flatten", [x], {"axis": axis})[0]
    d.attrs["axis"] = -1

    def finish(ctx, outs):
        return [ctx.emit("Reshape", [outs[0], shape], names=[d.outputs[0]])[0]]
    d.finish = finish


def scan8_batched_to_loop(ctx, d: NodeDraft) -> None:
    """Scan-8 scanned every batch entry (axis 0) separately: a Loop over the batch whose body
    runs one newest-form Scan on that entry. The Loop stacks the per-entry results on axis 0."""
    if d.inputs and d.inputs[0] is not None:
        ctx.fail("Scan-8 with sequence_lens (sequences of different lengths) is not supported")
    ins = d.inputs[1:]
    n_scan = int(d.attrs["num_scan_inputs"])
    directions = d.attrs.pop("directions", None)
    body_proto = d.attrs.pop("body")
    if not ins:
        ctx.fail("Scan-8 without inputs")
    loop_body = ctx.subgraph(f"{d.name or 'scan'}_batch")
    index = loop_body.add_input(loop_body.fresh_name("batch_index"), TensorType(DType.int64, ()))
    cond = loop_body.add_input(loop_body.fresh_name("cond"), TensorType(DType.bool, ()))
    entries = [ctx.emit("Gather", [v, index], {"axis": 0}, graph=loop_body)[0] for v in ins]
    hints = [e.type for e in entries[:len(ins) - n_scan]]
    for e in entries[len(ins) - n_scan:]:
        t = e.type
        hints.append(TensorType(t.dtype, t.shape[1:]) if isinstance(t, TensorType) and t.shape
                     else None)
    scan_attrs = {"body": ctx.import_body(body_proto, loop_body, hints), "num_scan_inputs": n_scan}
    if directions:
        scan_attrs["scan_input_directions"] = tuple(directions)
    outs = ctx.emit("Scan", entries, scan_attrs, num_outputs=len(d.outputs), graph=loop_body)
    loop_body.outputs = [cond, *outs]
    d.op_type = "Loop"
    d.inputs = [ctx.dim_size(ins[0], 0)]
    d.attrs = {"body": loop_body}


def tile_axis_form(ctx, d: NodeDraft) -> None:
    """Tile-1 repeated `tiles` times along one `axis` (both inputs); now one repeat per axis."""
    x, tiles, axis = (d.inputs + [None, None])[:3]
    rank = ctx.rank(x)
    if tiles is None or axis is None or not tiles.is_constant or not axis.is_constant or rank is None:
        ctx.fail("Tile-1 is supported only with constant tiles and axis on an input of known rank")
    repeats = np.ones(rank, np.int64)
    repeats[int(axis.data.reshape(-1)[0])] = int(tiles.data.reshape(-1)[0])
    d.inputs = [x, ctx.const(repeats, f"{d.name or 'tile'}_repeats")]


def grid_sample_mode_names(ctx, d: NodeDraft) -> None:
    """GridSample-20 renamed the modes bilinear -> linear and bicubic -> cubic."""
    mode = d.attrs.get("mode")
    d.attrs["mode"] = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode) if mode else "linear"


def lp_norm_int_p(ctx, d: NodeDraft) -> None:
    if "p" in d.attrs:
        d.attrs["p"] = int(round(d.attrs["p"]))
        d.attr_types.pop("p", None)


def label_encoder_v1(ctx, d: NodeDraft) -> None:
    """LabelEncoder-1 mapped strings to their index in classes_strings, or indices to strings."""
    classes = tuple(d.attrs.pop("classes_strings", ()))
    index = tuple(range(len(classes)))
    if ctx.dtype(d.inputs[0]) is DType.string:
        d.attrs.update(keys_strings=classes, values_int64s=index)
        d.attrs.pop("default_string", None)
    else:
        d.attrs.update(keys_int64s=index, values_strings=classes)
        d.attrs.pop("default_int64", None)


def split_equal_parts(ctx, d: NodeDraft) -> None:
    """Opset 18 needs `num_outputs` when no `split` input is given; older forms split evenly."""
    if len(d.inputs) < 2 or d.inputs[1] is None:
        d.attrs.setdefault("num_outputs", len(d.outputs))


def upsample_to_resize(ctx, d: NodeDraft) -> None:
    """Upsample (any version) is Resize with asymmetric coordinates."""
    mode = d.attrs.pop("mode", "nearest")
    x = d.inputs[0]
    if "scales" in d.attrs:
        scales = ctx.const(np.asarray(d.attrs.pop("scales"), np.float32), f"{d.name or 'upsample'}_scales")
    elif "height_scale" in d.attrs or "width_scale" in d.attrs:
        h, w = d.attrs.pop("height_scale", 1.0), d.attrs.pop("width_scale", 1.0)
        scales = ctx.const(np.asarray([1, 1, h, w], np.float32), f"{d.name or 'upsample'}_scales")
    else:
        scales = d.inputs[1]
    d.op_type = "Resize"
    d.inputs = [x, None, scales]
    d.attrs = _resize_legacy_attrs(mode)


def resize10_to_resize(ctx, d: NodeDraft) -> None:
    """Resize-10 took (X, scales) with Upsample's asymmetric coordinates."""
    mode = d.attrs.pop("mode", "nearest")
    d.inputs = [d.inputs[0], None, d.inputs[1]]
    d.attrs.update(_resize_legacy_attrs(mode))


def _resize_legacy_attrs(mode: str) -> dict:
    mode = "linear" if mode in ("linear", "bilinear") else mode
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric"}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    return attrs


def rename(new: str) -> Callable:
    def convert(ctx, d: NodeDraft) -> None:
        d.op_type = new
    convert.__name__ = f"rename_to_{new}"
    return convert


def keep_first_output(ctx, d: NodeDraft) -> None:
    """Old BatchNormalization listed running statistics as outputs; inference uses only Y."""
    d.outputs = d.outputs[:1]


def cast_to_from_string(ctx, d: NodeDraft) -> None:
    to = d.attrs.get("to")
    if isinstance(to, str):
        d.attrs["to"] = int(onnx.TensorProto.DataType.Value(to.upper()))


def dft_axis_to_input(ctx, d: NodeDraft) -> None:
    """DFT-17's axis attribute (default 1) became input 2 (whose default is -2)."""
    axis = d.attrs.pop("axis", 1)
    _set_input(d, 2, ctx.const(np.asarray(axis, np.int64), f"{d.name or 'dft'}_axis"))


def dropout_ratio_to_input(ctx, d: NodeDraft) -> None:
    if "ratio" not in d.attrs:
        return
    ratio = d.attrs.pop("ratio")
    dt = ctx.dtype(d.inputs[0])
    _set_input(d, 1, ctx.const(np.asarray(ratio, dt.np if dt.is_float else np.float32),
                               f"{d.name or 'dropout'}_ratio"))


BINARY_LEGACY = ("Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less")
REDUCE = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
          "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")

ADAPTERS: list[Adapter] = [
    Adapter(("*",), 6, drop_attrs("consumed_inputs"), "consumed_inputs was dropped in opset 6"),
    Adapter(("Cast",), 6, cast_to_from_string, "Cast-1 named the target type as a string"),
    Adapter(("Concat",), 4, default_attr("axis", 1), "Concat-1 defaulted axis to 1"),
    Adapter(("Pad",), 2, rename_attr("paddings", "pads"), "Pad-1 called pads 'paddings'"),
    Adapter(("Reshape",), 5, attr_to_input("shape", 1), "Reshape-5 takes the shape as an input"),
    Adapter(BINARY_LEGACY, 7, legacy_broadcast, "opset 7 switched to NumPy broadcasting"),
    Adapter(("PRelu",), 7, prelu_channel_slope, "PRelu-7 broadcasts the slope NumPy-style"),
    Adapter(("Gemm",), 7, drop_attrs("broadcast"), "Gemm-7 always broadcasts C"),
    Adapter(("BatchNormalization",), 7, drop_attrs("is_test"), "is_test was dropped in opset 7"),
    Adapter(("Dropout",), 7, drop_attrs("is_test"), "is_test was dropped in opset 7"),
    Adapter(("RNN", "GRU", "LSTM"), 7, drop_attrs("output_sequence"), "dropped in opset 7"),
    Adapter(("BatchNormalization",), 9, drop_attrs("spatial"), "spatial was dropped in opset 9"),
    Adapter(("Scan",), 9, scan8_batched_to_loop, "Scan-8 ran over a batch axis; now a Loop of Scans"),
    Adapter(("Tile",), 6, tile_axis_form, "Tile-6 takes one repeat count per axis"),
    Adapter(("LpPool", "GlobalLpPool"), 2, lp_norm_int_p, "p became an integer in opset 2"),
    Adapter(("Slice",), 10, chain(attr_to_input("starts", 1), attr_to_input("ends", 2),
                                  attr_to_input("axes", 3)), "Slice-10 takes starts/ends/axes as inputs"),
    Adapter(("TopK",), 10, attr_to_input("k", 1), "TopK-10 takes k as an input"),
    Adapter(("Pad",), 11, chain(attr_to_input("pads", 1),
                                attr_to_input("value", 2, like_input=0, shape="scalar")),
            "Pad-11 takes pads and the constant value as inputs"),
    Adapter(("Clip",), 11, chain(attr_to_input("min", 1, like_input=0, shape="scalar"),
                                 attr_to_input("max", 2, like_input=0, shape="scalar")),
            "Clip-11 takes min and max as inputs"),
    Adapter(("Resize",), 11, resize10_to_resize, "Resize-11 added roi and coordinate modes"),
    Adapter(("Upsample",), 99, upsample_to_resize, "Upsample was replaced by Resize"),
    Adapter(("Scatter",), 99, rename("ScatterElements"), "Scatter was renamed ScatterElements"),
    Adapter(("Dropout",), 12, dropout_ratio_to_input, "Dropout-12 takes ratio as an input"),
    Adapter(("Softmax", "LogSoftmax", "Hardmax"), 13, softmax_coerced_2d,
            "before opset 13 these ops flattened the input to 2-D"),
    Adapter(("Split",), 13, attr_to_input("split", 1), "Split-13 takes split as an input"),
    Adapter(("Squeeze", "Unsqueeze"), 13, attr_to_input("axes", 1), "axes became an input in 13"),
    Adapter(("BatchNormalization",), 14, keep_first_output,
            "BatchNormalization-14 returns running statistics only in training mode"),
    Adapter(REDUCE, 18, attr_to_input("axes", 1), "axes became an input (ReduceSum: 13, others: 18)"),
    Adapter(("Split",), 18, split_equal_parts, "Split-18 needs num_outputs for even splits"),
    Adapter(("RoiAlign",), 16, default_attr("coordinate_transformation_mode", "output_half_pixel"),
            "RoiAlign-10 sampled with output_half_pixel coordinates (16 defaults to half_pixel)"),
    Adapter(("GridSample",), 20, grid_sample_mode_names, "GridSample-20 renamed its modes"),
    Adapter(("DFT",), 20, dft_axis_to_input, "DFT-20 takes axis as an input"),
    Adapter(("LabelEncoder",), 2, label_encoder_v1, "LabelEncoder-2 takes explicit key/value lists",
            domain="ai.onnx.ml"),
]

# --- experimental ops of opsets 1-9 that ONNX has since removed (old model zoo models use them) --

def _scalar_like(ctx, d: NodeDraft, value, what: str):
    return ctx.const(np.asarray(value, ctx.dtype(d.inputs[0]).np), f"{d.name or d.op_type}_{what}")


def image_scaler(ctx, d: NodeDraft) -> None:
    """ImageScaler: y = scale * x + bias[c] (bias per channel of NCHW)."""
    x = d.inputs[0]
    scaled = ctx.emit("Mul", [x, _scalar_like(ctx, d, d.attrs.get("scale", 1.0), "scale")])[0]
    bias = np.asarray(d.attrs.get("bias", (0.0,)), ctx.dtype(x).np)
    rank = ctx.rank(x) or 4
    d.op_type, d.attrs = "Add", {}
    d.inputs = [scaled, ctx.const(bias.reshape((1, -1) + (1,) * (rank - 2)), f"{d.name or 'imagescaler'}_bias")]


def affine(ctx, d: NodeDraft) -> None:
    """Affine: y = alpha * x + beta."""
    scaled = ctx.emit("Mul", [d.inputs[0], _scalar_like(ctx, d, d.attrs.get("alpha", 1.0), "alpha")])[0]
    d.op_type, d.inputs = "Add", [scaled, _scalar_like(ctx, d, d.attrs.get("beta", 0.0), "beta")]
    d.attrs = {}


def scaled_activation(inner: str) -> Callable:
    """ScaledTanh / ParametricSoftplus: y = alpha * f(beta * x)."""
    def convert(ctx, d: NodeDraft) -> None:
        x = ctx.emit("Mul", [d.inputs[0], _scalar_like(ctx, d, d.attrs.get("beta", 1.0), "beta")])[0]
        y = ctx.emit(inner, [x])[0]
        d.op_type, d.inputs = "Mul", [y, _scalar_like(ctx, d, d.attrs.get("alpha", 1.0), "alpha")]
        d.attrs = {}
    return convert


def crop(ctx, d: NodeDraft) -> None:
    """Crop: border (left, top, right, bottom) and an optional output size (scale: height, width)."""
    x = d.inputs[0]
    left, top, right, bottom = (tuple(d.attrs.get("border", ())) + (0, 0, 0, 0))[:4]
    size = tuple(d.attrs.get("scale", ()))
    if size:
        ends = [top + size[0], left + size[1]]
    else:
        t = x.type
        if not isinstance(t, TensorType) or t.shape is None or not all(
                isinstance(v, int) for v in t.shape[2:4]):
            ctx.fail("Crop without `scale` needs static height and width")
        ends = [t.shape[2] - bottom, t.shape[3] - right]
    name = d.name or "crop"
    d.op_type, d.attrs = "Slice", {}
    d.inputs = [x, ctx.const(np.array([top, left], np.int64), f"{name}_starts"),
                ctx.const(np.array(ends, np.int64), f"{name}_ends"),
                ctx.const(np.array([2, 3], np.int64), f"{name}_axes")]


LEGACY_OPS: dict[str, Callable] = {
    "ImageScaler": image_scaler,
    "Affine": affine,
    "ScaledTanh": scaled_activation("Tanh"),
    "ParametricSoftplus": scaled_activation("Softplus"),
    "Crop": crop,
}

# Renamed ops, so the importer can tell which kiln op a node will become before converting it.
RENAMES = {"Upsample": "Resize", "Scatter": "ScatterElements"}


def adapters_for(op_type: str, since_version: int, domain: str = "") -> list[Adapter]:
    """The table entries that apply to a node whose schema is `since_version`."""
    out = [a for a in ADAPTERS if since_version < a.below and a.domain == domain
           and (op_type in a.ops or "*" in a.ops)]
    return sorted(out, key=lambda a: a.below)


def unsupported_form(op_type: str, since_version: int, domain: str = "") -> str | None:
    """Why this old form cannot be upgraded, or None when it can."""
    for a in adapters_for(op_type, since_version, domain):
        if a.convert is None:
            return a.doc
    return None


def adapt(ctx, draft: NodeDraft, since_version: int | None) -> NodeDraft:
    """Apply every conversion that the node's schema version calls for, oldest first.

    since_version None: ONNX no longer knows the op; only the legacy table can convert it."""
    if since_version is None:
        if draft.domain == "" and draft.op_type in LEGACY_OPS:
            LEGACY_OPS[draft.op_type](ctx, draft)
        return draft
    for a in adapters_for(draft.op_type, since_version, draft.domain):
        if a.convert is None:
            ctx.fail(f"{draft.op_type} in its opset-{since_version} form is not supported: {a.doc}")
        a.convert(ctx, draft)
    return draft


def target_name(op_type: str) -> str:
    return RENAMES.get(op_type, op_type)


