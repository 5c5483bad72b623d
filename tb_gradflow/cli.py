"""`tb-gradflow`: the diagnosis of a logdir from the command line, for people and for CI jobs.

Reads event files directly (no TensorFlow import), so it starts in a fraction of a second.
One function per subcommand (`cmd_*`), each returning its exit status.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tb_gradflow import __version__, logcheck
from tb_gradflow import terminal_text as T
from tb_gradflow.diagnosis import diagnosis_json
from tb_gradflow.reading.event_files import EventFileProvider, LogdirError
from tb_gradflow.reading.layer_series import SPARK_LEGEND, layer_series, layer_series_json, sparkline
from tb_gradflow.reading.reader import GradflowReader, TagSeries
from tb_gradflow.report import CutPoint, Report

EXIT_OK = 0
EXIT_STARVING = 1  # report: a trainable variable starves; diff: the second run has cuts the first lacks
EXIT_USAGE = 2  # argparse's own status for a bad command line
EXIT_NO_DATA = 3  # the logdir is missing, or holds no gradflow data for the runs/tags asked for
EXIT_OUTPUT = 4  # export: the output cannot be written (its folder does not exist, no permission)
EXIT_BROKEN_PIPE = 128 + 13  # stdout closed early (`| head`): what a shell reports for SIGPIPE

_BAD_LOGDIR = ("bad logdir: missing, not a directory, or no gradflow data for --run/--tag "
               "(or --step)")


def _exit_help(*lines: tuple[int, str]) -> str:
    rows = [*lines, (EXIT_USAGE, "usage error (unknown option, missing argument)"), (EXIT_NO_DATA, _BAD_LOGDIR)]
    return "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in rows)


REPORT_EXITS = _exit_help((EXIT_OK, "every trainable variable gets a gradient"),
                          (EXIT_STARVING, "a trainable variable starves (cut point named or not), "
                                          "or the loss reads no trainable variable"))
DIFF_EXITS = _exit_help((EXIT_OK, "run B has no cut or starved variable that run A lacks"),
                        (EXIT_STARVING, "run B has a cut or a starved variable that run A lacks"))
EXPORT_EXITS = _exit_help((EXIT_OK, "the file is written"),
                          (EXIT_OUTPUT, "the output cannot be written (its folder is missing)"))
EXIT_CODES_HELP = "\n\n".join(f"{name}: {text}" for name, text in
                                (("report", REPORT_EXITS), ("diff", DIFF_EXITS), ("export", EXPORT_EXITS)))


class CliError(Exception):
    """A failure to report on stderr with its exit status."""

    def __init__(self, message: str, status: int = EXIT_NO_DATA):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Loaded:
    """The series read from a logdir, keyed by (run, tag), and the warnings on the way."""

    series: dict[tuple[str, str], TagSeries]
    warnings: list[str]
    # Every run of the logdir and its gradflow tags, whatever the filter: named when none match.
    available: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def load(logdir: str, runs: Sequence[str] | None = None, tag: str | None = None) -> Loaded:
    """Every readable gradflow series of `logdir` (only `runs` / `tag` if given), sorted by run."""
    warnings: list[str] = []
    try:
        provider = EventFileProvider(logdir, warn=warnings.append)
    except LogdirError as e:
        raise CliError(str(e)) from e
    reader = GradflowReader(provider, warn=warnings.append)
    listing = reader.list()
    found: dict[tuple[str, str], TagSeries] = {}
    for run in sorted(listing):
        if runs and run not in runs:
            continue
        for name in sorted(listing[run]):
            if tag is not None and name != tag:
                continue
            series = reader.read(run, name, listing[run][name])
            if series is not None:
                found[(run, name)] = series
    available = {run: sorted(listing[run]) for run in sorted(listing)}
    return Loaded(found, warnings, available)


def _print_warnings(warnings: list[str]) -> None:
    for message in warnings:
        print(f"tb-gradflow: warning: {T.safe(message)}", file=sys.stderr)


_HTML_DEFAULT = "gradflow.html"
_RUNS_NAMED = 8  # runs listed when a filter matches nothing; the rest are counted


def _what_exists(available: dict[str, list[str]]) -> str:
    """The runs of a logdir with their tags, for a filter that matched nothing."""
    if not available:
        return "it holds no gradflow runs"
    shown = [f"{run!r} (tags {', '.join(repr(t) for t in tags)})"
             for run, tags in available.items()]
    more = len(shown) - _RUNS_NAMED
    listed = "; ".join(shown[:_RUNS_NAMED]) + (f"; and {more} more" if more > 0 else "")
    return f"runs there: {listed}"


def _no_data(logdir: str, runs: Sequence[str] | None, tag: str | None,
             available: dict[str, list[str]] | None = None) -> CliError:
    if not (runs or tag is not None):
        return CliError(f"no gradflow data in {logdir!r}")
    filters = [f"--run {r!r}" for r in runs or ()]
    if tag is not None:
        filters.append(f"--tag {tag!r}")
    asked = ", ".join(filters)
    return CliError(f"no gradflow data for {asked} in {logdir!r}; {_what_exists(available or {})}")


def _steps_text(steps: Sequence[int], ends: int = 3) -> str:
    """"3 steps: 0, 5, 10", or "120 steps: 0, 10, 20 … 1170, 1180, 1190" when there are many."""
    shown = [str(s) for s in steps]
    if len(shown) > 2 * ends:
        shown = [*shown[:ends], "…", *shown[-ends:]]
    listed = ", ".join(shown).replace(", …,", " …")
    return f"{len(steps)} step{'s' if len(steps) != 1 else ''} logged: {listed}"


def _shown_run(run: str, logdir: str) -> str:
    return run if run != "." else os.path.basename(os.path.abspath(logdir))


def cmd_report(args: argparse.Namespace) -> int:
    """`report`: the diagnosis in a terminal, for logdirs without a TensorBoard at hand."""
    runs = [args.run] if args.run is not None else None
    loaded = load(args.logdir, runs, args.tag)
    _print_warnings(loaded.warnings)
    if not loaded.series:
        raise _no_data(args.logdir, runs, args.tag, loaded.available)
    reports = {key: series.report() for key, series in loaded.series.items()}
    # A starved variable fails a CI job whether or not a cut point was named for it, and so does
    # a loss that reads no trainable variable (nothing would train).
    starving = any(r.starved_variables or r.reads_nothing for r in reports.values())
    if args.json:
        out: dict[str, Any] = {}
        for (run, name), series in loaded.series.items():
            tag_json = diagnosis_json(series, report=reports[(run, name)])
            tag_json["layers"] = layer_series_json(layer_series(series))  # every logged step
            out.setdefault(run, {"tags": {}})["tags"][name] = tag_json
        print(json.dumps({"runs": out}, indent=1, sort_keys=True))
        return EXIT_STARVING if starving else EXIT_OK
    style = T.Style(T.use_color(sys.stdout, args.color))
    width = T.terminal_width(sys.stdout)
    blocks = []
    for (run, name), report in reports.items():
        title = style.bold(f"== run {T.safe(_shown_run(run, args.logdir))}, tag {T.safe(name)}")
        body = str(report).splitlines() if args.full else T.report_lines(report, style)
        if args.layers:
            body += layer_lines(loaded.series[(run, name)], width)
        blocks.append(T.wrap([title, *body], width))
    print("\n\n".join(blocks))
    return EXIT_STARVING if starving else EXIT_OK


def layer_lines(series: TagSeries, width: int) -> list[str]:
    """`report --layers`: each layer's gradient norm over the logged steps as a sparkline.

    Inputs first, on the run's log scale, sampled to fit a terminal `width`.
    """
    ls = layer_series(series, max(8, min(60, width - 36)))
    if not ls.layers:
        return ["", "No trainable variables: no layers to show."]
    scale = "no finite gradient"
    if ls.range is not None:
        scale = f"log scale {ls.range[0]:.3g} … {ls.range[1]:.3g}"
    lines = ["", f"Gradient norm per layer, inputs first, over {len(ls.steps)} of {ls.count} "
             f"steps ({ls.steps[0]} … {ls.steps[-1]}); {scale}; {SPARK_LEGEND}:"]
    name_width = min(30, max(len(n) for n in ls.layers))
    for i, name in enumerate(ls.layers):
        shown = T.safe(name if len(name) <= name_width else "…" + name[-(name_width - 1):])
        lines.append(f"  {shown:<{name_width}} {sparkline(ls.states[i], ls.norms[i], ls.range)}")
    return lines


@dataclasses.dataclass(frozen=True)
class RunFindings:
    """What one run's last step says: its cuts (by op name and cause) and starved variables."""

    cuts: dict[tuple[str, str], CutPoint]
    starved: list[str]


