"""`analyze()`: one call, one report; probes are cached so repeated calls do not retrace."""
from __future__ import annotations

import collections
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.bodies import body_ops_default
from tb_gradflow.capture.eager import eager_probe
from tb_gradflow.capture.probe import LossTraceError, Probe, ProbeResult
from tb_gradflow.capture.sources import frame_text, is_library_file
from tb_gradflow.format.records import build_report
from tb_gradflow.report import Report

logger = logging.getLogger("tb_gradflow")

_CACHE_SIZE = 64
_probes: collections.OrderedDict[tuple, Probe] = collections.OrderedDict()


def _cache_key(
    loss_fn: Callable,
    variables: Sequence[Any] | None,
    optimizer: Any,
    apply_inside: bool,
    bodies: bool,
) -> tuple:
    # A bound method is a new object at each attribute access: key on the function and its owner.
    fn = getattr(loss_fn, "__func__", loss_fn)
    owner = id(getattr(loss_fn, "__self__", None))
    var_ids = None if variables is None else tuple(id(v) for v in variables)
    opt = id(optimizer) if optimizer is not None else None
    return (fn, owner, var_ids, opt, apply_inside, bodies)


def probe_for(
    loss_fn: Callable,
    variables: Sequence[Any] | None,
    optimizer: Any,
    apply_inside: bool = True,
    measure_bodies: bool | None = None,
) -> Probe:
    """The cached probe of `loss_fn` for these variables, optimizer and options (made once).

    `measure_bodies`: measure the ops inside loop bodies too (see capture/bodies.py); None
    does unless $TB_GRADFLOW_BODY_OPS is 0.
    """
    check_loss_fn(loss_fn)
    apply_inside = apply_inside or optimizer is None  # without an optimizer, one probe serves both
    bodies = body_ops_default() if measure_bodies is None else bool(measure_bodies)
    key = _cache_key(loss_fn, variables, optimizer, apply_inside, bodies)
    probe = _probes.get(key)
    if probe is None:
        probe = Probe(loss_fn, variables, optimizer, apply_inside, measure_bodies=bodies)
        _probes[key] = probe
        while len(_probes) > _CACHE_SIZE:
            _probes.popitem(last=False)
    else:
        _probes.move_to_end(key)
    return probe


def run_probe(
    loss_fn: Callable,
    args: tuple,
    kwargs: dict,
    variables: Sequence[Any] | None,
    optimizer: Any,
    measure_bodies: bool | None = None,
) -> ProbeResult:
    """Runs the graph probe; if the loss cannot be traced, falls back to an eager tape.

    Raises:
      TypeError: `loss_fn` is not callable (a loss tensor passed where its function belongs).
      LossValueError: `loss_fn` returned None.
    """
    probe = probe_for(loss_fn, variables, optimizer, measure_bodies=measure_bodies)
    try:
        return probe(*args, **kwargs)
    except LossTraceError as trace_error:
        reason = f"the loss could not be traced into a graph ({trace_failure(trace_error.__cause__ or trace_error)})"
        logger.info("tb_gradflow: %s; using an eager tape", reason)
        try:
            return eager_probe(loss_fn, args, kwargs, variables, optimizer, reason, probe.namer)
        except Exception as eager_error:
            raise eager_error from trace_error


def check_loss_fn(loss_fn: Any) -> None:
    """A clear error for a value passed where the function computing the loss belongs."""
    if callable(loss_fn):
        return
    what = "a tensor" if tf.is_tensor(loss_fn) else f"a {type(loss_fn).__name__}"
    raise TypeError(
        f"tb_gradflow takes the function that computes the loss, not the loss itself (got {what}):"
        " the gradient is followed by calling that function, e.g. "
        "analyze(lambda x, y: loss_fn(y, model(x)), x, y)"
    )


def trace_failure(error: BaseException) -> str:
    """The useful line of a tracing error: its last message line and the user's line it came from.

    Autograph wraps the error as "in user code: File ..., line N ... ErrorType: message". A
    Keras layer's error ends with the arguments of the call ("Arguments received by
    Sequential.call(): • inputs=... • kwargs=..."), after its message in terminal bold: the
    message is taken from before them, without the escape codes.
    """
    lines = [line.strip() for line in _ANSI.sub("", str(error)).strip().splitlines() if line.strip()]
    told = lines[:next((k for k, line in enumerate(lines) if line.startswith(_KERAS_ARGUMENTS)), len(lines))]
    message = told[-1] if told else ""
    if not re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b", message):
        message = f"{type(error).__name__}: {message}"
    where = ""
    for line in lines:
        match = _FRAME.match(line)
        if match and not is_library_file(match.group(1)):
            where = f" at {frame_text(match.group(1), int(match.group(2)))}"
    return message + where


_FRAME = re.compile(r'^File "(.+)", line (\d+)')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KERAS_ARGUMENTS = "Arguments received by "


def analyze(
    loss_fn: Callable[..., Any], *args: Any, variables: Sequence[Any] | None = None, **kwargs: Any
) -> Report:
    """Where does the gradient of `loss_fn(*args, **kwargs)` stop, and what does that starve?"""
    result = run_probe(loss_fn, args, kwargs, variables, None)
    return build_report(result.graph, result.step)
