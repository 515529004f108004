// The editor's state in one place: the workflow document being edited, where its nodes sit, the selection.
// Views read it through `useEditor` and change it only through the store's methods, so another source of
// changes (a Yjs binding for co-editing, issue 23) can drive it the same way: call `replaceDocument` with the
// shared document, and `subscribe` to push local edits out.

import { useSyncExternalStore } from "react";
import * as G from "./graph";
import type { Position } from "./layout";
import type { NodeSpec, WorkflowDocument } from "./model";

export interface EditorState {
  doc: WorkflowDocument;
  /** The version the document was loaded from (sent as If-Match when saved). */
  baseVersion: number | null;
  positions: Record<string, Position>;
  selected: string | null;
  /** True once the document differs from `baseVersion`. */
  dirty: boolean;
}

export type Listener = (state: EditorState, origin: string) => void;

export class EditorStore {
  private state: EditorState;
  private readonly listeners = new Set<Listener>();

  constructor(doc: WorkflowDocument, baseVersion: number | null = null) {
    this.state = { doc, baseVersion, positions: {}, selected: null, dirty: false };
  }

  getState = (): EditorState => this.state;

  /** Listen to every change; `origin` says who made it ("local", or what `replaceDocument` was given). */
  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<EditorState>, origin = "local"): void {
    this.state = { ...this.state, ...patch };
    this.listeners.forEach((l) => l(this.state, origin));
  }

  private edit(doc: WorkflowDocument): void {
    this.set({ doc, dirty: true });
  }

  /** Replace the whole document (a loaded version, or the shared state of a co-editing session). */
  replaceDocument(doc: WorkflowDocument, options: { baseVersion?: number | null; origin?: string; dirty?: boolean } = {}): void {
    this.set(
      {
        doc,
        baseVersion: options.baseVersion === undefined ? this.state.baseVersion : options.baseVersion,
        dirty: options.dirty ?? false,
        selected: this.state.selected && (this.state.selected in doc.nodes || this.state.selected.startsWith("$")) ? this.state.selected : null,
      },
      options.origin ?? "load",
    );
  }

  addNode(spec: NodeSpec, at?: Position): string {
    const { doc, id } = G.addNode(this.state.doc, spec);
    const positions = at ? { ...this.state.positions, [id]: at } : this.state.positions;
    this.set({ doc, positions, selected: id, dirty: true });
    return id;
  }

  connect(edge: Omit<G.GraphEdge, "id">): void {
    this.edit(G.connect(this.state.doc, edge));
  }

  disconnect(target: string, targetPort: string): void {
    this.edit(G.disconnect(this.state.doc, target, targetPort));
  }

  removeNode(id: string): void {
    this.set({ doc: G.removeNode(this.state.doc, id), selected: null, dirty: true });
  }

  setParams(id: string, params: Record<string, unknown>): void {
    this.edit(G.setParams(this.state.doc, id, params));
  }

  setPositions(positions: Record<string, Position>): void {
    this.set({ positions: { ...this.state.positions, ...positions } }, "layout");
  }

  select(id: string | null): void {
    if (id !== this.state.selected) this.set({ selected: id }, "selection");
  }

  /** After a save: the document is now version `version`. */
  saved(version: number): void {
    this.set({ baseVersion: version, dirty: false }, "saved");
  }
}

/** Read a slice of the store's state in a component (re-rendered when that slice changes). */
export function useEditor<T>(store: EditorStore, select: (state: EditorState) => T): T {
  return useSyncExternalStore(store.subscribe, () => select(store.getState()));
}
