"""Run and tag names that TensorBoard's fast loader (`--load_fast=true`) cannot serve.

The Rust data server hands out blob keys as JSON holding the run and tag names, and cannot parse
its own key back when a name needs a JSON escape: a double quote, a backslash, a tab or another
control character ("failed to parse blob key: BadJson"). Such a run is listed, but its graph
cannot be read, so its steps cannot be decoded: a hyperparameter sweep's `lr="0.1"` run vanished.
The plugin and `tb-gradflow check` name these runs, why, and what to do instead.
"""
from __future__ import annotations

_NAMED = {'"': "a double quote", "\\": "a backslash", "\t": "a tab"}


def unreadable_character(name: str) -> str | None:
    """What in `name` the fast loader cannot serve ("a double quote", ...), or None."""
    for char in name:
        if char in _NAMED:
            return _NAMED[char]
        if ord(char) < 0x20:
            return f"the control character U+{ord(char):04X}"
    return None


def why_unreadable(run: str, tag: str | None = None) -> str | None:
    """Why the fast loader cannot serve this run (and tag), with the workaround; None if it can."""
    for kind, name in (("run", run), ("tag", tag)):
        if name is None:
            continue
        char = unreadable_character(name)
        if char is not None:
            what = "directory" if kind == "run" else "summary"
            return (f"the {kind} name {name!r} holds {char}, which TensorBoard's fast loader "
                    f"cannot read (--load_fast=true); start TensorBoard with --load_fast=false, "
                    f"or rename the {what}")
    return None
