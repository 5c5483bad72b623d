"""The diagnosis as a terminal shows it: the sentences of `tb_gradflow.story`, wrapped to the
terminal's width, long name lists cut to a count and grouped by layer, coloured on a terminal.

`str(report)` stays the complete text (every name); this is the short form the CLI prints.
Names come from a logdir, so control characters (an ANSI escape in an op name) are shown
escaped, never sent to the terminal.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import textwrap
from collections.abc import Sequence
from typing import IO, Any

from tb_gradflow.layer_norms import layer_of
from tb_gradflow.report import Report
from tb_gradflow.story import Telling, story_lines

# A list longer than this is cut to a count and its first and last layer.
_LIST_SHOWN = 6
_HARMLESS_SHOWN = 5
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The colour codes `Style` writes; only our own, since names from a logdir are escaped by `safe`.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def safe(text: str) -> str:
    """Untrusted text with control characters escaped, so that it cannot drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def name_list(names: Sequence[str], noun: str = "variables") -> str:
    """All names when few; else "60 variables in 30 layers: block_00 … block_29"."""
    names = [safe(n) for n in names]
    if len(names) <= _LIST_SHOWN:
        return ", ".join(names)
    layers = list(dict.fromkeys(layer_of(n) for n in names))
    if len(layers) == 1:
        return f"{len(names)} {noun} in {layers[0]}: {names[0]} … {names[-1]}"
    return f"{len(names)} {noun} in {len(layers)} layers: {layers[0]} … {layers[-1]}"


@dataclasses.dataclass(frozen=True)
class Style:
    """ANSI colours, or none."""

    color: bool

    def _sgr(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def bad(self, text: str) -> str:
        """Marks a problem (bold red where the terminal has colour)."""
        return self._sgr("1;31", text)

    def good(self, text: str) -> str:
        """Marks a healthy finding (green where the terminal has colour)."""
        return self._sgr("32", text)

    def note(self, text: str) -> str:
        """Marks a warning (yellow where the terminal has colour)."""
        return self._sgr("33", text)

    def dim(self, text: str) -> str:
        """Marks what matters less (dim where the terminal has colour)."""
        return self._sgr("2", text)

    def bold(self, text: str) -> str:
        """Marks a heading (bold where the terminal has colour)."""
        return self._sgr("1", text)


def use_color(stream: IO[str], choice: str = "auto") -> bool:
    """`always`/`never`, or (auto) a terminal and no NO_COLOR (https://no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def terminal_width(stream: IO[str]) -> int:
    """The terminal's width (COLUMNS first), kept between 40 and 120 so text stays readable."""
    width = shutil.get_terminal_size((100, 24)).columns if stream.isatty() or "COLUMNS" in os.environ else 100
    return max(40, min(width, 120))


def wrap(lines: Sequence[str], width: int) -> str:
    """Each line wrapped to `width`, continuation lines indented two more than the line itself.

    ANSI codes count towards the width here, so coloured lines wrap a little early; never late.
    """
    out: list[str] = []
    for line in lines:
        visible = _SGR.sub("", line)  # a coloured line starts with its colour code, then the indent
        indent = " " * (len(visible) - len(visible.lstrip(" ")))
        wrapper = _ScopeWrapper(width, initial_indent="", subsequent_indent=indent + "  ",
                                break_long_words=True, break_on_hyphens=False)
        out.extend(wrapper.wrap(line) or [""])
    return "\n".join(out)


class _ScopeWrapper(textwrap.TextWrapper):
    """Wraps as TextWrapper does, but a word too long for a line (an op's whole name) breaks after
    a "/" of its scope rather than at whatever character the width falls on ("mom" / "ents")."""

    def _split(self, text: str) -> list[str]:
        room = self.width - len(self.subsequent_indent)
        chunks: list[str] = []
        for chunk in super()._split(text):
            chunks.extend(_SCOPE_PIECES.findall(chunk) if len(chunk) > room and "/" in chunk else [chunk])
        return chunks


# A name's pieces, each up to and including a "/" (the last one without).
_SCOPE_PIECES = re.compile(r"[^/]*/|[^/]+")


def _grouped_harmless(cuts: list[dict[str, Any]], telling: Telling) -> list[str]:
    """Harmless blockers by op type and cause: 53 batch-norm StopGradients make one line."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cut in cuts:
        groups.setdefault((cut["op_type"], cut["cause"]), []).append(cut)
    lines: list[str] = []
    for (op_type, cause), members in groups.items():
        if len(members) <= _HARMLESS_SHOWN:
            lines.extend(f"    {telling.where(c)}" for c in members)
        else:
            lines.append(f"    {safe(op_type)} ({cause}): {name_list([c['op_name'] for c in members], 'ops')}")
    return lines


def report_lines(report: Report, style: Style) -> list[str]:
    """`tb_gradflow.story`'s sentences, shortened for a terminal: name lists cut to a count by
    layer, harmless blockers grouped by type, control characters escaped, colour by what each
    line says."""
    telling = Telling(
        names=name_list, harmless=_grouped_harmless, text=safe,
        bad=style.bad, good=style.good, note=style.note, dim=style.dim, bold=style.bold,
    )
    return story_lines(report, telling)
