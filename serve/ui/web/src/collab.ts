// The editor's side of co-editing: the workflow document in a Yjs document shaped as the server's
// (serve/collab/document.py, ADR 019), and a binding that keeps an EditorStore and a Y.Doc in step.
// Root Y.Maps: meta {format, name, description, version}, inputs {name: Y.Map}, nodes {id: Y.Map {type,
// in: Y.Map, params: Y.Map, position: Y.Map, ...plain fields}}, outputs {name: reference}.
// The page's y-websocket provider on /v1/workflows/{id}/collab drives `bindEditor` (WorkflowPage's useLive);
// presence (pointers, selections) goes through the same provider's awareness (src/presence.ts, src/Presence.tsx).

import * as Y from "yjs";
import { stable } from "./graph";
import type { DocNode, WorkflowDocument } from "./model";
import type { EditorStore } from "./store";

/** Yjs's document, for the page to make one: the page imports yjs only through this module, so the build keeps
 * only the parts of yjs that this module and y-websocket use (a dynamic `import("yjs")` kept all of it: 4.5 KB
 * gzip more; bench/ui_bench.py). */
export { Doc } from "yjs";

export const META_FIELDS = ["format", "name", "description"] as const;
/** Node fields kept as Y.Maps of their own, merged key by key. */
const NODE_MAPS = new Set(["in", "params", "position"]);
/** Layout, kept in the shared document but never part of a workflow version. */
const LAYOUT = new Set(["position"]);

type Plain = Record<string, unknown>;

function roots(ydoc: Y.Doc) {
  return {
    meta: ydoc.getMap<unknown>("meta"),
    inputs: ydoc.getMap<Y.Map<unknown>>("inputs"),
    nodes: ydoc.getMap<Y.Map<unknown>>("nodes"),
    outputs: ydoc.getMap<unknown>("outputs"),
  };
}

function plainOf(value: unknown): unknown {
  return value instanceof Y.AbstractType ? value.toJSON() : value;
}

/** The workflow document a shared document holds (layout fields left out). */
export function readWorkflow(ydoc: Y.Doc): WorkflowDocument {
  const r = roots(ydoc);
  const doc: WorkflowDocument = { format: String(r.meta.get("format") ?? "rayweave.workflow/1"), name: String(r.meta.get("name") ?? ""), nodes: {} };
  if (r.meta.has("description")) doc.description = r.meta.get("description");
  if (r.inputs.size > 0) doc.inputs = Object.fromEntries([...r.inputs.entries()].map(([k, v]) => [k, plainOf(v) as { type: string }]));
  for (const [id, node] of r.nodes.entries()) {
    const out: Plain = {};
    for (const [field, value] of node.entries()) if (!LAYOUT.has(field)) out[field] = plainOf(value);
    if (out.params && Object.keys(out.params as Plain).length === 0) delete out.params;
    doc.nodes[id] = out as DocNode;
  }
  if (r.outputs.size > 0) doc.outputs = Object.fromEntries([...r.outputs.entries()].map(([k, v]) => [k, String(v)]));
  return doc;
}

function same(a: unknown, b: unknown): boolean {
  return stable(a) === stable(b);
}

/** Make `target` hold `next`'s keys, touching only the keys whose values differ from `old`'s. */
function applyPlainEntries(target: Y.Map<unknown>, old: Plain, next: Plain): void {
  for (const key of new Set([...Object.keys(old), ...Object.keys(next)])) {
    if (same(old[key], next[key]) && target.has(key) === (key in next)) continue;
    if (!(key in next)) target.delete(key);
    else target.set(key, next[key]);
  }
}

function nodeMap(node: DocNode): Y.Map<unknown> {
  const map = new Y.Map<unknown>();
  for (const [field, value] of Object.entries(node)) {
    if (NODE_MAPS.has(field)) {
      const inner = new Y.Map<unknown>();
      for (const [k, v] of Object.entries((value ?? {}) as Plain)) inner.set(k, v);
      map.set(field, inner);
    } else map.set(field, value);
  }
  return map;
}

/** Write what changed from `old` to `next` into the shared document, field by field, in one transaction
 * (so a concurrent edit of another field, or another param, or another port's wiring, survives). */
