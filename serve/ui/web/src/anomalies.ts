// The header's anomaly notifications (Notifications.tsx): which anomalies of GET /v1/analytics/anomalies are
// new to this browser (the "seen" ones are kept in localStorage per user), and how each one reads.

/** One anomalous execution, as `GET /v1/analytics/anomalies` gives it (serve/api/v1/analytics.py, AnomalyOut). */
export interface Anomaly {
  kind: string;
  workflow_id: string | null;
  node_id: string;
  node_type: string;
  run_id: string;
  /** When its run was created (ISO 8601), or null. */
  at: string | null;
  value: number;
  expected: number;
  threshold: number;
  delay: number;
}

/** How many seen keys are kept: far more than one answer of the list holds (50), so none is forgotten early. */
export const SEEN_CAP = 500;

/** What identifies an anomaly: one kind per node per run at most (the detector finds no more). */
export function anomalyKey(a: Anomaly): string {
  return `${a.run_id}/${a.node_id}/${a.kind}`;
}

/** The anomalies of `items` whose key is not in `seen`, in the order given (newest first). */
export function newAnomalies(items: Anomaly[], seen: ReadonlySet<string>): Anomaly[] {
  return items.filter((a) => !seen.has(anomalyKey(a)));
}

/** The seen keys once `items` have been seen: theirs first, then the earlier ones, at most `cap`. */
export function markSeen(seen: ReadonlySet<string>, items: Anomaly[], cap = SEEN_CAP): string[] {
  const keys = items.map(anomalyKey);
  const fresh = new Set(keys);
  return [...keys, ...[...seen].filter((k) => !fresh.has(k))].slice(0, cap);
}

/** The text of the badge: nothing for none, 99+ beyond 99. */
export function badgeText(count: number): string {
  if (count <= 0) return "";
  return count > 99 ? "99+" : String(count);
}

/** The storage (localStorage) key of `user`'s seen anomalies. */
export function seenStorageKey(user: string): string {
  return `rayweave.anomalies.seen.${user}`;
}

/** The seen keys stored for `user`; an empty set when none are, or what is stored is not a list of strings. */
export function loadSeen(storage: Pick<Storage, "getItem"> | null, user: string): Set<string> {
  try {
    const parsed: unknown = JSON.parse(storage?.getItem(seenStorageKey(user)) ?? "[]");
    return new Set(Array.isArray(parsed) ? parsed.filter((k): k is string => typeof k === "string") : []);
  } catch {
    return new Set();
  }
}

/** Store `keys` as `user`'s seen anomalies (a full or refused storage is ignored: the count just stays). */
export function saveSeen(storage: Pick<Storage, "setItem"> | null, user: string, keys: string[]): void {
  try {
    storage?.setItem(seenStorageKey(user), JSON.stringify(keys));
  } catch {
    // Private browsing or a full quota: nothing to keep.
  }
}

/** Seconds as people read them: 850 ms, 12.3 s, 4 min 5 s, 2 h 10 min. */
export function formatSeconds(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Bytes in binary units: 512 B, 1.5 KiB, 20 MiB. */
export function formatBytes(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = b;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** What was seen against what was expected, in the kind's unit. */
export function describeAnomaly(a: Anomaly): string {
  switch (a.kind) {
    case "duration":
      return `took ${formatSeconds(a.value)}, usually ${formatSeconds(a.expected)}`;
    case "output_size":
      return `output ${formatBytes(a.value)}, usually ${formatBytes(a.expected)}`;
    case "memory":
      return `memory +${formatBytes(a.value)}, usually +${formatBytes(a.expected)}`;
    case "failure_burst":
      return `${Math.round(a.value)} failures in a row, usually fails ${Math.round(a.expected * 100)}% of the time`;
    default:
      return `${a.value} vs ${a.expected} expected`;
  }
}

/** The kind as a label: duration → slow, output_size → big output, memory → memory, failure_burst → failures. */
export function kindLabel(kind: string): string {
  return ({ duration: "slow", output_size: "big output", memory: "memory", failure_burst: "failures" } as Record<string, string>)[kind] ?? kind;
}

/** How long ago `at` was, relative to `now` (milliseconds since the epoch): just now, 5 min ago, 3 h ago, 2 d ago. */
export function formatWhen(at: string | null, now: number): string {
  if (!at) return "";
  // The server's times are UTC; one without a zone (a naive datetime's isoformat) is read as UTC too.
  const then = Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(at) ? at : `${at}Z`);
  if (Number.isNaN(then)) return "";
  const s = Math.max(0, (now - then) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
