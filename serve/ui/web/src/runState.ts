// A run's live state folded from its events (WS /v1/runs/{id}/events): node states, attempts for the
// timeline, logs, progress and partial outputs for the inspector. Pure (tested in runState.test.ts).

import type { RunDetail, RunEvent } from "./model";

export interface Attempt {
  node: string;
  attempt: number;
  start: number;
  end: number | null;
  outcome: string | null;
}

export interface NodeLive {
  status: string;
  attempts: number;
  error: Record<string, unknown> | null;
  logs: { time: number; level: string; message: string }[];
  progress: { fraction: number | null; message: string } | null;
  outputs: unknown[];
  /** Where its last finished attempt ran (the final event's `host` and `ray_node`; on Ray only). */
  host?: string | null;
  rayNode?: string | null;
}

export interface RunLive {
  status: string;
  lastSeq: number;
  startedAt: number | null;
  finishedAt: number | null;
  nodes: Record<string, NodeLive>;
  attempts: Attempt[];
  error: Record<string, unknown> | null;
  /** Document nodes the compiler merged into an identical node (dropped -> kept, from `run.started`): it ran
   * once for both, so a merged node's entry in `nodes` is its kept node's own (the same object). */
  merged: Record<string, string>;
}

/** The node states that end an attempt. */
const ENDS: Record<string, string> = {
  "node.succeeded": "succeeded",
  "node.failed": "failed",
  "node.retrying": "retrying",
  "node.cached": "cached",
  "node.skipped": "skipped",
  "node.cancelled": "cancelled",
};

export function emptyNode(): NodeLive {
  return { status: "pending", attempts: 0, error: null, logs: [], progress: null, outputs: [] };
}

/** The state before any event, from `GET /v1/runs/{id}` (events then bring it up to date). */
export function initialRun(detail: Pick<RunDetail, "status" | "nodes"> | null, nodes: string[]): RunLive {
  const live: RunLive = { status: detail?.status ?? "queued", lastSeq: 0, startedAt: null, finishedAt: null, nodes: {}, attempts: [], error: null, merged: {} };
  for (const name of nodes) live.nodes[name] = emptyNode();
  return live;
}

/** `run` with `event` applied (a copy; events at or below `lastSeq` are ignored, so replays are harmless). */
export function applyEvent(run: RunLive, event: RunEvent): RunLive {
  return foldEvents(run, [event]);
}

/** `run` with `events` applied in order: the same as applying them one by one, but the run, its node table
 * and its attempts are copied once per batch, and each node an event names once, so a batch of k events over
 * a run of n nodes costs O(k + n) rather than O(k * n). `run` itself is returned when no event applies. */
