import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { bindEditor, readWorkflow, writeWorkflow } from "./collab";
import { stable } from "./graph";
import type { NodeSpec, WorkflowDocument } from "./model";
import { EditorStore } from "./store";

const doc: WorkflowDocument = {
  format: "rayweave.workflow/1",
  name: "chain",
  inputs: { x: { type: "Int" } },
  nodes: {
    a: { type: "builtin/sleep@1", in: { value: "$inputs.x" }, params: { seconds: 1 } },
    b: { type: "builtin/add@1", in: { a: "a.out", b: { value: 2 } } },
  },
  outputs: { y: "b.out" },
};

/** Two replicas that exchange every update, as two clients of one room do. */
function pair(): [Y.Doc, Y.Doc] {
  const one = new Y.Doc();
  const two = new Y.Doc();
  one.on("update", (u: Uint8Array, origin: unknown) => origin !== "remote" && Y.applyUpdate(two, u, "remote"));
  two.on("update", (u: Uint8Array, origin: unknown) => origin !== "remote" && Y.applyUpdate(one, u, "remote"));
  return [one, two];
}

describe("the shared document", () => {
  it("holds a workflow in the server's shape and gives it back as data", () => {
    const ydoc = new Y.Doc();
    writeWorkflow(ydoc, null, doc);
    expect(stable(readWorkflow(ydoc))).toBe(stable(doc));
    const node = ydoc.getMap<Y.Map<unknown>>("nodes").get("a")!;
    expect(node.get("in")).toBeInstanceOf(Y.Map);
    expect(node.get("params")).toBeInstanceOf(Y.Map);
    expect(ydoc.getMap("meta").get("name")).toBe("chain");
  });

  it("merges concurrent edits of different params and ports instead of overwriting", () => {
    const [one, two] = pair();
    writeWorkflow(one, null, doc);
    // Both edit at once (no exchange in between): a param on one side, a wire on the other.
    const offline = new Y.Doc();
    Y.applyUpdate(offline, Y.encodeStateAsUpdate(two));
    const left = readWorkflow(one);
    writeWorkflow(one, left, { ...left, nodes: { ...left.nodes, a: { ...left.nodes.a, params: { seconds: 5 } } } });
    const right = readWorkflow(offline);
    writeWorkflow(offline, right, { ...right, nodes: { ...right.nodes, b: { ...right.nodes.b, in: { a: "a.out", b: "$inputs.x" } } } });
    Y.applyUpdate(two, Y.encodeStateAsUpdate(offline));
    const merged = readWorkflow(one);
    expect(stable(merged)).toBe(stable(readWorkflow(two)));
    expect(merged.nodes.a.params).toEqual({ seconds: 5 });
    expect(merged.nodes.b.in).toEqual({ a: "a.out", b: "$inputs.x" });
  });
});

describe("binding the editor's store", () => {
  it("sends local edits out and takes remote ones in", () => {
    const [one, two] = pair();
    const alice = new EditorStore(doc, 1);
    const bob = new EditorStore({ format: "rayweave.workflow/1", name: "", nodes: {} }, 1);
    bindEditor(alice, one); // an empty room is filled from the first editor
    bindEditor(bob, two);
    expect(stable(bob.getState().doc)).toBe(stable(doc));
    const upper: NodeSpec = {
      id: "builtin/change_case@1", plugin: "builtin", name: "change_case", version: "1", description: "", category: "text",
      inputs: [{ name: "text", type: "String" }], outputs: [{ name: "out", type: "String" }], params: [],
    };
    alice.addNode(upper);
    expect(bob.getState().doc.nodes.change_case).toEqual({ type: "builtin/change_case@1", in: {} });
    bob.connect({ source: "$inputs", sourcePort: "x", target: "change_case", targetPort: "text" });
    expect(alice.getState().doc.nodes.change_case.in).toEqual({ text: "$inputs.x" });
    expect(alice.getState().dirty).toBe(true);
    alice.removeNode("a");
    expect(Object.keys(bob.getState().doc.nodes).sort()).toEqual(["b", "change_case"]);
  });
});
