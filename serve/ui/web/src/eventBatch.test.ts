import { describe, expect, it } from "vitest";
import { EventBatcher, applyEvents } from "./eventBatch";
import type { RunEvent } from "./model";
import { NodeStates } from "./nodeStates";
import { applyEvent, initialRun } from "./runState";

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
