// One workflow: its graph (editable), the docs of the selected node, versions with a visual diff, and runs.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiProblem, call, get, post, socketUrl } from "./api";
import { checkTypes, loadCatalog } from "./catalog";
import { GraphView, type EdgeDecoration, type NodeDecoration } from "./GraphView";
import { INPUTS_ID, OUTPUTS_ID, diffDocuments, toGraph, unionGraph, type GraphEdge, type GraphNode } from "./graph";
import { prefetchElk } from "./layout";
import type { Diagnostic, NodeSpec, VersionSummary, WorkflowDocument, WorkflowVersion } from "./model";
import { Palette } from "./Palette";
import { ofMembers } from "./groups";
import { useGroups } from "./useGroups";
import { ParamsForm } from "./ParamsForm";
import { Presence, announce, type Awareness } from "./Presence";
import { colourOf } from "./presence";
import { navigate } from "./router";
import { EditorStore, useEditor } from "./store";
import { hasTypeVar } from "./typeColors";

export function WorkflowPage({ id, tab }: { id: string; tab: string }) {
  // Download elkjs's worker (a 1.6 MB script) while the page fetches what it draws; it is compiled once the
  // graph is drawn (src/layout.ts), so the first paint never waits for it.
  useEffect(prefetchElk, []);
  const [loaded, setLoaded] = useState<{ wf: WorkflowVersion; specs: Map<string, NodeSpec> } | null>(null);
  const [error, setError] = useState("");
  const storeRef = useRef<EditorStore | null>(null);
  useEffect(() => {
    Promise.all([get<WorkflowVersion>(`/v1/workflows/${encodeURIComponent(id)}`), loadCatalog()]).then(
      ([wf, specs]) => {
        storeRef.current = new EditorStore(wf.workflow, wf.version);
        setLoaded({ wf, specs });
      },
      (e) => setError(e.message ?? String(e)),
    );
  }, [id]);
  if (error) return <p className="error">{error}</p>;
  if (!loaded || !storeRef.current) return <p>Loading workflow…</p>;
  const go = (t: string) => navigate(`/workflows/${encodeURIComponent(id)}${t === "graph" ? "" : `?tab=${t}`}`);
  return (
    <section className="workflow">
      <div className="tabs">
        <h2 data-testid="workflow-name">{loaded.wf.name}</h2>
        {["graph", "versions", "runs"].map((t) => (
          <button key={t} className={tab === t ? "active" : ""} onClick={() => go(t)}>
            {t[0].toUpperCase() + t.slice(1)}
          </button>
        ))}
      </div>
      {tab === "versions" ? (
        <Versions id={id} specs={loaded.specs} />
      ) : tab === "runs" ? (
        <Runs id={id} store={storeRef.current} />
      ) : (
        <Editor id={id} store={storeRef.current} specs={loaded.specs} />
      )}
    </section>
  );
}

