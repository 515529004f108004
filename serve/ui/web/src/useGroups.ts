// A graph drawn with its big fan-outs folded (src/groups.ts), and which groups the user expanded.

import { useCallback, useMemo, useState } from "react";
import type { Graph } from "./graph";
import { groupGraph, type Grouping } from "./groups";

/** `graph` as drawn (folded when big), and `expand` to draw a group member by member. */
export function useGroups(graph: Graph): { grouping: Grouping; expand: (group: string) => void } {
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const grouping = useMemo(() => groupGraph(graph, expanded), [graph, expanded]);
  const expand = useCallback((group: string) => setExpanded((e) => new Set([...e, group])), []);
  return { grouping, expand };
}
