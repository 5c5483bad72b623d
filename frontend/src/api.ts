// Fetches the plugin's JSON routes. URLs are relative: the tab's document has
// <base href="plugin/gradflow/">, so "runs" reaches /data/plugin/gradflow/runs under any prefix.
import type { DiagnosisResponse, GraphResponse, HistoryResponse, RunsResponse } from "./types";

export class RouteError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function getJson<T>(route: string, params: Record<string, string | number | undefined>): Promise<T> {
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
  graph: (run: string, tag: string, step?: number) => getJson<GraphResponse>("graph", { run, tag, step }),
  diagnosis: (run: string, tag: string, step?: number) => getJson<DiagnosisResponse>("diagnosis", { run, tag, step }),
  opHistory: (run: string, tag: string, op: string) => getJson<HistoryResponse>("history", { run, tag, op }),
  variableHistory: (run: string, tag: string, variable: string) =>
    getJson<HistoryResponse>("history", { run, tag, variable }),
};
