// Messages between the tab and its layout worker.

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
  error?: string;
}
