// The workflow document seen as a graph: boxes with typed ports and wires between them, and back.
// Pure functions (tested in graph.test.ts); the editor's store (store.ts) applies them to its document.

import type { DocNode, NodeSpec, PortSpec, WorkflowDocument } from "./model";

/** The pseudo-nodes that show the workflow's inputs (as outputs) and its outputs (as inputs). */
export const INPUTS_ID = "$inputs";
export const OUTPUTS_ID = "$outputs";

export interface GraphPort {
  name: string;
  type: string;
  spec?: PortSpec;
  /** A constant bound to this input port (`{"value": ...}`), shown instead of a wire. */
  constant?: unknown;
}

export interface GraphNode {
  id: string;
  /** The node type (`plugin/name@major`), or "workflow inputs"/"workflow outputs" for the pseudo-nodes. */
  type: string;
  inputs: GraphPort[];
  outputs: GraphPort[];
  spec?: NodeSpec;
  /** The node type is not in the catalog (its ports come from the wires only). */
  unknown?: boolean;
}

export interface GraphEdge {
  id: string;
  source: string;
  sourcePort: string;
  target: string;
  targetPort: string;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** A reference (`node.port`, `node`, `$inputs.name`) as a source node and port. */
export function parseRef(ref: string, specs: Map<string, NodeSpec>, doc: WorkflowDocument): { node: string; port: string } {
  if (ref.startsWith("$inputs.")) return { node: INPUTS_ID, port: ref.slice("$inputs.".length) };
  const dot = ref.indexOf(".");
  if (dot >= 0) return { node: ref.slice(0, dot), port: ref.slice(dot + 1) };
  const spec = specs.get(doc.nodes[ref]?.type ?? "");
  return { node: ref, port: spec?.outputs[0]?.name ?? "" };
}

/** The reference text of a source node and port (the inverse of `parseRef`). */
export function formatRef(node: string, port: string): string {
  return node === INPUTS_ID ? `$inputs.${port}` : `${node}.${port}`;
}

export function edgeId(e: Omit<GraphEdge, "id">): string {
  return `${e.source}.${e.sourcePort}->${e.target}.${e.targetPort}`;
}

/** The graph of a workflow document, with port types from the node catalog (`specs` by node type id). */
export function toGraph(doc: WorkflowDocument, specs: Map<string, NodeSpec>): Graph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const inputs = Object.entries(doc.inputs ?? {});
  if (inputs.length > 0) {
    nodes.push({
      id: INPUTS_ID,
      type: "workflow inputs",
      inputs: [],
      outputs: inputs.map(([name, decl]) => ({ name, type: String(decl?.type ?? "Any") })),
    });
  }
  for (const [id, node] of Object.entries(doc.nodes ?? {})) {
    nodes.push(graphNode(id, node, specs.get(node.type)));
    for (const [port, ref] of Object.entries(node.in ?? {})) {
      if (typeof ref !== "string") continue;
      const source = parseRef(ref, specs, doc);
      const e = { source: source.node, sourcePort: source.port, target: id, targetPort: port };
      edges.push({ id: edgeId(e), ...e });
    }
  }
  const outputs = Object.entries(doc.outputs ?? {});
  if (outputs.length > 0) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const outPorts: GraphPort[] = [];
    for (const [name, ref] of outputs) {
      const source = parseRef(ref, specs, doc);
      const type = byId.get(source.node)?.outputs.find((p) => p.name === source.port)?.type ?? "Any";
      outPorts.push({ name, type });
      const e = { source: source.node, sourcePort: source.port, target: OUTPUTS_ID, targetPort: name };
      edges.push({ id: edgeId(e), ...e });
    }
    nodes.push({ id: OUTPUTS_ID, type: "workflow outputs", inputs: outPorts, outputs: [] });
  }
  addPortsOfUnknownNodes(nodes, edges);
  return { nodes, edges };
}

function graphNode(id: string, node: DocNode, spec: NodeSpec | undefined): GraphNode {
  const bound = node.in ?? {};
  if (!spec) return { id, type: node.type, inputs: [], outputs: [], unknown: true };
  const inputs = spec.inputs.map((p) => {
    const ref = bound[p.name];
    const port: GraphPort = { name: p.name, type: p.type, spec: p };
    if (ref !== undefined && typeof ref !== "string") port.constant = ref.value;
    return port;
  });
  return { id, type: node.type, spec, inputs, outputs: spec.outputs.map((p) => ({ name: p.name, type: p.type, spec: p })) };
}

/** Nodes of unknown types get the ports their wires name (typed Any), so every wire has two ends. */
function addPortsOfUnknownNodes(nodes: GraphNode[], edges: GraphEdge[]): void {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const e of edges) {
    const s = byId.get(e.source);
    if (s && !s.outputs.some((p) => p.name === e.sourcePort)) s.outputs.push({ name: e.sourcePort, type: "Any" });
    const t = byId.get(e.target);
    if (t && !t.inputs.some((p) => p.name === e.targetPort)) t.inputs.push({ name: e.targetPort, type: "Any" });
  }
}

/** A copy of `doc` with a new node of type `spec` named after it (`add`, `add_2`, ...). Returns the copy and the name. */
export function addNode(doc: WorkflowDocument, spec: NodeSpec): { doc: WorkflowDocument; id: string } {
  let id = spec.name.replace(/[^A-Za-z0-9_]/g, "_");
  for (let i = 2; id in doc.nodes; i++) id = `${spec.name.replace(/[^A-Za-z0-9_]/g, "_")}_${i}`;
  const node: DocNode = { type: spec.id, in: {} };
  const params: Record<string, unknown> = {};
  for (const p of spec.params) if (p.default !== undefined) params[p.name] = p.default;
  if (Object.keys(params).length > 0) node.params = params;
  return { doc: { ...doc, nodes: { ...doc.nodes, [id]: node } }, id };
}

