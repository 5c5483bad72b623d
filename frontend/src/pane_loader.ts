// The tab's loads of a run's graph(s) and diagnoses. A whole-graph load gives one immutable
// `Loaded` value per pane (the run's, and Compare's); every load takes a ticket (latest.ts) and
// an answer that arrives after a newer load began is dropped here, in `settle`, the one place.
import { RouteError } from "./api";
import type { Hierarchy } from "./hierarchy";
import { buildHierarchy } from "./hierarchy";
import { Latest, type Ticket } from "./latest";
import type { GraphModel } from "./model";
import { buildModel } from "./model";
import type { DiagnosisResponse, GraphResponse } from "./types";

/** The routes a load reads (api.ts's, or a test's). */
export interface GraphRoutes {
  graph(run: string, tag: string, step?: number): Promise<GraphResponse>;
  diagnosis(run: string, tag: string, step?: number): Promise<DiagnosisResponse>;
}

/** What one pane shows, as loaded: its graph, that graph's name-scope groups, its diagnosis. */
export interface Loaded {
  readonly model: GraphModel;
  readonly hierarchy: Hierarchy;
  readonly diagnosis: DiagnosisResponse;
}

/** A whole-graph load's panes: the run's, and the compared run's when Compare is on. */
export interface LoadedPanes {
  readonly main: Loaded;
  readonly other: Loaded | null;
}

export class PaneLoader {
  private readonly latest = new Latest();
  /** one hierarchy per graph (run, tag, graph id): a new step of the same graph keeps its groups */
  private readonly hierarchies = new Map<string, Hierarchy>();

  constructor(private readonly routes: GraphRoutes) {}

  /** A new load begins: every load begun before it is stale from now on. */
  begin(): Ticket {
    return this.latest.begin();
  }

  /** The answer of `work`, or null if a newer load began while it was in flight. */
  async settle<T>(current: Ticket, work: Promise<T>): Promise<T | null> {
    const value = await work;
    return current() ? value : null;
  }

  /** The run's graph and diagnosis at `step`, and the compared run's (at the same step, or its
   * last if it has no such step); null if a newer load began meanwhile.
   * @throws RouteError or a network error of any of the requests */
  async whole(current: Ticket, run: string, tag: string, step: number, compare: string | null): Promise<LoadedPanes | null> {
    const answers = await this.settle(
      current,
      Promise.all([this.routes.graph(run, tag, step), this.routes.diagnosis(run, tag, step), compare ? this.compared(compare, tag, step) : Promise.resolve(null)]),
    );
    if (!answers) return null;
    const [mine, mineTold, theirs] = answers;
    return { main: this.loaded(mine, mineTold), other: theirs ? this.loaded(theirs[0], theirs[1]) : null };
  }

  private async compared(run: string, tag: string, step: number): Promise<[GraphResponse, DiagnosisResponse]> {
    let g: GraphResponse;
    try {
      g = await this.routes.graph(run, tag, step);
    } catch (e) {
      if (!(e instanceof RouteError && e.status === 404)) throw e;
      g = await this.routes.graph(run, tag); // no such step there: its last
    }
    return [g, await this.routes.diagnosis(run, tag, g.step)];
  }

  private loaded(graph: GraphResponse, diagnosis: DiagnosisResponse): Loaded {
    const model = buildModel(graph);
    const key = `${model.run}\u0000${model.tag}\u0000${model.graphId}`;
    let hierarchy = this.hierarchies.get(key);
    if (!hierarchy) {
      hierarchy = buildHierarchy(model.ops, model.variables.map((v) => v.layer));
      this.hierarchies.set(key, hierarchy);
    }
    return Object.freeze({ model, hierarchy, diagnosis });
  }
}
