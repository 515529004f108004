// Big graphs drawn with collapsed groups, and the counts per state a group shows (pure; tested in groups.test.ts).
//
// A 1,000-node workflow is mostly fan-outs: many nodes of one type reading the same upstream nodes (a layer of a
// layered graph, the branches of a fan-out). Drawn one box each, elkjs takes seconds to lay them out and the
// view shows an unreadable carpet. Above GROUP_ABOVE nodes such a set of siblings is drawn as one group box
// (`n25…n49`, type `25 × builtin/add@1`) with the counts of its members' states; selecting it expands it.
// A map node (`builtin/map@1`) is a group by nature: its element runs (`squares[3].sq`) are counted on its box.

import { INPUTS_ID, OUTPUTS_ID, edgeId, type Graph, type GraphEdge, type GraphNode } from "./graph";

/** Graphs with more nodes than this are drawn with groups (the layout's BIG_GRAPH threshold too). */
export const GROUP_ABOVE = 150;
/** Fewer siblings than this are not worth a group. */
export const MIN_GROUP = 6;

/** A graph as drawn: some nodes folded into group nodes. */
export interface Grouping {
  /** What is drawn: nodes outside groups, members of expanded groups, and one node per collapsed group. */
  graph: Graph;
  /** Group id -> its members' ids (in natural order: n2 before n10), for collapsed and expanded groups alike. */
  members: Map<string, string[]>;
  /** Member id -> its group's id. */
  groupOf: Map<string, string>;
}

/** The nodes of `graph` in layers: a node's depth is the longest path to it from a node without inputs
 * (nodes on a cycle, which a valid workflow has not, get none). */
export function depths(graph: Graph): Map<string, number> {
  const incoming = new Map<string, number>(graph.nodes.map((n) => [n.id, 0]));
  const outgoing = new Map<string, string[]>();
  for (const e of graph.edges) {
    if (!incoming.has(e.source) || !incoming.has(e.target) || e.source === e.target) continue;
    incoming.set(e.target, (incoming.get(e.target) ?? 0) + 1);
    const out = outgoing.get(e.source);
    if (out) out.push(e.target);
    else outgoing.set(e.source, [e.target]);
  }
  const depth = new Map<string, number>();
  const ready = graph.nodes.filter((n) => incoming.get(n.id) === 0).map((n) => n.id);
  for (const id of ready) depth.set(id, 0);
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i];
    const d = depth.get(id) ?? 0;
    for (const next of outgoing.get(id) ?? []) {
      depth.set(next, Math.max(depth.get(next) ?? 0, d + 1));
      const left = (incoming.get(next) ?? 0) - 1;
      incoming.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  for (const id of [...depth.keys()]) if ((incoming.get(id) ?? 0) > 0) depth.delete(id);
  return depth;
}

/** Orders names with numbers as people do: n2 before n10. */
const naturally = new Intl.Collator("en", { numeric: true });

/** The group node drawn for `members` (nodes of one type): the first member's ports, without constants. */
function groupNode(id: string, members: GraphNode[]): GraphNode {
  const first = members[0];
  const strip = ({ constant: _constant, ...port }: GraphNode["inputs"][number]) => port;
  return { id, type: `${members.length} × ${first.type}`, spec: first.spec, inputs: first.inputs.map(strip), outputs: first.outputs.map(strip) };
}

/** `graph` with its fan-outs folded into groups when it has more than `above` nodes: siblings of one type, at
 * one depth, reading from the same nodes (or groups), at least `min` of them. Groups in `expanded` are drawn
 * member by member. Grouping ignores what is expanded, so expanding one group leaves the others as they were. */
