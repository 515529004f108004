// The long lists of a run page, virtualised (src/VirtualList.tsx) so that a run of 1,000+ nodes draws only
// the rows in view: the timeline (a Gantt row per node), the node list (filtered by state or name), the event
// log, and the members of a group or the elements of a map node in the inspector.

import { memo, useEffect, useMemo, useRef, useState } from "react";
import { CountChips } from "./CountChips";
import type { Counts } from "./groups";
import type { RunEvent } from "./model";
import type { Attempt, RunLive } from "./runState";
import { VirtualList } from "./VirtualList";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const ROW = 18;

/** `value`, changed at most every `ms` while `live` (a run's lists and timeline redraw 4 times a second, not
 * at every batch of events: the graph's boxes show each event at once); `value` itself once not live. */
export function useThrottled<T>(value: T, ms: number, live: boolean): T {
  const [shown, setShown] = useState(value);
  const latest = useRef(value);
  latest.current = value;
  useEffect(() => {
    if (!live) return;
    setShown(latest.current);
    const timer = window.setInterval(() => setShown(latest.current), ms);
    return () => window.clearInterval(timer);
  }, [live, ms]);
  return live ? shown : value;
}

/** Attempts by node, in the order the nodes first started. */
export function timelineRows(attempts: readonly Attempt[]): [string, Attempt[]][] {
  const rows = new Map<string, Attempt[]>();
  for (const a of attempts) {
    const row = rows.get(a.node);
    if (row) row.push(a);
    else rows.set(a.node, [a]);
  }
  return [...rows];
}

/** A Gantt chart of the run's attempts: one row per node, one bar per attempt, coloured by how it ended. */
export const Timeline = memo(function Timeline({ run, onPick }: { run: RunLive; onPick: (node: string) => void }) {
  const [now, setNow] = useState(() => Date.now() / 1000);
  const finished = FINAL.has(run.status);
  useEffect(() => {
    if (finished) return;
    const t = window.setInterval(() => setNow(Date.now() / 1000), 250);
    return () => window.clearInterval(t);
  }, [finished]);
  const rows = useMemo(() => timelineRows(run.attempts), [run.attempts]);
  if (run.attempts.length === 0) return <div className="timeline hint">No attempts yet.</div>;
  let start = Infinity;
  let end = Math.max(run.finishedAt ?? 0, 0);
  for (const a of run.attempts) {
    start = Math.min(start, a.start);
    end = Math.max(end, a.end ?? now);
  }
  end = Math.max(end, start + 0.001);
  const span = end - start;
  return (
    <div className="timeline" data-testid="timeline">
      <div className="timeline-scale">
        0 s <span>{span.toFixed(span < 10 ? 2 : 1)} s</span>
      </div>
      <VirtualList
        className="timeline-rows"
        testId="timeline-rows"
        items={rows}
        rowHeight={ROW}
        rowKey={([node]) => node}
        row={([node, attempts]) => (
          <div className="timeline-row" onClick={() => onPick(node)}>
            <span className="timeline-name" title={node}>
              {node}
            </span>
            <div className="timeline-track">
              {attempts.map((a) => (
                <div
                  key={a.attempt + ":" + a.start}
                  className={`bar ${a.outcome ?? "running"}`}
                  style={{ left: `${((a.start - start) / span) * 100}%`, width: `max(2px, ${(((a.end ?? now) - a.start) / span) * 100}%)` }}
                  title={`${node} attempt ${a.attempt}: ${a.outcome ?? "running"}, ${((a.end ?? now) - a.start).toFixed(3)} s`}
                />
              ))}
            </div>
          </div>
        )}
      />
    </div>
  );
});

/** The states a node list can be filtered by. */
const STATES = ["running", "failed", "retrying", "succeeded", "cached", "skipped", "cancelled", "pending", "outside"];

/** The workflow's nodes with their states, filtered by state and name: the quick way to the failed node of
 * 1,000. `statusOf` gives a node's state as drawn. */
