import { describe, expect, it } from "vitest";
import { countsStatus, elementStates, innerCounts, innerNodeOf, subGraph } from "./mapLayout";

const workflow = {
  format: "rayweave.workflow/1",
  name: "square-plus-one",
  inputs: { item: { type: "Int" } },
  nodes: {
    sq: { type: "builtin/multiply@1", in: { a: "$inputs.item", b: "$inputs.item" } },
    half: { type: "builtin/divide@1", in: { a: "$inputs.item", b: { value: 2 } } },
    plus: { type: "builtin/add@1", in: { a: "sq", b: "half.out" } },
    both: { type: "t/pair@1", in: { xs: ["plus.out", "sq.out", { value: 1 }] } },
  },
  outputs: { out: "both.out" },
};

describe("a map node's sub-workflow drawn as a graph", () => {
  it("lays its nodes out in layers by their longest path and keeps its wires", () => {
    const g = subGraph(workflow);
    expect(g).not.toBeNull();
    const at = Object.fromEntries(g!.nodes.map((n) => [n.id, [n.depth, n.row]]));
    expect(at).toEqual({ sq: [0, 0], half: [0, 1], plus: [1, 0], both: [2, 0] });
    expect(g!.edges).toEqual([
      { from: "sq", to: "plus" },
      { from: "half", to: "plus" },
      { from: "plus", to: "both" },
      { from: "sq", to: "both" },
    ]);
    expect([g!.depth, g!.rows]).toEqual([3, 2]);
    expect(subGraph(undefined)).toBeNull();
    expect(subGraph({ nodes: {} })).toBeNull();
  });

  it("counts each sub-workflow node's state across elements, and gives one element's states", () => {
    const states = {
      each: { status: "running" },
      "each[0].sq": { status: "succeeded" },
      "each[1].sq": { status: "succeeded" },
      "each[2].sq": { status: "failed" },
      "each[0].plus": { status: "succeeded" },
      "each[1].plus": { status: "running" },
      "each[0].inner[0].x": { status: "succeeded" },
      "each[0].inner[1].x": { status: "succeeded" },
      "other[0].sq": { status: "failed" },
    };
    const counts = innerCounts("each", states);
    expect(counts.get("sq")).toEqual({ succeeded: 2, failed: 1 });
    expect(counts.get("plus")).toEqual({ succeeded: 1, running: 1 });
    expect(counts.get("inner")).toEqual({ succeeded: 1 });
    expect(elementStates("each", 1, states)).toEqual(new Map([["sq", "succeeded"], ["plus", "running"]]));
    expect(innerNodeOf("each", "each[12].sq")).toEqual({ index: 12, inner: "sq" });
    expect(innerNodeOf("each", "other[1].sq")).toBeNull();
    expect(innerNodeOf("each", "each")).toBeNull();
  });

  it("shows the worst state present on a box", () => {
    expect(countsStatus({ succeeded: 3, failed: 1 })).toBe("failed");
    expect(countsStatus({ succeeded: 3, running: 1 })).toBe("running");
    expect(countsStatus({ cached: 2 })).toBe("cached");
    expect(countsStatus({ cached: 2, succeeded: 1 })).toBe("succeeded");
    expect(countsStatus(undefined)).toBe("pending");
  });
});
