import { describe, expect, it } from "vitest";
import { INPUTS_ID, OUTPUTS_ID, toGraph } from "./graph";
import { GROUP_ABOVE, MapTally, Tally, groupGraph, groupStatus, mapElementOf, ofMembers } from "./groups";
import type { NodeSpec, RunEvent, WorkflowDocument } from "./model";
import { nodeHeight } from "./layout";
import { quickLayout } from "./quickLayout";
import { RunDecorations } from "./runDecorations";
import { foldEvents, initialRun } from "./runState";

const port = (name: string) => ({ name, type: "Number" });
const ADD: NodeSpec = { id: "builtin/add@1", plugin: "builtin", name: "add", version: "1", description: "", category: "math", inputs: [port("a"), port("b")], outputs: [port("out")], params: [] };
const NEG: NodeSpec = { ...ADD, id: "builtin/negate@1", name: "negate", inputs: [port("x")] };
const specs = new Map([ADD, NEG].map((s) => [s.id, s]));

/** bench/ui_bench.py's workflow: `count` adds in layers of `width`, each wired to two nodes of the layer before. */
function layered(count: number, width = 25): WorkflowDocument {
  const nodes: WorkflowDocument["nodes"] = {};
  for (let i = 0; i < count; i++) {
    const [layer, column] = [Math.floor(i / width), i % width];
    const before = (layer - 1) * width;
    nodes[`n${i}`] = { type: "builtin/add@1", in: layer === 0 ? { a: "$inputs.a", b: { value: column } } : { a: `n${before + column}.out`, b: `n${before + ((column + 1) % width)}.out` } };
  }
  return { format: "rayweave.workflow/1", name: "big", inputs: { a: { type: "Int" } }, nodes, outputs: { last: `n${count - 1}.out` } };
}

describe("big graphs drawn with folded groups", () => {
  it("folds each layer of a 1,000-node layered workflow into one group, wired once per port", () => {
    const graph = toGraph(layered(1000), specs);
    const { graph: drawn, members, groupOf } = groupGraph(graph);
    expect(members.size).toBe(40);
    expect(drawn.nodes.map((n) => n.id)).toEqual([INPUTS_ID, ...Array.from({ length: 40 }, (_, l) => `n${l * 25}…n${l * 25 + 24}`), OUTPUTS_ID]);
    const first = drawn.nodes[1];
    expect(first.type).toBe("25 × builtin/add@1");
    expect(first.inputs.map((p) => [p.name, p.constant])).toEqual([["a", undefined], ["b", undefined]]); // constants differ per member
    expect(groupOf.get("n30")).toBe("n25…n49");
    // Two wires between consecutive layers (a and b), one from the inputs, one to the outputs.
    expect(drawn.edges).toHaveLength(39 * 2 + 2);
    expect(drawn.edges.map((e) => e.id)).toContain("n975…n999.out->$outputs.last");
  });

  it("expands one group member by member and leaves the others folded", () => {
    const graph = toGraph(layered(1000), specs);
    const { graph: drawn } = groupGraph(graph, new Set(["n25…n49"]));
    const ids = drawn.nodes.map((n) => n.id);
    expect(ids).toContain("n30");
    expect(ids).toContain("n0…n24");
    expect(ids).toContain("n50…n74");
    expect(drawn.nodes).toHaveLength(2 + 39 + 25);
    expect(drawn.edges.map((e) => e.id)).toContain("n0…n24.out->n30.a");
    expect(drawn.edges.map((e) => e.id)).toContain("n30.out->n50…n74.b");
  });

  it("marks a folded group with its members' diagnostics", () => {
    const grouping = groupGraph(toGraph(layered(1000), specs));
    const byNode = new Map([["n30", ["RW201"]], ["n31", ["RW202"]], ["n0", ["RW203"]]]);
    expect(ofMembers(grouping, byNode, "n25…n49")).toEqual(["RW201", "RW202"]);
    expect(ofMembers(grouping, byNode, "n50…n74")).toBeUndefined();
    expect(ofMembers(grouping, byNode, "n0")).toEqual(["RW203"]); // a member drawn on its own (group expanded)
  });

  it("leaves small graphs, and siblings of other types or sources, as they are", () => {
    const small = toGraph(layered(GROUP_ABOVE - 2), specs);
    expect(groupGraph(small).graph).toBe(small);
    const doc = layered(400);
    doc.nodes.n5 = { type: "builtin/negate@1", in: { x: "$inputs.a" } };
    const { groupOf } = groupGraph(toGraph(doc, specs));
    expect(groupOf.has("n5")).toBe(false);
    expect(groupOf.get("n6")).toBe("n0…n24");
  });
});

