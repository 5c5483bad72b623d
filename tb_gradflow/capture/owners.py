"""The Keras objects a loss function reaches, so graph variables can be named as the user knows them.

A trace only sees `tf.Variable`s; a Keras 3 variable wraps one (`keras.Variable.value`) and
knows its `path`. A `tf_keras` (Keras 2) variable is a plain `tf.Variable` whose `name` is the
name scope it was built in, which misses the models a `Sequential` or functional model nests
(`dense_1/kernel:0`); its place in the layer tree (`net/block/sequential/dense_1/kernel`) is
what the user knows, so that is computed here. Walking what `loss_fn` refers to (its closure,
the globals its code names, a bound method's owner, default arguments, a `tf.function`'s Python
function, and the attributes and containers of plain objects among those) finds the user's
models and their variables, with the Python name the loss reaches each model by (`target` for
`self.target`). Variables not found that way are looked up through the
garbage collector's referrers, once per trace, which gives the Keras variable but no model.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import gc
import re
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

from tb_gradflow.capture.sources import is_library_file
from tb_gradflow.capture.tf_internals import autocast_inner, tf_function_parts, tf_keras_sublayers

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
    owner: dict[int, Owner] = dataclasses.field(default_factory=dict)
    # id(tf.Variable) -> its path in the layer tree, for variables with no Keras `path` (tf_keras)
    tree_path: dict[int, str] = dataclasses.field(default_factory=dict)
    # The outermost models (and layers) the loss refers to, with the names it reaches them by.
    models: list[Owner] = dataclasses.field(default_factory=list)
    # id(tf.Variable) of the variables Keras would not train: their layer or a model holding
    # them is frozen (`trainable = False`), though the tf.Variable's own flag may still say True.
    frozen: set[int] = dataclasses.field(default_factory=set)

    def all_variables(self) -> list[Any]:
        """Every Keras variable found, so that untracked ones can still be named by owner."""
        return list(self.keras_variable.values())


@dataclasses.dataclass(frozen=True)
class _Kinds:
    """The layer and variable classes of the Keras versions loaded (an empty tuple: not loaded)."""

    keras_layer: tuple[type, ...]
    keras_variable: tuple[type, ...]
    tf_keras_layer: tuple[type, ...]
    tf_keras_model: tuple[type, ...]


def read_key(variable: Any) -> int:
    """The id of the tf.Variable a trace reads for a Keras 3 or tf_keras variable."""
    keras = _keras()
    if keras is not None and isinstance(variable, keras.Variable):
        return id(variable.value)  # a Keras 3 variable wraps its tf.Variable
    inner = autocast_inner(variable)
    return id(variable if inner is None else inner)


def model_keys(model: Any) -> tuple[list[int], set[int]]:
    """(every weight's read key, the keys of the weights Keras trains) of a Keras model or layer:
    `trainable_weights` is Keras' own word, in Keras 3 and tf_keras alike."""
    return [read_key(v) for v in model.weights], {read_key(v) for v in model.trainable_weights}


def _keras() -> Any:
    """Keras 3, if loaded (a Keras 2 `keras` package has no `keras.Variable`)."""
    keras = sys.modules.get("keras")
    return keras if hasattr(keras, "Variable") and hasattr(keras, "Layer") else None


def _kinds() -> _Kinds:
    keras = _keras()
    layer: tuple[type, ...] = ()
    model: tuple[type, ...] = ()
    if "tf_keras" in sys.modules:  # imported by `import tf_keras` or TF_USE_LEGACY_KERAS=1
        try:
            import tf_keras

            layer, model = (tf_keras.layers.Layer,), (tf_keras.Model,)
        except Exception:  # noqa: BLE001 - a half-imported tf_keras: no tf_keras names
            pass
    return _Kinds(
        (keras.Layer,) if keras else (), (keras.Variable,) if keras else (), layer, model,
    )


def _is_user_function(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and not is_library_file(code.co_filename)


def _is_library_object(obj: Any) -> bool:
    module_file = getattr(sys.modules.get(type(obj).__module__), "__file__", None)
    return isinstance(module_file, str) and bool(module_file) and is_library_file(module_file)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # lambdas, comprehensions, nested functions
            yield from _code_names(const)


def _children(obj: Any, layer_kinds: tuple[type, ...]) -> Iterable[tuple[str, Any]]:
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
        for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False):
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
        attrs = getattr(obj, "__dict__", None)
        attrs = attrs if isinstance(attrs, dict) else {}
        decorated = tf_function_parts(obj)
        if decorated:  # a `tf.function` loss: follow the user's function (and its `self`)
            yield from (("", part) for part in decorated)
            return
        if _is_library_object(obj):
            # A library's object (an optimizer, a tensor) holds no user models, except a model
            # handed to it (a Keras callback's `model`, whose bound method is the loss).
            yield from ((k, v) for k, v in attrs.items() if isinstance(v, layer_kinds))
            return
        yield from attrs.items()
        if callable(obj) and not isinstance(obj, types.FunctionType):
            call = getattr(type(obj), "__call__", None)  # noqa: B004 - the method itself is walked, not a test of callability
            if call is not None:
                yield "", call


def _walk(root: Any, kinds: _Kinds) -> tuple[list[Owner], list[Any]]:
    """Keras layers (with their reference names) and loose Keras variables reachable from `root`."""
    layers: list[Owner] = []
    variables: list[Any] = []
    seen: set[int] = set()
    # Any, not type: the Keras layer classes have no type information, their instances neither.
    layer_kinds: tuple[Any, ...] = kinds.keras_layer + kinds.tf_keras_layer
    queue: collections.deque[tuple[str, Any, int]] = collections.deque([("", root, 0)])
    while queue and len(seen) < _MAX_OBJECTS:
        name, obj, depth = queue.popleft()  # breadth first: the nearest reference names win
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, layer_kinds):
            layers.append(Owner(obj, name or obj.name))
            continue
        if isinstance(obj, kinds.keras_variable):
            variables.append(obj)
            continue
        if depth >= _MAX_DEPTH:
            continue
        for child_name, child in _children(obj, layer_kinds):
            if len(queue) >= _MAX_OBJECTS:  # a huge container (a dataset in a list): stop there
                break
            queue.append((child_name or name, child, depth + 1))
    return layers, variables


