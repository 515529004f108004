import { describe, expect, it } from "vitest";
import type { RunEvent } from "./model";
import { applyEvent, initialRun, replay } from "./runState";

let seq = 0;
const ev = (type: string, node: string | null, time: number, payload: Record<string, unknown> = {}, attempt: number | null = null): RunEvent => ({
  run_id: "r", seq: ++seq, type, node, attempt, time, payload,
});

describe("run state from events", () => {
  it("follows node states, attempts with retries, logs and progress; ignores replayed events", () => {
    seq = 0;
    const events = [
      ev("run.queued", null, 0),
      ev("run.started", null, 1),
      ev("node.started", "a", 1.1, {}, 1),
      ev("node.log", "a", 1.2, { level: "INFO", message: "hello <b>" }, 1),
      ev("node.progress", "a", 1.3, { fraction: 0.5, message: "half" }, 1),
      ev("node.retrying", "a", 1.5, { error: { message: "boom" } }, 1),
      ev("node.started", "a", 2.0, {}, 2),
      ev("node.succeeded", "a", 2.5, {}, 2),
      ev("node.cached", "b", 2.6, {}),
      ev("run.succeeded", null, 3),
    ];
    let run = initialRun(null, ["a", "b", "c"]);
    for (const e of events) run = applyEvent(run, e);
    expect(run.status).toBe("succeeded");
    expect(run.nodes.a.status).toBe("succeeded");
    expect(run.nodes.a.attempts).toBe(2);
    expect(run.nodes.a.logs).toEqual([{ time: 1.2, level: "INFO", message: "hello <b>" }]);
    expect(run.nodes.a.progress).toEqual({ fraction: 0.5, message: "half" });
    expect(run.nodes.b.status).toBe("cached");
    expect(run.nodes.c.status).toBe("pending");
    expect(run.attempts.map((a) => [a.node, a.attempt, a.start, a.end, a.outcome])).toEqual([
      ["a", 1, 1.1, 1.5, "retrying"],
      ["a", 2, 2.0, 2.5, "succeeded"],
      ["b", 1, 2.6, 2.6, "cached"],
    ]);
    expect(applyEvent(run, events[3])).toBe(run);
  });

  it("keeps a failed node's error and closes open attempts when the run ends", () => {
    seq = 0;
    let run = initialRun(null, ["a", "b"]);
    run = applyEvent(run, ev("node.started", "a", 1, {}, 1));
    run = applyEvent(run, ev("node.started", "b", 1, {}, 1));
    run = applyEvent(run, ev("node.failed", "a", 2, { error: { type: "ValueError", message: "bad", traceback: "Traceback..." } }, 1));
    run = applyEvent(run, ev("run.failed", null, 3, { error: { message: "a failed" } }));
    expect(run.nodes.a.error).toEqual({ type: "ValueError", message: "bad", traceback: "Traceback..." });
    expect(run.attempts.find((a) => a.node === "b")).toMatchObject({ end: 3, outcome: "cancelled" });
    expect(run.error).toEqual({ message: "a failed" });
  });

  it("replays a run up to any event", () => {
    seq = 0;
    const events = [ev("run.started", null, 1), ev("node.started", "a", 1, {}, 1), ev("node.succeeded", "a", 2, {}, 1), ev("run.succeeded", null, 3)];
    expect(replay(["a"], events, 0).nodes.a.status).toBe("pending");
    expect(replay(["a"], events, 2).nodes.a.status).toBe("running");
    expect(replay(["a"], events, 2).status).toBe("started");
    expect(replay(["a"], events, 4).nodes.a.status).toBe("succeeded");
  });

  it("shows a node merged into its twin with the twin's state, and where the twin ran", () => {
    // The compiler ran `twin` once as `a` (run.started lists it); only `a` has events.
    seq = 0;
    const events = [
      ev("run.started", null, 1, { merged: { twin: "a" } }),
      ev("node.started", "a", 1.1, {}, 1),
      ev("node.succeeded", "a", 1.5, { host: "10.0.0.7", ray_node: "f00d" }, 1),
      ev("run.succeeded", null, 2),
    ];
    const start = initialRun(null, ["a", "twin", "b"]);
    const seen: string[] = [];
    let run = start;
    for (const e of events) {
      run = applyEvent(run, e);
      seen.push(run.nodes.twin.status);
    }
    expect(seen).toEqual(["pending", "running", "succeeded", "succeeded"]);
    expect(run.merged).toEqual({ twin: "a" });
    expect(run.nodes.twin).toBe(run.nodes.a);
    expect([run.nodes.a.host, run.nodes.a.rayNode]).toEqual(["10.0.0.7", "f00d"]);
    expect(run.nodes.b.status).toBe("pending");
    // Only the node that ran is on the timeline; a replay shows the twin's state at any event.
    expect(run.attempts.map((a) => a.node)).toEqual(["a"]);
    expect(replay(["a", "twin", "b"], events, 2).nodes.twin.status).toBe("running");
  });
});

