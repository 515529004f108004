// Visual debugging of one run: the workflow's graph with node states changing live from the event stream
// (WS /v1/runs/{id}/events), a node inspector and a timeline of attempts.

import { useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { compareRuns, foldRun, parseEventStream } from "./compare";
import { EventBatcher, applyEvents } from "./eventBatch";
import { get, post, socketUrl } from "./api";
import { loadCatalog } from "./catalog";
import { GraphView } from "./GraphView";
import { INPUTS_ID, OUTPUTS_ID, toGraph, type Graph } from "./graph";
import { elk } from "./layout";
import { NodeStates, type LiveDecoration } from "./nodeStates";
import { NodeDebug } from "./NodeDebug";
import { outsideRun } from "./debug";
import type { RunDetail, RunEvent, WorkflowDocument, WorkflowVersion } from "./model";
import { navigate } from "./router";
import { initialRun, replay, type RunLive } from "./runState";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

/** The run's live state and its events so far: follows the event socket from the first event, reconnecting
 * after the last seen. Events are folded in batches, one per animation frame, so a burst renders once. */
function useRunEvents(id: string, nodes: string[] | null): { run: RunLive | null; events: RunEvent[] } {
  const [run, setRun] = useState<RunLive | null>(null);
  const events = useRef<RunEvent[]>([]);
  useEffect(() => {
    if (!nodes) return;
    let state = initialRun(null, nodes);
    events.current = [];
    setRun(state);
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry = 0;
    // The highest seq received (queued, maybe not folded yet): a reconnect resumes after it.
    let received = 0;
    const batcher = new EventBatcher((batch) => {
      const next = applyEvents(state, batch).run;
      if (next === state) return;
      state = next;
      setRun(state);
    });
    const open = () => {
      socket = new WebSocket(socketUrl(`/v1/runs/${encodeURIComponent(id)}/events?after=${received}`));
      socket.onmessage = (m) => {
        const event = JSON.parse(m.data) as RunEvent;
        retry = 0;
        if (event.seq <= received) return;
        received = event.seq;
        events.current.push(event);
        batcher.push(event);
      };
      socket.onclose = (e) => {
        batcher.drain();
        if (stopped || e.code === 1000 || FINAL.has(state.status)) return;
        if (e.code >= 4400 && e.code < 4500 && e.code !== 4429) {
          setRun({ ...state, error: { message: e.reason || `the event stream was refused (${e.code})` } });
          return;
        }
        retry = Math.min(retry + 1, 5);
        window.setTimeout(() => !stopped && open(), 200 * retry);
      };
    };
    open();
    return () => {
      stopped = true;
      batcher.stop();
      socket?.close();
    };
  }, [id, nodes]);
  return { run, events: events.current };
}

export function RunPage({ id }: { id: string }) {
  // Start elkjs's worker (a 1.6 MB script to load and compile) while the page fetches what it draws.
  useEffect(() => void elk().catch(() => undefined), []);
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [doc, setDoc] = useState<WorkflowDocument | null>(null);
  const [graph, setGraph] = useState<Graph | null>(null);
  const [error, setError] = useState("");
  const [selected, setSelected] = useState<string | null>(null);
  const [outputs, setOutputs] = useState<Record<string, unknown> | null>(null);
  useEffect(() => {
    (async () => {
      const run = await get<RunDetail>(`/v1/runs/${encodeURIComponent(id)}`);
      setDetail(run);
      if (!run.workflow_id || !run.workflow_version) throw new Error("this run's workflow was sent inline; its graph is not stored");
      const [version, specs] = await Promise.all([
        get<WorkflowVersion>(`/v1/workflows/${encodeURIComponent(run.workflow_id)}/versions/${run.workflow_version}`),
        loadCatalog(),
      ]);
      setDoc(version.workflow);
      setGraph(toGraph(version.workflow, specs));
    })().catch((e) => setError(e.message ?? String(e)));
  }, [id]);
  const nodeNames = useMemo(() => (doc ? Object.keys(doc.nodes) : null), [doc]);
  const { run: live, events } = useRunEvents(id, nodeNames);
  const finished = live ? FINAL.has(live.status) : false;
  // Replay: a finished run scrubbed back to any of its events (null: the live state).
  const [replayAt, setReplayAt] = useState<number | null>(null);
  const run = useMemo(
    () => (live && nodeNames && replayAt !== null && finished ? replay(nodeNames, events, replayAt) : live),
    [live, nodeNames, replayAt, finished, events],
  );
  useEffect(() => {
    if (finished) get<{ outputs: Record<string, unknown> }>(`/v1/runs/${encodeURIComponent(id)}/outputs`).then((r) => setOutputs(r.outputs), () => undefined);
  }, [finished, id]);
  // A "run to here" or a re-run never runs some nodes: they are shown apart, not as pending forever.
  const outside = useMemo(() => (doc && detail ? outsideRun(doc, detail.targets, !!detail.rerun_of) : new Set<string>()), [doc, detail]);
  // Node states live outside the graph's props: only the boxes whose state changed re-render.
  const states = useMemo(() => new NodeStates(), []);
  useLayoutEffect(() => {
    if (!run || !nodeNames) return;
    states.update(
      nodeNames.map((name): [string, LiveDecoration] => {
        const live = run.nodes[name];
        const status = live?.status ?? "pending";
        return [name, { status: status === "pending" && outside.has(name) ? "outside" : status, progress: live?.status === "running" ? live.progress?.fraction ?? null : null }];
      }),
    );
  }, [run, nodeNames, states, outside]);
  if (error) return <p className="error">{error}</p>;
  if (!detail || !graph || !run || !doc) return <p>Loading run…</p>;
  return (
    <section className="run">
      <div className="toolbar">
        <h2>
          Run <code>{id.slice(0, 8)}</code> of{" "}
          <a
            href={`/ui/workflows/${detail.workflow_id}`}
            onClick={(e) => {
              e.preventDefault();
              navigate(`/workflows/${encodeURIComponent(detail.workflow_id ?? "")}`);
            }}
          >
            {doc.name}
          </a>{" "}
          v{detail.workflow_version}
        </h2>
        <span className={`status ${run.status}`} data-testid="run-status">
          {run.status}
        </span>
        {!finished && (
          <button onClick={() => post(`/v1/runs/${encodeURIComponent(id)}/cancel`, {}).catch(() => undefined)}>Cancel</button>
        )}
        {detail.targets && (
          <span className="run-scope" data-testid="run-scope">
            {detail.rerun_of ? (
              <>
                re-run of <code>{detail.rerun_of.node}</code> with its inputs from run{" "}
                <a
                  href={`/ui/runs/${detail.rerun_of.run}`}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(`/runs/${encodeURIComponent(detail.rerun_of?.run ?? "")}`);
                  }}
                >
                  {detail.rerun_of.run.slice(0, 8)}
                </a>
              </>
            ) : (
              <>
                run to <code>{detail.targets.join(", ")}</code>
              </>
            )}
          </span>
        )}
        {run.error && <span className="error">{String(run.error.message ?? JSON.stringify(run.error))}</span>}
        {finished && live && events.length > 0 && (
          <label className="replay">
            Replay
            <input
              type="range"
              min={0}
              max={live.lastSeq}
              value={replayAt ?? live.lastSeq}
              onChange={(e) => setReplayAt(Number(e.target.value) >= live.lastSeq ? null : Number(e.target.value))}
              aria-label="Replay the run up to an event"
              data-testid="replay"
            />
            <span className="hint" data-testid="replay-event">
              {describeEvent(events, replayAt ?? live.lastSeq)}
            </span>
          </label>
        )}
      </div>
      <div className="editor">
        <div className="canvas">
          <GraphView graph={graph} states={states} onSelect={setSelected} selected={selected} />
          <Timeline run={run} onPick={setSelected} />
          {finished && live && nodeNames && detail.workflow_id && <Compare id={id} workflowId={detail.workflow_id} nodes={nodeNames} run={live} />}
        </div>
        <aside className="side">
          <Inspector name={selected} run={run} doc={doc} inputs={detail.inputs} outputs={outputs} debug={<NodeDebugFor runId={id} detail={detail} node={selected} finished={finished} />} />
        </aside>
      </div>
    </section>
  );
}

