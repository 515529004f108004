// What each box of a run's graph shows live, updated for the nodes a batch of events changed only (tested in
// groups.test.ts): a node's state and progress, a group's counts per state, a map node's element counts.

import { MapTally, Tally, groupStatus, mapElementOf, type Grouping } from "./groups";
import type { LiveDecoration } from "./nodeStates";
import type { RunLive } from "./runState";

/** The live decorations of a run's drawn nodes, kept from one batch of events to the next. */
export class RunDecorations {
  private groups = new Tally();
  private maps: MapTally;

  /** `grouping`: how the graph is drawn; `outside`: nodes a debugging run never runs; `mapSize`: how many
   * nodes each element of a map node runs. */
  constructor(
    private readonly grouping: Grouping,
    private readonly outside: ReadonlySet<string> = new Set(),
    private readonly mapSize: (map: string) => number = () => 1,
  ) {
    this.maps = new MapTally(mapSize);
  }

  private status(run: RunLive, name: string): string {
    const status = run.nodes[name]?.status ?? "pending";
    return status === "pending" && this.outside.has(name) ? "outside" : status;
  }

  private own(run: RunLive, name: string): LiveDecoration {
    const live = run.nodes[name];
    return {
      status: this.status(run, name),
      progress: live?.status === "running" ? live.progress?.fraction ?? null : null,
      counts: this.maps.get(name),
    };
  }

  /** Decorations for the nodes named in `changed` (node ids of `run`, element runs included) and for the
   * groups and map nodes they belong to; for every node when `changed` is null (a first draw, a replay).
   * `nodes` are the workflow's own nodes. */
  update(run: RunLive, changed: Iterable<string> | null, nodes: readonly string[]): [string, LiveDecoration][] {
    if (changed === null) {
      this.groups = new Tally();
      this.maps = new MapTally(this.mapSize);
      changed = [...Object.keys(run.nodes).filter((name) => mapElementOf(name)), ...nodes];
    }
    const out = new Map<string, LiveDecoration>();
    for (const name of changed) {
      if (mapElementOf(name)) {
        const map = this.maps.set(name, run.nodes[name]?.status ?? "pending");
        if (map) out.set(map, this.own(run, map));
        continue;
      }
      out.set(name, this.own(run, name));
      const group = this.grouping.groupOf.get(name);
      if (group && this.groups.set(name, group, this.status(run, name))) {
        const counts = this.groups.get(group) ?? {};
        out.set(group, { status: groupStatus(counts, this.grouping.members.get(group)?.length ?? 0), counts });
      }
    }
    return [...out];
  }

  /** The elements of map node `map` seen so far, with their states. */
  elementsOf(map: string): { index: number; element: string; status: string }[] {
    return this.maps.elementsOf(map);
  }

  /** Counts per state of the members of group (or elements of map node) `id`. */
  countsOf(id: string): Readonly<Record<string, number>> | undefined {
    return this.groups.get(id) ?? this.maps.get(id);
  }
}
