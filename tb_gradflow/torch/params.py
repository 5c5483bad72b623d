"""Which parameters a loss function trains, and their names.

As the TensorFlow side finds Keras models, the modules are found through what the loss function
refers to: `self` of a bound method, its closure cells, the globals its code names, and the
modules passed as arguments. Names are `named_parameters()` names; when two modules found under
different attributes hold the same name, each is qualified by its attribute (`gen.0.weight`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from tb_gradflow.capture.sources import is_library_file

# How deep to look inside containers and plain objects (an agent holding an online network).
_DEPTH = 3


@dataclasses.dataclass
class Parameters:
    """The trained parameters (requires_grad=True), the frozen ones, and module names by id."""

    trained: list[tuple[str, torch.Tensor]]
    frozen: list[tuple[str, torch.Tensor]]
    # id(module) -> its path for op names ("encoder.0"; the root under its attribute).
    module_names: dict[int, str]


# Where a module was found inside a plain object, list or dict the loss refers to: (the holder,
# its key). Re-read at each cached lookup, so that `agent.net = new_net` between steps is seen.
Holder = tuple[Any, Any] | None


def _modules_in(
    obj: Any, name: str, depth: int, seen: set[int], holder: Holder = None
) -> Iterator[tuple[str, nn.Module, Holder]]:
    if id(obj) in seen or depth < 0:
        return
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        yield name, obj, holder
        return
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _modules_in(item, f"{name}.{i}", depth - 1, seen, (obj, i))
    elif isinstance(obj, dict):
        for key, item in obj.items():
            if isinstance(key, str):
                yield from _modules_in(item, f"{name}.{key}", depth - 1, seen, (obj, key))
    elif (
        hasattr(obj, "__dict__")
        and not inspect.ismodule(obj)
        and not isinstance(obj, type)
        and not callable(obj)
    ):
        for key, item in vars(obj).items():
            yield from _modules_in(item, f"{name}.{key}", depth - 1, seen, (vars(obj), key))


def _held(holder: Holder) -> Any:
    """What the holder holds now under its key (None when the key is gone)."""
    if holder is None:
        return None
    container, key = holder
    try:
        return container[key]
    except (IndexError, KeyError):
        return None


def _candidates(
    loss_fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], hops: int = 2
) -> list[tuple[str, Any, int]]:
    """(attribute, object, depth to search) for what the loss function refers to: itself if a
    module, `self`, its closure cells, the globals its code reads, its arguments; and, `hops`
    calls deep, the same of the user's own functions it calls (a `compute_loss` helper that
    reads a global `model`) and of a `functools.partial`'s function and arguments.
    """
    out: list[tuple[str, Any, int]] = []
    if isinstance(loss_fn, functools.partial):
        return _candidates(
            loss_fn.func, (*loss_fn.args, *args), {**loss_fn.keywords, **kwargs}, hops
        )
    owner = getattr(loss_fn, "__self__", None)
    fn = getattr(loss_fn, "__func__", loss_fn)
    if isinstance(loss_fn, nn.Module):
        out.append((type(loss_fn).__name__.lower(), loss_fn, 0))
    if isinstance(owner, nn.Module):
        out.append(("self", owner, 0))
    elif owner is not None and hasattr(owner, "__dict__") and not inspect.ismodule(owner):
        out += [(key, item, _DEPTH) for key, item in vars(owner).items()]
    code = getattr(fn, "__code__", None)
    if code is not None:
        for cell_name, cell in zip(
            code.co_freevars, getattr(fn, "__closure__", None) or (), strict=False
        ):
            try:
                out.append((cell_name, cell.cell_contents, _DEPTH))
            except ValueError:  # an empty cell
                continue
        module_globals = getattr(fn, "__globals__", {})
        out += [
            (name, module_globals[name], _DEPTH)
            for name in _global_names(code)
            if name in module_globals
        ]
    out += [(f"arg{i}", arg, _DEPTH) for i, arg in enumerate(args)]
    out += [(key, arg, _DEPTH) for key, arg in kwargs.items()]
    if hops > 0:
        for _, obj, _ in list(out):
            if inspect.isfunction(obj) and not is_library_file(obj.__code__.co_filename):
                out += _candidates(obj, (), {}, hops - 1)
    return out


def referenced_modules(
    loss_fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> list[tuple[str, nn.Module]]:
    """(attribute, module) for each module the loss function can reach, outermost first."""
    return [(name, m) for name, m, _ in _referenced(loss_fn, args, kwargs)]


def _referenced(
    loss_fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> list[tuple[str, nn.Module, Holder]]:
    """`referenced_modules`, each with where it was found inside a plain object (or None)."""
    seen: set[int] = set()
    found: list[tuple[str, nn.Module, Holder]] = []
    for name, obj, depth in _candidates(loss_fn, args, kwargs):
        if (
            not isinstance(obj, (torch.Tensor, str, int, float, bool))
            and not callable(obj)
            or isinstance(obj, nn.Module)
        ):
            found += _modules_in(obj, name, depth, seen)
    return _outermost(found)


@functools.lru_cache(maxsize=256)
def _global_names(code: Any) -> tuple[str, ...]:
    """The names `_names_read` gives, once each: fixed for a code object, and read at every
    logged step (the walk through nested code objects was a tenth of a small model's capture)."""
    return tuple(dict.fromkeys(_names_read(code)))


def _names_read(code: Any) -> Iterator[str]:
    """Global names a code object and the functions nested in it read."""
    yield from code.co_names
    for const in code.co_consts:
        if inspect.iscode(const):
            yield from _names_read(const)


def _outermost(found: list[tuple[str, nn.Module, Holder]]) -> list[tuple[str, nn.Module, Holder]]:
    """Drops modules that are submodules of another one found (they are named through it)."""
    inner = {id(m) for _, root, _ in found for m in root.modules() if m is not root}
    return [(name, m, holder) for name, m, holder in found if id(m) not in inner]


class Unsupported(ValueError):
    """A model the torch capture cannot see into (a torch.compile'd module, FSDP)."""


# Module classes whose forward the recorder cannot follow, by class name (FSDP is importable only
# with torch.distributed built in), and what to do instead.
_UNSUPPORTED = {
    "OptimizedModule": "a torch.compile'd module runs as compiled graphs whose ops a "
    "TorchFunctionMode does not see; probe the uncompiled module (model._orig_mod) every N steps",
    "FullyShardedDataParallel": "FSDP shards parameters and gathers them inside its own hooks; "
    "probe the unwrapped module on one process (a small batch, without FSDP) instead",
    "FSDPModule": "FSDP shards parameters and gathers them inside its own hooks; probe the "
    "unwrapped module on one process (a small batch, without FSDP) instead",
}


def check_supported(loss_fn: Callable[..., Any], roots: list[tuple[str, nn.Module]]) -> None:
    """Raises Unsupported, saying what to probe instead, for compiled or FSDP-wrapped models."""
    if hasattr(loss_fn, "_torchdynamo_orig_callable") or hasattr(loss_fn, "_orig_mod"):
        raise Unsupported(
            f"the loss function is torch.compile'd: {_UNSUPPORTED['OptimizedModule']}"
        )
    for attr, root in roots:
        for module in _modules_of(root):
            reason = _unsupported_reason(type(module))
            if reason:
                raise Unsupported(f"{attr} ({type(module).__name__}) is not supported: {reason}")


_reasons: dict[type, str] = {}


def _unsupported_reason(cls: type) -> str:
    """Why modules of class `cls` are refused ("" when they are not): fixed for a class, and
    asked of every module at every logged step, so kept per class."""
    reason = _reasons.get(cls)
    if reason is None:
        reason = _reasons[cls] = next(
            (_UNSUPPORTED[c.__name__] for c in cls.__mro__ if c.__name__ in _UNSUPPORTED), ""
        )
    return reason


def collect(
    loss_fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    parameters: Any = None,
    optimizer: Any = None,
) -> Parameters:
    """The parameters to diagnose: `parameters` when given (tensors, (name, tensor) pairs, a
    dict or a module), else those of the modules the loss refers to; with an optimizer, its
    parameters too, so that its step is exactly the one `loss.backward()` would feed.
    """
    roots, named, module_names = _found(loss_fn, args, kwargs, parameters)
    check_supported(loss_fn, roots)
    names_by_id = {id(p): n for n, p in named}
    if parameters is None or isinstance(parameters, nn.Module):
        chosen = [(n, p) for n, p in named if parameters is None or _in_module(p, parameters)]
    else:
        chosen = _given(parameters, names_by_id)
    if optimizer is not None:
        chosen_ids = {id(p) for _, p in chosen}
        extra = [
            p
            for group in optimizer.param_groups
            for p in group["params"]
            if id(p) not in chosen_ids
        ]
        chosen += [(names_by_id.get(id(p), f"param_{i}"), p) for i, p in enumerate(extra)]
    chosen = _unique(chosen)
    return Parameters(
        trained=[(n, p) for n, p in chosen if p.requires_grad],
        frozen=[(n, p) for n, p in chosen if not p.requires_grad],
        module_names=module_names,
    )


# Module discovery by what the loss refers to, kept per set of referred objects: walking the
# modules costs more than the rest of a small model's logged step. An entry also holds the modules
# and parameters of its roots' trees as they were, and serves only while they are the same objects
# (a head replaced between steps, `model.fc = nn.Linear(...)`, is found and named anew), and while
# each root found inside a plain object, list or dict is still held there (`agent.net = new_net`).
# Requires_grad is read anew.
_CACHE_SIZE = 16
_found_cache: collections.OrderedDict[
    tuple[int, ...], tuple[list[Any], list[Any], Any, list[tuple[nn.Module, Holder]]]
] = collections.OrderedDict()


def _found(
    loss_fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], parameters: Any
) -> Any:
    """(roots, named parameters, module names) of what the loss refers to."""
    objects = [obj for _, obj, _ in _candidates(loss_fn, args, kwargs)] + [parameters]
    key = tuple([id(o) for o in objects])
    hit = _found_cache.get(key)
    if (
        hit is not None
        and _same(hit[0], objects)
        and _same(hit[1], _trees(hit[2][0]))
        and all(_held(holder) is m for m, holder in hit[3])
    ):
        _found_cache.move_to_end(key)
        return hit[2]
    referenced = _referenced(loss_fn, args, kwargs)
    held: list[tuple[nn.Module, Holder]] = [(m, holder) for _, m, holder in referenced if holder is not None]
    roots = [(name, m) for name, m, _ in referenced]
    if isinstance(parameters, nn.Module):
        roots = [(type(parameters).__name__.lower(), parameters)] + roots
    qualified = _qualified_roots(roots)
    result = (roots, _named_by_root(roots, qualified), _module_names(roots, qualified))
    _found_cache[key] = (objects, _trees(roots), result, held)
    while len(_found_cache) > _CACHE_SIZE:
        _found_cache.popitem(last=False)
    return result


