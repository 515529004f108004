// Visual debugging of one run: the workflow's graph with node states changing live from the event stream
// (WS /v1/runs/{id}/events), a node inspector and a timeline of attempts.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { compareRuns, foldRun, parseEventStream } from "./compare";
import { EventBatcher, applyEvents } from "./eventBatch";
import { get, post, socketUrl } from "./api";
import { loadCatalog } from "./catalog";
import { GraphView } from "./GraphView";
import { INPUTS_ID, OUTPUTS_ID, toGraph, type Graph } from "./graph";
import { groupGraph, mapElementOf, subWorkflowSize } from "./groups";
import { prefetchElk } from "./layout";
import { NodeStates } from "./nodeStates";
import { MapGraph } from "./MapGraph";
import { innerNodeOf } from "./mapLayout";
import { NodeDebug } from "./NodeDebug";
import { outsideRun } from "./debug";
import type { RunDetail, RunEvent, WorkflowDocument, WorkflowVersion } from "./model";
import { navigate } from "./router";
import { RunDecorations } from "./runDecorations";
import { EventLog, GroupPanel, MapElements, NodeList, Timeline, useThrottled } from "./RunLists";
import { useRowWindow } from "./VirtualList";
import { initialRun, replay, type RunLive } from "./runState";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const NO_NODES: string[] = [];

/** The run's live state and its events so far: follows the event socket from the first event, reconnecting
 * after the last seen. Events are folded in batches, one per animation frame, so a burst renders once.
 * `onBatch` gets each batch's new state and the nodes it changed at once, in the frame (the graph's boxes show
 * them without waiting for the page to render); when it returns false, `changed` collects those nodes until
 * the page draws them (it empties it). `latest` is the newest state folded (the page's `run` may be a render
 * behind it). */