def _findings(report: Report) -> RunFindings:
    return RunFindings({(c.op_name, c.cause): c for c in report.cut_points}, report.starved_variables)


def diff_json(a: Report, b: Report) -> dict[str, Any]:
    """Cuts and starved variables that one run has and the other lacks."""
    fa, fb = _findings(a), _findings(b)
    starved_a, starved_b = set(fa.starved), set(fb.starved)
    return {
        "cuts_only_in_a": [fa.cuts[k].to_dict() for k in fa.cuts if k not in fb.cuts],
        "cuts_only_in_b": [fb.cuts[k].to_dict() for k in fb.cuts if k not in fa.cuts],
        "starved_only_in_a": [v for v in fa.starved if v not in starved_b],
        "starved_only_in_b": [v for v in fb.starved if v not in starved_a],
    }


def _diff_lines(run_a: str, run_b: str, d: dict[str, Any], style: T.Style) -> list[str]:
    def cut_text(c: dict[str, Any]) -> str:
        starves = f", starved {T.name_list(c['starved_variables'])}" if c["starved_variables"] else ""
        where = T.safe(c["source"]) or "?"
        return f"    {T.safe(c['op_type'])} '{T.safe(c['op_name'])}' ({c['cause']}) at {where}{starves}"

    a, b = T.safe(run_a), T.safe(run_b)
    lines: list[str] = []
    sections = (
        ("cuts_only_in_a", f"cuts in {a} that {b} no longer has:", style.good, cut_text),
        ("cuts_only_in_b", f"cuts in {b} that {a} does not have:", style.bad, cut_text),
        ("starved_only_in_a", f"starved in {a}, getting a gradient in {b}:", style.good, None),
        ("starved_only_in_b", f"starved in {b}, getting a gradient in {a}:", style.bad, None),
    )
    for key, title, colour, each in sections:
        items = d[key]
        if not items:
            continue
        lines.append(colour(f"  {title}"))
        if each is None:
            lines.append(f"    {T.name_list(items)}")
        else:
            lines.extend(each(c) for c in items)
    if d["cuts_only_in_b"] or d["starved_only_in_b"]:
        lines.append(style.bad(f"  verdict: {b} is worse than {a}"))
    elif d["cuts_only_in_a"] or d["starved_only_in_a"]:
        lines.append(style.good(f"  verdict: {b} fixes what {a} had, and adds nothing"))
    else:
        lines.append("  verdict: same cuts and starved variables in both")
    return lines


