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
}

export interface RunLive {
  status: string;
  lastSeq: number;
  startedAt: number | null;
  finishedAt: number | null;
  nodes: Record<string, NodeLive>;
  attempts: Attempt[];
  error: Record<string, unknown> | null;
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
  const live: RunLive = { status: detail?.status ?? "queued", lastSeq: 0, startedAt: null, finishedAt: null, nodes: {}, attempts: [], error: null };
  for (const name of nodes) live.nodes[name] = emptyNode();
  return live;
}

/** `run` with `event` applied (a copy; events at or below `lastSeq` are ignored, so replays are harmless). */
export function applyEvent(run: RunLive, event: RunEvent): RunLive {
  if (event.seq <= run.lastSeq) return run;
  const next: RunLive = { ...run, lastSeq: event.seq };
  if (event.type.startsWith("run.")) {
    next.status = event.type.slice(4);
    if (event.type === "run.started") next.startedAt = event.time;
    if (["run.succeeded", "run.failed", "run.cancelled"].includes(event.type)) {
      next.finishedAt = event.time;
      next.attempts = run.attempts.map((a) => (a.end === null ? { ...a, end: event.time, outcome: a.outcome ?? "cancelled" } : a));
      if (event.payload.error) next.error = event.payload.error as Record<string, unknown>;
    }
    return next;
  }
  const name = event.node;
  if (!name) return next;
  const node: NodeLive = { ...(run.nodes[name] ?? emptyNode()) };
  next.nodes = { ...run.nodes, [name]: node };
  const attempt = event.attempt ?? Number(event.payload.attempt ?? 1);
  if (event.type === "node.started") {
    node.status = "running";
    node.attempts = Math.max(node.attempts, attempt);
    node.error = null;
    next.attempts = [...run.attempts, { node: name, attempt, start: event.time, end: null, outcome: null }];
  } else if (event.type in ENDS) {
    node.status = ENDS[event.type];
    if (event.payload.error) node.error = event.payload.error as Record<string, unknown>;
    const open = run.attempts.findIndex((a) => a.node === name && a.end === null);
    if (open >= 0) {
      next.attempts = run.attempts.map((a, i) => (i === open ? { ...a, end: event.time, outcome: ENDS[event.type] } : a));
    } else if (event.type === "node.cached" || event.type === "node.skipped") {
      // No attempt ran: a zero-length mark on the timeline still shows when it was decided.
      next.attempts = [...run.attempts, { node: name, attempt, start: event.time, end: event.time, outcome: ENDS[event.type] }];
    }
  } else if (event.type === "node.log") {
    node.logs = [...node.logs, { time: event.time, level: String(event.payload.level ?? "info"), message: String(event.payload.message ?? "") }];
  } else if (event.type === "node.progress") {
    const fraction = typeof event.payload.fraction === "number" ? event.payload.fraction : typeof event.payload.progress === "number" ? event.payload.progress : null;
    node.progress = { fraction, message: String(event.payload.message ?? "") };
  } else if (event.type === "node.output") {
    node.outputs = [...node.outputs, event.payload.value ?? event.payload];
  }
  return next;
}

/** The run as it stood after event `seq` (replaying a finished run): the fold of `events` up to it. */
export function replay(nodes: string[], events: RunEvent[], seq: number): RunLive {
  let run = initialRun(null, nodes);
  for (const event of events) {
    if (event.seq > seq) break;
    run = applyEvent(run, event);
  }
  return run;
}
