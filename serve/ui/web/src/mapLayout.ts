// A map node's sub-workflow drawn as a small graph in the run page's inspector: its nodes in layers (by their
// longest path from the sub-workflow's inputs), its wires, and each node's state, across all elements (counts
// per state) or for one element (`each[3]`). Pure (tested in mapLayout.test.ts); MapGraph.tsx draws it.

import { mapElementOf, type Counts } from "./groups";

export interface SubNode {
  id: string;
  type: string;
  depth: number;
  row: number;
}

export interface SubGraph {
  nodes: SubNode[];
  edges: { from: string; to: string }[];
  depth: number;
  rows: number;
}

interface SubDoc {
  nodes?: Record<string, { type?: string; in?: Record<string, unknown> }>;
}

/** The node ids a reference of a sub-workflow node's `in` reads from, among `known` (not inputs or constants). */
function readsFrom(ref: unknown, known: Set<string>): string[] {
  if (typeof ref === "string") {
    const node = ref.startsWith("$") ? "" : ref.split(".")[0];
    return known.has(node) ? [node] : [];
  }
  if (Array.isArray(ref)) return ref.flatMap((r) => readsFrom(r, known));
  return [];
}

/** The layered graph of a map node's `workflow` param (null when it has none). */
export function subGraph(workflow: unknown): SubGraph | null {
  const doc = workflow as SubDoc | null | undefined;
  const ids = Object.keys(doc?.nodes ?? {});
  if (!doc?.nodes || ids.length === 0) return null;
  const known = new Set(ids);
  const edges: { from: string; to: string }[] = [];
  const upstream = new Map<string, string[]>();
  for (const id of ids) {
    const from = [...new Set(Object.values(doc.nodes[id]?.in ?? {}).flatMap((r) => readsFrom(r, known)))];
    upstream.set(id, from);
    for (const f of from) edges.push({ from: f, to: id });
  }
  // Longest path from a node without upstream nodes; a cycle (the server refuses one) stops at the nodes seen.
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const d = Math.max(-1, ...(upstream.get(id) ?? []).map(depthOf)) + 1;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rowsAt = new Map<number, number>();
  const nodes = ids.map((id) => {
    const d = depthOf(id);
    const row = rowsAt.get(d) ?? 0;
    rowsAt.set(d, row + 1);
    return { id, type: doc.nodes?.[id]?.type ?? "", depth: d, row };
  });
  return { nodes, edges, depth: Math.max(...nodes.map((n) => n.depth)) + 1, rows: Math.max(...rowsAt.values()) };
}

/** The sub-workflow node an element run's node belongs to: `sq` for `each[3].sq`, and the nested map node
 * `inner` for `each[3].inner[2].x`; null for a node that is not an element run's of `map`. */
export function innerNodeOf(map: string, node: string): { index: number; inner: string } | null {
  const where = mapElementOf(node);
  if (!where || where.map !== map) return null;
  return { index: where.index, inner: where.inner.split(/[[.]/)[0] };
}

/** For each sub-workflow node, how many elements have it in each state (one count per element: a nested
 * map's nodes count once per element, in the state of the last of them seen). */
export function innerCounts(map: string, states: Readonly<Record<string, { status: string }>>): Map<string, Counts> {
  const byElement = new Map<string, string>(); // `${index}\u0000${inner}` -> state
  for (const [node, live] of Object.entries(states)) {
    const where = innerNodeOf(map, node);
    if (where) byElement.set(`${where.index}\u0000${where.inner}`, live.status);
  }
  const counts = new Map<string, Record<string, number>>();
  for (const [key, status] of byElement) {
    const inner = key.slice(key.indexOf("\u0000") + 1);
    const mine = counts.get(inner) ?? {};
    mine[status] = (mine[status] ?? 0) + 1;
    counts.set(inner, mine);
  }
  return counts;
}

/** The state of each sub-workflow node in element `index` of `map` (a node not run yet is absent). */
export function elementStates(map: string, index: number, states: Readonly<Record<string, { status: string }>>): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = `${map}[${index}].`;
  for (const [node, live] of Object.entries(states)) {
    if (!node.startsWith(prefix)) continue;
    const where = innerNodeOf(map, node);
    if (where) out.set(where.inner, live.status);
  }
  return out;
}

/** The state a box shows for counts across elements: the worst present (failed, cancelled, retrying, running),
 * else the common final one; "pending" before any element ran the node. */
export function countsStatus(counts: Counts | undefined): string {
  if (!counts) return "pending";
  for (const s of ["failed", "cancelled", "retrying", "running"]) if ((counts[s] ?? 0) > 0) return s;
  const present = Object.keys(counts).filter((s) => (counts[s] ?? 0) > 0);
  return present.length === 1 ? present[0] : present.includes("succeeded") ? "succeeded" : (present[0] ?? "pending");
}
