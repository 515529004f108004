import { describe, expect, it } from "vitest";
import ELK from "elkjs/lib/elk.bundled.js";
import { addNode, connect, diffDocuments, disconnect, INPUTS_ID, OUTPUTS_ID, removeNode, stable, toGraph } from "./graph";
import { BIG_GRAPH, layoutGraph, nodeHeight, portId, toElk, type Layouter } from "./layout";
import type { NodeSpec, WorkflowDocument } from "./model";
import { hasTypeVar, typeColour, typeHead, TYPEVAR_COLOUR } from "./typeColors";

const port = (name: string, type: string) => ({ name, type, type_json: { kind: "primitive" as const, name: type } });
const ADD: NodeSpec = {
  id: "builtin/add@1", plugin: "builtin", name: "add", version: "1.0.0", description: "a + b", category: "math",
  inputs: [port("a", "Number"), port("b", "Number")], outputs: [port("value", "Number")], params: [],
};
const UPPER: NodeSpec = {
  id: "builtin/upper@1", plugin: "builtin", name: "upper", version: "1.0.0", description: "", category: "text",
  inputs: [port("text", "String")], outputs: [port("out", "String")], params: [],
};
const specs = new Map([ADD, UPPER].map((s) => [s.id, s]));
const doc: WorkflowDocument = {
  format: "rayweave.workflow/1",
  name: "two-adds",
  inputs: { a: { type: "Int" }, b: { type: "Int" } },
  nodes: {
    first: { type: "builtin/add@1", in: { a: "$inputs.a", b: "$inputs.b" } },
    second: { type: "builtin/add@1", in: { a: "first", b: { value: 2 } } },
  },
  outputs: { total: "second.value" },
};

describe("type colours", () => {
  it("colours ports by the head of their type, unions by their non-null member", () => {
    expect(typeHead("List[Int]")).toBe("List");
    expect(typeHead("Int | Null")).toBe("Int");
    expect(typeHead("Null | Table[x: Float]")).toBe("Table");
    expect(typeHead("{a: Int, b?: String}")).toBe("Record");
    expect(typeColour("Int | Null")).toBe(typeColour("Int"));
    expect(typeColour("Int")).not.toBe(typeColour("String"));
    expect(typeColour("T", { kind: "typevar", name: "T" })).toBe(TYPEVAR_COLOUR);
    expect(typeColour("acme.Image")).toBe(typeColour("acme.Image")); // stable for plugin types
    expect(hasTypeVar({ kind: "list", item: { kind: "typevar", name: "T" } })).toBe(true);
    expect(hasTypeVar({ kind: "list", item: { kind: "primitive", name: "Int" } })).toBe(false);
  });
});

describe("graph of a document", () => {
  it("turns references into wires, constants into port values, and inputs/outputs into pseudo-nodes", () => {
    const g = toGraph(doc, specs);
    expect(g.nodes.map((n) => n.id)).toEqual([INPUTS_ID, "first", "second", OUTPUTS_ID]);
    const wires = g.edges.map((e) => `${e.source}.${e.sourcePort}>${e.target}.${e.targetPort}`).sort();
    expect(wires).toEqual(["$inputs.a>first.a", "$inputs.b>first.b", "first.value>second.a", "second.value>$outputs.total"]);
    expect(g.nodes[2].inputs.find((p) => p.name === "b")?.constant).toBe(2);
    expect(g.nodes[3].inputs[0].type).toBe("Number");
  });

  it("edits by copy: add, connect, disconnect, remove", () => {
    const added = addNode(doc, UPPER);
    expect(added.id).toBe("upper");
    expect(addNode(added.doc, UPPER).id).toBe("upper_2");
    const wired = connect(added.doc, { source: "first", sourcePort: "value", target: "upper", targetPort: "text" });
    expect(wired.nodes.upper.in).toEqual({ text: "first.value" });
    expect(doc.nodes.upper).toBeUndefined(); // the original is untouched
    expect(disconnect(wired, "upper", "text").nodes.upper.in).toEqual({});
    const removed = removeNode(wired, "first");
    expect(Object.keys(removed.nodes)).toEqual(["second", "upper"]);
    expect(removed.nodes.second.in).toEqual({ b: { value: 2 } });
    expect(connect(doc, { source: INPUTS_ID, sourcePort: "a", target: OUTPUTS_ID, targetPort: "raw" }).outputs?.raw).toBe("$inputs.a");
  });

  it("diffs two versions node by node and wire by wire", () => {
    const next = connect(addNode(doc, UPPER).doc, { source: INPUTS_ID, sourcePort: "a", target: "second", targetPort: "a" });
    next.nodes.second = { ...next.nodes.second, in: { ...next.nodes.second.in, b: { value: 3 } } };
    const d = diffDocuments(doc, next, toGraph(doc, specs), toGraph(next, specs));
    expect(d.nodes.get("upper")).toBe("added");
    expect(d.nodes.get("second")).toBe("changed");
    expect(d.nodes.get("first")).toBe("same");
    expect(d.edges.get("first.value->second.a")).toBe("removed");
    expect(d.edges.get("$inputs.a->second.a")).toBe("added");
    expect(stable({ b: 1, a: { d: 1, c: 2 } })).toBe(stable({ a: { c: 2, d: 1 }, b: 1 }));
  });
});