/** A copy of `doc` with the wire `source.sourcePort -> target.targetPort` (replacing what that port had). */
export function connect(doc: WorkflowDocument, e: Omit<GraphEdge, "id">): WorkflowDocument {
  const ref = formatRef(e.source, e.sourcePort);
  if (e.target === OUTPUTS_ID) return { ...doc, outputs: { ...(doc.outputs ?? {}), [e.targetPort]: ref } };
  const node = doc.nodes[e.target];
  if (!node) return doc;
  return { ...doc, nodes: { ...doc.nodes, [e.target]: { ...node, in: { ...(node.in ?? {}), [e.targetPort]: ref } } } };
}

/** A copy of `doc` without the wire into `target.targetPort`. */
export function disconnect(doc: WorkflowDocument, target: string, targetPort: string): WorkflowDocument {
  if (target === OUTPUTS_ID) {
    const outputs = { ...(doc.outputs ?? {}) };
    delete outputs[targetPort];
    return { ...doc, outputs };
  }
  const node = doc.nodes[target];
  if (!node) return doc;
  const bound = { ...(node.in ?? {}) };
  delete bound[targetPort];
  return { ...doc, nodes: { ...doc.nodes, [target]: { ...node, in: bound } } };
}

/** A copy of `doc` without node `id` and every wire from it. */
export function removeNode(doc: WorkflowDocument, id: string): WorkflowDocument {
  const nodes: Record<string, DocNode> = {};
  const from = (ref: unknown) => typeof ref === "string" && (ref === id || ref.startsWith(id + "."));
  for (const [name, node] of Object.entries(doc.nodes)) {
    if (name === id) continue;
    const bound = Object.fromEntries(Object.entries(node.in ?? {}).filter(([, ref]) => !from(ref)));
    nodes[name] = { ...node, in: bound };
  }
  const outputs = Object.fromEntries(Object.entries(doc.outputs ?? {}).filter(([, ref]) => !from(ref)));
  return { ...doc, nodes, outputs };
}

/** A copy of `doc` with node `id`'s params replaced. */
export function setParams(doc: WorkflowDocument, id: string, params: Record<string, unknown>): WorkflowDocument {
  const node = doc.nodes[id];
  if (!node) return doc;
  const next: DocNode = { ...node, params };
  if (Object.keys(params).length === 0) delete next.params;
  return { ...doc, nodes: { ...doc.nodes, [id]: next } };
}

export type Change = "added" | "removed" | "changed" | "same";

export interface GraphDiff {
  nodes: Map<string, Change>;
  edges: Map<string, Change>;
}

/** What changed from graph `a` to graph `b`: nodes by name (changed = other type, params or constants), wires by id. */
export function diffDocuments(a: WorkflowDocument, b: WorkflowDocument, ga: Graph, gb: Graph): GraphDiff {
  const nodes = new Map<string, Change>();
  const names = new Set([...Object.keys(a.nodes), ...Object.keys(b.nodes)]);
  for (const name of names) {
    const x = a.nodes[name];
    const y = b.nodes[name];
    if (!x) nodes.set(name, "added");
    else if (!y) nodes.set(name, "removed");
    else nodes.set(name, stable(withoutWires(x)) === stable(withoutWires(y)) ? "same" : "changed");
  }
  for (const pseudo of [INPUTS_ID, OUTPUTS_ID]) {
    const key = pseudo === INPUTS_ID ? "inputs" : "outputs";
    const x = a[key];
    const y = b[key];
    if (x === undefined && y === undefined) continue;
    nodes.set(pseudo, x === undefined ? "added" : y === undefined ? "removed" : stable(x) === stable(y) ? "same" : "changed");
  }
  const edges = new Map<string, Change>();
  const ea = new Set(ga.edges.map((e) => e.id));
  const eb = new Set(gb.edges.map((e) => e.id));
  for (const id of new Set([...ea, ...eb])) edges.set(id, !ea.has(id) ? "added" : !eb.has(id) ? "removed" : "same");
  return { nodes, edges };
}

function withoutWires(node: DocNode): DocNode {
  const bound = Object.fromEntries(Object.entries(node.in ?? {}).filter(([, ref]) => typeof ref !== "string"));
  return { ...node, in: bound };
}

/** JSON with sorted keys: documents compare as data, whatever their key order. */
export function stable(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1))) : v,
  );
}

/** The union of two graphs (for drawing a diff: removed nodes and wires stay visible). */
export function unionGraph(ga: Graph, gb: Graph): Graph {
  const nodes = new Map<string, GraphNode>();
  for (const n of [...ga.nodes, ...gb.nodes]) {
    const seen = nodes.get(n.id);
    if (!seen) nodes.set(n.id, { ...n, inputs: [...n.inputs], outputs: [...n.outputs] });
    else {
      for (const p of n.inputs) if (!seen.inputs.some((q) => q.name === p.name)) seen.inputs.push(p);
      for (const p of n.outputs) if (!seen.outputs.some((q) => q.name === p.name)) seen.outputs.push(p);
    }
  }
  const edges = new Map<string, GraphEdge>();
  for (const e of [...ga.edges, ...gb.edges]) edges.set(e.id, e);
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}
