// Fetches the plugin's JSON routes. URLs are relative: the tab's document has
// <base href="plugin/gradflow/">, so "runs" reaches /data/plugin/gradflow/runs under any prefix.
// An exported HTML file has no server: it installs a DataSource that answers the same routes
// from the data inlined in the page (export_source.ts).
import type { DiagnosisResponse, GraphResponse, GroupsResponse, HistoryResponse, LayersResponse, NoticesResponse, RunsResponse } from "./types";

export class RouteError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export type RouteParams = Record<string, string | number | undefined>;

/** Answers a route with its JSON body, or throws RouteError as the HTTP route would. */
export interface DataSource {
  get(route: string, params: RouteParams): Promise<unknown>;
}

let source: DataSource | null = null;

/** Serves every later request from `s` instead of HTTP. */
export function useDataSource(s: DataSource): void {
  source = s;
}

async function getJson<T>(route: string, params: RouteParams): Promise<T> {
  if (source) return (await source.get(route, params)) as T;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) query.set(key, String(value));
  }
  const qs = query.toString();
  const response = await fetch(qs ? `${route}?${qs}` : route, { credentials: "same-origin" });
  if (!response.ok) {
    let message = `${route}: HTTP ${response.status}`;
    try {
      const body = (await response.json()) as { error?: unknown };
      if (typeof body.error === "string") message = body.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new RouteError(response.status, message);
  }
  return (await response.json()) as T;
}

export const api = {
  runs: () => getJson<RunsResponse>("runs", {}),
  /** Sampled runs and runs the server cannot read; none from an exported file. */
  notices: () => (source ? Promise.resolve<NoticesResponse>({ notices: [] }) : getJson<NoticesResponse>("notices", {})),
  graph: (run: string, tag: string, step?: number) => getJson<GraphResponse>("graph", { run, tag, step }),
  graphGroups: (run: string, tag: string, step: number, group: string) =>
    getJson<GroupsResponse>("graph_groups", { run, tag, step, group: group || undefined }),
  /** Whether `graph_groups` is served: over HTTP, not from an exported file's inlined data. */
  servesGroups: () => source === null,
  diagnosis: (run: string, tag: string, step?: number) => getJson<DiagnosisResponse>("diagnosis", { run, tag, step }),
  /** Each layer's norm at up to `columns` logged steps (the layers view's heatmap). */
  layers: (run: string, tag: string, columns: number) => getJson<LayersResponse>("layers", { run, tag, columns }),
  opHistory: (run: string, tag: string, op: string) => getJson<HistoryResponse>("history", { run, tag, op }),
  variableHistory: (run: string, tag: string, variable: string) =>
    getJson<HistoryResponse>("history", { run, tag, variable }),
};
