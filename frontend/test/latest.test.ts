import assert from "node:assert/strict";
import { test } from "node:test";
import { Latest } from "../src/latest";

test("only the newest load's answer applies, whatever order the answers come in", async () => {
  const loads = new Latest();
  const applied: string[] = [];
  const load = async (name: string, delay: number) => {
    const current = loads.begin();
    await new Promise((r) => setTimeout(r, delay));
    if (current()) applied.push(name);
  };
  await Promise.all([load("slow, older", 30), load("fast, newer", 1)]);
  assert.deepEqual(applied, ["fast, newer"]);
  await load("alone", 1);
  assert.deepEqual(applied, ["fast, newer", "alone"]);
});
