"""`tb-gradflow report LOGDIR`: the diagnosis of the last logged step, for people and for CI.

Exit status: 0 when every trainable variable gets a gradient, 1 when one starves (cut point
named or not), 2 on a bad logdir.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from tb_gradflow import logcheck
from tb_gradflow.reading.local_logdir import LogdirError, local_provider
from tb_gradflow.reading.reader import GradflowReader, TagSeries
from tb_gradflow.report import Report
from tb_gradflow.story import story
from tb_gradflow.timeline import timeline


def diagnosis_json(series: TagSeries, step: int | None = None, report: Report | None = None) -> dict[str, Any]:
    """The JSON of one run and tag: what `--json` prints and the plugin's diagnosis route serves.

    At `step` (a logged step; default the last), since the plugin lets one pick the step; pass
    `report` when it is at hand already. `story` is the diagnosis in the words the text report
    prints; `norm_range`, `first_nonfinite_step` and `version_changes` hold over all steps.
    """
    report = report or series.report(step)
    full = report.to_dict()
    return {
        "steps": series.steps,
        "last_step": series.last_step,
        "variables": full["variables"],
        "cut_points": full["cut_points"],
        "starved_variables": full["starved_variables"],
        "ops": len(report.ops),
        # Presence of each op where known (measured ops a gradient reaches): of the gradient at
        # its output, or for a gating op of what it passes back to its input.
        "op_presence": {
            o["name"]: {"presence": o["presence"], "presence_of": o["presence_of"]}
            for o in full["ops"] if o["presence"] is not None
        },
        "story": story(report),
        **timeline(series),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tb-gradflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="print the diagnosis of the last logged step")
    report.add_argument("logdir")
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument("--run", help="only this run (path relative to LOGDIR)")
    report.add_argument("--tag", help="only this summary name")
    logcheck.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return logcheck.run(args)
    warnings: list[str] = []
    try:
        provider = local_provider(args.logdir)
    except LogdirError as e:
        print(f"tb-gradflow: {e}", file=sys.stderr)
        return 2
    reader = GradflowReader(provider, warn=warnings.append)
    listing = reader.list()
    runs: dict[str, Any] = {}
    starving = False
    texts: list[str] = []
    for run in sorted(listing):
        if args.run is not None and run != args.run:
            continue
        for name in sorted(listing[run]):
            if args.tag is not None and name != args.tag:
                continue
            series = reader.read(run, name, listing[run][name])
            if series is None:
                continue
            report = series.report()
            runs.setdefault(run, {"tags": {}})["tags"][name] = diagnosis_json(series, report=report)
            starving = starving or bool(report.starved_variables)
            shown_run = run if run != "." else os.path.basename(os.path.abspath(args.logdir))
            texts.append(f"== run {shown_run}, tag {name}\n{report}")
    for message in warnings:
        print(f"tb-gradflow: warning: {message}", file=sys.stderr)
    if not runs:
        what = "no gradflow data"
        if args.run is not None or args.tag is not None:
            what += " for the given --run/--tag"
        print(f"tb-gradflow: {what} in {args.logdir!r}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"runs": runs}, indent=1, sort_keys=True))
    else:
        print("\n\n".join(texts))
    return 1 if starving else 0


if __name__ == "__main__":
    sys.exit(main())
