import { useEffect, useState } from "react";
import { get } from "./api";
import type { WorkflowSummary } from "./model";
import { navigate } from "./router";

/** Every workflow the signed-in user may read, newest first. */
export function WorkflowList() {
  const [items, setItems] = useState<WorkflowSummary[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    get<{ items: WorkflowSummary[] }>("/v1/workflows?limit=200").then(
      (r) => setItems(r.items),
      (e) => setError(String(e.message ?? e)),
    );
  }, []);
  if (error) return <p className="error">{error}</p>;
  if (items === null) return <p>Loading workflows…</p>;
  return (
    <section className="list">
      <h2>Workflows</h2>
      {items.length === 0 && <p>No workflows yet: create one with the SDK, the CLI or POST /v1/workflows.</p>}
      <table data-testid="workflow-list">
        <thead>
          <tr>
            <th>Name</th>
            <th>Version</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {items.map((w) => (
            <tr key={w.id}>
              <td>
                <a
                  href={`/ui/workflows/${encodeURIComponent(w.id)}`}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(`/workflows/${encodeURIComponent(w.id)}`);
                  }}
                >
                  {w.name}
                </a>
              </td>
              <td>{w.latest_version}</td>
              <td>{new Date(w.updated_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
