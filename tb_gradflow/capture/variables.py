"""Discovery: which variables a report covers, under which names, and their handles in the trace.

Every variable object is its own entry. Its name is Keras' `variable.path`; a `tf_keras`
variable, which has none, is named by its place in the layer tree of the outermost model the loss
reaches (`online/hidden/kernel`, see owners.py); any other by its TensorFlow name. Where two
variables the loss reaches share a path (a `clone_model` target network, two functional models
with equal layer names), the name is qualified, in this order, by whichever first tells the
group apart: the owning model's name (`generator/dense/kernel`), then the Python
name the loss reaches the model by (`target/online/dense/kernel` for `self.target`), then a
`#2`, `#3` suffix in the order the loss's references list them. A probe remembers the names it
gave, so one variable keeps one name from step to step and across retraces.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from tb_gradflow.capture.owners import (
    KerasIndex,
    Owner,
    keras_index,
    keras_variables_by_referrers,
    model_keys,
)
from tb_gradflow.capture.tf_internals import autocast_inner, tf_function_parts


@dataclasses.dataclass(frozen=True)
class TrackedVariable:
    """A variable under the name the tab shows, with the tf.Variable the tape watches."""
    name: str
    tf_variable: tf.Variable
    # What the user handed us (a Keras variable, say): what an optimizer must be given.
    user_variable: Any


def variable_name(v: Any) -> str:
    """Keras' `path` when there is one, else the TensorFlow name without its `:0`."""
    path = getattr(v, "path", None)
    if isinstance(path, str) and path:
        return path
    name = getattr(v, "name", "") or ""
    return name[:-2] if name.endswith(":0") else name


def tf_variable_of(v: Any) -> tf.Variable:
    """The tf.Variable a trace reads for `v` (a Keras 3 variable's value, a tf_keras
    mixed-precision variable's float32 variable)."""
    if isinstance(v, tf.Variable):
        inner = autocast_inner(v)
        return v if inner is None else inner
    return getattr(v, "value", v)


def track(v: Any) -> TrackedVariable:
    """Tracks a variable the user gave, whatever framework object it is."""
    return TrackedVariable(variable_name(v), tf_variable_of(v), v)


def _qualified(path: str, qualifier: str | None) -> str | None:
    if not qualifier:
        return None
    return path if path.startswith(qualifier + "/") else f"{qualifier}/{path}"


def unique_names(entries: Sequence[tuple[str, Owner | None]]) -> list[str]:
    """One distinct name per entry (base path, owner), by the rule in this module's docstring."""
    names = [path for path, _ in entries]
    groups: dict[str, list[int]] = {}
    for i, path in enumerate(names):
        groups.setdefault(path, []).append(i)
    taken = {path for path, members in groups.items() if len(members) == 1}
    for path, members in groups.items():
        if len(members) == 1:
            continue
        qualifiers: list[Callable[[Owner | None], str | None]] = [
            lambda o: o.model.name if o else None, lambda o: o.reference if o else None,
        ]
        for qualify in qualifiers:
            trial = [_qualified(path, qualify(entries[i][1])) for i in members]
            named = [name for name in trial if name is not None]
            if len(named) == len(trial) and len(set(named)) == len(named) and not taken & set(named):
                break
        else:
            named = [path if k == 0 else f"{path}#{k + 1}" for k in range(len(members))]
        for i, name in zip(members, named, strict=True):
            names[i] = name
        taken.update(named)
    return names


