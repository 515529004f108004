import { describe, expect, it } from "vitest";
import { compareRuns, foldRun, parseEventStream } from "./compare";
import type { RunEvent } from "./model";

const ev = (seq: number, type: string, node: string | null, time: number): RunEvent => ({ run_id: "r", seq, type, node, attempt: 1, time, payload: {} });

describe("comparing two runs", () => {
  it("puts each node's state and time in both runs side by side", () => {
    const nodes = ["a", "b"];
    const first = foldRun(nodes, [ev(1, "node.started", "a", 10), ev(2, "node.succeeded", "a", 10.5), ev(3, "node.started", "b", 10.5), ev(4, "node.failed", "b", 11)]);
    const second = foldRun(nodes, [ev(1, "node.cached", "a", 20), ev(2, "node.started", "b", 20), ev(3, "node.retrying", "b", 20.25), ev(4, "node.started", "b", 20.5), ev(5, "node.succeeded", "b", 21.5)]);
    const rows = compareRuns(nodes, first, second);
    expect(rows[0]).toEqual({ node: "a", a: { status: "succeeded", seconds: 0.5 }, b: { status: "cached", seconds: 0 }, delta: -0.5 });
    expect(rows[1].a).toEqual({ status: "failed", seconds: 0.5 });
    expect(rows[1].b).toEqual({ status: "succeeded", seconds: 1.25 }); // both attempts count
    expect(rows[1].delta).toBeCloseTo(0.75);
  });

  it("reads a finished run's event stream", () => {
    const text = 'id: 1\nevent: node.started\ndata: {"run_id":"r","seq":1,"type":"node.started","node":"a","attempt":1,"time":1,"payload":{}}\n\n';
    expect(parseEventStream(text).map((e) => e.seq)).toEqual([1]);
  });
});
