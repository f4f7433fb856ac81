"""Conversions between ONNX protobuf messages and kiln's types and arrays, both directions."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper

from ...errors import AttributeValueError, ModelLoadError
from ...ir.dtypes import DType
from ...ir.opdef import AttrKind
from ...ir.types import OptionalType, SequenceType, TensorType, Type


def normalize_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


# --- types ---------------------------------------------------------------------------------------

def type_from_proto(tp: onnx.TypeProto, what: str = "value") -> Type | None:
    """kiln Type of an ONNX TypeProto; None when the proto leaves the type unset."""
    which = tp.WhichOneof("value")
    if which is None:
        return None
    if which == "tensor_type":
        tt = tp.tensor_type
        if tt.elem_type == 0:
            return None
        dtype = dtype_from_onnx(tt.elem_type, what)
        if not tt.HasField("shape"):
            return TensorType(dtype, None)
        return TensorType(dtype, tuple(_dim(d) for d in tt.shape.dim))
    if which == "sequence_type":
        elem = type_from_proto(tp.sequence_type.elem_type, what)
        return SequenceType(elem) if elem is not None else None
    if which == "optional_type":
        elem = type_from_proto(tp.optional_type.elem_type, what)
        return OptionalType(elem) if elem is not None else None
    raise ModelLoadError(f"{what} has ONNX type '{which}', which kiln does not support",
                         hint="kiln handles tensors, sequences and optionals")


def _dim(d) -> int | str | None:
    if d.HasField("dim_value"):
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param:
        return d.dim_param
    return None


def dtype_from_onnx(code: int, what: str = "value") -> DType:
    try:
        return DType.from_onnx(int(code))
    except KeyError:
        raise ModelLoadError(f"{what} has ONNX element type {code}, which kiln does not know",
                             hint="this model may need a newer kiln") from None


def type_to_proto(t: Type | None) -> onnx.TypeProto:
    tp = onnx.TypeProto()
    if t is None:
        return tp
    if isinstance(t, TensorType):
        tp.tensor_type.elem_type = t.dtype.onnx
        if t.shape is not None:
            shape = tp.tensor_type.shape
            shape.SetInParent()
            for d in t.shape:
                dim = shape.dim.add()
                if isinstance(d, int):
                    dim.dim_value = d
                elif isinstance(d, str):
                    dim.dim_param = d
        return tp
    if isinstance(t, SequenceType):
        tp.sequence_type.elem_type.CopyFrom(type_to_proto(t.elem))
        return tp
    if isinstance(t, OptionalType):
        tp.optional_type.elem_type.CopyFrom(type_to_proto(t.elem))
        return tp
    raise TypeError(f"cannot express {t!r} as an ONNX type")


def value_info(name: str, t: Type | None) -> onnx.ValueInfoProto:
    vi = onnx.ValueInfoProto()
    vi.name = name
    if t is not None:
        vi.type.CopyFrom(type_to_proto(t))
    return vi


# --- tensors -------------------------------------------------------------------------------------

def tensor_to_array(t: onnx.TensorProto, what: str = "tensor") -> np.ndarray:
    """The tensor's data as a NumPy array (strings as an object array of str)."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        raise ModelLoadError(f"{what} '{t.name}' is stored as external data that was not loaded",
                             hint="load the model from its file path with kiln's loader")
    dtype_from_onnx(t.data_type, f"{what} '{t.name}'")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # corrupt sizes, wrong payload length
        raise ModelLoadError(f"{what} '{t.name}' cannot be decoded: {e}",
                             hint="the file is damaged; re-export the model") from None
    if arr.dtype == object:
        arr = np.vectorize(lambda s: s.decode("utf-8", "replace") if isinstance(s, bytes) else s,
                           otypes=[object])(arr) if arr.size else arr.astype(object)
    return arr


