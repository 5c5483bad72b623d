// Messages between the tab and its layout worker: one tagged union each way, so that a message
// the other side does not expect is a type error, not a silently ignored object.

/** What to lay out (the worker's input); `id` names the job in every message about it. */
export interface LayoutRequest {
  id: number;
  nodes: Array<{ id: string; width: number; height: number; cluster: string | null }>;
  clusters: Array<{ id: string; cluster: string | null }>;
  edges: Array<{ id: string; from: string; to: string }>;
}

export interface Box {
  x: number; // centre
  y: number;
  width: number;
  height: number;
}

export interface LayoutResult {
  id: number;
  boxes: Record<string, Box>; // nodes and clusters
  edges: Record<string, Array<{ x: number; y: number }>>;
  width: number;
  height: number;
  millis: number;
}

/** The tab to the worker: lay out a graph, or drop jobs not started yet (superseded ones). */
export type ToWorker = { kind: "layout"; request: LayoutRequest } | { kind: "cancel"; ids: number[] };

/** Where a job is: queued behind `ahead` others, started, done, failed, or cancelled unrun. */
export type LayoutProgress =
  | { kind: "queued"; id: number; ahead: number }
  | { kind: "started"; id: number; nodes: number };

/** The worker to the tab. */
export type FromWorker =
  | LayoutProgress
  | { kind: "done"; id: number; result: LayoutResult }
  | { kind: "failed"; id: number; error: string }
  | { kind: "cancelled"; id: number };
