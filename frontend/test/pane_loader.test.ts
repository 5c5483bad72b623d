import assert from "node:assert/strict";
import { test } from "node:test";
import { RouteError } from "../src/api";
import { PaneLoader } from "../src/pane_loader";
import type { GraphRoutes } from "../src/pane_loader";
import type { DiagnosisResponse, GraphResponse } from "../src/types";
import { brokenVae, graph, served } from "./fixture";

/** Routes answering from a table of graphs per run (steps as given), after `delay(run, step)` ms;
 * every request is logged. */
function routes(graphs: Record<string, GraphResponse[]>, delay: (run: string, step?: number) => number = () => 0) {
  const asked: string[] = [];
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const r: GraphRoutes = {
    async graph(run, _tag, step) {
      asked.push(`graph ${run} ${step ?? "last"}`);
      await wait(delay(run, step));
      const all = graphs[run];
      const g = step === undefined ? all[all.length - 1] : all.find((x) => x.step === step);
      if (!g) throw new RouteError(404, `no step ${step}`);
      return g;
    },
    async diagnosis(run, _tag, step) {
      asked.push(`diagnosis ${run} ${step ?? "last"}`);
      await wait(delay(run, step));
      return { ...served([]), steps: [step ?? -1] } as DiagnosisResponse;
    },
  };
  return { r, asked };
}

const atStep = (g: GraphResponse, step: number, extra: Partial<GraphResponse> = {}): GraphResponse => ({ ...g, step, ...extra });

test("only the newest load's panes come back, whatever order the answers arrive in", async () => {
  const vae = brokenVae();
  const { r } = routes({ run: [atStep(vae, 1), atStep(vae, 2)] }, (_run, step) => (step === 1 ? 40 : 1));
  const loader = new PaneLoader(r);
  const older = loader.whole(loader.begin(), "run", "gradflow", 1, null);
  const newer = loader.whole(loader.begin(), "run", "gradflow", 2, null);
  const [a, b] = await Promise.all([older, newer]);
  assert.equal(a, null);
  assert.equal(b!.main.model.step, 2);
  assert.equal(b!.other, null);
  assert.ok(Object.isFrozen(b!.main));
  // another kind of load (a group-by-group one) supersedes a whole one through the same guard
  const whole = loader.whole(loader.begin(), "run", "gradflow", 1, null);
  const other = loader.begin();
  assert.equal(await whole, null);
  assert.equal(await loader.settle(other, Promise.resolve("kept")), "kept");
});

test("Compare: the other run's graph at the same step, or at its last step when it has no such step", async () => {
  const vae = brokenVae();
  const { r, asked } = routes({ run: [atStep(vae, 5)], base: [atStep(vae, 3, { run: "base" })] });
  const loaded = (await new PaneLoader(r).whole(() => true, "run", "gradflow", 5, "base"))!;
  assert.equal(loaded.other!.model.run, "base");
  assert.equal(loaded.other!.model.step, 3);
  assert.deepEqual(loaded.other!.diagnosis.steps, [3]);
  assert.deepEqual(asked.filter((a) => a.includes("base")).sort(), ["diagnosis base 3", "graph base 5", "graph base last"]);
});

test("a step of the same graph keeps its groups; another graph gets its own", async () => {
  const vae = brokenVae();
  const small = graph([{ name: "a/x" }, { name: "loss", inputs: ["a/x"] }], [], { graph_id: "g2" });
  const { r } = routes({ run: [atStep(vae, 1), atStep(vae, 2), atStep(small, 3)] });
  const loader = new PaneLoader(r);
  const at = async (step: number) => (await loader.whole(() => true, "run", "gradflow", step, null))!.main;
  const [one, two, three] = [await at(1), await at(2), await at(3)];
  assert.notEqual(one.model, two.model);
  assert.equal(one.hierarchy, two.hierarchy);
  assert.notEqual(three.hierarchy, one.hierarchy);
  assert.equal(three.hierarchy.opGroup.length, 2);
});

test("a failed request fails the load, stale or not (the tab says so)", async () => {
  const { r } = routes({ run: [] });
  const loader = new PaneLoader(r);
  await assert.rejects(loader.whole(loader.begin(), "run", "gradflow", 1, null), /no step 1/);
});