def sparse_to_array(s: onnx.SparseTensorProto, what: str = "sparse tensor") -> np.ndarray:
    """Densify a SparseTensorProto (indices linearized [NNZ] or coordinates [NNZ, rank])."""
    values = tensor_to_array(s.values, what)
    dims = tuple(int(d) for d in s.dims)
    dense = np.zeros(dims, dtype=values.dtype)
    if values.size == 0:
        return dense
    idx = tensor_to_array(s.indices, what).astype(np.int64)
    flat = dense.reshape(-1)
    if idx.ndim == 1:
        flat[idx] = values.reshape(-1)
    else:
        flat[np.ravel_multi_index(tuple(idx.T), dims)] = values.reshape(-1)
    return flat.reshape(dims)


def array_to_tensor(arr: np.ndarray, name: str = "") -> onnx.TensorProto:
    arr = np.asarray(arr)
    if arr.dtype == object:
        t = onnx.TensorProto()
        t.name = name
        t.data_type = onnx.TensorProto.STRING
        t.dims.extend(arr.shape)
        t.string_data.extend(s.encode("utf-8") if isinstance(s, str) else bytes(s)
                             for s in arr.reshape(-1))
        return t
    return numpy_helper.from_array(arr, name)


# --- attributes ---------------------------------------------------------------------------------

A = AttributeProto
# Which ONNX attribute types may fill an attribute of each kiln kind.
ACCEPTS = {
    AttrKind.INT: {A.INT},
    AttrKind.FLOAT: {A.FLOAT, A.INT},
    AttrKind.STRING: {A.STRING},
    AttrKind.INTS: {A.INTS},
    AttrKind.FLOATS: {A.FLOATS, A.INTS},
    AttrKind.STRINGS: {A.STRINGS},
    AttrKind.TENSOR: {A.TENSOR, A.SPARSE_TENSOR},
    AttrKind.GRAPH: {A.GRAPH},
    AttrKind.GRAPHS: {A.GRAPHS},
    AttrKind.TYPE: {A.TYPE_PROTO},
    AttrKind.DTYPE: {A.INT},
}


def decode_attributes(node: onnx.NodeProto) -> tuple[dict[str, Any], dict[str, int]]:
    """Attribute values in plain Python (graphs stay GraphProtos) and their ONNX type codes."""
    values, types = {}, {}
    for a in node.attribute:
        t = a.type
        if t == A.UNDEFINED:
            raise AttributeValueError(f"attribute '{a.name}' of {node.op_type} node '{node.name}' "
                                      f"has no type", hint="the model is malformed")
        values[a.name] = _decode(a)
        types[a.name] = t
    return values, types


def _decode(a: AttributeProto):
    t = a.type
    if t == A.INT:
        return int(a.i)
    if t == A.FLOAT:
        return float(a.f)
    if t == A.STRING:
        return a.s.decode("utf-8")
    if t == A.INTS:
        return tuple(int(x) for x in a.ints)
    if t == A.FLOATS:
        return tuple(float(x) for x in a.floats)
    if t == A.STRINGS:
        return tuple(s.decode("utf-8") for s in a.strings)
    if t == A.TENSOR:
        return tensor_to_array(a.t, f"attribute '{a.name}'")
    if t == A.SPARSE_TENSOR:
        return sparse_to_array(a.sparse_tensor)
    if t == A.TENSORS:
        return tuple(tensor_to_array(x) for x in a.tensors)
    if t == A.GRAPH:
        return a.g
    if t == A.GRAPHS:
        return tuple(a.graphs)
    if t == A.TYPE_PROTO:
        return type_from_proto(a.tp, f"attribute '{a.name}'")
    if t == A.TYPE_PROTOS:
        return tuple(type_from_proto(x) for x in a.type_protos)
    raise AttributeValueError(f"attribute '{a.name}' has unsupported ONNX type "
                              f"{A.AttributeType.Name(t)}")


def onnx_kind_names(kind: AttrKind) -> str:
    return " or ".join(sorted(A.AttributeType.Name(t) for t in ACCEPTS[kind]))