def cmd_diff(args: argparse.Namespace) -> int:
    """`diff`: what changed between two runs, to see whether a fix made the gradient flow."""
    if len(args.run) != 2:
        raise CliError("diff needs exactly two runs: --run A --run B", EXIT_USAGE)
    run_a, run_b = args.run
    loaded = load(args.logdir, args.run, args.tag)
    _print_warnings(loaded.warnings)
    tags = {run: {t for (r, t) in loaded.series if r == run} for run in args.run}
    for run in args.run:
        if not tags[run]:
            raise CliError(f"no gradflow data for run {run!r}" + (f", tag {args.tag!r}" if args.tag else "")
                           + f" in {args.logdir!r}; {_what_exists(loaded.available)}")
    common = sorted(tags[run_a] & tags[run_b])
    if not common:
        raise CliError(f"runs {run_a!r} and {run_b!r} share no gradflow tag; pass --tag")
    worse = False
    results: dict[str, Any] = {}
    style = T.Style(T.use_color(sys.stdout, args.color))
    blocks = []
    for tag in common:
        sa, sb = loaded.series[(run_a, tag)], loaded.series[(run_b, tag)]
        d = diff_json(sa.report(), sb.report())
        d.update(a={"run": run_a, "step": sa.last_step}, b={"run": run_b, "step": sb.last_step})
        results[tag] = d
        worse = worse or bool(d["cuts_only_in_b"] or d["starved_only_in_b"])
        title = style.bold(
            f"== tag {T.safe(tag)}: {T.safe(run_a)} (step {sa.last_step}) -> {T.safe(run_b)} (step {sb.last_step})"
        )
        blocks.append(T.wrap([title, *_diff_lines(run_a, run_b, d, style)], T.terminal_width(sys.stdout)))
    if args.json:
        print(json.dumps({"tags": results}, indent=1, sort_keys=True))
    else:
        print("\n\n".join(blocks))
    return EXIT_STARVING if worse else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """`export`: one self-contained HTML file, to share a diagnosis without TensorBoard."""
    from tb_gradflow.export.bundle import thin
    from tb_gradflow.export.html import export_logdir  # the bundle is read only when exporting

    runs = args.run or None
    loaded = load(args.logdir, runs, args.tag)
    _print_warnings(loaded.warnings)
    if not loaded.series:
        raise _no_data(args.logdir, runs, args.tag, loaded.available)
    series = loaded.series
    _check_step(series, args.step)
    if args.format == "model-explorer":
        return _export_model_explorer(args, series)
    _check_output(args.output)
    if args.max_steps is not None:
        series = {key: thin(s, args.max_steps, args.step) for key, s in series.items()}
    try:
        size = export_logdir(series, args.output, step=args.step,
                             title=os.path.basename(os.path.abspath(args.logdir)))
    except OSError as e:
        raise CliError(f"cannot write {args.output!r}: {e.strerror or e}", EXIT_OUTPUT) from e
    print(f"wrote {args.output} ({size / 1024:.0f} KiB)")
    return EXIT_OK


