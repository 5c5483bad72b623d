"""tb_gradflow.torch: the same diagnosis for PyTorch training, written in the same format.

`analyze(loss_fn, *args)` returns the same `Report` as the TensorFlow side; `gradflow(writer,
name, loss_fn, *args, step=...)` also writes the step to a logdir that the tab, `tb-gradflow`
and the HTML export read like a TensorFlow run. Nothing on this path imports TensorFlow.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - the extra this subpackage needs
except ModuleNotFoundError as e:
    if e.name != "torch":
        raise
    raise ModuleNotFoundError(
        "tb_gradflow.torch needs PyTorch (torch is not installed): "
        'pip install "tb_gradflow[torch]". '
        "The TensorBoard tab, the tb-gradflow command and the HTML export work without it.",
        name="torch",
    ) from e

from tb_gradflow.torch.analyze import analyze
from tb_gradflow.torch.params import Unsupported
from tb_gradflow.torch.writing import gradflow

__all__ = ["analyze", "gradflow", "Unsupported"]
