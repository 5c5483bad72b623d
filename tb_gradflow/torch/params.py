"""Which parameters a loss function trains, and their names.

As the TensorFlow side finds Keras models, the modules are found through what the loss function
refers to: `self` of a bound method, its closure cells, the globals its code names, and the
modules passed as arguments. Names are `named_parameters()` names; when two modules found under
different attributes hold the same name, each is qualified by its attribute (`gen.0.weight`).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

# How deep to look inside containers and plain objects (an agent holding an online network).
_DEPTH = 3


@dataclasses.dataclass
class Parameters:
    """The trained parameters (requires_grad=True), the frozen ones, and module names by id."""

    trained: list[tuple[str, torch.Tensor]]
    frozen: list[tuple[str, torch.Tensor]]
    # id(module) -> its path for op names ("encoder.0"; the root under its attribute).
    module_names: dict[int, str]


def _modules_in(obj: Any, name: str, depth: int, seen: set[int]) -> Iterator[tuple[str, nn.Module]]:
    if id(obj) in seen or depth < 0:
        return
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        yield name, obj
        return
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _modules_in(item, f"{name}.{i}", depth - 1, seen)
    elif isinstance(obj, dict):
        for key, item in obj.items():
            if isinstance(key, str):
                yield from _modules_in(item, f"{name}.{key}", depth - 1, seen)
    elif hasattr(obj, "__dict__") and not inspect.ismodule(obj) and not isinstance(obj, type) \
            and not callable(obj):
        for key, item in vars(obj).items():
            yield from _modules_in(item, f"{name}.{key}", depth - 1, seen)


def referenced_modules(loss_fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> list[tuple[str, nn.Module]]:
    """(attribute, module) for each module the loss function can reach, outermost first."""
    seen: set[int] = set()
    found: list[tuple[str, nn.Module]] = []
    owner = getattr(loss_fn, "__self__", None)
    fn = getattr(loss_fn, "__func__", loss_fn)
    if isinstance(loss_fn, nn.Module):
        found += _modules_in(loss_fn, type(loss_fn).__name__.lower(), 0, seen)
    if owner is not None:
        if isinstance(owner, nn.Module):
            found += _modules_in(owner, "self", 0, seen)
        else:
            for key, item in vars(owner).items() if hasattr(owner, "__dict__") else ():
                found += _modules_in(item, key, _DEPTH, seen)
    code = getattr(fn, "__code__", None)
    if code is not None:
        for cell_name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
            try:
                found += _modules_in(cell.cell_contents, cell_name, _DEPTH, seen)
            except ValueError:  # an empty cell
                continue
        for global_name in _names_read(code):
            if global_name in fn.__globals__:
                found += _modules_in(fn.__globals__[global_name], global_name, _DEPTH, seen)
    for i, arg in enumerate(args):
        found += _modules_in(arg, f"arg{i}", _DEPTH, seen)
    for key, arg in kwargs.items():
        found += _modules_in(arg, key, _DEPTH, seen)
    return _outermost(found)


def _names_read(code: Any) -> Iterator[str]:
    """Global names a code object and the functions nested in it read."""
    yield from code.co_names
    for const in code.co_consts:
        if inspect.iscode(const):
            yield from _names_read(const)


def _outermost(found: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """Drops modules that are submodules of another one found (they are named through it)."""
    inner = {id(m) for _, root in found for m in root.modules() if m is not root}
    return [(name, m) for name, m in found if id(m) not in inner]


def collect(
    loss_fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
    parameters: Any = None, optimizer: Any = None,
) -> Parameters:
    """The parameters to diagnose: `parameters` when given (tensors, (name, tensor) pairs, a
    dict or a module), else those of the modules the loss refers to; with an optimizer, its
    parameters too, so that its step is exactly the one `loss.backward()` would feed."""
    roots = referenced_modules(loss_fn, args, kwargs)
    if isinstance(parameters, nn.Module):
        roots = [(type(parameters).__name__.lower(), parameters)] + roots
    qualified = _qualified_roots(roots)
    named = _named_by_root(roots, qualified)
    names_by_id = {id(p): n for n, p in named}
    if parameters is None or isinstance(parameters, nn.Module):
        chosen = [(n, p) for n, p in named if parameters is None or _in_module(p, parameters)]
    else:
        chosen = _given(parameters, names_by_id)
    if optimizer is not None:
        chosen_ids = {id(p) for _, p in chosen}
        extra = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in chosen_ids]
        chosen += [(names_by_id.get(id(p), f"param_{i}"), p) for i, p in enumerate(extra)]
    chosen = _unique(chosen)
    return Parameters(
        trained=[(n, p) for n, p in chosen if p.requires_grad],
        frozen=[(n, p) for n, p in chosen if not p.requires_grad],
        module_names=_module_names(roots, qualified),
    )


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
            raise TypeError(f"parameters: expected tensors or (name, tensor) pairs, got {type(item).__name__}")
    return out


def _qualified_roots(roots: list[tuple[str, nn.Module]]) -> set[int]:
    """Ids of the roots whose parameter names or module paths collide with another root's: those
    are qualified by the attribute the loss reaches them through."""
    counts: dict[str, int] = {}
    keys = []
    for _, m in roots:
        own = {n for n, _ in m.named_parameters()} | {n for n, _ in m.named_modules() if n}
        keys.append(own)
        for n in own:
            counts[n] = counts.get(n, 0) + 1
    return {id(m) for (_, m), own in zip(roots, keys) if any(counts[n] > 1 for n in own)}


def _named_by_root(roots: list[tuple[str, nn.Module]], qualified: set[int]) -> list[tuple[str, torch.Tensor]]:
    """Every root's named_parameters(), qualified by the root's attribute where names collide."""
    out = []
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
    attribute (`gen.0/linear`, `disc.0/linear`), so that the tab groups ops by model."""
    names: dict[int, str] = {}
    for attr, root in roots:
        qualify = len(roots) > 1 or id(root) in qualified
        for path, module in root.named_modules():
            if id(module) not in names:
                names[id(module)] = (f"{attr}.{path}" if qualify else path) if path else attr
    return names
