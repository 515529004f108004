import { describe, expect, it } from "vitest";
import { ancestorsOf, cellText, outsideRun, pageLabel, pagePath, previousOffset, sizeLabel, upstreamOf, valueNote, valuePath } from "./debug";
import type { WorkflowDocument } from "./model";

const doc = {
  format: "rayweave.workflow/1",
  name: "d",
  inputs: { x: { type: "Int" } },
  nodes: {
    a: { type: "t/inc@1", in: { x: "$inputs.x" } },
    b: { type: "t/inc@1", in: { x: "a.out" } },
    c: { type: "t/inc@1", in: { x: "b" } },
    d: { type: "t/pair@1", in: { a: "a.out", b: ["c.out", { value: 1 }] } },
    lone: { type: "t/inc@1", in: { x: { value: 3 } } },
  },
  outputs: { d: "d.out" },
} as unknown as WorkflowDocument;

describe("the nodes a debugging run covers", () => {
  it("reads node references, not inputs or constants", () => {
    expect(upstreamOf("a.out")).toEqual(["a"]);
    expect(upstreamOf("b")).toEqual(["b"]);
    expect(upstreamOf("$inputs.x")).toEqual([]);
    expect(upstreamOf({ value: "a.out" })).toEqual([]);
    expect(upstreamOf(["c.out", { value: 1 }])).toEqual(["c"]);
  });

  it("runs to a node through all its ancestors", () => {
    expect([...ancestorsOf(doc, ["c"])].sort()).toEqual(["a", "b", "c"]);
    expect([...ancestorsOf(doc, ["d"])].sort()).toEqual(["a", "b", "c", "d"]);
    expect([...ancestorsOf(doc, ["nope"])]).toEqual([]);
  });

  it("greys out what a run to here or a re-run never runs", () => {
    expect([...outsideRun(doc, ["b"], false)].sort()).toEqual(["c", "d", "lone"]);
    expect([...outsideRun(doc, ["b"], true)].sort()).toEqual(["a", "c", "d", "lone"]);
    expect(outsideRun(doc, null, false).size).toBe(0);
  });
});

describe("table preview pages", () => {
  it("builds the page path and labels", () => {
    expect(pagePath("/v1/runs/r/nodes/t/outputs/out", 20, 20)).toBe("/v1/runs/r/nodes/t/outputs/out?offset=20&limit=20");
    expect(pagePath("/p", -5, 0)).toBe("/p?offset=0&limit=1");
    expect(pageLabel({ offset: 20, rows: [[1], [2]], total_rows: 22 })).toBe("rows 21–22 of 22");
    expect(pageLabel({ offset: 0, rows: [], total_rows: 0 })).toBe("no rows");
    expect(pageLabel({ offset: 50, rows: [], total_rows: 22 })).toBe("past the last row (22)");
  });

  it("steps back without going below the first row", () => {
    expect(previousOffset(0, 20)).toBeNull();
    expect(previousOffset(10, 20)).toBe(0);
    expect(previousOffset(40, 20)).toBe(20);
  });

  it("shows cells as short text", () => {
    expect(cellText(null)).toBe("");
    expect(cellText({ a: 1 })).toBe('{"a":1}');
    expect(cellText("x".repeat(200), 10)).toBe("xxxxxxxxx…");
  });
});

describe("a node's values in the inspector", () => {
  it("asks for a bounded value and says when it shows only the start", () => {
    expect(valuePath("/v1/runs/r/nodes/n/outputs/out/value", 4096.7)).toBe("/v1/runs/r/nodes/n/outputs/out/value?limit=4096");
    expect(sizeLabel(999)).toBe("999 B");
    expect(sizeLabel(1500)).toBe("1.5 KB");
    expect(sizeLabel(2_500_000)).toBe("2.5 MB");
    expect(valueNote({ kind: "int", bytes: 2, truncated: false, limit: 4096 })).toBe("int, 2 B as JSON");
    expect(valueNote({ kind: "list", bytes: 120_000, truncated: true, limit: 4096 })).toBe("list, 120.0 KB as JSON: the first 4.1 KB shown");
  });
});
