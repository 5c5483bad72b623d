"""tb_gradflow: find where gradients stop flowing in a TensorFlow/Keras model.

TensorFlow is imported on first use of `analyze`, `summary` or `keras`, so that the TensorBoard
plugin and the report reader start without it.
"""
from __future__ import annotations

import importlib
from typing import Any

from tb_gradflow import install_hint
from tb_gradflow.presenting import ReportPresenter
from tb_gradflow.report import CutPoint, OpRecord, Report, VariableRecord, present_with

present_with(ReportPresenter())

__all__ = ["analyze", "summary", "keras", "Report", "CutPoint", "OpRecord", "VariableRecord"]
__version__ = "0.1.0"


# The modules that need TensorFlow (and Keras), which a viewer-only install does not have.
_NEEDS_TENSORFLOW = {
    "analyze": "tb_gradflow.capture.analyze",
    "summary": "tb_gradflow.summary",
    "keras": "tb_gradflow.keras",
}


def __getattr__(name: str) -> Any:
    """`analyze`, `summary` and `keras`, imported (with TensorFlow) on first use."""
    if name not in _NEEDS_TENSORFLOW:
        raise AttributeError(f"module 'tb_gradflow' has no attribute {name!r}")
    try:
        module = importlib.import_module(_NEEDS_TENSORFLOW[name])
    except ModuleNotFoundError as e:
        if not install_hint.is_missing_training_module(e):
            raise
        raise install_hint.needs_tensorflow(f"tb_gradflow.{name}", e) from e
    return module.analyze if name == "analyze" else module
