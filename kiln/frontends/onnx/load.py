"""Reading ONNX files safely.

A model file is parsed as protobuf only: nothing is ever unpickled. Tensors stored as external
data are read from files that must stay inside the model's own folder (no absolute paths, no
'..', no symlink leading out of it), and every read is bounded by the file's real size.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ...errors import ModelLoadError

# A protobuf message cannot exceed 2 GiB; a bigger file is not an ONNX model.
MAX_MODEL_BYTES = 2**31 - 1

_HINT_REEXPORT = "re-export the model, or check that the file was copied completely"


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Parse the ONNX file at `path`, with its external data, into a ModelProto."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelLoadError(f"model file '{path}' does not exist",
                             hint="check the path (relative paths start at the current folder)") from None
    except OSError as e:
        raise ModelLoadError(f"cannot read model file '{path}': {e.strerror}",
                             hint="check the path and its permissions") from None
    if path.is_dir():
        raise ModelLoadError(f"'{path}' is a folder, not an ONNX file",
                             hint="pass the path of the .onnx file inside it")
    if size > MAX_MODEL_BYTES:
        raise ModelLoadError(f"model file '{path}' is {size} bytes, over the 2 GiB protobuf limit",
                             hint="store the weights as external data next to the model")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelLoadError(f"cannot read model file '{path}': {e.strerror}",
                             hint="check the file's permissions") from None
    model = parse_model(data, source=str(path))
    load_external_data(model, path.parent, source=str(path))
    return model


def parse_model(data: bytes, source: str = "<bytes>") -> onnx.ModelProto:
    """Parse serialized ModelProto bytes; malformed or truncated data raises ModelLoadError."""
    if len(data) == 0:
        raise ModelLoadError(f"model file '{source}' is empty", hint=_HINT_REEXPORT)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelLoadError(
            f"'{source}' is not a valid ONNX model: the protobuf is malformed or truncated ({e})",
            hint=_HINT_REEXPORT) from None
    if not model.HasField("graph"):
        raise ModelLoadError(f"'{source}' holds no ONNX graph (is it an ONNX model file?)",
                             hint=_HINT_REEXPORT)
    if model.ir_version >= 3 and len(model.opset_import) == 0:
        raise ModelLoadError(f"'{source}' declares no opset import: the file is truncated or damaged",
                             hint=_HINT_REEXPORT)
    return model


def iter_tensors(model: onnx.ModelProto):
    """Every TensorProto the model holds: initializers, Constant/attribute tensors, subgraphs,
    sparse tensors' parts and functions."""
    yield from _graph_tensors(model.graph)
    for f in model.functions:
        for n in f.node:
            yield from _node_tensors(n)


def _graph_tensors(g: onnx.GraphProto):
    yield from g.initializer
    for s in g.sparse_initializer:
        yield s.values
        yield s.indices
    for n in g.node:
        yield from _node_tensors(n)


def _node_tensors(n: onnx.NodeProto):
    for a in n.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        if a.HasField("sparse_tensor"):
            yield a.sparse_tensor.values
            yield a.sparse_tensor.indices
        for s in a.sparse_tensors:
            yield s.values
            yield s.indices
        if a.HasField("g"):
            yield from _graph_tensors(a.g)
        for g in a.graphs:
            yield from _graph_tensors(g)


def has_external_data(model: onnx.ModelProto) -> bool:
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in iter_tensors(model))


def load_external_data(model: onnx.ModelProto, base_dir: str | os.PathLike | None,
                       source: str = "<bytes>") -> None:
    """Read every external tensor's bytes into the model, from files inside `base_dir` only."""
    cache: dict[Path, bytes] = {}
    for t in iter_tensors(model):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        if base_dir is None:
            raise ModelLoadError(
                f"tensor '{t.name}' is stored as external data, but the model was given as bytes",
                hint="load the model from its file path so its data files can be found")
        info = {e.key: e.value for e in t.external_data}
        file = safe_external_path(base_dir, info.get("location", ""), t.name, source)
        if file not in cache:
            try:
                cache[file] = file.read_bytes()
            except OSError as e:
                raise ModelLoadError(
                    f"cannot read external data file '{file}' of tensor '{t.name}': {e.strerror}",
                    hint="keep the data files next to the model file") from None
        blob = cache[file]
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else len(blob) - offset
        except ValueError:
            raise ModelLoadError(f"tensor '{t.name}' has a non-numeric external data offset/length",
                                 hint=_HINT_REEXPORT) from None
        if offset < 0 or length < 0 or offset + length > len(blob):
            raise ModelLoadError(
                f"tensor '{t.name}' reads bytes {offset}..{offset + length} of '{file}', "
                f"which has only {len(blob)} bytes", hint=_HINT_REEXPORT)
        t.raw_data = blob[offset:offset + length]
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]


def safe_external_path(base_dir, location: str, tensor_name: str, source: str) -> Path:
    """The external data file for `location`, which must resolve inside `base_dir`."""
    hint = "external data files must sit in the model's folder or below it"
    if not location:
        raise ModelLoadError(f"tensor '{tensor_name}' is external but names no location",
                             hint=_HINT_REEXPORT)
    if "\x00" in location:
        raise ModelLoadError(f"tensor '{tensor_name}' has an invalid external data location",
                             hint=hint)
    loc = Path(location)
    if loc.is_absolute() or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise ModelLoadError(
            f"tensor '{tensor_name}' of '{source}' points to absolute path '{location}'", hint=hint)
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        raise ModelLoadError(
            f"tensor '{tensor_name}' of '{source}' points outside the model's folder ('{location}')",
            hint=hint)
    base = Path(base_dir).resolve()
    file = (base / loc).resolve()
    if file != base and base not in file.parents:
        raise ModelLoadError(
            f"tensor '{tensor_name}' of '{source}': '{location}' leads outside the model's folder "
            f"(to '{file}', through a symbolic link)", hint=hint)
    if not file.is_file():
        raise ModelLoadError(f"external data file '{location}' of tensor '{tensor_name}' is missing",
                             hint="keep the data files next to the model file")
    return file