export function foldEvents(run: RunLive, events: readonly RunEvent[]): RunLive {
  let next: RunLive | null = null;
  let nodes: Record<string, NodeLive> | null = null;
  let attempts: Attempt[] | null = null;
  // Node -> indexes of its open attempts (oldest first), built at the first event that needs it.
  let open: Map<string, number[]> | null = null;
  // Nodes, and their log and output arrays, copied in this fold: changed in place from then on.
  const copied = new Set<string>();
  const ownLogs = new Set<string>();
  const ownOutputs = new Set<string>();
  const openIndex = (list: Attempt[]): Map<string, number[]> => {
    const index = new Map<string, number[]>();
    list.forEach((a, i) => {
      if (a.end !== null) return;
      const at = index.get(a.node);
      if (at) at.push(i);
      else index.set(a.node, [i]);
    });
    return index;
  };
  for (const event of events) {
    const lastSeq = next ? next.lastSeq : run.lastSeq;
    if (event.seq <= lastSeq) continue;
    if (!next) next = { ...run };
    next.lastSeq = event.seq;
    if (event.type.startsWith("run.")) {
      next.status = event.type.slice(4);
      if (event.type === "run.started") {
        next.startedAt = event.time;
        const merged = event.payload.merged;
        if (merged && typeof merged === "object" && Object.keys(merged).length > 0) next.merged = { ...(merged as Record<string, string>) };
      }
      if (["run.succeeded", "run.failed", "run.cancelled"].includes(event.type)) {
        next.finishedAt = event.time;
        attempts = (attempts ?? next.attempts).map((a) => (a.end === null ? { ...a, end: event.time, outcome: a.outcome ?? "cancelled" } : a));
        next.attempts = attempts;
        open = new Map();
        if (event.payload.error) next.error = event.payload.error as Record<string, unknown>;
      }
      continue;
    }
    const name = event.node;
    if (!name) continue;
    if (!nodes) nodes = next.nodes = { ...run.nodes };
    let node = nodes[name];
    if (!copied.has(name)) {
      node = nodes[name] = { ...(node ?? emptyNode()) };
      copied.add(name);
    }
    const attempt = event.attempt ?? Number(event.payload.attempt ?? 1);
    if (event.type === "node.started") {
      node.status = "running";
      node.attempts = Math.max(node.attempts, attempt);
      node.error = null;
      if (!attempts) attempts = next.attempts = [...run.attempts];
      if (!open) open = openIndex(attempts);
      attempts.push({ node: name, attempt, start: event.time, end: null, outcome: null });
      const at = open.get(name);
      if (at) at.push(attempts.length - 1);
      else open.set(name, [attempts.length - 1]);
    } else if (event.type in ENDS) {
      node.status = ENDS[event.type];
      if (event.payload.error) node.error = event.payload.error as Record<string, unknown>;
      if (typeof event.payload.host === "string") node.host = event.payload.host;
      if (typeof event.payload.ray_node === "string") node.rayNode = event.payload.ray_node;
      if (!open) open = openIndex(attempts ?? run.attempts);
      const at = open.get(name);
      if (at && at.length > 0) {
        if (!attempts) attempts = next.attempts = [...run.attempts];
        const i = at.shift() as number;
        attempts[i] = { ...attempts[i], end: event.time, outcome: ENDS[event.type] };
      } else if (event.type === "node.cached" || event.type === "node.skipped") {
        // No attempt ran: a zero-length mark on the timeline still shows when it was decided.
        if (!attempts) attempts = next.attempts = [...run.attempts];
        attempts.push({ node: name, attempt, start: event.time, end: event.time, outcome: ENDS[event.type] });
      }
    } else if (event.type === "node.log") {
      if (!ownLogs.has(name)) {
        node.logs = [...node.logs];
        ownLogs.add(name);
      }
      node.logs.push({ time: event.time, level: String(event.payload.level ?? "info"), message: String(event.payload.message ?? "") });
    } else if (event.type === "node.progress") {
      const fraction = typeof event.payload.fraction === "number" ? event.payload.fraction : typeof event.payload.progress === "number" ? event.payload.progress : null;
      node.progress = { fraction, message: String(event.payload.message ?? "") };
    } else if (event.type === "node.output") {
      if (!ownOutputs.has(name)) {
        node.outputs = [...node.outputs];
        ownOutputs.add(name);
      }
      node.outputs.push(event.payload.value ?? event.payload);
    }
  }
  if (next && Object.keys(next.merged).length > 0) {
    // A merged node shows its kept node's state: the same entry, wherever it changed in this batch.
    for (const [dropped, kept] of Object.entries(next.merged)) {
      const entry = (nodes ?? next.nodes)[kept];
      if (entry && next.nodes[dropped] !== entry) {
        if (!nodes) nodes = next.nodes = { ...run.nodes };
        nodes[dropped] = entry;
      }
    }
  }
  return next ?? run;
}

/** The run as it stood after event `seq` (replaying a finished run): the fold of `events` up to it. */
export function replay(nodes: string[], events: RunEvent[], seq: number): RunLive {
  const upTo = events.findIndex((event) => event.seq > seq);
  return foldEvents(initialRun(null, nodes), upTo < 0 ? events : events.slice(0, upTo));
}
