// The diagnosis as the tab uses it: the sentences come whole from the `diagnosis` route (written
// once, in tb_gradflow/story.py); here they are only tied to the ops of the graph on screen.
import type { GraphModel } from "./model";
import type { DiagnosisResponse, Story, StoryCut } from "./types";

export interface Told {
  story: Story;
  /** op index of each starving cut (story.cuts order), -1 when the graph has no such op */
  cutOps: number[];
  harmlessOps: number[];
}

export function tieToGraph(d: DiagnosisResponse, model: GraphModel): Told {
  const index = (c: StoryCut): number => model.opIndex.get(c.op_name) ?? -1;
  return { story: d.story, cutOps: d.story.cuts.map(index), harmlessOps: d.story.harmless.map(index) };
}

/** The story's entry for the cut op named `name` (starving or harmless), if it is one. */
export function cutNamed(story: Story, name: string): StoryCut | undefined {
  return story.cuts.find((c) => c.op_name === name) ?? story.harmless.find((c) => c.op_name === name);
}

/** Names grouped by layer (the name up to its last "/"), groups in first-seen order. */
export function groupByLayer(names: readonly string[]): [string, string[]][] {
  const groups = new Map<string, string[]>();
  for (const n of names) {
    const cut = n.lastIndexOf("/");
    const layer = cut > 0 ? n.slice(0, cut) : "";
    let g = groups.get(layer);
    if (!g) groups.set(layer, (g = []));
    g.push(n);
  }
  return [...groups];
}