export const NodeList = memo(function NodeList({ nodes, statusOf, onPick, version }: { nodes: readonly string[]; statusOf: (node: string) => string; onPick: (node: string) => void; version: unknown }) {
  const [state, setState] = useState("");
  const [text, setText] = useState("");
  const shown = useMemo(
    () => nodes.filter((n) => (!state || statusOf(n) === state) && (!text || n.includes(text))),
    // `version` changes whenever the states may have (the run's state object).
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [nodes, state, text, version],
  );
  return (
    <div className="node-list">
      <div className="list-filter">
        <select value={state} onChange={(e) => setState(e.target.value)} aria-label="Show nodes in state" data-testid="node-list-state">
          <option value="">all states</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <input value={text} onChange={(e) => setText(e.target.value)} placeholder="node name" aria-label="Find a node by name" />
        <span className="hint">
          {shown.length} of {nodes.length}
        </span>
      </div>
      <VirtualList
        className="list-rows"
        testId="node-list"
        items={shown}
        rowHeight={ROW}
        rowKey={(n) => n}
        row={(n) => (
          <div className="list-row" onClick={() => onPick(n)} data-testid={`list-${n}`}>
            <span className={`badge ${statusOf(n)}`}>{statusOf(n)}</span> {n}
          </div>
        )}
      />
    </div>
  );
});

/** The run's events as they arrived, the newest at the bottom (followed while scrolled to the end). */
export const EventLog = memo(function EventLog({ events, count, onPick }: { events: readonly RunEvent[]; count: number; onPick: (node: string) => void }) {
  return (
    <VirtualList
      className="list-rows event-log"
      testId="event-log"
      items={events.slice(0, count)}
      rowHeight={ROW}
      follow
      rowKey={(e) => String(e.seq)}
      row={(e) => (
        <div className="list-row" onClick={() => e.node && onPick(e.node)}>
          <span className="hint">{e.seq}</span> {new Date(e.time * 1000).toISOString().slice(11, 23)} <b>{e.type}</b> {e.node ?? ""}
        </div>
      )}
    />
  );
});

/** A group of the graph in the inspector: its counts, a button to draw it member by member, and its members. */
export function GroupPanel({ id, members, counts, expanded, statusOf, onExpand, onPick }: { id: string; members: readonly string[]; counts: Counts | undefined; expanded: boolean; statusOf: (node: string) => string; onExpand: () => void; onPick: (node: string) => void }) {
  return (
    <div className="inspector group-panel" data-testid="inspector">
      <h3>{id}</h3>
      <p>
        A group of {members.length} nodes of one type reading the same nodes.{" "}
        {expanded ? (
          "Drawn member by member."
        ) : (
          <button onClick={onExpand} data-testid="expand-group">
            Expand the group
          </button>
        )}
      </p>
      {counts && <CountChips counts={counts} className="rw-counts inline" testId="group-counts" />}
      <VirtualList
        className="list-rows members"
        testId="group-members"
        items={members}
        rowHeight={ROW}
        rowKey={(n) => n}
        row={(n) => (
          <div className="list-row" onClick={() => onPick(n)}>
            <span className={`badge ${statusOf(n)}`}>{statusOf(n)}</span> {n}
          </div>
        )}
      />
    </div>
  );
}

/** The elements of a map node run so far, with their states (a map over 1,000 items has 1,000 rows). */
export function MapElements({ elements, counts, onPick }: { elements: { index: number; element: string; status: string }[]; counts: Counts | undefined; onPick: (element: string) => void }) {
  if (elements.length === 0) return null;
  return (
    <div className="map-elements">
      <h4>Elements ({elements.length})</h4>
      {counts && <CountChips counts={counts} className="rw-counts inline" testId="map-counts" />}
      <VirtualList
        className="list-rows members"
        testId="map-elements"
        items={elements}
        rowHeight={ROW}
        rowKey={(e) => e.element}
        row={(e) => (
          <div className="list-row" onClick={() => onPick(e.element)}>
            <span className={`badge ${e.status}`}>{e.status}</span> [{e.index}]
          </div>
        )}
      />
    </div>
  );
}
