"""tb_gradflow: find where gradients stop flowing in a TensorFlow/Keras model.

TensorFlow is imported on first use of `analyze`, `summary` or `keras`, so that the TensorBoard
plugin and the report reader start without it.
"""
from __future__ import annotations

import importlib
from typing import Any

from tb_gradflow.report import CutPoint, OpRecord, Report, VariableRecord

__all__ = ["analyze", "summary", "keras", "Report", "CutPoint", "OpRecord", "VariableRecord"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "analyze":
        return importlib.import_module("tb_gradflow.capture.analyze").analyze
    if name in ("summary", "keras"):
        return importlib.import_module(f"tb_gradflow.{name}")
    raise AttributeError(f"module 'tb_gradflow' has no attribute {name!r}")
