"""The Keras objects a loss function reaches, so graph variables can be named as the user knows them.

A trace only sees `tf.Variable`s; a Keras 3 variable wraps one (`keras.Variable.value`) and
knows its `path`. Walking what `loss_fn` refers to (its closure, the globals its code names, a
bound method's owner, default arguments, and the attributes and containers of plain objects among
those) finds the user's models and their variables, with the Python name the loss reaches each
model by (`target` for `self.target`). Variables not found that way are looked up through the
garbage collector's referrers, once per trace, which gives the Keras variable but no model.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import gc
import sys
import types
from typing import Any, Iterable, Iterator

from tb_gradflow.capture.sources import is_library_file

# How far from `loss_fn` the walk looks, and how many objects it visits at most: enough for an
# agent holding models in attributes, small next to a trace.
_MAX_DEPTH = 5
_MAX_OBJECTS = 20_000


@dataclasses.dataclass
class Owner:
    """A Keras model (or layer) the loss reaches, and the name it reaches it by."""

    model: Any
    reference: str


@dataclasses.dataclass
class KerasIndex:
    """For the `tf.Variable`s of Keras variables the loss reaches: the Keras variable and owner."""

    # id(tf.Variable) -> Keras variable
    keras_variable: dict[int, Any]
    # id(tf.Variable) -> innermost model holding it, or absent
    owner: dict[int, Owner]

    def all_variables(self) -> list[Any]:
        return list(self.keras_variable.values())


def _keras() -> Any:
    return sys.modules.get("keras")


def _is_user_function(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and not is_library_file(code.co_filename)


def _is_library_object(obj: Any) -> bool:
    module_file = getattr(sys.modules.get(type(obj).__module__), "__file__", None)
    return bool(module_file) and is_library_file(module_file)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # lambdas, comprehensions, nested functions
            yield from _code_names(const)


def _children(obj: Any) -> Iterable[tuple[str, Any]]:
    """(reference name, object) pairs `obj` holds that may lead to a model."""
    if isinstance(obj, functools.partial):
        yield "", obj.func
        yield from (("", a) for a in obj.args)
        yield from obj.keywords.items()
    elif isinstance(obj, types.MethodType):
        yield "", obj.__self__
        yield "", obj.__func__
    elif isinstance(obj, types.FunctionType):
        if not _is_user_function(obj):
            return
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or ()):
            try:
                yield name, cell.cell_contents
            except ValueError:  # an empty cell
                continue
        for name in dict.fromkeys(_code_names(code)):
            if name in obj.__globals__:
                yield name, obj.__globals__[name]
        yield from (("", d) for d in obj.__defaults__ or ())
        yield from (obj.__kwdefaults__ or {}).items()
    elif isinstance(obj, dict):
        yield from ((k if isinstance(k, str) else "", v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from (("", v) for v in obj)
    elif not isinstance(obj, (type, types.ModuleType, types.BuiltinFunctionType)):
        if _is_library_object(obj):
            return  # a library's object (an optimizer, a tensor): no user models inside
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            yield from attrs.items()
        if callable(obj) and not isinstance(obj, types.FunctionType):
            call = getattr(type(obj), "__call__", None)
            if call is not None:
                yield "", call


def _walk(root: Any, keras: Any) -> tuple[list[Owner], list[Any]]:
    """Keras layers (with their reference names) and loose Keras variables reachable from `root`."""
    layers: list[Owner] = []
    variables: list[Any] = []
    seen: set[int] = set()
    queue: collections.deque[tuple[str, Any, int]] = collections.deque([("", root, 0)])
    while queue and len(seen) < _MAX_OBJECTS:
        name, obj, depth = queue.popleft()  # breadth first: the nearest reference names win
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, keras.Layer):
            layers.append(Owner(obj, name or obj.name))
            continue
        if isinstance(obj, keras.Variable):
            variables.append(obj)
            continue
        if depth >= _MAX_DEPTH:
            continue
        for child_name, child in _children(obj):
            if len(queue) >= _MAX_OBJECTS:  # a huge container (a dataset in a list): stop there
                break
            queue.append((child_name or name, child, depth + 1))
    return layers, variables


def _sublayers(layer: Any) -> list[Any]:
    return [layer] + [s for child in getattr(layer, "layers", []) or [] for s in _sublayers(child)]


def keras_index(loss_fn: Any) -> KerasIndex:
    """The Keras variables `loss_fn` reaches, keyed by their tf.Variable, with their owners.

    The owner of a variable is the innermost *model* holding it (a GAN's generator, not the
    combined model), so that its name tells two models' equal layer paths apart.
    """
    keras = _keras()
    index = KerasIndex({}, {})
    if keras is None:
        return index
    try:
        found, loose = _walk(loss_fn, keras)
    except Exception:  # noqa: BLE001 - naming is best effort; never fail the probe over it
        return index
    owners: dict[int, tuple[int, Owner]] = {}
    for top in found:
        for layer in _sublayers(top.model):
            if layer is not top.model and not isinstance(layer, keras.Model):
                continue
            reference = top.reference if layer is top.model else layer.name
            weights = list(layer.weights)
            for v in weights:
                key = id(v.value)
                index.keras_variable.setdefault(key, v)
                size = len(weights)
                if key not in owners or size < owners[key][0]:
                    owners[key] = (size, Owner(layer, reference))
    for v in loose:
        index.keras_variable.setdefault(id(v.value), v)
    index.owner = {k: owner for k, (_, owner) in owners.items()}
    return index


def keras_variables_by_referrers(tf_variables: list[Any]) -> dict[int, Any]:
    """Keras variables wrapping `tf_variables`, found through the garbage collector's referrers."""
    keras = _keras()
    if keras is None or not tf_variables:
        return {}
    wanted = {id(v) for v in tf_variables}
    found: dict[int, Any] = {}
    for ref in gc.get_referrers(*tf_variables):
        if isinstance(ref, keras.Variable):
            try:
                value = ref.value
            except Exception:  # noqa: BLE001
                continue
            if id(value) in wanted:
                found.setdefault(id(value), ref)
    return found
