"""The error a viewer-only install gives when training-side code is imported.

`tb_gradflow.analyze`, `tb_gradflow.summary` and `tb_gradflow.keras` need TensorFlow and Keras,
which `pip install tb_gradflow` (the viewer) leaves out. Whether they are reached as attributes of
the package or imported as modules, the error names the extra that installs them.
"""

from __future__ import annotations

# The top-level modules whose absence means "install the training extra".
TRAINING_MODULES = ("tensorflow", "keras")


def is_missing_training_module(error: ModuleNotFoundError) -> bool:
    """Whether `error` is TensorFlow or Keras missing (not some other module)."""
    return error.name is not None and error.name.split(".")[0] in TRAINING_MODULES


def needs_tensorflow(what: str, error: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error to raise in place of `error` when `what` (e.g. `tb_gradflow.keras`) cannot load.

    Args:
      what: the public name the user reached for.
      error: the `ModuleNotFoundError` that importing it raised.

    Returns:
      A `ModuleNotFoundError` with the same `name`, whose message says which extra to install.
    """
    return ModuleNotFoundError(
        f"{what} needs TensorFlow and Keras ({error.name} is not installed): "
        'pip install "tb_gradflow[cpu]" (or "tb_gradflow[gpu]" for the CUDA build; '
        'from a checkout: pip install ".[cpu]"). The TensorBoard tab, the tb-gradflow command '
        "and the HTML export work without them.",
        name=error.name,
    )
