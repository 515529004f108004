// The node catalog (GET /v1/nodes), loaded once per page and looked up by node type id.

import { get, post } from "./api";
import type { NodeSpec, TypeCheck, WorkflowDocument } from "./model";

let loading: Promise<Map<string, NodeSpec>> | null = null;

export function loadCatalog(): Promise<Map<string, NodeSpec>> {
  if (!loading) {
    loading = get<{ nodes: NodeSpec[] }>("/v1/nodes").then((r) => new Map(r.nodes.map((n) => [n.id, n])));
    loading.catch(() => (loading = null));
  }
  return loading;
}

const checks = new Map<string, Promise<TypeCheck>>();

/** Whether a `source` value may flow into a `target` port (POST /v1/types/check), remembered per pair. */
export function checkTypes(source: string, target: string): Promise<TypeCheck> {
  const key = `${source}\u0000${target}`;
  let answer = checks.get(key);
  if (!answer) {
    answer = post<TypeCheck>("/v1/types/check", { source, target });
    answer.catch(() => checks.delete(key));
    checks.set(key, answer);
  }
  return answer;
}

/** Catalog search: by name, id, category or tag, and by the type a port accepts or produces. */
export function searchCatalog(specs: Iterable<NodeSpec>, query: string): NodeSpec[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const found: NodeSpec[] = [];
  for (const spec of specs) {
    const haystack = [
      spec.id,
      spec.category,
      ...(spec.tags ?? []),
      ...spec.inputs.map((p) => `accepts:${p.type}`),
      ...spec.outputs.map((p) => `produces:${p.type}`),
    ]
      .join(" ")
      .toLowerCase();
    if (words.every((w) => haystack.includes(w))) found.push(spec);
  }
  return found.sort((a, b) => a.id.localeCompare(b.id));
}

/** One node type `POST /v1/suggestions` proposes to add next, and its port to wire. */
export interface Suggested {
  type: string;
  port: string | null;
  score: number;
}

/** The node types to add after output `port` of `node` in `workflow` (the document being edited, not stored),
 *  best first: type fit, what follows that port in the workflows the user may see. [] when the server cannot say. */
export function suggestNext(workflow: WorkflowDocument, node: string, port: string): Promise<Suggested[]> {
  return post<{ suggestions: Suggested[] }>("/v1/suggestions", { workflow, node, port, side: "output", limit: 20 }).then(
    (r) => r.suggestions,
    () => [],
  );
}

/** `found` with the suggested node types first, in the suggestions' order; the others keep their order. */
export function rankBySuggestions(found: NodeSpec[], suggested: Suggested[]): NodeSpec[] {
  const rank = new Map(suggested.map((s, i) => [s.type, i]));
  const first = found.filter((s) => rank.has(s.id)).sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
  return [...first, ...found.filter((s) => !rank.has(s.id))];
}
