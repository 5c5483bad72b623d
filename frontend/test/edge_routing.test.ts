import assert from "node:assert/strict";
import { test } from "node:test";
import { crosses, ObstacleGrid, routeAround } from "../src/edge_routing";
import type { Obstacle, Pt } from "../src/edge_routing";

const box: Obstacle = { id: "n", x: 50, y: 50, width: 40, height: 20 };

function crossings(route: Pt[], obstacles: Obstacle[]): number {
  let n = 0;
  for (let i = 1; i < route.length; i++) for (const o of obstacles) if (crosses(route[i - 1], route[i], o)) n++;
  return n;
}

test("an edge through a node goes around it, and an edge past it is left alone", () => {
  const grid = new ObstacleGrid([box]);
  const through = routeAround([{ x: 52, y: 0 }, { x: 52, y: 100 }], grid, new Set());
  assert.equal(crossings(through, [box]), 0);
  assert.equal(through.length, 4);
  assert.ok(through[1].x > 70 || through[1].x < 30);
  const past = [{ x: 90, y: 0 }, { x: 90, y: 100 }];
  assert.deepEqual(routeAround(past, grid, new Set()), past);
  // its own ends are not obstacles
  assert.deepEqual(routeAround([{ x: 50, y: 50 }, { x: 50, y: 100 }], grid, new Set(["n"])).length, 2);
});

test("several nodes in a column are all avoided", () => {
  const column = [0, 1, 2, 3].map((k) => ({ id: `n${k}`, x: 100 + (k % 2) * 8, y: 40 + 50 * k, width: 60, height: 24 }));
  const route = routeAround([{ x: 100, y: 0 }, { x: 100, y: 260 }], new ObstacleGrid(column), new Set());
  assert.equal(crossings(route, column), 0);
});