class Namer:
    """Names variable objects for one probe: unique within a report, stable across its traces."""

    def __init__(self, loss_fn: Callable[..., Any]):
        # Where the models are looked for, taken now: the probe's autograph conversion rewraps
        # a `tf.function` loss in place, after which its `self` can no longer be found.
        parts = tf_function_parts(loss_fn)
        self._reach: Any = tuple(parts) if parts else loss_fn
        # id(tf.Variable) -> (the variable, kept alive so the id stays its own; its name)
        self._given: dict[int, tuple[tf.Variable, str]] = {}

    def index(self) -> KerasIndex:
        """The Keras models and variables the loss reaches now (looked up again at each trace)."""
        return keras_index(self._reach)

    def track_all(
        self, users: Sequence[Any], index: KerasIndex | None = None
    ) -> list[TrackedVariable]:
        """TrackedVariables for `users` (Keras or TF variables), Keras ones found where possible."""
        index = index if index is not None else self.index()
        tf_vars = [tf_variable_of(v) for v in users]
        users = [index.keras_variable.get(id(t), u) for t, u in zip(tf_vars, users, strict=False)]
        missing = [t for t, u in zip(tf_vars, users, strict=False)
                   if u is t and id(t) not in self._given and id(t) not in index.keras_variable]
        by_referrers = keras_variables_by_referrers(missing)
        users = [by_referrers.get(id(t), u) if u is t else u for t, u in zip(tf_vars, users, strict=False)]
        names = self._names(tf_vars, users, index)
        return [TrackedVariable(n, t, u) for n, t, u in zip(names, tf_vars, users, strict=False)]

    def _names(self, tf_vars: list[tf.Variable], users: list[Any], index: KerasIndex) -> list[str]:
        # The universe a name must be unique in: every Keras variable the loss reaches (stable
        # from trace to trace), then the ones only this trace found.
        universe: dict[int, Any] = dict(index.keras_variable)
        for t, u in zip(tf_vars, users, strict=False):
            universe.setdefault(id(t), u)
        keys = list(universe)
        computed = dict(zip(keys, unique_names(
            [(index.tree_path.get(k) or variable_name(universe[k]), index.owner.get(k)) for k in keys]
        ), strict=False))
        used = {name for _, name in self._given.values()}
        names = []
        for t in tf_vars:
            given = self._given.get(id(t))
            if given is None:
                name = base = computed[id(t)]
                k = 1
                while name in used:
                    k += 1
                    name = f"{base}#{k}"
                used.add(name)
                given = self._given[id(t)] = (t, name)
            names.append(given[1])
        return names


@dataclasses.dataclass
class Discovery:
    """What a trace's report covers, and what it leaves out on purpose.

    `frozen`: variables the trace reads that Keras would not train (a frozen layer or model),
    listed apart, never counted or blamed. `frozen_models` / `unread_models`: the references of
    the models the loss reaches that are entirely frozen / that the trace never reads.
    """

    variables: list[TrackedVariable]
    frozen: list[TrackedVariable] = dataclasses.field(default_factory=list)
    frozen_models: list[str] = dataclasses.field(default_factory=list)
    unread_models: list[str] = dataclasses.field(default_factory=list)


def _keras_frozen(t: TrackedVariable, index: KerasIndex) -> bool:
    """Keras would not train it: its layer or model is frozen, whatever the tf.Variable says
    (Keras 3 keeps the tf.Variable's `trainable` True under `layer.trainable = False`)."""
    if id(t.tf_variable) in index.frozen:
        return True
    user = t.user_variable
    return user is not t.tf_variable and getattr(user, "trainable", True) is False


def _models_by_use(index: KerasIndex, read: set[int]) -> tuple[list[str], list[str]]:
    """(models the trace reads that Keras trains nothing of, models the trace never reads)."""
    frozen, unread = [], []
    for top in index.models:
        try:
            weights, trainable = model_keys(top.model)
        except Exception:  # noqa: BLE001 - a half-built layer: nothing to say about it
            continue
        if not weights:
            continue
        if not any(k in read for k in weights):
            unread.append(top.reference)
        elif not trainable:
            frozen.append(top.reference)
    return list(dict.fromkeys(frozen)), list(dict.fromkeys(unread))


def discover(
    explicit: Sequence[Any] | None, watched: Sequence[tf.Variable], namer: Namer
) -> Discovery:
    """The user's variables if given, else the trainable ones the trace read that Keras would
    train, each once, named; Keras-frozen ones the trace read apart."""
    seen: set[int] = set()
    found = []
    for v in watched:
        if v.trainable and id(v) not in seen:
            seen.add(id(v))
            found.append(v)
    index = namer.index()
    frozen_models, unread_models = _models_by_use(index, {id(v) for v in watched})
    if explicit is not None:
        chosen = {id(tf_variable_of(v)) for v in explicit}
        extra = [v for v in found if id(v) in index.frozen and id(v) not in chosen]
        tracked = namer.track_all([*explicit, *extra], index)
        n = len(explicit)
        return Discovery(tracked[:n], tracked[n:], frozen_models, unread_models)
    tracked = namer.track_all(found, index)
    frozen = [t for t in tracked if _keras_frozen(t, index)]
    kept = [t for t in tracked if not _keras_frozen(t, index)]
    return Discovery(kept, frozen, frozen_models, unread_models)


def internal_handles(graph: tf.Graph, variables: Sequence[TrackedVariable]) -> list[tf.Tensor | None]:
    """Each variable's handle as captured into `graph`, or None if the trace never read it."""
    handles = {id(v.tf_variable.handle): i for i, v in enumerate(variables)}
    internal: list[tf.Tensor | None] = [None] * len(variables)
    for external, captured in graph.captures:
        if id(external) in handles:
            internal[handles[id(external)]] = captured
    return internal