function describeEvent(events: RunEvent[], seq: number): string {
  const event = events.find((e) => e.seq === seq);
  if (!event) return seq === 0 ? "before the first event" : `event ${seq}`;
  return `${event.seq}: ${event.type}${event.node ? ` ${event.node}` : ""}`;
}

function json(value: unknown): string {
  const text = JSON.stringify(value, null, 1) ?? String(value);
  return text.length > 4000 ? text.slice(0, 4000) + "\n… (cut)" : text;
}

function NodeDebugFor({ runId, detail, node, finished }: { runId: string; detail: RunDetail; node: string | null; finished: boolean }) {
  if (!node || node === INPUTS_ID || node === OUTPUTS_ID) return null;
  return <NodeDebug key={node} runId={runId} detail={detail} node={node} finished={finished} />;
}

function Inspector({ name, run, doc, inputs, outputs, debug }: { name: string | null; run: RunLive; doc: WorkflowDocument; inputs: Record<string, unknown>; outputs: Record<string, unknown> | null; debug: ReactNode }) {
  if (!name || name === INPUTS_ID) {
    return (
      <div className="inspector" data-testid="inspector">
        <h3>Run inputs</h3>
        <pre>{json(inputs)}</pre>
        {outputs && (
          <>
            <h3>Run outputs</h3>
            <pre data-testid="run-outputs">{json(outputs)}</pre>
          </>
        )}
        <p className="hint">Select a node to inspect it.</p>
      </div>
    );
  }
  if (name === OUTPUTS_ID) return <div className="inspector"><h3>Run outputs</h3><pre>{outputs ? json(outputs) : "not yet"}</pre></div>;
  const node = run.nodes[name];
  const spec = doc.nodes[name];
  const mine = outputs ? Object.entries(doc.outputs ?? {}).filter(([, ref]) => ref === name || ref.startsWith(name + ".")) : [];
  const error = node?.error;
  return (
    <div className="inspector" data-testid="inspector">
      <h3>{name}</h3>
      <p>
        <code>{spec?.type}</code> · <span className={`status ${node?.status}`}>{node?.status}</span> · attempts {node?.attempts ?? 0}
      </p>
      {debug}
      {node?.progress && (
        <div className="progressbar" title={node.progress.message}>
          <div style={{ width: `${Math.round((node.progress.fraction ?? 0) * 100)}%` }} />
          <span>{node.progress.message}</span>
        </div>
      )}
      <h4>Inputs</h4>
      <ul>
        {Object.entries(spec?.in ?? {}).map(([port, ref]) => (
          <li key={port}>
            {port} ←{" "}
            {typeof ref === "string" ? (
              ref.startsWith("$inputs.") ? (
                <>
                  <code>{ref}</code> = <code>{json(inputs[ref.slice(8)])}</code>
                </>
              ) : (
                <code>{ref}</code>
              )
            ) : (
              <code>{json(ref.value)}</code>
            )}
          </li>
        ))}
      </ul>
      {spec?.params && (
        <>
          <h4>Params</h4>
          <pre>{json(spec.params)}</pre>
        </>
      )}
      {(mine.length > 0 || (node?.outputs.length ?? 0) > 0) && <h4>Outputs</h4>}
      {mine.map(([out]) => (
        <div key={out}>
          workflow output <b>{out}</b>: <pre>{json(outputs?.[out])}</pre>
        </div>
      ))}
      {node?.outputs.map((o, i) => (
        <pre key={i}>{json(o)}</pre>
      ))}
      {error && (
        <div className="error-box" data-testid="node-error">
          <h4>Error</h4>
          <p>
            <b>{String(error.type ?? error.error_type ?? "error")}</b>: {String(error.message ?? "")}
          </p>
          {typeof error.traceback === "string" && error.traceback && <pre className="traceback">{error.traceback}</pre>}
        </div>
      )}
      <h4>Logs</h4>
      {node && node.logs.length > 0 ? (
        <pre className="logs" data-testid="node-logs">
          {node.logs.map((l) => `${new Date(l.time * 1000).toISOString().slice(11, 23)} ${l.level} ${l.message}`).join("\n")}
        </pre>
      ) : (
        <p className="hint">none</p>
      )}
    </div>
  );
}

