"""Query parameters of the JSON routes: parsed strictly, every bad value a 400 and never a 500."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tb_gradflow.route_json import LAYER_COLUMNS

# An int64 step, written the way a person or a script would: no spaces, no "+", no "1e3".
_STEP = re.compile(r"-?[0-9]{1,19}")
_INT64 = (-(1 << 63), (1 << 63) - 1)


class RequestError(Exception):
    """A request that cannot be answered: the HTTP status and the message for `{"error": ...}`."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def bad_request(message: str) -> RequestError:
    """A 400: the request itself is malformed."""
    return RequestError(400, message)


def not_found(message: str) -> RequestError:
    """A 404: the request is well formed but names nothing logged."""
    return RequestError(404, message)


Args = Mapping[str, Sequence[str]]  # name -> every value given, as werkzeug's MultiDict.to_dict(flat=False)


def optional(args: Args, name: str) -> str | None:
    """The one value of `name`, or None when absent; repeating a parameter is ambiguous: 400."""
    values = args.get(name) or []
    if len(values) > 1:
        raise bad_request(f"parameter {name!r} given {len(values)} times")
    return values[0] if values else None


def required(args: Args, name: str) -> str:
    """A parameter the route cannot go without: missing or empty is a 400."""
    value = optional(args, name)
    if value is None or value == "":
        raise bad_request(f"missing parameter {name!r}")
    return value


def step(args: Args) -> int | None:
    """The `step` parameter as an int64, or None for "the last step"."""
    value = optional(args, "step")
    if value is None:
        return None
    if not _STEP.fullmatch(value) or not _INT64[0] <= int(value) <= _INT64[1]:
        raise bad_request("parameter 'step' must be an integer step number")
    return int(value)


def history_subject(args: Args) -> tuple[str, str]:
    """("op", NAME) or ("variable", NAME): exactly one of the two must be given."""
    op, variable = optional(args, "op"), optional(args, "variable")
    if (op is None) == (variable is None):
        raise bad_request("give exactly one of the parameters 'op' and 'variable'")
    if op is not None:
        return "op", op
    return "variable", variable  # type: ignore[return-value]


def group(args: Args) -> str:
    """The `group` parameter: a name scope without a trailing "/", "" (the default) for the top."""
    value = optional(args, "group") or ""
    if value.endswith("/") or value.startswith("/") or "//" in value:
        raise bad_request("parameter 'group' must be a name scope such as 'model/block_1'")
    return value


# The most columns the `layers` route samples a run to; its default when `columns` is absent.
MAX_COLUMNS = 10_000
DEFAULT_COLUMNS = LAYER_COLUMNS


def columns(args: Args) -> int:
    """The `columns` parameter of `layers`: how many steps at most (1 to MAX_COLUMNS)."""
    value = optional(args, "columns")
    if value is None:
        return DEFAULT_COLUMNS
    if not value.isdigit() or not 1 <= int(value) <= MAX_COLUMNS:
        raise bad_request(f"parameter 'columns' must be an integer from 1 to {MAX_COLUMNS}")
    return int(value)
