// Live decorations of a graph's nodes (a run's node states) kept outside React Flow's node array: a change
// notifies only the boxes of the nodes it concerns, so a run event re-renders those boxes and nothing else.

import { createContext, useCallback, useContext, useSyncExternalStore } from "react";

/** What a box shows live: its state and, while it runs, its progress (0..1); a group or a map node, how many
 * of its members or elements are in each state (a new object whenever a count changed). */
export interface LiveDecoration {
  status?: string;
  progress?: number | null;
  counts?: Readonly<Record<string, number>>;
}

/** Node id -> live decoration, with a subscription per node. */
export class NodeStates {
  private values = new Map<string, LiveDecoration>();
  private listeners = new Map<string, Set<() => void>>();

  /** The decoration of node `id` (undefined: none). */
  get(id: string): LiveDecoration | undefined {
    return this.values.get(id);
  }

  /** Set decorations; listeners are called only for nodes whose status, progress or counts changed. Returns those ids. */
  update(entries: Iterable<[string, LiveDecoration]>): string[] {
    const changed: string[] = [];
    for (const [id, deco] of entries) {
      const old = this.values.get(id);
      if (old && old.status === deco.status && old.progress === deco.progress && old.counts === deco.counts) continue;
      this.values.set(id, deco);
      changed.push(id);
    }
    for (const id of changed) this.listeners.get(id)?.forEach((l) => l());
    return changed;
  }

  /** Call `listener` when node `id`'s decoration changes; returns the unsubscribe function. */
  subscribe(id: string, listener: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(id);
    };
  }
}

export const NodeStatesContext = createContext<NodeStates | null>(null);

const nothing = () => () => undefined;

/** Node `id`'s live decoration from the nearest NodeStates (undefined without one). */
export function useNodeState(id: string): LiveDecoration | undefined {
  const states = useContext(NodeStatesContext);
  const subscribe = useCallback((listener: () => void) => (states ? states.subscribe(id, listener) : nothing()), [states, id]);
  return useSyncExternalStore(subscribe, () => states?.get(id));
}