/** A Gantt chart of the run's attempts: one row per node, one bar per attempt, coloured by how it ended. */
function Timeline({ run, onPick }: { run: RunLive; onPick: (node: string) => void }) {
  const [now, setNow] = useState(() => Date.now() / 1000);
  const finished = FINAL.has(run.status);
  useEffect(() => {
    if (finished) return;
    const t = window.setInterval(() => setNow(Date.now() / 1000), 250);
    return () => window.clearInterval(t);
  }, [finished]);
  if (run.attempts.length === 0) return <div className="timeline hint">No attempts yet.</div>;
  const start = Math.min(...run.attempts.map((a) => a.start));
  const end = Math.max(run.finishedAt ?? 0, ...run.attempts.map((a) => a.end ?? now), start + 0.001);
  const span = end - start;
  const rows = new Map<string, typeof run.attempts>();
  for (const a of run.attempts) {
    const row = rows.get(a.node);
    if (row) row.push(a);
    else rows.set(a.node, [a]);
  }
  return (
    <div className="timeline" data-testid="timeline">
      <div className="timeline-scale">
        0 s <span>{span.toFixed(span < 10 ? 2 : 1)} s</span>
      </div>
      {[...rows].map(([node, attempts]) => (
        <div className="timeline-row" key={node} onClick={() => onPick(node)}>
          <span className="timeline-name">{node}</span>
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
      ))}
    </div>
  );
}

