"""ONNX front end: import ONNX models into kiln Graphs, export them back, and the onnx.backend API.

    from kiln.frontends.onnx import import_model, export_model, KilnBackend
    graph = import_model("model.onnx")
"""

from .backend import KilnBackend, KilnRep
from .exporter import export_model, save_model
from .importer import import_model
from .load import load_model

__all__ = ["import_model", "load_model", "export_model", "save_model", "KilnBackend", "KilnRep"]