def _trees(roots: list[tuple[str, nn.Module]]) -> list[Any]:
    """The modules of the roots' trees, each followed by its own parameters, in order."""
    out: list[Any] = []
    for _, root in roots:
        for module in _modules_of(root):
            out.append(module)
            out += module._parameters.values()
    return out


def _modules_of(root: nn.Module) -> list[nn.Module]:
    """`root.modules()`, in its order (each module once, parents first), walked directly:
    `modules()` builds every module's path on the way, and this runs at every logged step."""
    out: list[nn.Module] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.append(module)
        stack += [m for m in reversed(module._modules.values()) if m is not None]
    return out


def _same(kept: list[Any], now: list[Any]) -> bool:
    return len(kept) == len(now) and all(a is b for a, b in zip(kept, now, strict=True))


def _in_module(p: torch.Tensor, module: nn.Module) -> bool:
    return any(p is q for q in module.parameters())


def _given(parameters: Any, names_by_id: dict[int, str]) -> list[tuple[str, torch.Tensor]]:
    items: Iterable[Any] = parameters.items() if isinstance(parameters, dict) else parameters
    out = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item)
        elif isinstance(item, torch.Tensor):
            out.append((names_by_id.get(id(item), f"param_{i}"), item))
        else:
            raise TypeError(
                f"parameters: expected tensors or (name, tensor) pairs, got {type(item).__name__}"
            )
    return out


