// The debugging part of a run's node inspector: "run to here", "re-run this node" (with the inputs it had in
// this run), the Ray task that ran it with a link to the Ray dashboard, its outputs (tables paged, other values
// as JSON) and the value each input received, read through the upstream port, workflow input or constant.

import { useEffect, useState } from "react";
import { ApiProblem, get, post } from "./api";
import { cellText, pageLabel, pagePath, previousOffset, valueNote, valuePath, type NodeValue, type TablePage } from "./debug";
import type { RunDetail, RunNodeDetail } from "./model";
import { navigate } from "./router";

const PAGE_ROWS = 20;
/** Bytes of JSON a value view asks for first; "Show all" asks for the most the API gives. */
const VALUE_BYTES = 4096;
const ALL_VALUE_BYTES = 1024 * 1024;

function message(e: unknown): string {
  return e instanceof ApiProblem ? e.detail : e instanceof Error ? e.message : String(e);
}

export function NodeDebug({ runId, detail, node, finished }: { runId: string; detail: RunDetail; node: string; finished: boolean }) {
  const [info, setInfo] = useState<RunNodeDetail | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const base = `/v1/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(node)}`;
  useEffect(() => {
    let live = true;
    setInfo(null);
    get<RunNodeDetail>(base).then(
      (d) => live && setInfo(d),
      (e) => live && setError(message(e)),
    );
    return () => {
      live = false;
    };
  }, [base, finished]);
  const start = (call: () => Promise<{ id: string }>) => {
    setBusy(true);
    setError("");
    call().then(
      (run) => navigate(`/runs/${encodeURIComponent(run.id)}`),
      (e) => {
        setBusy(false);
        setError(message(e));
      },
    );
  };
  const runToHere = () =>
    start(() =>
      post<{ id: string }>("/v1/runs", {
        workflow_id: detail.workflow_id,
        version: detail.workflow_version,
        inputs: detail.inputs,
        targets: [node],
      }),
    );
  const rerun = () => start(() => post<{ id: string }>(`${base}/rerun`, {}));
  return (
    <div className="node-debug" data-testid="node-debug">
      <div className="debug-actions">
        <button onClick={runToHere} disabled={busy || !detail.workflow_id} title="Run this node and its ancestors only; upstream results come from the cache where they can" data-testid="run-to-here">
          Run to here
        </button>
        <button onClick={rerun} disabled={busy || !finished} title="Run this node alone again, with the inputs it had in this run" data-testid="rerun-node">
          Re-run this node
        </button>
      </div>
      {error && (
        <p className="error" role="alert" data-testid="debug-error">
          {error}
        </p>
      )}
      {info && (
        <p className="ray-task" data-testid="ray-task">
          {info.ray_task ? (
            <>
              Ray task <code>{info.ray_task.name}</code>
              {info.ray_task.dashboard_url && (
                <>
                  {" "}
                  <a href={info.ray_task.dashboard_url} target="_blank" rel="noreferrer" data-testid="ray-dashboard-link">
                    in the Ray dashboard
                  </a>
                </>
              )}
            </>
          ) : (
            <span className="hint">{info.executor === "ray" ? "Ray task unknown (its workflow no longer compiles here)" : `No Ray task: this server runs nodes ${info.executor === "local" ? "in-process" : `on ${info.executor}`}`}</span>
          )}
        </p>
      )}
      {info && info.inputs.length > 0 && (
        <div className="node-values" data-testid="node-inputs">
          <h4>Inputs</h4>
          {info.inputs.map((i) => (
            <div key={i.port} className="node-value" data-testid={`input-${i.port}`}>
              <div className="value-head">
                <code>{i.port}</code> {i.type && <span className="rw-type">{i.type}</span>} ← <code data-testid={`input-${i.port}-source`}>{i.source}</code>
              </div>
              {i.table && i.preview ? <TablePreview port={`in-${i.port}`} preview={i.preview} /> : <ValueView path={i.value} testId={`input-${i.port}-value`} />}
            </div>
          ))}
        </div>
      )}
      {info && info.outputs.length > 0 && (
        <div className="node-values" data-testid="node-outputs">
          <h4>Outputs</h4>
          {info.outputs.map((o) =>
            o.table && o.preview ? (
              <TablePreview key={o.port} port={o.port} preview={o.preview} />
            ) : o.value ? (
              <div key={o.port} className="node-value" data-testid={`output-${o.port}`}>
                <div className="value-head">
                  <code>{o.port}</code> <span className="rw-type">{o.type}</span>
                </div>
                {info.status === "succeeded" || info.status === "cached" ? (
                  <ValueView path={o.value} testId={`output-${o.port}-value`} />
                ) : (
                  <p className="hint">no value: the node is {info.status}</p>
                )}
              </div>
            ) : null,
          )}
        </div>
      )}
    </div>
  );
}

/** A value as JSON: the first few KB, all of it (up to the API's 1 MB) on request. */
function ValueView({ path, testId }: { path: string; testId: string }) {
  const [limit, setLimit] = useState(VALUE_BYTES);
  const [value, setValue] = useState<NodeValue | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let live = true;
    setError("");
    get<NodeValue>(valuePath(path, limit)).then(
      (v) => live && setValue(v),
      (e) => live && setError(message(e)),
    );
    return () => {
      live = false;
    };
  }, [path, limit]);
  if (error) {
    return (
      <p className="hint" data-testid={`${testId}-error`}>
        {error}
      </p>
    );
  }
  if (!value) return <p className="hint">loading…</p>;
  return (
    <div className="value-view">
      <pre data-testid={testId}>{value.truncated ? value.text + "…" : value.text}</pre>
      <span className="hint" data-testid={`${testId}-note`}>
        {valueNote(value)}
      </span>
      {value.truncated && value.limit < ALL_VALUE_BYTES && (
        <button onClick={() => setLimit(ALL_VALUE_BYTES)} data-testid={`${testId}-more`}>
          Show all
        </button>
      )}
    </div>
  );
}

/** A table output, one page at a time. */
function TablePreview({ port, preview }: { port: string; preview: string }) {
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<TablePage | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let live = true;
    setError("");
    get<TablePage>(pagePath(preview, offset, PAGE_ROWS)).then(
      (p) => live && setPage(p),
      (e) => live && setError(message(e)),
    );
    return () => {
      live = false;
    };
  }, [preview, offset]);
  const back = previousOffset(offset, PAGE_ROWS);
  return (
    <div className="table-preview" data-testid={`table-${port}`}>
      <h4>
        Table <code>{port}</code>
      </h4>
      {error && <p className="error">{error}</p>}
      {page && (
        <>
          <div className="table-scroll">
            <table>
              <thead>
                <tr>
                  {page.columns.map((c, i) => (
                    <th key={i} title={c.type}>
                      {c.name} <span className="rw-type">{c.type}</span>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {page.rows.map((row, r) => (
                  <tr key={page.offset + r}>
                    {row.map((cell, c) => (
                      <td key={c}>{cellText(cell)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="pager">
            <button onClick={() => back !== null && setOffset(back)} disabled={back === null} aria-label="Previous rows">
              ‹ Previous
            </button>
            <span data-testid={`table-${port}-page`}>{pageLabel(page)}</span>
            <button onClick={() => page.next_offset !== null && setOffset(page.next_offset)} disabled={page.next_offset === null} aria-label="Next rows">
              Next ›
            </button>
          </div>
        </>
      )}
    </div>
  );
}
