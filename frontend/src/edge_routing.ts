// Edges around nodes: dagre routes each group's edges among that group's members, but an edge
// pieced together across groups (and the joins between its pieces) can still cut through a node
// of another group. Each such crossing becomes a detour around the node's nearer side.

export interface Pt {
  x: number;
  y: number;
}

/** A node as an obstacle: its centre box. */
export interface Obstacle {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

const MARGIN = 6;
const CELL = 256;

/** Whether segment a-b passes through the inside of the box (shrunk by `inset`). */
export function crosses(a: Pt, b: Pt, o: Obstacle, inset = 2): boolean {
  const x0 = o.x - o.width / 2 + inset;
  const x1 = o.x + o.width / 2 - inset;
  const y0 = o.y - o.height / 2 + inset;
  const y1 = o.y + o.height / 2 - inset;
  let t0 = 0;
  let t1 = 1;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  for (const [p, q] of [[-dx, a.x - x0], [dx, x1 - a.x], [-dy, a.y - y0], [dy, y1 - a.y]]) {
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const t = q / p;
    if (p < 0) {
      if (t > t1) return false;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return false;
      if (t < t1) t1 = t;
    }
  }
  return t0 < t1;
}

/** A grid of obstacles for quick lookups along a segment. */
export class ObstacleGrid {
  private readonly cells = new Map<string, Obstacle[]>();

  constructor(obstacles: readonly Obstacle[]) {
    for (const o of obstacles) {
      for (const key of this.keys(o.x - o.width / 2, o.y - o.height / 2, o.x + o.width / 2, o.y + o.height / 2)) {
        let list = this.cells.get(key);
        if (!list) this.cells.set(key, (list = []));
        list.push(o);
      }
    }
  }

  private *keys(x0: number, y0: number, x1: number, y1: number): Generator<string> {
    for (let i = Math.floor(x0 / CELL); i <= Math.floor(x1 / CELL); i++) {
      for (let j = Math.floor(y0 / CELL); j <= Math.floor(y1 / CELL); j++) yield `${i},${j}`;
    }
  }

  /** The first obstacle (nearest `a`) that segment a-b crosses, other than `skip`. */
  firstCrossed(a: Pt, b: Pt, skip: ReadonlySet<string>): Obstacle | null {
    let best: Obstacle | null = null;
    let bestD = Infinity;
    const seen = new Set<Obstacle>();
    for (const key of this.keys(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y))) {
      for (const o of this.cells.get(key) ?? []) {
        if (seen.has(o) || skip.has(o.id)) continue;
        seen.add(o);
        if (!crosses(a, b, o)) continue;
        const d = Math.hypot(o.x - a.x, o.y - a.y);
        if (d < bestD) {
          bestD = d;
          best = o;
        }
      }
    }
    return best;
  }
}

/** Points that go around `o` between a and b: down its nearer side (or across, for a mostly
 * horizontal segment, over or under it). */
function detour(a: Pt, b: Pt, o: Obstacle): Pt[] {
  const left = o.x - o.width / 2 - MARGIN;
  const right = o.x + o.width / 2 + MARGIN;
  const top = o.y - o.height / 2 - MARGIN;
  const bottom = o.y + o.height / 2 + MARGIN;
  if (Math.abs(b.y - a.y) >= Math.abs(b.x - a.x)) {
    const mid = (a.x + b.x) / 2;
    const x = Math.abs(mid - left) <= Math.abs(mid - right) ? left : right;
    return b.y >= a.y ? [{ x, y: top }, { x, y: bottom }] : [{ x, y: bottom }, { x, y: top }];
  }
  const mid = (a.y + b.y) / 2;
  const y = Math.abs(mid - top) <= Math.abs(mid - bottom) ? top : bottom;
  return b.x >= a.x ? [{ x: left, y }, { x: right, y }] : [{ x: right, y }, { x: left, y }];
}

/** The route with a detour around every node it crosses, except its own two ends. */
export function routeAround(points: readonly Pt[], grid: ObstacleGrid, ends: ReadonlySet<string>, maxDetours = 24): Pt[] {
  const out: Pt[] = [points[0]];
  const todo = points.slice(1).reverse();
  let detours = 0;
  while (todo.length) {
    const a = out[out.length - 1];
    const b = todo[todo.length - 1];
    const o = detours < maxDetours ? grid.firstCrossed(a, b, ends) : null;
    if (!o) {
      out.push(todo.pop()!);
      continue;
    }
    detours++;
    const around = detour(a, b, o);
    out.push(around[0]);
    todo.push(around[1]);
  }
  return out;
}