function useRunEvents(
  id: string,
  nodes: string[] | null,
  onBatch: (run: RunLive, changed: Set<string>) => boolean,
): { run: RunLive | null; events: RunEvent[]; changed: Set<string>; latest: { current: RunLive | null } } {
  const [run, setRun] = useState<RunLive | null>(null);
  const latest = useRef<RunLive | null>(null);
  const events = useRef<RunEvent[]>([]);
  const changed = useRef(new Set<string>());
  const batchTo = useRef(onBatch);
  batchTo.current = onBatch;
  useEffect(() => {
    if (!nodes) return;
    let state = initialRun(null, nodes);
    events.current = [];
    latest.current = state;
    setRun(state);
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry = 0;
    // Normal closes in a row without an event in between (see onclose).
    let quiet = 0;
    // The highest seq received (queued, maybe not folded yet): a reconnect resumes after it.
    let received = 0;
    const batcher = new EventBatcher((batch) => {
      const { run: next, changed: touched } = applyEvents(state, batch);
      if (next === state) return;
      latest.current = next;
      if (!batchTo.current(next, touched)) for (const name of touched) changed.current.add(name);
      state = next;
      setRun(state);
    });
    const open = () => {
      socket = new WebSocket(socketUrl(`/v1/runs/${encodeURIComponent(id)}/events?after=${received}`));
      socket.onmessage = (m) => {
        const event = JSON.parse(m.data) as RunEvent;
        retry = 0;
        quiet = 0;
        if (event.seq <= received) return;
        received = event.seq;
        events.current.push(event);
        batcher.push(event);
      };
      socket.onclose = (e) => {
        batcher.drain();
        if (stopped || FINAL.has(state.status)) return;
        // A normal close before the run's last event: the server saw the run end (a cancel is stored at once)
        // before the run wrote its last events. Reconnect after the last seen, while that brings events.
        if (e.code === 1000 && ++quiet > 5) return;
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
  return { run, events: events.current, changed: changed.current, latest };
}

export function RunPage({ id }: { id: string }) {
  // Download elkjs's worker (a 1.6 MB script) while the page fetches what it draws; it is compiled once the
  // graph is drawn (src/layout.ts), so the first paint never waits for it.
  useEffect(prefetchElk, []);
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
  // Node states live outside the graph's props: only the boxes whose state changed re-render. After the first
  // full draw, each batch of events updates the decorations of the nodes it changed, and of their groups, only,
  // as it is folded (in its animation frame, before the page renders).
  const states = useMemo(() => new NodeStates(), []);
  const drawn = useRef<{ decorations: RunDecorations | null; replaying: boolean; nodes: string[] | null }>({ decorations: null, replaying: false, nodes: null });
  const onBatch = useCallback(
    (next: RunLive, touched: Set<string>) => {
      const { decorations, replaying, nodes } = drawn.current;
      if (!decorations || replaying || !nodes) return false;
      states.update(decorations.update(next, touched, nodes));
      return true;
    },
    [states],
  );
  const { run: live, events, changed, latest } = useRunEvents(id, nodeNames, onBatch);
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
  // A big graph is drawn with its fan-outs folded into groups (src/groups.ts); selecting a group expands it.
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const grouping = useMemo(() => (graph ? groupGraph(graph, expanded) : null), [graph, expanded]);
  const [panel, setPanel] = useState("timeline");
  const decorations = useMemo(
    () => (grouping && doc ? new RunDecorations(grouping, outside, (map) => subWorkflowSize(doc.nodes[map]?.params)) : null),
    [grouping, outside, doc],
  );
  // The first draw, a replay and a new grouping draw every node; what a batch could not draw at once, its nodes.
  useLayoutEffect(() => {
    if (!run || !nodeNames || !decorations) return;
    const replaying = run !== live;
    const full = drawn.current.decorations !== decorations || replaying || drawn.current.replaying;
    drawn.current = { decorations, replaying, nodes: nodeNames };
    const names = full ? null : [...changed];
    changed.clear();
    // Live, the newest state: a batch may have been drawn at once since this render's state was folded.
    states.update(decorations.update(replaying ? run : latest.current ?? run, names, nodeNames));
  }, [run, live, nodeNames, states, decorations, changed, latest]);
  const expand = useCallback((group: string) => setExpanded((e) => new Set([...e, group])), []);
  // Selecting a node drawn inside a collapsed group (from a list) expands the group first.
  const pick = useCallback(
    (name: string | null) => {
      const group = name ? grouping?.groupOf.get(name) : undefined;
      if (group && !expanded.has(group)) expand(group);
      setSelected(name);
    },
    [grouping, expanded, expand],
  );
  // The timeline and lists under the graph follow a live run 4 times a second (each is a long list to redraw).
  const paced = useThrottled({ run, events: events.length }, 250, !finished && run === live);
  const statusOf = useCallback(
    (name: string) => {
      const status = paced.run?.nodes[name]?.status ?? "pending";
      return status === "pending" && outside.has(name) ? "outside" : status;
    },
    [paced.run, outside],
  );
  if (error) return <p className="error">{error}</p>;
  if (!detail || !graph || !run || !doc || !grouping || !decorations) return <p>Loading run…</p>;
  const members = selected ? grouping.members.get(selected) : undefined;
  const pickElement = (element: string) => pick(Object.keys(run.nodes).find((n) => n.startsWith(element + ".")) ?? null);
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
          <GraphView graph={grouping.graph} states={states} onSelect={setSelected} selected={selected} />
          <div className="run-panels">
            <div className="panel-tabs" role="tablist">
              {["timeline", "nodes", "events"].map((p) => (
                <button key={p} role="tab" aria-selected={panel === p} className={panel === p ? "active" : ""} onClick={() => setPanel(p)} data-testid={`panel-${p}`}>
                  {p === "timeline" ? "Timeline" : p === "nodes" ? `Nodes (${nodeNames?.length ?? 0})` : `Events (${events.length})`}
                </button>
              ))}
              {grouping.members.size > 0 && (
                <span className="hint" data-testid="group-hint">
                  {nodeNames?.length} nodes, {grouping.members.size} groups drawn folded: select a group to expand it
                </span>
              )}
            </div>
            {panel === "timeline" ? (
              <Timeline run={paced.run ?? run} onPick={pick} />
            ) : panel === "nodes" ? (
              <NodeList nodes={nodeNames ?? NO_NODES} statusOf={statusOf} onPick={pick} version={paced.run} />
            ) : (
              <EventLog events={events} count={paced.events} onPick={pick} />
            )}
          </div>
          {finished && live && nodeNames && detail.workflow_id && <Compare id={id} workflowId={detail.workflow_id} nodes={nodeNames} run={live} />}
        </div>
        <aside className="side">
          {selected && members ? (
            <GroupPanel id={selected} members={members} counts={decorations.countsOf(selected)} expanded={expanded.has(selected)} statusOf={statusOf} onExpand={() => expand(selected)} onPick={pick} />
          ) : (
            <Inspector
              name={selected}
              run={run}
              doc={doc}
              inputs={detail.inputs}
              outputs={outputs}
              debug={
                <>
                  <NodeDebugFor runId={id} detail={detail} node={selected} finished={finished} />
                  {selected && <MapView doc={doc} selected={selected} states={(paced.run ?? run).nodes} onPick={pick} />}
                  {selected && !mapElementOf(selected) && <MapElements elements={decorations.elementsOf(selected)} counts={decorations.countsOf(selected)} onPick={pickElement} />}
                </>
              }
            />
          )}
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

/** The sub-workflow of the selected map node (counts across its elements), or of the map element a selected
 * node belongs to (that element's states). */
function MapView({ doc, selected, states, onPick }: { doc: WorkflowDocument; selected: string; states: RunLive["nodes"]; onPick: (node: string) => void }) {
  const where = mapElementOf(selected);
  const map = where ? where.map : selected;
  const node = doc.nodes[map];
  if (!node || !node.type.startsWith("builtin/map@")) return null;
  const inner = where ? innerNodeOf(map, selected) : null;
  return <MapGraph map={map} workflow={node.params?.workflow} states={states} element={inner ? inner.index : null} selectedInner={inner?.inner ?? null} onPick={onPick} />;
}

function NodeDebugFor({ runId, detail, node, finished }: { runId: string; detail: RunDetail; node: string | null; finished: boolean }) {
  if (!node || node === INPUTS_ID || node === OUTPUTS_ID) return null;
  // A map element's node (`each[1].plus`) is not a node of the run's workflow: its map node is debugged instead.
  if (mapElementOf(node)) return <p className="hint">A node of a map element: run to here and re-run work on its map node.</p>;
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
      {run.merged[name] && (
        <p className="hint" data-testid="merged-into">
          Merged into <code>{run.merged[name]}</code>: identical to it (type, inputs, params), so it ran once for both; its state is that node's.
        </p>
      )}
      {node?.host && (
        <p data-testid="node-host">
          Ran on host <code>{node.host}</code>
          {node.rayNode && (
            <>
              {" "}
              (Ray node <code title={node.rayNode}>{node.rayNode.slice(0, 12)}</code>)
            </>
          )}
        </p>
      )}
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

function seconds(value: number | null): string {
  return value === null ? "" : `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

/** The height of a row of the comparison table (app.css). */
const COMPARE_ROW = 22;

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
  const rows = useMemo(() => (otherRun ? compareRuns(nodes, otherRun, run) : []), [nodes, otherRun, run]);
  // A row per node: only those in view are drawn (a run of 1,000 nodes has 1,000 rows).
  const scroll = useRowWindow(rows.length, COMPARE_ROW, COMPARE_ROW);
  if (others.length === 0) return null;
  const w = scroll.window;
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
        <div className="compare-scroll" ref={scroll.ref} onScroll={scroll.onScroll} data-testid="compare-rows" data-rows={rows.length} data-drawn={w.end - w.start}>
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
            {w.padTop > 0 && <tr style={{ height: w.padTop }} aria-hidden><td colSpan={6} className="spacer" /></tr>}
            {rows.slice(w.start, w.end).map((r) => (
              <tr key={r.node} data-testid={`compare-${r.node}`} className={r.a.status !== r.b.status ? "differs" : ""}>
                <td>{r.node}</td>
                <td className={`status ${r.a.status}`}>{r.a.status}</td>
                <td>{seconds(r.a.seconds)}</td>
                <td className={`status ${r.b.status}`}>{r.b.status}</td>
                <td>{seconds(r.b.seconds)}</td>
                <td>{r.delta === null ? "" : `${r.delta >= 0 ? "+" : "−"}${seconds(Math.abs(r.delta))}`}</td>
              </tr>
            ))}
            {w.padBottom > 0 && <tr style={{ height: w.padBottom }} aria-hidden><td colSpan={6} className="spacer" /></tr>}
          </tbody>
        </table>
        </div>
      )}
    </div>
  );
}
