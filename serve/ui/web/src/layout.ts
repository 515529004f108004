// The adaptor between our graph and elkjs's layered layout: sizes and port positions in, node positions out.
// The box geometry here is the one GraphNodeView draws, so elk's port positions match the drawn handles.

import type { Graph, GraphNode } from "./graph";

export const NODE_WIDTH = 230;
export const HEADER_HEIGHT = 38;
export const ROW_HEIGHT = 22;
export const PADDING_BOTTOM = 8;

export interface Position {
  x: number;
  y: number;
}

/** The drawn height of a node: a header, then one row per input and per output (inputs first). */
export function nodeHeight(node: GraphNode): number {
  return HEADER_HEIGHT + (node.inputs.length + node.outputs.length) * ROW_HEIGHT + PADDING_BOTTOM;
}

/** The vertical centre of a port's row within its node (inputs first, then outputs). */
export function portY(node: GraphNode, side: "in" | "out", name: string): number {
  const index = side === "in" ? node.inputs.findIndex((p) => p.name === name) : node.inputs.length + node.outputs.findIndex((p) => p.name === name);
  return HEADER_HEIGHT + Math.max(index, 0) * ROW_HEIGHT + ROW_HEIGHT / 2;
}

export function portId(node: string, side: "in" | "out", port: string): string {
  return `${node}\u0000${side}\u0000${port}`;
}

export interface ElkNode {
  id: string;
  width?: number;
  height?: number;
  x?: number;
  y?: number;
  ports?: { id: string; x: number; y: number; width: number; height: number; layoutOptions?: Record<string, string> }[];
  layoutOptions?: Record<string, string>;
  children?: ElkNode[];
  edges?: { id: string; sources: string[]; targets: string[] }[];
}

/** Above this many nodes the layout trades polish for time (measured with bench/ui_bench.py: at 1,000 nodes
 * the polished options cost elkjs about 6 times the CPU of the quick ones). */
export const BIG_GRAPH = 150;

const POLISHED = { "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX", "elk.edgeRouting": "SPLINES" };
/** For big graphs: one crossing-minimisation sweep without greedy switching, SIMPLE node placement (the default,
 * Brandes-Koepf, drew a 1,000-node layered graph as a staircase 30,000 px tall; SIMPLE keeps each layer in a
 * column about 3,200 px tall) and straight wires (orthogonal routing of 2,000 wires widens the gaps between
 * layers and costs time). Measured in Node.js on the bench's 1,000-node graph: about half the time. */
const QUICK = {
  "elk.layered.thoroughness": "1",
  "elk.layered.crossingMinimization.greedySwitch.type": "OFF",
  "elk.layered.nodePlacement.strategy": "SIMPLE",
  "elk.edgeRouting": "POLYLINE",
};

/** The elk graph of `graph`: layered, left to right, ports at fixed positions on the west and east sides. */
export function toElk(graph: Graph): ElkNode {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  return {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.layered.spacing.nodeNodeBetweenLayers": "70",
      "elk.spacing.nodeNode": "36",
      ...(graph.nodes.length > BIG_GRAPH ? QUICK : POLISHED),
    },
    children: graph.nodes.map((n) => ({
      id: n.id,
      width: NODE_WIDTH,
      height: nodeHeight(n),
      layoutOptions: { "elk.portConstraints": "FIXED_POS" },
      ports: [
        ...n.inputs.map((p) => ({
          id: portId(n.id, "in", p.name),
          x: -4,
          y: portY(n, "in", p.name) - 4,
          width: 8,
          height: 8,
          layoutOptions: { "elk.port.side": "WEST" },
        })),
        ...n.outputs.map((p) => ({
          id: portId(n.id, "out", p.name),
          x: NODE_WIDTH - 4,
          y: portY(n, "out", p.name) - 4,
          width: 8,
          height: 8,
          layoutOptions: { "elk.port.side": "EAST" },
        })),
      ],
    })),
    edges: graph.edges
      .filter((e) => byId.has(e.source) && byId.has(e.target))
      .map((e) => ({ id: e.id, sources: [portId(e.source, "out", e.sourcePort)], targets: [portId(e.target, "in", e.targetPort)] })),
  };
}

/** Node positions from elk's answer (top-left corners). */
export function positionsFromElk(result: ElkNode): Map<string, Position> {
  const positions = new Map<string, Position>();
  for (const child of result.children ?? []) positions.set(child.id, { x: child.x ?? 0, y: child.y ?? 0 });
  return positions;
}

/** Something with elkjs's `layout` method (the real ELK, or a stand-in). */
export interface Layouter {
  layout(graph: ElkNode): Promise<ElkNode>;
}

let shared: Promise<Layouter> | null = null;
let fetched: Promise<unknown> | null = null;

/** The URL of elkjs's worker script, its own file of the build: built by vite as a worker (`?worker&url`),
 * so vite minifies elkjs's already minified script again, names of its top level included, and empties ELK's
 * option descriptions (src/elkDescriptions.ts; 415 KB gzip instead of the 464 KB of the file as elkjs ships
 * it; bench/ui_bench.py). */
const workerUrl = (): Promise<string> => import("elkjs/lib/elk-worker.min.js?worker&url").then((m) => m.default);

/** One ELK per page, running in a Web Worker (a big layout never blocks the page), loaded when first needed:
 * elkjs is the biggest part of the bundle, so the page's first load never includes it. */
export function elk(): Promise<Layouter> {
  if (!shared) {
    shared = Promise.all([import("elkjs/lib/elk-api.js"), workerUrl(), fetched]).then(
      ([api, url]) => new api.default({ workerUrl: url }) as unknown as Layouter,
    );
  }
  return shared;
}

/** Start downloading elkjs's worker script into the HTTP cache (it is immutable), at low priority and without
 * compiling it: a page calls this as it opens, so the download overlaps its API requests, while compiling
 * the 1.6 MB script (`elk()`, when the first layout is asked for) waits until the graph is drawn once. */
export function prefetchElk(): void {
  if (fetched || shared) return;
  fetched = workerUrl()
    .then((url) => fetch(url, { priority: "low", credentials: "same-origin" } as RequestInit))
    .then((r) => r.arrayBuffer())
    .catch(() => undefined);
}

/** Lay out `graph`: positions of its nodes by id. */
export async function layoutGraph(graph: Graph, layouter?: Layouter): Promise<Map<string, Position>> {
  const started = performance.now();
  const engine = layouter ?? (await elk());
  const positions = positionsFromElk(await engine.layout(toElk(graph)));
  // For bench/ui_bench.py: how long the page waited for elkjs (loading it included).
  performance.measure?.("rw-layout", { start: started, detail: { nodes: graph.nodes.length } });
  return positions;
}