def _sublayers(layer: Any) -> list[Any]:
    return [layer] + [s for child in getattr(layer, "layers", []) or [] for s in _sublayers(child)]


def _index_keras(found: list[Owner], loose: list[Any], keras: Any, index: KerasIndex) -> None:
    """Keras 3 variables by their tf.Variable, each owned by the smallest model holding it."""
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
    for key, v in index.keras_variable.items():
        if not v.trainable:
            index.frozen.add(key)
    index.owner.update({k: owner for k, (_, owner) in owners.items()})


_PORT = re.compile(r":\d+$")


def _own_name(variable: Any, layer: Any) -> str:
    """A tf_keras variable's name inside `layer`: what follows the layer's name in its scope name
    (`kernel` of `net/block/dense_3/kernel:0`, `lstm_cell/kernel` seen from the LSTM)."""
    parts = _PORT.sub("", variable.name).split("/")
    at = [i for i, part in enumerate(parts[:-1]) if part == layer.name]
    return "/".join(parts[at[-1] + 1:]) if at else parts[-1]


def _descendants(layer: Any) -> set[int]:
    found: set[int] = set()
    stack = tf_keras_sublayers(layer)
    while stack:
        child = stack.pop()
        if id(child) not in found:
            found.add(id(child))
            stack.extend(tf_keras_sublayers(child))
    return found