describe("layout adaptor", () => {
  it("gives elk fixed ports on the sides and reads back positions that respect the data flow", async () => {
    const g = toGraph(doc, specs);
    const elkGraph = toElk(g);
    const first = elkGraph.children?.find((c) => c.id === "first");
    expect(first?.height).toBe(nodeHeight(g.nodes[1]));
    expect(first?.ports?.map((p) => p.id)).toContain(portId("first", "out", "value"));
    expect(elkGraph.edges).toHaveLength(4);
    const positions = await layoutGraph(g, new ELK() as unknown as Layouter);
    const x = (id: string) => positions.get(id)?.x ?? NaN;
    expect(x(INPUTS_ID)).toBeLessThan(x("first"));
    expect(x("first")).toBeLessThan(x("second"));
    expect(x("second")).toBeLessThan(x(OUTPUTS_ID));
  });

  it("trades polish for time on big graphs", () => {
    const nodes = Object.fromEntries(Array.from({ length: BIG_GRAPH + 1 }, (_, i) => [`n${i}`, { type: "builtin/add@1", in: {} }]));
    const big = toElk(toGraph({ ...doc, nodes }, specs));
    expect(big.layoutOptions?.["elk.layered.thoroughness"]).toBe("1");
    expect(toElk(toGraph(doc, specs)).layoutOptions?.["elk.edgeRouting"]).toBe("SPLINES");
  });

  it("lays a big layered graph out in columns, not a staircase", async () => {
    // Layers of 10 adds, each wired to two nodes of the layer before (bench/ui_bench.py's shape, smaller).
    const width = 10;
    const count = BIG_GRAPH + 10;
    const nodes = Object.fromEntries(
      Array.from({ length: count }, (_, i) => {
        const [layer, column] = [Math.floor(i / width), i % width];
        const before = (layer - 1) * width;
        const wiring = layer === 0 ? { a: "$inputs.a", b: { value: column } } : { a: `n${before + column}.out`, b: `n${before + ((column + 1) % width)}.out` };
        return [`n${i}`, { type: "builtin/add@1", in: wiring }];
      }),
    );
    const g = toGraph({ ...doc, nodes, outputs: {} }, specs);
    const positions = await layoutGraph(g, new ELK() as unknown as Layouter);
    const column = (layer: number) => Array.from({ length: width }, (_, c) => positions.get(`n${layer * width + c}`)!);
    const tallest = Math.max(...g.nodes.map(nodeHeight));
    for (const layer of [1, 8, Math.floor(count / width) - 1]) {
      const ys = column(layer).map((p) => p.y);
      const xs = column(layer).map((p) => p.x);
      expect(new Set(xs).size).toBe(1); // one layer, one column
      expect(Math.max(...ys) - Math.min(...ys)).toBeLessThan(width * (tallest + 36) * 1.5); // not a staircase
      expect(Math.min(...ys)).toBeLessThan(width * (tallest + 36));
    }
  }, 60_000); // elkjs on 160 nodes: about a second alone, over 5 s (the default limit) on a loaded machine
});
