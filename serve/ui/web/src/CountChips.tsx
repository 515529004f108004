// The counts per state of a group's members or a map node's elements, as small coloured chips (on the group's
// box in the graph, and in the inspector).

import type { Counts } from "./groups";

/** The order chips are shown in: what needs attention first. */
const ORDER = ["running", "retrying", "failed", "succeeded", "cached", "skipped", "cancelled", "outside", "pending"];

/** `counts` as text, in chip order (`running:2 succeeded:10`): what `data-counts` holds, for scripts and tests. */
export function countsText(counts: Counts): string {
  return ORDER.filter((s) => counts[s]).map((s) => `${s}:${counts[s]}`).join(" ");
}

/** One chip per state with members in it. */
export function CountChips({ counts, testId, className }: { counts: Counts; testId?: string; className?: string }) {
  return (
    <div className={className ?? "rw-counts"} data-testid={testId} data-counts={countsText(counts)}>
      {ORDER.filter((s) => counts[s]).map((s) => (
        <span key={s} className={`badge ${s}`} title={`${counts[s]} ${s}`}>
          {counts[s]} {s}
        </span>
      ))}
    </div>
  );
}