export function writeWorkflow(ydoc: Y.Doc, old: WorkflowDocument | null, next: WorkflowDocument, origin: unknown = null): void {
  const r = roots(ydoc);
  const before: Partial<WorkflowDocument> = old ?? {};
  ydoc.transact(() => {
    for (const field of META_FIELDS) {
      if (same(before[field], next[field]) && r.meta.has(field) === (next[field] !== undefined)) continue;
      if (next[field] === undefined) r.meta.delete(field);
      else r.meta.set(field, next[field]);
    }
    const oldInputs = (before.inputs ?? {}) as Record<string, Plain>;
    const newInputs = (next.inputs ?? {}) as Record<string, Plain>;
    for (const name of new Set([...Object.keys(oldInputs), ...Object.keys(newInputs)])) {
      if (!(name in newInputs)) r.inputs.delete(name);
      else if (!r.inputs.has(name)) r.inputs.set(name, toYMap(newInputs[name]));
      else if (!same(oldInputs[name], newInputs[name])) applyPlainEntries(r.inputs.get(name)!, oldInputs[name] ?? {}, newInputs[name]);
    }
    applyPlainEntries(r.outputs, (before.outputs ?? {}) as Plain, (next.outputs ?? {}) as Plain);
    const oldNodes = before.nodes ?? {};
    for (const id of new Set([...Object.keys(oldNodes), ...Object.keys(next.nodes)])) {
      const was = oldNodes[id];
      const now = next.nodes[id];
      if (!now) {
        r.nodes.delete(id);
        continue;
      }
      const current = r.nodes.get(id);
      if (!current || !was) {
        r.nodes.set(id, nodeMap(now));
        continue;
      }
      if (same(was, now)) continue;
      for (const field of new Set([...Object.keys(was), ...Object.keys(now)])) {
        if (LAYOUT.has(field) || same(was[field], now[field])) continue;
        const inner = current.get(field);
        if (NODE_MAPS.has(field) && inner instanceof Y.Map && now[field] !== undefined) {
          applyPlainEntries(inner, (was[field] ?? {}) as Plain, now[field] as Plain);
        } else if (now[field] === undefined) current.delete(field);
        else if (NODE_MAPS.has(field)) current.set(field, toYMap(now[field] as Plain));
        else current.set(field, now[field]);
      }
    }
  }, origin);
}

function toYMap(entries: Plain): Y.Map<unknown> {
  const map = new Y.Map<unknown>();
  for (const [k, v] of Object.entries(entries)) map.set(k, v);
  return map;
}

/** The whole shared document as plain data (every root map, layout included): what scripts and tests compare
 * across clients (the page offers it as `window.rayweaveCollab.document()` while co-editing). */
export function documentData(ydoc: Y.Doc): Record<string, unknown> {
  const r = roots(ydoc);
  return { meta: r.meta.toJSON(), inputs: r.inputs.toJSON(), nodes: r.nodes.toJSON(), outputs: r.outputs.toJSON() };
}

/** Keep `store` and `ydoc` in step: remote changes replace the store's document; local edits are written
 * into the shared document. An empty shared document is filled from the store. Returns the unbinding. */
export function bindEditor(store: EditorStore, ydoc: Y.Doc): () => void {
  const LOCAL = { editor: store };
  let last: WorkflowDocument;
  if (roots(ydoc).meta.size === 0 && roots(ydoc).nodes.size === 0) {
    last = store.getState().doc;
    writeWorkflow(ydoc, null, last, LOCAL);
  } else {
    last = readWorkflow(ydoc);
    store.replaceDocument(last, { origin: "collab" });
  }
  const onUpdate = (_update: Uint8Array, origin: unknown) => {
    if (origin === LOCAL) return;
    last = readWorkflow(ydoc);
    store.replaceDocument(last, { origin: "collab", dirty: true });
  };
  ydoc.on("update", onUpdate);
  const unsubscribe = store.subscribe((state, origin) => {
    if (origin === "collab" || state.doc === last) return;
    writeWorkflow(ydoc, last, state.doc, LOCAL);
    last = state.doc;
  });
  return () => {
    ydoc.off("update", onUpdate);
    unsubscribe();
  };
}
