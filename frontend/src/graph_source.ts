// Where the panes' graphs come from, behind one interface: the whole graph at once (the `graph`
// route, pane_loader.ts) for any ordinary model, or group by group (`graph_groups`,
// progressive.ts) for a huge one. The tab chooses a source by the run's size and then only calls
// it: `early` (what can be painted before the steps' diagnosis), `load` (a new run, step or
// Compare) and `follow` (the open groups and the selection changed). Each gives one frozen
// `Panes` value; a load superseded by a newer one gives null.
import { RouteError } from "./api";
import type { Hierarchy } from "./hierarchy";
import { defaultExpansion, ROOT_ID } from "./hierarchy";
import type { Ticket } from "./latest";
import type { GraphModel } from "./model";
import type { GraphRoutes, Loaded } from "./pane_loader";
import { PaneLoader } from "./pane_loader";
import type { FetchLevel, ProgressiveTree } from "./progressive";
import { loadsProgressively, ProgressiveLoader, scopesOf } from "./progressive";
import type { DiagnosisResponse, TagSummary } from "./types";

/** One pane's graph as the tab draws it. */
export interface PaneGraph {
  readonly model: GraphModel;
  readonly hierarchy: Hierarchy;
  /** null while a graph loaded group by group waits for its diagnosis */
  readonly diagnosis: DiagnosisResponse | null;
  /** the groups open until the user opens or closes one (the root included) */
  readonly defaultOpen: readonly string[];
  /** a graph loaded group by group: its loaded levels (what is drawn of them, the ops in all);
   * null for a whole graph */
  readonly levels: ProgressiveTree | null;
}

/** The panes of one load: the run's, and Compare's. `current` is the load's ticket: false once a
 * newer load began (its panes are then stale). */
export interface Panes {
  readonly main: PaneGraph;
  readonly other: PaneGraph | null;
  readonly current: Ticket;
}

/** What the tab asks a source for: the view state's run, tag, step, compared run, the run's
 * pane's own open groups ([] for its default) and the selected op. */
export interface GraphRequest {
  readonly run: string;
  readonly tag: string;
  readonly step: number;
  readonly compare: string | null;
  readonly open: readonly string[];
  readonly selected: string | null;
}

export interface GraphSource {
  /** Whether the panes may hold part of the graph: an op not in the model may be in a group
   * not loaded yet (so selecting it by name loads its groups). */
  readonly partial: boolean;
  /** What can be painted before the steps' diagnosis is asked for (that takes the server
   * seconds on a huge graph's first request); null if nothing, or if superseded. */
  early(current: Ticket, at: GraphRequest): Promise<Panes | null>;
  /** The panes of a new run, step or Compare; null if a newer load began meanwhile.
   * @throws RouteError or a network error of a request */
  load(current: Ticket, at: GraphRequest): Promise<Panes | null>;
  /** `panes` as the open groups and the selection of `at` need them; null if superseded. */
  follow(at: GraphRequest, panes: Panes): Promise<Panes | null>;
}

/** The whole graph of each pane at once, its groups opened by default within a budget. */
export class WholeGraph implements GraphSource {
  readonly partial = false;
  /** a graph's default open groups, from its first load (a new step of it keeps them) */
  private readonly defaults = new WeakMap<Hierarchy, readonly string[]>();

  constructor(private readonly loader: PaneLoader) {}

  early(): Promise<Panes | null> {
    return Promise.resolve(null);
  }

  async load(current: Ticket, at: GraphRequest): Promise<Panes | null> {
    const loaded = await this.loader.whole(current, at.run, at.tag, at.step, at.compare);
    if (!loaded) return null;
    return Object.freeze({ main: this.pane(loaded.main), other: loaded.other ? this.pane(loaded.other) : null, current });
  }

  follow(_at: GraphRequest, panes: Panes): Promise<Panes | null> {
    return Promise.resolve(panes);
  }

  private pane(loaded: Loaded): PaneGraph {
    let open = this.defaults.get(loaded.hierarchy);
    if (!open) {
      const cuts = loaded.model.ops.filter((op) => op.cause && op.starved.length > 0).map((op) => op.index);
      open = [...defaultExpansion(loaded.hierarchy, cuts)];
      this.defaults.set(loaded.hierarchy, open);
    }
    return Object.freeze({ ...loaded, defaultOpen: open, levels: null });
  }
}

/** The routes a group-by-group load reads besides the diagnosis. */
export interface LevelRoutes {
  graphGroups: FetchLevel;
}

/** A huge graph: its top level first, then the level of each group the user opens (and of the
 * groups holding the selected op); closed groups' levels are released beyond a budget. */
export class GroupByGroup implements GraphSource {
  readonly partial = true;
  private readonly levels: ProgressiveLoader;

  constructor(private readonly loader: PaneLoader, private readonly routes: Pick<GraphRoutes, "diagnosis">, fetchLevel: FetchLevel, isNotFound: (e: unknown) => boolean) {
    this.levels = new ProgressiveLoader(fetchLevel, undefined, isNotFound);
  }

  /** The top level (and the open groups'), before the diagnosis. */
  async early(current: Ticket, at: GraphRequest): Promise<Panes | null> {
    const tree = await this.loader.settle(current, this.tree(at, null));
    return tree ? this.panes(tree, null, current) : null;
  }

  /** The diagnosis, and meanwhile the top level (both take seconds on a first request). */
  async load(current: Ticket, at: GraphRequest): Promise<Panes | null> {
    const answers = await this.loader.settle(current, Promise.all([this.routes.diagnosis(at.run, at.tag, at.step), this.levels.load(at.run, at.tag, at.step, new Set(), [], null)]));
    if (!answers || !answers[1]) return null;
    return this.panes(answers[1], answers[0], current);
  }

  async follow(at: GraphRequest, panes: Panes): Promise<Panes | null> {
    const tree = await this.tree(at, panes.main.diagnosis);
    if (!tree) return null;
    return tree === panes.main.levels ? panes : this.panes(tree, panes.main.diagnosis, panes.current);
  }

  private tree(at: GraphRequest, diagnosis: DiagnosisResponse | null): Promise<ProgressiveTree | null> {
    return this.levels.load(at.run, at.tag, at.step, new Set(at.open), at.selected ? scopesOf(at.selected) : [], diagnosis?.story ?? null);
  }

  private panes(tree: ProgressiveTree, diagnosis: DiagnosisResponse | null, current: Ticket): Panes {
    const main: PaneGraph = Object.freeze({ model: tree.model, hierarchy: tree.hierarchy, diagnosis, defaultOpen: [ROOT_ID], levels: tree });
    return Object.freeze({ main, other: null, current });
  }
}

/** Both sources over one loader (one out-of-order guard for every load), and the choice between
 * them: group by group above the size where the whole graph would take the browser seconds and
 * hundreds of MB, and only where the server serves levels. */
export class GraphSources {
  readonly whole: WholeGraph;
  readonly groups: GroupByGroup;

  /** every graph load's guard: a load begun later makes the panes of those before it stale */
  readonly loader: PaneLoader;

  constructor(routes: GraphRoutes & LevelRoutes) {
    const loader = (this.loader = new PaneLoader(routes));
    this.whole = new WholeGraph(loader);
    this.groups = new GroupByGroup(loader, routes, routes.graphGroups, (e) => e instanceof RouteError && e.status === 404);
  }

  /** The source for a run's graph of `summary`. */
  of(summary: TagSummary | undefined, servesGroups: boolean): GraphSource {
    return servesGroups && loadsProgressively(summary) ? this.groups : this.whole;
  }
}
