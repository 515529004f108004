// The header's anomaly notifications: a bell with the count of anomalies new to this browser, and a panel listing
// the recent ones (GET /v1/analytics/anomalies), each linking to its run. It polls on its own (every 15 s, and when
// the window regains focus), so only this control re-renders; opening the panel marks what it shows as seen.

import { memo, useCallback, useEffect, useRef, useState } from "react";
import { ApiProblem, get } from "./api";
import { type Anomaly, anomalyKey, badgeText, describeAnomaly, formatWhen, kindLabel, loadSeen, markSeen, newAnomalies, saveSeen } from "./anomalies";
import type { WorkflowSummary } from "./model";
import { BASE, navigate } from "./router";

/** How often the list is fetched while the page is open. */
export const POLL_MS = 15_000;
/** How many of the latest anomalies are fetched and listed. */
const LIMIT = 50;

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/** The bell and its panel, for the signed-in `user` (whose seen anomalies are kept apart from other users');
 * memoised, so the page's own re-renders (a route change) leave it alone. */
export const Notifications = memo(function Notifications({ user }: { user: string }) {
  const [items, setItems] = useState<Anomaly[] | null>(null);
  const [seen, setSeen] = useState<Set<string>>(() => loadSeen(storage(), user));
  const [open, setOpen] = useState(false);
  // The keys that were new when the panel opened: highlighted while it stays open.
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const [hidden, setHidden] = useState(false);
  const box = useRef<HTMLDivElement>(null);

  const load = useCallback(() => {
    get<{ items: Anomaly[] }>(`/v1/analytics/anomalies?limit=${LIMIT}`).then(
      (r) => setItems(r.items),
      // A key without runs:read may not list them: no bell. Other errors keep the last list.
      (e) => e instanceof ApiProblem && e.status === 403 && setHidden(true),
    );
  }, []);

  useEffect(() => {
    load();
    const timer = window.setInterval(() => document.visibilityState !== "hidden" && load(), POLL_MS);
    window.addEventListener("focus", load);
    return () => {
      window.clearInterval(timer);
      window.removeEventListener("focus", load);
    };
  }, [load]);

  // Close on a click outside the control.
  useEffect(() => {
    if (!open) return;
    const away = (e: MouseEvent) => box.current && !box.current.contains(e.target as Node) && setOpen(false);
    document.addEventListener("mousedown", away);
    return () => document.removeEventListener("mousedown", away);
  }, [open]);

  const unseen = items ? newAnomalies(items, seen) : [];

  const toggle = () => {
    if (open) return setOpen(false);
    setFresh(new Set(unseen.map(anomalyKey)));
    if (items && unseen.length) {
      const keys = markSeen(seen, items);
      saveSeen(storage(), user, keys);
      setSeen(new Set(keys));
    }
    if (names.size === 0) {
      get<{ items: WorkflowSummary[] }>("/v1/workflows?limit=200").then(
        (r) => setNames(new Map(r.items.map((w) => [w.id, w.name]))),
        () => undefined,
      );
    }
    setOpen(true);
  };

  if (hidden) return null;
  const now = Date.now();
  return (
    <div className="notifications" ref={box}>
      <button
        className="bell"
        data-testid="anomalies-bell"
        data-count={unseen.length}
        title={unseen.length ? `${unseen.length} new anomalies` : "Anomalies"}
        onClick={toggle}
      >
        Anomalies
        {unseen.length > 0 && (
          <span className="badge failed" data-testid="anomalies-badge">
            {badgeText(unseen.length)}
          </span>
        )}
      </button>
      {open && (
        <div className="notifications-panel" data-testid="anomalies-panel">
          {items === null && <p>Loading…</p>}
          {items !== null && items.length === 0 && <p>No anomalies in the runs you may see.</p>}
          {items !== null && items.length > 0 && (
            <ul>
              {items.map((a) => {
                const key = anomalyKey(a);
                return (
                  <li key={key} className={fresh.has(key) ? "new" : undefined}>
                    <a
                      href={`${BASE}/runs/${encodeURIComponent(a.run_id)}`}
                      onClick={(e) => {
                        e.preventDefault();
                        setOpen(false);
                        navigate(`/runs/${encodeURIComponent(a.run_id)}`);
                      }}
                    >
                      <span className={`badge kind-${a.kind}`}>{kindLabel(a.kind)}</span>{" "}
                      <b>{(a.workflow_id && names.get(a.workflow_id)) ?? a.workflow_id ?? "inline"}</b> · {a.node_id}{" "}
                      <span className="muted">({a.node_type})</span>
                      <div>
                        {describeAnomaly(a)}
                        <span className="muted" title={a.at ?? undefined}>
                          {" "}
                          · {formatWhen(a.at, now)}
                        </span>
                      </div>
                    </a>
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      )}
    </div>
  );
});
