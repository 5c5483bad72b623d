// Why an op gets no gradient, as paths in the graph: the cut points that starve it, the path
// from it through a cut to the loss, and a cut's starved region. Pure functions over the model.
import type { GraphModel } from "./model";

const isCut = (model: GraphModel, i: number): boolean => !!model.ops[i]?.cause;

/** The cut points between `op` and the loss: downstream of it, reached without passing another cut. */
export function cutsStarving(model: GraphModel, op: number): number[] {
  const seen = new Uint8Array(model.ops.length);
  const cuts: number[] = [];
  const todo = [...model.ops[op].outputs];
  if (isCut(model, op)) return [op];
  while (todo.length) {
    const i = todo.pop()!;
    if (seen[i]) continue;
    seen[i] = 1;
    if (isCut(model, i)) cuts.push(i);
    else todo.push(...model.ops[i].outputs);
  }
  // the cuts that starve variables first: those are the ones to fix
  return cuts.sort((a, b) => model.ops[b].starved.length - model.ops[a].starved.length || a - b);
}

/** A shortest path along outputs from `from` to an op that `stop` accepts (inclusive), or null. */
function shortestPath(model: GraphModel, from: number, stop: (i: number) => boolean): number[] | null {
  const parent = new Map<number, number>([[from, -1]]);
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q];
    if (stop(i)) {
      const path: number[] = [];
      for (let p = i; p !== -1; p = parent.get(p)!) path.push(p);
      return path.reverse();
    }
    for (const o of model.ops[i].outputs) {
      if (!parent.has(o)) {
        parent.set(o, i);
        queue.push(o);
      }
    }
  }
  return null;
}

/** The path from `op` through `cut` to the loss (an op with no outputs): the way the gradient
 * would come back if the cut let it. */
export function pathThroughCut(model: GraphModel, op: number, cut: number): number[] {
  const toCut = shortestPath(model, op, (i) => i === cut) ?? [op];
  const toLoss = shortestPath(model, cut, (i) => model.ops[i].outputs.length === 0) ?? [cut];
  return [...toCut, ...toLoss.slice(1)];
}

/** The ops a cut starves: upstream of it and without a gradient of their own. */
export function starvedRegion(model: GraphModel, cut: number): number[] {
  const seen = new Uint8Array(model.ops.length);
  const region: number[] = [];
  const todo = [...model.ops[cut].inputs];
  while (todo.length) {
    const i = todo.pop()!;
    if (seen[i]) continue;
    seen[i] = 1;
    if (model.ops[i].state !== "none") continue;
    region.push(i);
    todo.push(...model.ops[i].inputs);
  }
  return region.sort((a, b) => a - b);
}