/** Compile diagnostics of the document (POST /v1/workflows/validate), refreshed a moment after each edit. */
function useDiagnostics(doc: WorkflowDocument): Diagnostic[] {
  const [diagnostics, setDiagnostics] = useState<Diagnostic[]>([]);
  useEffect(() => {
    let live = true;
    const timer = window.setTimeout(() => {
      post<{ diagnostics: Diagnostic[] }>("/v1/workflows/validate", { workflow: doc }).then(
        (r) => live && setDiagnostics(r.diagnostics),
        (e: ApiProblem) => live && setDiagnostics(e.diagnostics?.length ? e.diagnostics : [{ code: "invalid", severity: "error", message: e.detail }]),
      );
    }, 250);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [doc]);
  return diagnostics;
}

/** Co-editing in the page: a y-websocket provider on WS /v1/workflows/{id}/collab (same origin, the session
 * cookie), bound to the editor's store once synced (src/collab.ts). Loaded only when started. */
function useLive(id: string, store: EditorStore): { status: string; start: () => void; people: { name: string; color: string }[]; awareness: Awareness | null } {
  const [status, setStatus] = useState("off");
  const [people, setPeople] = useState<{ name: string; color: string }[]>([]);
  const [awareness, setAwareness] = useState<Awareness | null>(null);
  const stop = useRef<(() => void) | null>(null);
  useEffect(() => () => stop.current?.(), []);
  const start = useCallback(async () => {
    setStatus("connecting");
    const [{ WebsocketProvider }, { Doc, bindEditor, documentData }, me] = await Promise.all([
      import("y-websocket"),
      import("./collab"),
      get<{ username?: string }>("/ui/api/session"),
    ]);
    const ydoc = new Doc();
    const provider = new WebsocketProvider(socketUrl(`/v1/workflows/${encodeURIComponent(id)}`), "collab", ydoc, { disableBc: true });
    let unbind: (() => void) | null = null;
    provider.on("sync", (synced: boolean) => {
      if (synced && !unbind) unbind = bindEditor(store, ydoc);
      setStatus(synced ? "live" : "connecting");
    });
    provider.on("status", (e: { status: string }) => e.status !== "connected" && setStatus(e.status));
    // Presence: who has this workflow open live (Yjs awareness, relayed by the server); their pointers and
    // selections are drawn on the graph (src/Presence.tsx).
    announce(provider.awareness, me.username ?? "someone");
    let shown = "";
    provider.awareness.on("change", () => {
      const states = [...provider.awareness.getStates()].map(([client, st]) => {
        const user = (st.user ?? {}) as { name?: string; color?: string };
        return { name: String(user.name ?? "someone"), color: String(user.color ?? colourOf(client)) };
      });
      states.sort((a, b) => a.name.localeCompare(b.name));
      // Pointers move many times a second: the editor re-renders only when who is here changed.
      const key = JSON.stringify(states);
      if (key !== shown) setPeople(states);
      shown = key;
    });
    setAwareness(provider.awareness);
    // For scripts and tests: the shared document as data, to compare with other clients'.
    const hook = window as unknown as { rayweaveCollab?: { document: () => unknown } };
    hook.rayweaveCollab = { document: () => documentData(ydoc) };
    stop.current = () => {
      delete hook.rayweaveCollab;
      unbind?.();
      provider.destroy();
      ydoc.destroy();
    };
  }, [id, store]);
  return { status, start, people, awareness };
}

/** The side panel lists this many diagnostics; every one still marks its node. */
const SHOWN_DIAGNOSTICS = 50;

function portOf(node: GraphNode | undefined, side: "in" | "out", name: string) {
  return (side === "in" ? node?.inputs : node?.outputs)?.find((p) => p.name === name);
}

function Editor({ id, store, specs }: { id: string; store: EditorStore; specs: Map<string, NodeSpec> }) {
  const doc = useEditor(store, (s) => s.doc);
  const selected = useEditor(store, (s) => s.selected);
  const dirty = useEditor(store, (s) => s.dirty);
  const baseVersion = useEditor(store, (s) => s.baseVersion);
  const graph = useMemo(() => toGraph(doc, specs), [doc, specs]);
  // A big workflow is drawn with its fan-outs folded into groups; selecting a group expands it.
  const { grouping, expand } = useGroups(graph);
  const diagnostics = useDiagnostics(doc);
  const [notice, setNotice] = useState<{ kind: "error" | "ok"; text: string } | null>(null);
  const [coercions, setCoercions] = useState<Record<string, string>>({});
  const [message, setMessage] = useState("");

  // Implicit coercions on wires (Int -> Float), asked once per pair of types.
  useEffect(() => {
    let live = true;
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    for (const e of graph.edges) {
      const s = portOf(byId.get(e.source), "out", e.sourcePort);
      const t = portOf(byId.get(e.target), "in", e.targetPort);
      if (!s || !t || s.type === t.type || e.target === OUTPUTS_ID || hasTypeVar(s.spec?.type_json) || hasTypeVar(t.spec?.type_json)) continue;
      checkTypes(s.type, t.type).then(
        (c) => {
          if (live && c.coercion && !c.subtype) setCoercions((m) => ({ ...m, [e.id]: `${c.source} → ${c.target} (${c.coercion!.kind})` }));
        },
        () => undefined,
      );
    }
    return () => {
      live = false;
    };
  }, [graph]);

  const onConnect = useCallback(
    async (edge: Omit<GraphEdge, "id">) => {
      const s = portOf(graph.nodes.find((n) => n.id === edge.source), "out", edge.sourcePort);
      const t = portOf(graph.nodes.find((n) => n.id === edge.target), "in", edge.targetPort);
      if (!s || !t) return;
      const generic = hasTypeVar(s.spec?.type_json) || hasTypeVar(t.spec?.type_json) || edge.target === OUTPUTS_ID;
      if (!generic && s.type !== t.type) {
        try {
          const check = await checkTypes(s.type, t.type);
          if (!check.assignable) {
            const via = check.coercion?.steps?.map((x) => x.node).filter(Boolean);
            const hint = via && via.length ? ` (an explicit conversion exists: add ${via.join(", ")} between them)` : "";
            setNotice({ kind: "error", text: `Refused ${edge.source}.${edge.sourcePort} → ${edge.target}.${edge.targetPort}: ${check.reason}${hint}` });
            return;
          }
        } catch (e) {
          setNotice({ kind: "error", text: `Could not check the types: ${(e as Error).message}` });
          return;
        }
      }
      setNotice(null);
      store.connect(edge);
    },
    [graph, store],
  );

  const byNode = useMemo(() => {
    const m = new Map<string, Diagnostic[]>();
    for (const d of diagnostics) if (d.node) m.set(d.node, [...(m.get(d.node) ?? []), d]);
    return m;
  }, [diagnostics]);
  const decorate = useCallback((n: GraphNode): NodeDecoration => ({ diagnostics: ofMembers(grouping, byNode, n.id) }), [byNode, grouping]);
  const decorateEdge = useCallback(
    (e: GraphEdge): EdgeDecoration => {
      const bad = diagnostics.find((d) => d.node === e.target && d.port === e.targetPort && d.severity === "error");
      if (bad) return { className: "edge-error", label: bad.code, title: bad.message };
      return coercions[e.id] ? { className: "edge-coercion", label: coercions[e.id] } : {};
    },
    [diagnostics, coercions],
  );

  const live = useLive(id, store);
  const save = async () => {
    try {
      // Co-editing: the server saves the shared document (validated like a PUT); else a PUT of this document.
      const { data } = live.status === "live"
        ? await call<WorkflowVersion>(`/v1/workflows/${encodeURIComponent(id)}/collab/save`, { method: "POST", body: { message } })
        : await call<WorkflowVersion>(`/v1/workflows/${encodeURIComponent(id)}`, {
            method: "PUT",
            body: { workflow: doc, message },
            headers: { "If-Match": `"${baseVersion}"` },
          });
      store.saved(data.version);
      setMessage("");
      setNotice({ kind: "ok", text: `Saved as version ${data.version}.` });
    } catch (e) {
      setNotice({ kind: "error", text: `Not saved: ${(e as Error).message}` });
    }
  };

  const node = selected ? graph.nodes.find((n) => n.id === selected) : undefined;
  const errors = diagnostics.filter((d) => d.severity === "error");
  return (
    <div className="editor">
      <div className="canvas">
        <div className="toolbar">
          <span data-testid="version">version {baseVersion}{dirty ? " (edited)" : ""}</span>
          <input placeholder="Version note" value={message} onChange={(e) => setMessage(e.target.value)} aria-label="Version note" />
          <button onClick={save} disabled={!dirty || errors.length > 0} data-testid="save">
            Save as new version
          </button>
          {live.status === "off" ? (
            <button onClick={live.start} data-testid="co-edit" title="Edit together with everyone who has this workflow open live">
              Co-edit live
            </button>
          ) : (
            <span className={`status ${live.status === "live" ? "succeeded" : "running"}`} data-testid="co-edit-status">
              {live.status}
            </span>
          )}
          {live.people.length > 0 && (
            <span className="hint" data-testid="co-editors" title={live.people.map((p) => p.name).join(", ")}>
              {live.people.length} editing:{" "}
              {live.people.map((p, i) => (
                <span key={i} style={{ color: p.color }}>
                  {i > 0 ? ", " : ""}
                  {p.name}
                </span>
              ))}
            </span>
          )}
          <span className={errors.length ? "error" : "ok"} data-testid="diagnostic-count">
            {errors.length ? `${errors.length} error${errors.length > 1 ? "s" : ""}` : "valid"}
          </span>
        </div>
        {notice && (
          <div className={`notice ${notice.kind}`} role={notice.kind === "error" ? "alert" : "status"} data-testid="notice">
            {notice.text}
            <button className="link" onClick={() => setNotice(null)} aria-label="Dismiss">
              ×
            </button>
          </div>
        )}
        <GraphView
          graph={grouping.graph}
          editable
          decorate={decorate}
          decorateEdge={decorateEdge}
          onConnect={(e) => !grouping.members.has(e.source) && !grouping.members.has(e.target) && onConnect(e)}
          onDisconnect={(e) => store.disconnect(e.target, e.targetPort)}
          onRemoveNode={(n) => !grouping.members.has(n) && store.removeNode(n)}
          onSelect={(n) => (n && grouping.members.has(n) ? expand(n) : store.select(n))}
          selected={selected}
        >
          {live.awareness && <Presence awareness={live.awareness} selected={selected} groupOf={grouping.groupOf} />}
        </GraphView>
      </div>
      <aside className="side">
        {node ? <NodeDocs node={node} store={store} diagnostics={byNode.get(node.id) ?? []} /> : <p className="hint">Select a node to see its documentation and params.</p>}
        {diagnostics.length > 0 && (
          <div className="diagnostics" data-testid="diagnostics">
            <h4>Diagnostics</h4>
            <ul>
              {diagnostics.slice(0, SHOWN_DIAGNOSTICS).map((d, i) => (
                <li key={i} className={d.severity}>
                  <code>{d.code}</code> {d.node && <b>{d.node}{d.port ? `.${d.port}` : ""}</b>} {d.message}
                  {d.hint && <div className="hint">{d.hint}</div>}
                </li>
              ))}
            </ul>
            {diagnostics.length > SHOWN_DIAGNOSTICS && <p className="hint">and {diagnostics.length - SHOWN_DIAGNOSTICS} more (each on its node)</p>}
          </div>
        )}
        <Palette specs={specs} onPick={(s) => store.addNode(s)} suggestFrom={node?.spec && node.outputs.length > 0 ? { workflow: doc, node: node.id, port: node.outputs[0].name } : undefined} />
      </aside>
    </div>
  );
}

const NO_PARAMS: Record<string, unknown> = {};

function NodeDocs({ node, store, diagnostics }: { node: GraphNode; store: EditorStore; diagnostics: Diagnostic[] }) {
  const params = useEditor(store, (s) => s.doc.nodes[node.id]?.params ?? NO_PARAMS);
  if (node.id === INPUTS_ID || node.id === OUTPUTS_ID) {
    const ports = node.id === INPUTS_ID ? node.outputs : node.inputs;
    return (
      <div className="docs">
        <h3>Workflow {node.id === INPUTS_ID ? "inputs" : "outputs"}</h3>
        <ul>
          {ports.map((p) => (
            <li key={p.name}>
              {p.name}: <code>{p.type}</code>
            </li>
          ))}
        </ul>
      </div>
    );
  }
  const spec = node.spec;
  return (
    <div className="docs" data-testid="node-docs">
      <h3>{node.id}</h3>
      <div>
        <code>{node.type}</code> {spec && <span className="hint">{spec.category} · {spec.plugin} {spec.version}</span>}
      </div>
      {!spec && <p className="error">This node type is not in the catalog (install its plugin).</p>}
      {spec && <p className="description">{spec.description}</p>}
      {diagnostics.map((d, i) => (
        <p key={i} className={d.severity}>
          <code>{d.code}</code> {d.message}
        </p>
      ))}
      {spec && (
        <>
          <h4>Inputs</h4>
          <PortList ports={spec.inputs} />
          <h4>Outputs</h4>
          <PortList ports={spec.outputs} />
          <h4>Params</h4>
          <ParamsForm key={node.id} params={spec.params} values={params} onChange={(v) => store.setParams(node.id, v)} />
        </>
      )}
      <button className="danger" onClick={() => store.removeNode(node.id)}>
        Remove node
      </button>
    </div>
  );
}

function PortList({ ports }: { ports: { name: string; type: string; description?: string }[] }) {
  if (ports.length === 0) return <p className="hint">none</p>;
  return (
    <dl className="ports">
      {ports.map((p) => (
        <div key={p.name}>
          <dt>
            {p.name} <code>{p.type}</code>
          </dt>
          <dd>{p.description}</dd>
        </div>
      ))}
    </dl>
  );
}

function Versions({ id, specs }: { id: string; specs: Map<string, NodeSpec> }) {
  const [items, setItems] = useState<VersionSummary[]>([]);
  const [pair, setPair] = useState<[number, number] | null>(null);
  const [docs, setDocs] = useState<[WorkflowDocument, WorkflowDocument] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    get<{ items: VersionSummary[] }>(`/v1/workflows/${encodeURIComponent(id)}/versions`).then(
      (r) => {
        setItems(r.items);
        if (r.items.length >= 2) setPair([r.items[1].version, r.items[0].version]);
        else if (r.items.length === 1) setPair([r.items[0].version, r.items[0].version]);
      },
      (e) => setError(e.message),
    );
  }, [id]);
  useEffect(() => {
    if (!pair) return;
    const one = (v: number) => get<WorkflowVersion>(`/v1/workflows/${encodeURIComponent(id)}/versions/${v}`).then((r) => r.workflow);
    Promise.all([one(pair[0]), one(pair[1])]).then(([a, b]) => setDocs([a, b]), (e) => setError(e.message));
  }, [id, pair]);
  const diff = useMemo(() => {
    if (!docs) return null;
    const ga = toGraph(docs[0], specs);
    const gb = toGraph(docs[1], specs);
    return { graph: unionGraph(ga, gb), changes: diffDocuments(docs[0], docs[1], ga, gb) };
  }, [docs, specs]);
  const decorate = useCallback((n: GraphNode): NodeDecoration => ({ change: diff?.changes.nodes.get(n.id) }), [diff]);
  const decorateEdge = useCallback((e: GraphEdge): EdgeDecoration => ({ className: `edge-${diff?.changes.edges.get(e.id) ?? "same"}` }), [diff]);
  if (error) return <p className="error">{error}</p>;
  const pick = (which: 0 | 1, v: number) => pair && setPair(which === 0 ? [v, pair[1]] : [pair[0], v]);
  return (
    <div className="versions">
      <table data-testid="versions">
        <thead>
          <tr>
            <th>from</th>
            <th>to</th>
            <th>version</th>
            <th>author</th>
            <th>note</th>
            <th>saved</th>
          </tr>
        </thead>
        <tbody>
          {items.map((v) => (
            <tr key={v.version}>
              <td>
                <input type="radio" name="from" checked={pair?.[0] === v.version} onChange={() => pick(0, v.version)} aria-label={`diff from version ${v.version}`} />
              </td>
              <td>
                <input type="radio" name="to" checked={pair?.[1] === v.version} onChange={() => pick(1, v.version)} aria-label={`diff to version ${v.version}`} />
              </td>
              <td>{v.version}</td>
              <td>{v.author}</td>
              <td>{v.message}</td>
              <td>{new Date(v.created_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {diff && pair && (
        <>
          <p className="legend">
            Version {pair[0]} → {pair[1]}: <span className="change-added">added</span> <span className="change-removed">removed</span> <span className="change-changed">changed</span>
          </p>
          <GraphView graph={diff.graph} decorate={decorate} decorateEdge={decorateEdge} />
        </>
      )}
    </div>
  );
}

function parseInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function Runs({ id, store }: { id: string; store: EditorStore }) {
  const doc = useEditor(store, (s) => s.doc);
  const baseVersion = useEditor(store, (s) => s.baseVersion);
  const dirty = useEditor(store, (s) => s.dirty);
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [runs, setRuns] = useState<{ id: string; status: string; workflow_version: number | null; created_at: string }[]>([]);
  useEffect(() => {
    get<{ items: typeof runs }>(`/v1/runs?workflow_id=${encodeURIComponent(id)}&limit=20`).then((r) => setRuns(r.items), () => undefined);
  }, [id]);
  const start = async (e: React.FormEvent) => {
    e.preventDefault();
    const inputs = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, parseInput(v)]));
    try {
      const run = await post<{ id: string }>("/v1/runs", { workflow_id: id, version: baseVersion, inputs });
      navigate(`/runs/${encodeURIComponent(run.id)}`);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <div className="runs">
      <form onSubmit={start} className="run-form" data-testid="run-form">
        <h3>Start a run of version {baseVersion}</h3>
        {dirty && <p className="hint">Unsaved edits are not part of the run: save them as a new version first.</p>}
        {Object.entries(doc.inputs ?? {}).map(([name, decl]) => (
          <label key={name}>
            {name} <code>{decl.type}</code>
            <input name={name} value={values[name] ?? ""} onChange={(e) => setValues({ ...values, [name]: e.target.value })} placeholder="JSON, or plain text" />
          </label>
        ))}
        <button type="submit">Run</button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <h3>Recent runs</h3>
      <table>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id}>
              <td>
                <a
                  href={`/ui/runs/${r.id}`}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(`/runs/${encodeURIComponent(r.id)}`);
                  }}
                >
                  {r.id.slice(0, 8)}
                </a>
              </td>
              <td className={`status ${r.status}`}>{r.status}</td>
              <td>v{r.workflow_version}</td>
              <td>{new Date(r.created_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
