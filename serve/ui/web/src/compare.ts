// Two runs of one workflow side by side: each node's state and time in both (pure; tested in compare.test.ts).

import type { RunEvent } from "./model";
import { foldEvents, initialRun, type RunLive } from "./runState";

export interface CompareRow {
  node: string;
  a: { status: string; seconds: number | null };
  b: { status: string; seconds: number | null };
  /** b's time minus a's, when both ran. */
  delta: number | null;
}

/** Seconds `node`'s attempts took in `run` (all attempts; null if none ended). */
export function nodeSeconds(run: RunLive, node: string): number | null {
  const ended = run.attempts.filter((a) => a.node === node && a.end !== null);
  return ended.length ? ended.reduce((sum, a) => sum + ((a.end as number) - a.start), 0) : null;
}

/** Seconds each node's attempts took in `run` (all attempts; nodes without an ended one are left out). */
export function secondsByNode(run: RunLive): Map<string, number> {
  const seconds = new Map<string, number>();
  for (const a of run.attempts) if (a.end !== null) seconds.set(a.node, (seconds.get(a.node) ?? 0) + (a.end - a.start));
  return seconds;
}

/** One row per node of the workflow: its state and time in run `a` and in run `b`. */
export function compareRuns(nodes: string[], a: RunLive, b: RunLive): CompareRow[] {
  const [ta, tb] = [secondsByNode(a), secondsByNode(b)];
  return nodes.map((node) => {
    const [sa, sb] = [ta.get(node) ?? null, tb.get(node) ?? null];
    return {
      node,
      a: { status: a.nodes[node]?.status ?? "pending", seconds: sa },
      b: { status: b.nodes[node]?.status ?? "pending", seconds: sb },
      delta: sa !== null && sb !== null ? sb - sa : null,
    };
  });
}

/** The events of a Server-Sent Events body (`GET /v1/runs/{id}/events` of a finished run). */
export function parseEventStream(text: string): RunEvent[] {
  const events: RunEvent[] = [];
  for (const line of text.split("\n")) if (line.startsWith("data: ")) events.push(JSON.parse(line.slice(6)) as RunEvent);
  return events;
}

/** A finished run's state from its events. */
export function foldRun(nodes: string[], events: RunEvent[]): RunLive {
  return foldEvents(initialRun(null, nodes), events);
}