function seconds(value: number | null): string {
  return value === null ? "" : `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

/** This run beside another finished run of the same workflow: each node's state and time in both. */
function Compare({ id, workflowId, nodes, run }: { id: string; workflowId: string; nodes: string[]; run: RunLive }) {
  const [others, setOthers] = useState<{ id: string; status: string; workflow_version: number | null; created_at: string }[]>([]);
  const [other, setOther] = useState<string>("");
  const [otherRun, setOtherRun] = useState<RunLive | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    get<{ items: typeof others }>(`/v1/runs?workflow_id=${encodeURIComponent(workflowId)}&limit=20`).then(
      (r) => setOthers(r.items.filter((o) => o.id !== id && FINAL.has(o.status))),
      () => undefined,
    );
  }, [id, workflowId]);
  useEffect(() => {
    setOtherRun(null);
    setError("");
    if (!other) return;
    let live = true;
    fetch(`/v1/runs/${encodeURIComponent(other)}/events?after=0`, { headers: { Accept: "text/event-stream" } })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`the other run's events could not be read (${r.status})`))))
      .then((text) => live && setOtherRun(foldRun(nodes, parseEventStream(text))))
      .catch((e) => live && setError(e.message ?? String(e)));
    return () => {
      live = false;
    };
  }, [other, nodes]);
  if (others.length === 0) return null;
  const rows = otherRun ? compareRuns(nodes, otherRun, run) : [];
  return (
    <div className="compare" data-testid="compare">
      <label>
        Compare with{" "}
        <select value={other} onChange={(e) => setOther(e.target.value)} aria-label="Compare with another run" data-testid="compare-with">
          <option value="">another run…</option>
          {others.map((o) => (
            <option key={o.id} value={o.id}>
              {o.id.slice(0, 8)} · v{o.workflow_version} · {o.status} · {o.created_at.slice(0, 19).replace("T", " ")}
            </option>
          ))}
        </select>
      </label>
      {error && <span className="error">{error}</span>}
      {otherRun && (
        <table data-testid="compare-table">
          <thead>
            <tr>
              <th>node</th>
              <th>{other.slice(0, 8)}</th>
              <th>time</th>
              <th>this run</th>
              <th>time</th>
              <th>difference</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.node} data-testid={`compare-${r.node}`} className={r.a.status !== r.b.status ? "differs" : ""}>
                <td>{r.node}</td>
                <td className={`status ${r.a.status}`}>{r.a.status}</td>
                <td>{seconds(r.a.seconds)}</td>
                <td className={`status ${r.b.status}`}>{r.b.status}</td>
                <td>{seconds(r.b.seconds)}</td>
                <td>{r.delta === null ? "" : `${r.delta >= 0 ? "+" : "−"}${seconds(Math.abs(r.delta))}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
