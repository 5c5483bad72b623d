"""The forward side of a torch loss, op by op: what autograd's graph does not show.

Most cuts leave no node in autograd's graph (argmax, `.long()`, `.detach()`, a tensor rebuilt
from `.tolist()`), so they are seen here, as the loss runs: a `TorchFunctionMode` records each
torch function call with its tensor inputs and outputs, the module it runs in (global forward
hooks keep the stack) and the user's line that called it. `autograd.Function.apply`, which modes
do not see, is wrapped for the call's duration to record custom Functions.

Anomaly mode would give the user's line too, but only for ops that make an autograd node (none
of the cuts) and at about 3x the step's cost (bench/overhead.py --torch measures both).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from tb_gradflow.capture.sources import THIRD_PARTY, USER, frame_kind, frame_text
from tb_gradflow.torch import units

# Calls that read metadata or nothing a gradient flows through: not ops of the loss path.
_SKIPPED = frozenset(
    {
        "dim",
        "size",
        "shape",
        "dtype",
        "device",
        "requires_grad",
        "is_floating_point",
        "numel",
        "__len__",
        "is_leaf",
        "grad_fn",
        "is_complex",
        "ndim",
        "ndimension",
        "nelement",
        "stride",
        "is_contiguous",
        "storage_offset",
        "layout",
        "is_cuda",
        "is_sparse",
        "names",
        "element_size",
        "__repr__",
        "__format__",
        "__hash__",
        "data_ptr",
        "_version",
        "__iter__",
        "__contains__",
        "untyped_storage",
        "__reduce_ex__",
        "__deepcopy__",
        "requires_grad_",
        "retain_grad",
        "register_hook",
        "backward",
        "grad",
        "__get__",
        "__set__",
        "_is_view",
        "is_inference",
    }
)
# Calls that leave torch for Python or NumPy: their result re-enters, if at all, as a new tensor.
LEAVES_TORCH = frozenset(
    {"numpy", "tolist", "item", "__int__", "__float__", "__bool__", "__array__", "__index__"}
)


@dataclasses.dataclass
class RecordedOp:
    """One torch call of the forward pass."""

    type: str
    scope: str
    source: str
    library_source: str
    inputs: list[int]  # producer op indices of the tensor (or re-entered Python) inputs
    input_tensors: list[torch.Tensor]
    outputs: list[torch.Tensor]
    grad_enabled: bool
    inference: bool = False
    custom_function: bool = False
    # The name of the in-place method or the dtype the op casts to, for the cut's detail.
    detail: str = ""
    # As recorded: an input required grad; an output did (a later `requires_grad_()` on the
    # output, as users do to silence autograd's error, must not hide the cut).
    reads_grad: bool = False
    gives_grad: bool = False
    # Ids of the outputs that carry no gradient although an input does (topk's indices).
    dead_outputs: frozenset[int] = frozenset()
    # A ReLU-family op whose gradient is zero wherever its output is (units.off_passes_nothing):
    # its dead units are counted.
    off_passes_nothing: bool = False
    # For an op that wrote its first input in place (`relu_`, `relu(inplace=True)`, `add_`): the
    # autograd node the write made. What it passes back to its first input is the gradient of
    # the buffer as it was before the write, the output of the op that made it.
    write_node: Any = None

    def __post_init__(self) -> None:
        # Lists, not generators: this runs for every recorded op of every logged step.
        self.reads_grad = True in [t.requires_grad for t in self.input_tensors]
        gives = [t.requires_grad for t in self.outputs]
        self.gives_grad = True in gives
        if self.reads_grad and False in gives:
            self.dead_outputs = frozenset(
                [id(t) for t, g in zip(self.outputs, gives, strict=True) if not g]
            )


class Recording:
    """What one forward pass did; `ops` in call order."""

    def __init__(self, module_names: dict[int, str], root_scope: str = "loss"):
        self.ops: list[RecordedOp] = []
        self.module_names = module_names
        self.root_scope = root_scope
        self.producer: dict[int, int] = {}  # id(tensor or Python result) -> op index
        self.versions: dict[int, int] = {}  # id(tensor) -> its version when recorded
        self.kept: list[Any] = []  # holds every recorded object, so that ids stay unique
        self.module_stack: list[str] = []
        self.function_depth = 0

    def scope(self) -> str:
        """The module path ops run in now: the innermost named module, or the root scope."""
        return self.module_stack[-1] if self.module_stack else self.root_scope

    def producers_of(self, objects: list[Any]) -> list[int]:
        """Indices of the recorded ops that made `objects` (tensors or Python results)."""
        out = []
        for obj in objects:
            op = self.producer.get(id(obj))
            if op is not None and op not in out:
                out.append(op)
        return out

    def add(self, op: RecordedOp, results: list[Any]) -> None:
        """Appends `op`, which made `results` (kept alive, so that their ids stay theirs)."""
        index = len(self.ops)
        self.ops.append(op)
        for obj in results:
            self.producer[id(obj)] = index
            if isinstance(obj, torch.Tensor) and not obj.is_inference():
                self.versions[id(obj)] = obj._version
        self.kept.extend(results)


_NOT_VALUES = (str, bool, torch.dtype, torch.device, type)


def _flatten(obj: Any, depth: int = 3) -> list[Any]:
    """Tensors and Python numbers/arrays inside nested lists, tuples and dicts (a list: this
    runs for every recorded op, where generators cost more than the op's record)."""
    out: list[Any] = []
    _collect(obj, depth, out)
    return out


def _collect(obj: Any, depth: int, out: list[Any]) -> None:
    if isinstance(obj, (list, tuple)) and depth > 0:
        for item in obj:
            if isinstance(item, torch.Tensor):
                out.append(item)
            else:
                _collect(item, depth - 1, out)
    elif isinstance(obj, dict) and depth > 0:
        _collect(list(obj.values()), depth, out)
    elif obj is not None and not isinstance(obj, _NOT_VALUES):
        out.append(obj)


def op_type(func: Callable[..., Any]) -> str:
    """`linear`, `argmax`, `mul` (for `__mul__`), `data` (for the `Tensor.data` getter)."""
    name = getattr(func, "__name__", "") or type(func).__name__
    if name in ("__get__", "__set__"):
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", name)
    if name.startswith("__") and name.endswith("__") and name not in LEAVES_TORCH:
        name = name[2:-2]
    return name


_frame_text = functools.lru_cache(maxsize=8192)(frame_text)


def user_frames(start: Any) -> tuple[str, str]:
    """(the user's line, the innermost third-party line inside it or "") from a frame outwards."""
    library = ""
    frame = start
    while frame is not None:
        filename = frame.f_code.co_filename
        kind = frame_kind(filename)
        if kind == USER:
            return _frame_text(filename, frame.f_lineno), library
        if kind == THIRD_PARTY and not library:
            library = _frame_text(filename, frame.f_lineno)
        frame = frame.f_back
    return "", library


class _Mode(TorchFunctionMode):
    """Records every torch call of interest into a Recording; never changes what it computes."""

    def __init__(self, recording: Recording):
        super().__init__()
        self.recording = recording
        self.error: BaseException | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        grad_enabled = torch.is_grad_enabled()
        result = func(*args, **kwargs)
        if self.error is None and self.recording.function_depth == 0:
            try:
                self._record(func, args, kwargs, result, grad_enabled)
            except Exception as e:  # noqa: BLE001 - recording must never change the loss
                self.error = e
        return result

    def _record(
        self, func: Callable[..., Any], args: tuple, kwargs: dict, result: Any, grad_enabled: bool
    ) -> None:
        name = op_type(func)
        if name in _SKIPPED and name != "data":
            return
        rec = self.recording
        inputs = _flatten(args) + _flatten(kwargs) if kwargs else _flatten(args)
        in_place = name.endswith("_") and not name.startswith("_") or name in ("setitem", "copy_")
        if in_place and inputs and isinstance(inputs[0], torch.Tensor):
            results = [inputs[0]]  # the mutated buffer is what later ops read
        elif _unchanged_input(result, inputs, rec):
            # An identity (dropout in eval mode, .contiguous() of a contiguous tensor): nothing
            # is made, and the op that made the tensor stays its producer (a ReLU keeps its
            # own gradient, presence and units).
            return
        elif isinstance(result, torch.Tensor):
            results = [result]
        else:
            results = [r for r in _flatten(result) if isinstance(r, torch.Tensor)]
            if name in LEAVES_TORCH and result is not None:
                results = [result, *(r for r in _flatten(result) if r is not result)]
        if not results:
            return
        tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
        source, library = user_frames(sys._getframe(2))
        op = RecordedOp(
            type=name,
            scope=rec.scope(),
            source=source,
            library_source=library,
            inputs=rec.producers_of(inputs),
            input_tensors=tensors,
            outputs=[r for r in results if isinstance(r, torch.Tensor)],
            grad_enabled=grad_enabled,
            inference=torch.is_inference_mode_enabled(),
            detail=_cast_detail(name, args, kwargs, result),
            off_passes_nothing=units.off_passes_nothing(name, args, kwargs),
            write_node=_write_node(results, tensors),
        )
        rec.add(op, results)


def _write_node(results: list[Any], inputs: list[torch.Tensor]) -> Any:
    """The autograd node of an in-place write: what an op hands back is its first input tensor
    (an unchanged one is not recorded at all), now with the write's node as its grad_fn."""
    out = results[0]
    if not (inputs and out is inputs[0] and isinstance(out, torch.Tensor) and out.requires_grad):
        return None
    return out.grad_fn


def _unchanged_input(result: Any, inputs: list[Any], rec: Recording) -> bool:
    """Whether a call handed back one of its recorded input tensors, unmodified (its version as
    recorded; `relu(x, inplace=True)` also hands back its input, written)."""
    return (
        isinstance(result, torch.Tensor)
        and any(result is t for t in inputs)
        and rec.versions.get(id(result)) == result._version
    )


def _cast_detail(name: str, args: tuple, kwargs: dict, result: Any) -> str:
    if (
        isinstance(result, torch.Tensor)
        and not result.is_floating_point()
        and not result.is_complex()
    ):
        return f"{name} to {str(result.dtype).replace('torch.', '')}"
    return ""


class record:  # noqa: N801 - used as a context manager, like torch's own
    """Records the forward ops run inside it: `with record(names) as recording: loss = f()`."""

    def __init__(self, module_names: dict[int, str]):
        self.recording = Recording(module_names)
        self.mode = _Mode(self.recording)
        self._handles: list[Any] = []

    def __enter__(self) -> Recording:
        rec = self.recording
        names = rec.module_names

        def push(module: torch.nn.Module, _args: Any) -> None:
            name = names.get(id(module))
            rec.module_stack.append(name if name is not None else rec.scope())

        def pop(module: torch.nn.Module, _args: Any, _out: Any) -> None:
            if rec.module_stack:
                rec.module_stack.pop()

        hooks = torch.nn.modules.module
        self._handles = [
            hooks.register_module_forward_pre_hook(push),
            hooks.register_module_forward_hook(pop),
        ]
        _install_apply_wrapper()
        _active.mode = self.mode
        self.mode.__enter__()
        return rec

    def __exit__(self, *exc: Any) -> None:
        self.mode.__exit__(*exc)
        _active.mode = None
        for handle in self._handles:
            handle.remove()


# The recording under way in this thread, for the Function.apply wrapper.
_active = threading.local()
_apply_lock = threading.Lock()


def _install_apply_wrapper() -> None:
    """Custom Functions: modes do not see `Function.apply`, a classmethod. It is wrapped once per
    process (setting a class attribute on every call would cost more than the rest of a small
    step); outside a recording the wrapper only calls through. The ops a Function's `forward`
    runs are not recorded as the user's.
    """
    with _apply_lock:
        original = torch.autograd.Function.__dict__["apply"]
        if getattr(original.__func__, "_tb_gradflow", False):
            return

        def apply(cls: Any, *args: Any, **kwargs: Any) -> Any:
            mode = getattr(_active, "mode", None)
            if mode is None:
                return original.__func__(cls, *args, **kwargs)
            rec = mode.recording
            rec.function_depth += 1
            try:
                result = original.__func__(cls, *args, **kwargs)
            finally:
                rec.function_depth -= 1
            if rec.function_depth == 0 and mode.error is None:
                try:
                    _record_function(rec, cls, args, kwargs, result)
                except Exception as e:  # noqa: BLE001
                    mode.error = e
            return result

        apply._tb_gradflow = True  # type: ignore[attr-defined]
        functools.update_wrapper(apply, original.__func__)
        torch.autograd.Function.apply = classmethod(apply)  # type: ignore[method-assign, assignment]


def _record_function(rec: Recording, cls: Any, args: tuple, kwargs: dict, result: Any) -> None:
    inputs = _flatten(args) + _flatten(kwargs)
    outputs = [r for r in _flatten(result) if isinstance(r, torch.Tensor)]
    if not outputs:
        return
    source, library = user_frames(sys._getframe(2))
    op = RecordedOp(
        type=cls.__name__,
        scope=rec.scope(),
        source=source,
        library_source=library,
        inputs=rec.producers_of(inputs),
        input_tensors=[t for t in inputs if isinstance(t, torch.Tensor)],
        outputs=outputs,
        grad_enabled=torch.is_grad_enabled(),
        custom_function=True,
    )
    rec.add(op, outputs)