export function groupGraph(graph: Graph, expanded: ReadonlySet<string> = new Set(), above = GROUP_ABOVE, min = MIN_GROUP): Grouping {
  const members = new Map<string, string[]>();
  const groupOf = new Map<string, string>();
  if (graph.nodes.length <= above) return { graph, members, groupOf };
  const depth = depths(graph);
  const sources = new Map<string, string[]>();
  for (const e of graph.edges) {
    const list = sources.get(e.target);
    if (list) list.push(e.source);
    else sources.set(e.target, [e.source]);
  }
  const layers = new Map<number, GraphNode[]>();
  for (const n of graph.nodes) {
    const d = depth.get(n.id);
    if (d === undefined || n.id === INPUTS_ID || n.id === OUTPUTS_ID || n.unknown) continue;
    const layer = layers.get(d);
    if (layer) layer.push(n);
    else layers.set(d, [n]);
  }
  // Layer by layer, so the sources of a node are already known as groups or as themselves.
  const rep = (id: string) => groupOf.get(id) ?? id;
  for (const d of [...layers.keys()].sort((a, b) => a - b)) {
    const classes = new Map<string, GraphNode[]>();
    for (const n of layers.get(d) ?? []) {
      const key = `${n.type}\u0000${[...new Set((sources.get(n.id) ?? []).map(rep))].sort().join("\u0000")}`;
      const same = classes.get(key);
      if (same) same.push(n);
      else classes.set(key, [n]);
    }
    for (const same of classes.values()) {
      if (same.length < min) continue;
      same.sort((a, b) => naturally.compare(a.id, b.id)); // f2, f5, ..., f998 (not f101 first)
      const id = `${same[0].id}…${same[same.length - 1].id}`;
      members.set(
        id,
        same.map((n) => n.id),
      );
      for (const n of same) groupOf.set(n.id, id);
    }
  }
  if (members.size === 0) return { graph, members, groupOf };
  const shown = (id: string) => {
    const group = groupOf.get(id);
    return group && !expanded.has(group) ? group : id;
  };
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const nodes: GraphNode[] = [];
  const drawn = new Set<string>();
  for (const n of graph.nodes) {
    const id = shown(n.id);
    if (drawn.has(id)) continue;
    drawn.add(id);
    nodes.push(id === n.id ? n : groupNode(id, (members.get(id) ?? []).map((m) => byId.get(m) as GraphNode)));
  }
  const edges = new Map<string, GraphEdge>();
  for (const e of graph.edges) {
    const wire = { source: shown(e.source), sourcePort: e.sourcePort, target: shown(e.target), targetPort: e.targetPort };
    if (wire.source === e.source && wire.target === e.target) edges.set(e.id, e);
    else edges.set(edgeId(wire), { id: edgeId(wire), ...wire });
  }
  return { graph: { nodes, edges: [...edges.values()] }, members, groupOf };
}

/** How many of a group's members are in each state. */
export type Counts = Readonly<Record<string, number>>;

/** The states a node stays in: its run ended, or it is not part of a debugging run at all. */
const FINAL = ["succeeded", "cached", "skipped", "failed", "cancelled", "outside"];

/** The one state a group shows for `counts` of its `total` members: running while any member runs or some
 * have ended and others not; when all ended, failed or cancelled if any was, else what they all share. */
export function groupStatus(counts: Counts, total: number): string {
  const n = (s: string) => counts[s] ?? 0;
  if (n("running") + n("retrying") > 0) return "running";
  const ended = FINAL.reduce((sum, s) => sum + n(s), 0);
  if (n("failed") > 0) return "failed";
  if (ended === 0) return "pending";
  if (ended < total) return "running";
  if (n("cancelled") > 0) return "cancelled";
  for (const s of ["cached", "skipped", "outside"]) if (n(s) === total) return s;
  return "succeeded";
}

/** Members' states counted per group, kept up to date one member at a time: a change costs O(1), and a group's
 * counts are a new object only when they changed (so a view can compare them by identity). */
export class Tally {
  private readonly state = new Map<string, string>();
  private readonly counts = new Map<string, Counts>();

