// Run events batched per animation frame: however many events arrive between two frames, the page folds them
// into its state once and draws once (a 1,000-node run sends bursts of events; one render each would queue up).

import type { RunEvent } from "./model";
import { applyEvent, type RunLive } from "./runState";

/** Something that calls `callback` soon, once (the next animation frame, by default). */
export type Scheduler = (callback: () => void) => void;

/** The next animation frame, or 100 ms at most when the page is hidden (browsers pause frames then). */
export const nextFrame: Scheduler = (callback) => {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    callback();
  };
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(run);
  setTimeout(run, 100);
};

/** `run` with a batch of events applied in order, and the names of the nodes whose state changed. */
export function applyEvents(run: RunLive, events: RunEvent[]): { run: RunLive; changed: Set<string> } {
  let next = run;
  for (const event of events) next = applyEvent(next, event);
  const changed = new Set<string>();
  if (next !== run) for (const event of events) if (event.node && next.nodes[event.node] !== run.nodes[event.node]) changed.add(event.node);
  return { run: next, changed };
}

/** Queues events and hands them to `flush` in one batch per scheduled tick (one per frame). */
export class EventBatcher {
  private queue: RunEvent[] = [];
  private pending = false;
  private stopped = false;

  constructor(
    private readonly flush: (events: RunEvent[]) => void,
    private readonly schedule: Scheduler = nextFrame,
  ) {}

  /** Queue `event`; the batch is flushed at the next tick. */
  push(event: RunEvent): void {
    if (this.stopped) return;
    this.queue.push(event);
    if (this.pending) return;
    this.pending = true;
    this.schedule(() => this.drain());
  }

  /** Flush what is queued now (also what a scheduled tick does). */
  drain(): void {
    this.pending = false;
    if (this.stopped || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.flush(batch);
  }

  /** Drop what is queued and ignore what comes later (the page left the run). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
  }
}