describe("the quick layout of a first paint", () => {
  it("places columns by depth from left to right, boxes in a column apart", () => {
    const graph = groupGraph(toGraph(layered(1000), specs)).graph;
    const at = quickLayout(graph);
    const x = (id: string) => at.get(id)!.x;
    expect(x(INPUTS_ID)).toBeLessThan(x("n0…n24"));
    expect(x("n0…n24")).toBeLessThan(x("n25…n49"));
    expect(x("n975…n999")).toBeLessThan(x(OUTPUTS_ID));
    const small = toGraph(layered(60, 10), specs); // not folded: six columns of ten
    const quick = quickLayout(small);
    const column = small.nodes.filter((n) => /^n1\d$/.test(n.id)).map((n) => quick.get(n.id)!);
    expect(new Set(column.map((p) => p.x)).size).toBe(1);
    const ys = column.map((p) => p.y).sort((a, b) => a - b);
    for (let i = 1; i < ys.length; i++) expect(ys[i] - ys[i - 1]).toBeGreaterThanOrEqual(nodeHeight(small.nodes[1]));
  });
});

describe("counts per state", () => {
  it("counts members one change at a time, with new counts only when they changed", () => {
    const tally = new Tally();
    for (const m of ["a", "b", "c"]) tally.set(m, "g", "pending");
    const before = tally.get("g");
    expect(before).toEqual({ pending: 3 });
    expect(tally.set("a", "g", "running")).toBe(true);
    expect(tally.get("g")).toEqual({ pending: 2, running: 1 });
    expect(tally.set("a", "g", "running")).toBe(false);
    tally.set("a", "g", "succeeded");
    expect(tally.get("g")).toEqual({ pending: 2, succeeded: 1 });
    expect(before).toEqual({ pending: 3 }); // the old counts object is untouched
    expect(groupStatus({ pending: 2, succeeded: 1 }, 3)).toBe("running");
    expect(groupStatus({ succeeded: 2, cached: 1 }, 3)).toBe("succeeded");
    expect(groupStatus({ failed: 1, pending: 2 }, 3)).toBe("failed");
    expect(groupStatus({ pending: 3 }, 3)).toBe("pending");
  });

  it("counts a map node's elements by the state of their nodes", () => {
    expect(mapElementOf("squares[12].sq")).toEqual({ map: "squares", element: "squares[12]", index: 12, inner: "sq" });
    expect(mapElementOf("outer[0].inner[2].x")?.element).toBe("outer[0]");
    expect(mapElementOf("plain")).toBeNull();
    const maps = new MapTally(() => 2); // each element runs two nodes
    expect(maps.set("m[0].a", "running")).toBe("m");
    expect(maps.set("m[0].a", "succeeded")).toBe(null); // the element still runs (one of two nodes ended)
    maps.set("m[0].b", "succeeded");
    maps.set("m[1].a", "failed");
    expect(maps.get("m")).toEqual({ succeeded: 1, failed: 1 });
    expect(maps.elementsOf("m").map((e) => e.status)).toEqual(["succeeded", "failed"]);
  });
});

let seq = 0;
const ev = (type: string, node: string | null): RunEvent => ({ run_id: "r", seq: ++seq, type, node, attempt: 1, time: seq, payload: {} });

describe("a run's decorations", () => {
  it("after the first draw, touches only the nodes a batch changed and their group", () => {
    seq = 0;
    const doc = layered(200);
    doc.nodes.m = { type: "builtin/map@1", in: {}, params: { workflow: { nodes: { sq: {} } } } };
    const names = Object.keys(doc.nodes);
    const grouping = groupGraph(toGraph(doc, specs));
    const decorations = new RunDecorations(grouping, new Set(), () => 1);
    let run = initialRun(null, names);
    const first = new Map(decorations.update(run, null, names));
    expect(first.size).toBe(names.length + grouping.members.size);
    expect(first.get("n0…n24")).toEqual({ status: "pending", counts: { pending: 25 } });
    run = foldEvents(run, [ev("node.started", "n3"), ev("node.started", "m"), ev("node.started", "m[0].sq"), ev("node.succeeded", "m[0].sq")]);
    const next = new Map(decorations.update(run, ["n3", "m", "m[0].sq"], names));
    expect([...next.keys()].sort()).toEqual(["m", "n0…n24", "n3"]);
    expect(next.get("n0…n24")).toEqual({ status: "running", counts: { pending: 24, running: 1 } });
    expect(next.get("m")).toEqual({ status: "running", progress: null, counts: { succeeded: 1 } });
  });
});