@dataclasses.dataclass
class _Tree:
    """One pass over tf_keras layer trees: each variable's first path and its innermost model."""

    model_kind: tuple[type, ...]
    references: dict[int, str]  # id(model) -> the name the loss reaches it by
    path: dict[int, str] = dataclasses.field(default_factory=dict)
    owner: dict[int, Owner] = dataclasses.field(default_factory=dict)
    seen: set[int] = dataclasses.field(default_factory=set)

    def visit(self, layer: Any, prefix: str, owner: Owner | None) -> None:
        if id(layer) in self.seen:  # a layer shared by two parents keeps its first path
            return
        self.seen.add(id(layer))
        prefix = f"{prefix}{layer.name}/"
        if owner is None or isinstance(layer, self.model_kind):
            owner = Owner(layer, self.references.get(id(layer), layer.name))
        for child in tf_keras_sublayers(layer):
            self.visit(child, prefix, owner)
        for v in layer.weights:  # children went first: what is left is the layer's own
            if id(v) not in self.path:
                self.path[id(v)] = prefix + _own_name(v, layer)
                self.owner[id(v)] = owner


def _index_tf_keras(found: list[Owner], kinds: _Kinds, index: KerasIndex) -> None:
    """tf_keras variables by their layer-tree path from the outermost model the loss reaches
    (`online/hidden/kernel` for a Sequential's, which tf_keras names `hidden/kernel:0`)."""
    inner: set[int] = set()
    for top in found:
        inner |= _descendants(top.model)
    tree = _Tree(kinds.tf_keras_model, {id(top.model): top.reference for top in found})
    for top in found:
        if id(top.model) in inner:
            continue  # reached through an outer model too: named from there
        tree.visit(top.model, "", None)
        for v in top.model.weights:
            read = autocast_inner(v)  # keyed by what a trace reads, as Keras 3 ones are
            key = id(v if read is None else read)
            if id(v) in tree.path and key not in index.keras_variable:
                index.keras_variable[key] = v
                index.tree_path[key] = tree.path[id(v)]
                index.owner[key] = tree.owner[id(v)]


def _outermost(found: list[Owner]) -> list[Owner]:
    """The found layers that no other found layer holds."""
    inner: set[int] = set()
    for top in found:
        inner |= {id(layer) for layer in _all_sublayers(top.model)[1:]}
    return [top for top in found if id(top.model) not in inner]


def _all_sublayers(layer: Any) -> list[Any]:
    """`layer` and every layer inside it, each once (Keras 3 and tf_keras)."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=True, recursive=True))
    return _sublayers(layer)


def _index_frozen(found: list[Owner], index: KerasIndex) -> None:
    """tf_keras variables Keras would not train: held by some model the loss reaches, trained by
    none (Keras 3 variables say it themselves, see _index_keras)."""
    held: set[int] = set()
    trained: set[int] = set()
    for top in found:
        weights, trainable = model_keys(top.model)
        held.update(weights)
        trained |= trainable
    index.frozen |= held - trained


def keras_index(loss_fn: Any) -> KerasIndex:
    """The Keras variables `loss_fn` reaches, keyed by their tf.Variable, with their owners.

    The owner of a variable is the innermost *model* holding it (a GAN's generator, not the
    combined model), so that its name tells two models' equal layer paths apart.
    """
    kinds = _kinds()
    if not (kinds.keras_layer or kinds.tf_keras_layer):
        return KerasIndex({})
    index = KerasIndex({})
    try:
        found, loose = _walk(loss_fn, kinds)
        index.models = _outermost(found)
        tf_keras_found = [top for top in found if isinstance(top.model, kinds.tf_keras_layer)]
        if kinds.keras_layer:
            keras_found = [top for top in found if isinstance(top.model, kinds.keras_layer)]
            _index_keras(keras_found, loose, _keras(), index)
        _index_tf_keras(tf_keras_found, kinds, index)
        _index_frozen(tf_keras_found, index)
    except Exception:  # noqa: BLE001 - naming is best effort; never fail the probe over it
        return KerasIndex({})
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
