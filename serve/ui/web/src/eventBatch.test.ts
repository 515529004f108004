import { describe, expect, it } from "vitest";
import { EventBatcher, applyEvents } from "./eventBatch";
import type { RunEvent } from "./model";
import { NodeStates } from "./nodeStates";
import { applyEvent, foldEvents, initialRun } from "./runState";

let seq = 0;
const ev = (type: string, node: string | null, time: number): RunEvent => ({ run_id: "r", seq: ++seq, type, node, attempt: 1, time, payload: {} });

describe("run events batched per frame", () => {
  it("folds a batch like the events one by one and names only the nodes it changed", () => {
    seq = 0;
    const events = [ev("run.started", null, 1), ev("node.started", "a", 1.1), ev("node.succeeded", "a", 1.2), ev("node.started", "b", 1.3)];
    const start = initialRun(null, ["a", "b", "c"]);
    const { run, changed } = applyEvents(start, events);
    expect(run).toEqual(events.reduce(applyEvent, start));
    expect([...changed].sort()).toEqual(["a", "b"]);
    expect(run.nodes.c).toBe(start.nodes.c); // untouched nodes keep their identity
    // A batch replayed after a reconnect changes nothing.
    const again = applyEvents(run, events);
    expect(again.run).toBe(run);
    expect(again.changed.size).toBe(0);
  });

  it("names a node merged into one the batch changed as changed too", () => {
    seq = 0;
    const started: RunEvent = { ...ev("run.started", null, 1), payload: { merged: { twin: "a" } } };
    const first = applyEvents(initialRun(null, ["a", "twin", "c"]), [started, ev("node.started", "a", 1.1)]);
    expect([...first.changed].sort()).toEqual(["a", "twin"]);
    const second = applyEvents(first.run, [ev("node.succeeded", "a", 1.2)]);
    expect([...second.changed].sort()).toEqual(["a", "twin"]);
    expect(second.run.nodes.twin.status).toBe("succeeded");
  });

  it("flushes every event queued before a frame once, in order, and nothing after stop", () => {
    seq = 0;
    const frames: (() => void)[] = [];
    const flushed: number[][] = [];
    const batcher = new EventBatcher((batch) => flushed.push(batch.map((e) => e.seq)), (cb) => frames.push(cb));
    for (let i = 0; i < 50; i++) batcher.push(ev("node.progress", "a", i));
    expect(frames).toHaveLength(1); // one frame scheduled for the whole burst
    expect(flushed).toEqual([]);
    frames.shift()!();
    expect(flushed).toEqual([Array.from({ length: 50 }, (_, i) => i + 1)]);
    batcher.push(ev("node.succeeded", "a", 60));
    expect(frames).toHaveLength(1);
    batcher.stop();
    frames.shift()!();
    expect(flushed).toHaveLength(1);
  });
});

describe("a big run's events folded in one batch", () => {
  it("gives what the events give one by one, and leaves the nodes they do not name untouched", () => {
    seq = 0;
    const names = Array.from({ length: 500 }, (_, i) => `n${i}`);
    const events = [ev("run.started", null, 0)];
    for (const [i, n] of names.entries()) {
      events.push(ev("node.started", n, i));
      if (i % 7 === 0) events.push({ ...ev("node.log", n, i), payload: { message: `line ${i}` } });
      if (i % 100 === 3) events.push({ ...ev("node.retrying", n, i), payload: { error: { message: "again" } } }, ev("node.started", n, i), { ...ev("node.started", n, i), seq: 1 });
      if (i < 450) events.push(ev(i % 50 === 9 ? "node.failed" : "node.succeeded", n, i + 0.5));
    }
    const start = initialRun(null, [...names, "never"]);
    const one = events.reduce((run, e) => foldEvents(run, [e]), start);
    const { run, changed } = applyEvents(start, events);
    expect(run).toEqual(one);
    expect(changed.size).toBe(500);
    expect(run.nodes.never).toBe(start.nodes.never);
    expect(run.attempts.filter((a) => a.end === null)).toHaveLength(50); // n450..n499 still run
    expect(run.nodes.n3.attempts).toBe(1);
    expect(run.attempts.filter((a) => a.node === "n103")).toHaveLength(2); // retried: two attempts
    // In two halves, as two frames would fold them: the same again.
    const half = Math.floor(events.length / 2);
    expect(foldEvents(foldEvents(start, events.slice(0, half)), events.slice(half))).toEqual(one);
  }, 30_000); // the one-by-one reference copies the node table per event: slow on a loaded machine
});

describe("live node states", () => {
  it("notifies only the nodes whose state changed", () => {
    const states = new NodeStates();
    const calls: string[] = [];
    for (const id of ["a", "b", "c"]) states.subscribe(id, () => calls.push(id));
    states.update([["a", { status: "pending" }], ["b", { status: "pending" }], ["c", { status: "pending" }]]);
    calls.length = 0;
    const changed = states.update([["a", { status: "running", progress: 0.5 }], ["b", { status: "pending" }], ["c", { status: "pending" }]]);
    expect(changed).toEqual(["a"]);
    expect(calls).toEqual(["a"]);
    expect(states.get("a")).toEqual({ status: "running", progress: 0.5 });
  });
});