def _qualified_roots(roots: list[tuple[str, nn.Module]]) -> set[int]:
    """Ids of the roots whose parameter names or module paths collide with another root's: those
    are qualified by the attribute the loss reaches them through.
    """
    counts: dict[str, int] = {}
    keys = []
    for _, m in roots:
        own = {n for n, _ in m.named_parameters()} | {n for n, _ in m.named_modules() if n}
        keys.append(own)
        for n in own:
            counts[n] = counts.get(n, 0) + 1
    return {
        id(m) for (_, m), own in zip(roots, keys, strict=True) if any(counts[n] > 1 for n in own)
    }


def _named_by_root(
    roots: list[tuple[str, nn.Module]], qualified: set[int]
) -> list[tuple[str, torch.Tensor]]:
    """Every root's named_parameters(), qualified by the root's attribute where names collide."""
    out: list[tuple[str, torch.Tensor]] = []
    for attr, m in roots:
        out += [(f"{attr}.{n}" if id(m) in qualified else n, p) for n, p in m.named_parameters()]
    return out


def _unique(named: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """One entry per tensor (shared modules) and per name (a suffix for the rare clash)."""
    seen_ids: set[int] = set()
    names: set[str] = set()
    out = []
    for n, p in named:
        if id(p) in seen_ids:
            continue
        seen_ids.add(id(p))
        name, k = n, 1
        while name in names:
            name, k = f"{n}_{k}", k + 1
        names.add(name)
        out.append((name, p))
    return out


def _module_names(roots: list[tuple[str, nn.Module]], qualified: set[int]) -> dict[int, str]:
    """Module paths for op names: submodules by their named_modules() path, a root itself by the
    attribute the loss reaches it through; with several roots, every path starts with its root's
    attribute (`gen.0/linear`, `disc.0/linear`), so that the tab groups ops by model.
    """
    names: dict[int, str] = {}
    for attr, root in roots:
        qualify = len(roots) > 1 or id(root) in qualified
        for path, module in root.named_modules():
            if id(module) not in names:
                names[id(module)] = (f"{attr}.{path}" if qualify else path) if path else attr
    return names