  /** Member `member` of `group` is now in state `status`; true when the group's counts changed. */
  set(member: string, group: string, status: string): boolean {
    const old = this.state.get(member);
    if (old === status) return false;
    this.state.set(member, status);
    const counts: Record<string, number> = { ...(this.counts.get(group) ?? {}) };
    if (old !== undefined && (counts[old] = (counts[old] ?? 0) - 1) <= 0) delete counts[old];
    counts[status] = (counts[status] ?? 0) + 1;
    this.counts.set(group, counts);
    return true;
  }

  /** `group`'s counts (undefined before its first member was set). */
  get(group: string): Counts | undefined {
    return this.counts.get(group);
  }

  /** The state member `member` was last set to. */
  status(member: string): string | undefined {
    return this.state.get(member);
  }
}

/** A node of a map element's run (`squares[3].sq`, `outer[0].inner[2].x`): its top-level map node, the
 * element (`squares[3]`) and the rest of its id; null for a top-level node. */
export function mapElementOf(node: string): { map: string; element: string; index: number; inner: string } | null {
  const match = /^([^[\].]+)\[(\d+)\]\.(.+)$/.exec(node);
  if (!match) return null;
  return { map: match[1], element: `${match[1]}[${match[2]}]`, index: Number(match[2]), inner: match[3] };
}

/** Element runs of map nodes counted per state: an element is failed (or cancelled) as soon as one of its
 * nodes is, running while some are, and done when `size(map)` of its nodes ended (the sub-workflow's size). */
export class MapTally {
  private readonly nodes = new Tally();
  private readonly elements = new Tally();
  private readonly indexes = new Map<string, Set<number>>();

  constructor(private readonly size: (map: string) => number = () => 1) {}

  /** Node `node` (an element run's) is now in state `status`: the map node whose counts changed, or null. */
  set(node: string, status: string): string | null {
    const where = mapElementOf(node);
    if (!where || !this.nodes.set(node, where.element, status)) return null;
    let seen = this.indexes.get(where.map);
    if (!seen) this.indexes.set(where.map, (seen = new Set()));
    seen.add(where.index);
    const counts = this.nodes.get(where.element) ?? {};
    return this.elements.set(where.element, where.map, elementStatus(counts, this.size(where.map))) ? where.map : null;
  }

  /** Counts of map `map`'s elements per state (undefined before its first element event). */
  get(map: string): Counts | undefined {
    return this.elements.get(map);
  }

  /** The elements of `map` seen so far, by index, with their state. */
  elementsOf(map: string): { index: number; element: string; status: string }[] {
    return [...(this.indexes.get(map) ?? [])]
      .sort((a, b) => a - b)
      .map((index) => ({ index, element: `${map}[${index}]`, status: this.elements.status(`${map}[${index}]`) ?? "pending" }));
  }
}

/** The state of one map element from the counts of its nodes' states and the number of nodes it runs. */
export function elementStatus(counts: Counts, size: number): string {
  const n = (s: string) => counts[s] ?? 0;
  if (n("failed") > 0) return "failed";
  if (n("cancelled") > 0) return "cancelled";
  const ended = n("succeeded") + n("cached") + n("skipped");
  if (ended >= size && n("running") + n("retrying") === 0) {
    for (const s of ["cached", "skipped"]) if (n(s) === ended) return s;
    return "succeeded";
  }
  return n("retrying") > 0 ? "retrying" : "running";
}

/** How many nodes each element of map node `node` runs (its `workflow` param's nodes; 1 if unknown). */
export function subWorkflowSize(params: Record<string, unknown> | undefined): number {
  const workflow = params?.workflow as { nodes?: Record<string, unknown> } | undefined;
  return Math.max(1, Object.keys(workflow?.nodes ?? {}).length);
}

/** What node `id` of a drawn graph has in `byNode` (diagnostics, say): a group has all its members' entries, so
 * an error inside a folded group still marks the group. */
export function ofMembers<T>(grouping: Grouping, byNode: ReadonlyMap<string, T[]>, id: string): T[] | undefined {
  const members = grouping.members.get(id);
  if (!members) return byNode.get(id);
  const all = members.flatMap((m) => byNode.get(m) ?? []);
  return all.length > 0 ? all : undefined;
}
