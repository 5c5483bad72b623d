// The Layers view as a whole: the layers x steps heatmap on top (one grid per run in Compare, on
// one colour scale), the bar list of the shown step below it, the frozen layers after it. One
// call from the app, in the order that paints soonest: the heatmap's route is asked for before
// the list is built, so that the fetch and the building overlap.
import { renderFrozenLayers } from "./frozen_view";
import type { Heatmap, HeatmapRun } from "./heatmap";
import { layerCount, markPicked } from "./heatmap";
import { renderLayers } from "./layers_view";
import type { GraphModel } from "./model";

export interface LayersInput {
  model: GraphModel;
  /** the compared run's graph at its shown step; null without Compare */
  other: GraphModel | null;
  /** the bars' log axis: both runs' variable norm range over every logged step */
  range: [number, number] | null;
  /** the variables the loss reads that are not trained (issue 16) */
  frozen: readonly string[] | undefined | null;
  /** the last logged step of a run (a reload that logs more steps fetches the heatmap again) */
  lastStep: (run: string) => number | undefined;
  onVariable: (name: string) => void;
}

/** A run's place in the heatmap: its shown step, last logged step and layer count. */
export function heatmapRun(model: GraphModel, lastStep: number | undefined): HeatmapRun {
  return { run: model.run, step: model.step, lastStep: lastStep ?? model.step, layers: layerCount(model) };
}

/** Shows the Layers view of `shown` in `container`; `heatmap` keeps its cells between calls. */
export function showLayers(container: HTMLElement, heatmap: Heatmap, shown: LayersInput): void {
  const { model, other } = shown;
  const otherRun = other ? heatmapRun(other, shown.lastStep(other.run)) : null;
  void heatmap.show(container, { ...heatmapRun(model, shown.lastStep(model.run)), tag: model.tag, other: otherRun });
  const attached = renderLayers(container, model, other, shown.range, shown.onVariable);
  renderFrozenLayers(container, shown.frozen);
  markPicked(container, heatmap.pickedLayer);
  // rows attached after the first paint: outlined too when the picked layer is among them
  void attached.then(() => markPicked(container, heatmap.pickedLayer));
}
