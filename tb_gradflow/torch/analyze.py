"""`tb_gradflow.torch.analyze`: where does the gradient of a torch loss stop?"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from tb_gradflow.report import Report
from tb_gradflow.torch.capture import capture
from tb_gradflow.torch.params import Unsupported


def analyze(
    loss_fn: Callable[..., Any], *args: Any, parameters: Any = None, **kwargs: Any
) -> Report:
    """Runs `loss_fn(*args, **kwargs)` once, recorded, and takes one backward pass.

    Returns the same `Report` as the TensorFlow side: each parameter's gradient state
    (`torch.autograd.grad(loss, params, allow_unused=True)`: None is `none`, all zeros `zero`,
    NaN/Inf `nonfinite`), the ops on the loss path, and the cut points with their cause, the
    user's line and the parameters they starve. No parameter's `.grad` is touched.

    Args:
      loss_fn: returns the loss (a tensor, or a tuple or dict whose first/"loss" entry is).
      *args: passed to `loss_fn`.
      **kwargs: passed to `loss_fn`.
      parameters: the parameters to diagnose (tensors, (name, tensor) pairs, a dict or a module);
        by default those of the modules the loss function refers to (closure, globals, `self`,
        arguments), named by `named_parameters()`. `requires_grad=False` ones are listed as frozen.

    Raises:
      Unsupported: for a torch.compile'd module or loss, or an FSDP-wrapped one; the message says
        what to probe instead (the uncompiled module). A warning says the same first.

    """
    try:
        return capture(loss_fn, args, kwargs, parameters).report()
    except Unsupported as e:
        warnings.warn(f"tb_gradflow.torch.analyze: {e}", stacklevel=2)
        raise
