"""One run and tag's diagnosis as JSON, the same for the CLI's `--json` and the plugin's route.

Its own module so that the plugin reads it without importing the command line.
"""
from __future__ import annotations

from typing import Any

from tb_gradflow.reading.reader import TagSeries
from tb_gradflow.report import Report
from tb_gradflow.story import gate_layers, story
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
        # Left out on purpose: Keras does not train them (frozen layers or models).
        "frozen_variables": full["frozen_variables"],
        "ops": len(report.ops),
        # Presence of each op where known (measured ops a gradient reaches): of the gradient at
        # its output, or for a gating op the share of what arrives that it passes back to its input.
        "op_presence": {
            o["name"]: {"presence": o["presence"], "presence_of": o["presence_of"]}
            for o in full["ops"] if o["presence"] is not None
        },
        # Issue 17: dead units of ReLU-family gates (`since`: the first step of the current
        # streak over the story's threshold; `layer`: as the Layers view names it), and the
        # norms through each loop's iterations.
        "dead_units": _dead_units(report),
        "iteration_norms": {o["name"]: o["iteration_norms"] for o in full["ops"] if o["iteration_norms"] is not None},
        "story": story(report),
        **timeline(series),
    }


def _dead_units(report: Report) -> dict[str, dict[str, Any]]:
    layers = gate_layers(report)
    return {
        o.name: {"units": o.units, "dead_units": o.dead_units, "since": report.dead_since.get(o.name),
                 "layer": layers.get(o.name)}
        for o in report.ops if o.units
    }