def _export_model_explorer(args: argparse.Namespace,
                           series: dict[tuple[str, str], TagSeries]) -> int:
    """One run and tag as Model Explorer's graph JSON and node-data overlays, in a folder."""
    from tb_gradflow.export.model_explorer import export_model_explorer

    if len(series) != 1:
        listed = ", ".join(f"--run {run!r} --tag {tag!r}" for run, tag in series)
        raise CliError(f"--format model-explorer writes one run and tag; pick one of: {listed}",
                       EXIT_USAGE)
    folder = args.output if args.output != _HTML_DEFAULT else "gradflow-model-explorer"
    _check_output(folder)  # the folder itself is created when missing, not its parent
    [(run, tag)] = series
    try:
        written = export_model_explorer(series[(run, tag)], folder, args.step,
                                        label=os.path.basename(os.path.abspath(args.logdir)))
    except OSError as e:
        raise CliError(f"cannot write {folder!r}: {e.strerror or e}", EXIT_OUTPUT) from e
    overlays = ",".join(written[1:])
    print(f"wrote {written[0]} and {len(written) - 1} node-data files; view them with:\n"
          f"  model-explorer {written[0]} --node_data_paths={overlays} --host 127.0.0.1")
    return EXIT_OK


def _check_step(series: dict[tuple[str, str], TagSeries], step: int | None) -> None:
    """The file opens at its first series; `--step` must be one that series logged."""
    if step is None:
        return
    (run, tag), first = next(iter(series.items()))
    if step not in first.where:
        raise CliError(f"step {step} is not logged in run {run!r}, tag {tag!r}: "
                       f"{_steps_text(first.steps)}")


def _check_output(path: str) -> None:
    """Fails before any work when the output's folder does not exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"cannot write {path!r}: the folder {folder!r} does not exist", EXIT_OUTPUT)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("logdir", help="a TensorBoard logdir (searched recursively for runs)")
    p.add_argument("--tag", help="only this summary name")


def _add_style(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text (auto: when stdout is a terminal and NO_COLOR is unset)")


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="tb-gradflow", formatter_class=fmt, epilog=EXIT_CODES_HELP,
                                     description="Where gradients stop flowing, from a TensorBoard logdir.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = sub.add_parser("report", help="the diagnosis of each run's last logged step",
                            epilog=REPORT_EXITS, formatter_class=fmt)
    _add_common(report)
    report.add_argument("--run", help="only this run (path relative to LOGDIR)")
    _add_style(report)
    report.add_argument("--full", action="store_true", help="every name, not counts (the text of str(report))")
    report.add_argument("--layers", action="store_true",
                        help="a sparkline per layer of its gradient norm over the logged steps")
    report.set_defaults(func=cmd_report)

    diff = sub.add_parser("diff", help="cuts and starved variables one run has and the other lacks",
                          description="Compares the last logged step of run A with run B's; exit 1 "
                          "when B has a cut or a starved variable that A lacks.",
                          epilog=DIFF_EXITS, formatter_class=fmt)
    _add_common(diff)
    diff.add_argument("--run", action="append", required=True, metavar="RUN",
                      help="give it twice: --run A --run B (A the baseline)")
    _add_style(diff)
    diff.set_defaults(func=cmd_diff)

    export = sub.add_parser("export", help="one self-contained HTML file with the tab and its data",
                            epilog=EXPORT_EXITS, formatter_class=fmt)
    _add_common(export)
    export.add_argument("--run", action="append", metavar="RUN",
                        help="only this run; repeat to include several (compare them in the file)")
    export.add_argument("--step", type=int, help="the step the file opens at (default: the last)")
    export.add_argument("--max-steps", type=_positive, metavar="N",
                        help="keep at most N logged steps per run, evenly spaced (default: all)")
    export.add_argument("--format", choices=("html", "model-explorer"), default="html",
                        help="html: one self-contained file; model-explorer: a folder with Model "
                        "Explorer's graph JSON and node-data overlays of one run, tag and step")
    export.add_argument("-o", "--output", default=_HTML_DEFAULT,
                        help="the file (html) or folder (model-explorer) to write "
                        "(default: %(default)s; model-explorer: gradflow-model-explorer)")
    export.set_defaults(func=cmd_export)

    logcheck.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `tb-gradflow` command; returns an exit code so that tests call it in-process."""
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        status = command(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it would print a traceback
        return status
    except CliError as e:
        print(f"tb-gradflow: {T.safe(str(e))}", file=sys.stderr)
        return e.status
    except BrokenPipeError:
        # The reader left (`| head`): stop quietly, as Unix tools do. Python would flush stdout
        # again at exit and fail once more, so stdout now points at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
