// Pure helpers of a run's debugging tools: which nodes a "run to here" or a re-run covers, and the pages of a
// table preview (GET /v1/runs/{id}/nodes/{node}/outputs/{port}).

import type { WorkflowDocument } from "./model";

/** The node ids a binding of a node's `in` reads from (`node.port`, `node`; not `$inputs.x`, not constants). */
export function upstreamOf(ref: unknown): string[] {
  if (typeof ref === "string") return ref.startsWith("$") ? [] : [ref.split(".")[0]];
  if (Array.isArray(ref)) return ref.flatMap(upstreamOf);
  return [];
}

/** `targets` and every node they (transitively) read from: the nodes a "run to here" runs. */
export function ancestorsOf(doc: WorkflowDocument, targets: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = targets.filter((t) => t in doc.nodes);
  while (todo.length > 0) {
    const id = todo.pop() as string;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const ref of Object.values(doc.nodes[id]?.in ?? {})) for (const up of upstreamOf(ref)) if (up in doc.nodes) todo.push(up);
  }
  return seen;
}

/** The nodes of a debugging run that it never runs: all but the targets and their ancestors, or for a re-run
 * all but the targets (their inputs come from the earlier run). Empty for a run of the whole workflow. */
export function outsideRun(doc: WorkflowDocument, targets: string[] | null | undefined, rerun: boolean): Set<string> {
  if (!targets || targets.length === 0) return new Set();
  const inside = rerun ? new Set(targets) : ancestorsOf(doc, targets);
  return new Set(Object.keys(doc.nodes).filter((id) => !inside.has(id)));
}

/** One page of a table output, as the API answers it. */
export interface TablePage {
  offset: number;
  limit: number;
  total_rows: number;
  columns: { name: string; type: string }[];
  rows: unknown[][];
  next_offset: number | null;
}

/** The path of a page of a table preview (`preview` is the port's path from GET /v1/runs/{id}/nodes/{node}). */
export function pagePath(preview: string, offset: number, limit: number): string {
  return `${preview}?offset=${Math.max(0, Math.floor(offset))}&limit=${Math.max(1, Math.floor(limit))}`;
}

/** "rows 21–40 of 95" (1-based, inclusive), "no rows" for an empty table. */
export function pageLabel(page: Pick<TablePage, "offset" | "rows" | "total_rows">): string {
  if (page.total_rows === 0) return "no rows";
  if (page.rows.length === 0) return `past the last row (${page.total_rows})`;
  return `rows ${page.offset + 1}–${page.offset + page.rows.length} of ${page.total_rows}`;
}

/** The offset of the previous page (null on the first). */
export function previousOffset(offset: number, limit: number): number | null {
  return offset <= 0 ? null : Math.max(0, offset - limit);
}

/** A cell as text: null as an empty cell, objects as JSON, long text shortened. */
export function cellText(value: unknown, max = 120): string {
  const text = value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

/** A value a node gave or received, as GET /v1/runs/{id}/nodes/{node}/(outputs|inputs)/{port}/value answers it. */
export interface NodeValue {
  port: string;
  direction: "output" | "input";
  kind: string;
  bytes: number;
  truncated: boolean;
  value: unknown;
  text: string;
  limit: number;
}

/** The path of a value with at most `limit` bytes of JSON (`path` is the port's `value` path). */
export function valuePath(path: string, limit: number): string {
  return `${path}?limit=${Math.max(1, Math.floor(limit))}`;
}

/** "1.2 KB", "3.4 MB": a size for people. */
export function sizeLabel(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** What a value view says under its text: its kind and size, and whether the text is only the start of it. */
export function valueNote(v: Pick<NodeValue, "kind" | "bytes" | "truncated" | "limit">): string {
  const whole = `${v.kind}, ${sizeLabel(v.bytes)} as JSON`;
  return v.truncated ? `${whole}: the first ${sizeLabel(v.limit)} shown` : whole;
}
