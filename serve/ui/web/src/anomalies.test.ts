import { describe, expect, it } from "vitest";
import { type Anomaly, anomalyKey, badgeText, describeAnomaly, formatBytes, formatSeconds, formatWhen, loadSeen, markSeen, newAnomalies, saveSeen } from "./anomalies";

const anomaly = (run: string, kind = "duration", extra: Partial<Anomaly> = {}): Anomaly => ({
  kind,
  workflow_id: "wf",
  node_id: "n",
  node_type: "core.sleep",
  run_id: run,
  at: "2026-12-07T15:00:00+00:00",
  value: 12,
  expected: 4,
  threshold: 8,
  delay: 0,
  ...extra,
});

/** A Storage stand-in (the tests run in Node, without localStorage). */
function memoryStorage(): Pick<Storage, "getItem" | "setItem"> & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

describe("which anomalies are new", () => {
  it("counts only those not seen yet, and none once the list has been seen", () => {
    const first = [anomaly("r2"), anomaly("r1")];
    expect(newAnomalies(first, new Set())).toHaveLength(2);
    const seen = new Set(markSeen(new Set(), first));
    expect(newAnomalies(first, seen)).toEqual([]);
    // A newer run's anomaly, and another kind in a run already seen, are new.
    const later = [anomaly("r3"), anomaly("r2", "output_size"), ...first];
    expect(newAnomalies(later, seen).map(anomalyKey)).toEqual(["r3/n/duration", "r2/n/output_size"]);
  });

  it("keeps the seen keys newest first and at most the cap", () => {
    const keys = markSeen(new Set(["old/n/duration"]), [anomaly("r2"), anomaly("r1")], 2);
    expect(keys).toEqual(["r2/n/duration", "r1/n/duration"]);
    expect(markSeen(new Set(["old/n/duration"]), [anomaly("r1")])).toEqual(["r1/n/duration", "old/n/duration"]);
  });

  it("stores the seen keys per user and survives a corrupt entry", () => {
    const storage = memoryStorage();
    saveSeen(storage, "alice", ["r1/n/duration"]);
    expect([...loadSeen(storage, "alice")]).toEqual(["r1/n/duration"]);
    expect(loadSeen(storage, "bob").size).toBe(0);
    storage.data.set("rayweave.anomalies.seen.alice", "{not json");
    expect(loadSeen(storage, "alice").size).toBe(0);
    storage.data.set("rayweave.anomalies.seen.alice", '{"a": 1}');
    expect(loadSeen(storage, "alice").size).toBe(0);
    expect(loadSeen(null, "alice").size).toBe(0);
  });

  it("shows the count on the badge, 99+ beyond 99 and nothing for none", () => {
    expect(badgeText(0)).toBe("");
    expect(badgeText(7)).toBe("7");
    expect(badgeText(150)).toBe("99+");
  });
});

describe("how an anomaly reads", () => {
  it("gives the value against the expected one in the kind's unit", () => {
    expect(describeAnomaly(anomaly("r", "duration", { value: 12.34, expected: 0.5 }))).toBe("took 12 s, usually 500 ms");
    expect(describeAnomaly(anomaly("r", "output_size", { value: 3 * 2 ** 20, expected: 1536 }))).toBe("output 3.0 MiB, usually 1.5 KiB");
    expect(describeAnomaly(anomaly("r", "memory", { value: 64 * 2 ** 20, expected: 0 }))).toBe("memory +64 MiB, usually +0 B");
    expect(describeAnomaly(anomaly("r", "failure_burst", { value: 3, expected: 0.05 }))).toBe("3 failures in a row, usually fails 5% of the time");
    expect(describeAnomaly(anomaly("r", "queue", { value: 2, expected: 1 }))).toBe("2 vs 1 expected");
  });

  it("formats durations and sizes", () => {
    expect(formatSeconds(0.0123)).toBe("12 ms");
    expect(formatSeconds(3.21)).toBe("3.2 s");
    expect(formatSeconds(245)).toBe("4 min 5 s");
    expect(formatSeconds(7800)).toBe("2 h 10 min");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(20 * 2 ** 20)).toBe("20 MiB");
  });

  it("says how long ago, reading a time without a zone as UTC", () => {
    const now = Date.parse("2026-12-07T15:10:00Z");
    expect(formatWhen("2026-12-07T15:09:30+00:00", now)).toBe("just now");
    expect(formatWhen("2026-12-07T15:00:00", now)).toBe("10 min ago");
    expect(formatWhen("2026-12-07T12:00:00Z", now)).toBe("3 h ago");
    expect(formatWhen("2026-12-05T15:10:00Z", now)).toBe("2 d ago");
    expect(formatWhen(null, now)).toBe("");
    expect(formatWhen("soon", now)).toBe("");
  });
});
