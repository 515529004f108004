// A map node's sub-workflow drawn in the run page's inspector (src/mapLayout.ts lays it out): across all
// elements, each box counts its node's elements per state; for one element (a node `each[3].sq` selected),
// each box has that element's state and a click opens that node.

import { useMemo } from "react";
import { countsStatus, elementStates, innerCounts, subGraph } from "./mapLayout";

const W = 132;
const H = 40;
const GAP_X = 36;
const GAP_Y = 14;

export function MapGraph({
  map,
  workflow,
  states,
  element,
  selectedInner,
  onPick,
}: {
  map: string;
  workflow: unknown;
  states: Readonly<Record<string, { status: string }>>;
  /** The element shown (its index), or null for counts across all elements. */
  element: number | null;
  selectedInner: string | null;
  onPick: (node: string) => void;
}) {
  const graph = useMemo(() => subGraph(workflow), [workflow]);
  const counts = useMemo(() => (element === null ? innerCounts(map, states) : null), [map, states, element]);
  const mine = useMemo(() => (element !== null ? elementStates(map, element, states) : null), [map, states, element]);
  if (!graph) return null;
  const at = new Map(graph.nodes.map((n) => [n.id, { x: n.depth * (W + GAP_X), y: n.row * (H + GAP_Y) }]));
  const width = graph.depth * (W + GAP_X) - GAP_X;
  const height = graph.rows * (H + GAP_Y) - GAP_Y;
  // Across elements, a click opens the node in the first element where it failed, else in element 0.
  const target = (inner: string): string => {
    if (element !== null) return `${map}[${element}].${inner}`;
    const failed = Object.keys(states).find((n) => n.startsWith(`${map}[`) && n.endsWith(`].${inner}`) && states[n].status === "failed");
    return failed ?? `${map}[0].${inner}`;
  };
  return (
    <div className="map-graph" data-testid="map-graph">
      <h4>{element === null ? "Sub-workflow, all elements" : `Sub-workflow, element [${element}]`}</h4>
      <svg width={width + 2} height={height + 2} viewBox={`-1 -1 ${width + 2} ${height + 2}`} role="img" aria-label={`sub-workflow of ${map}`}>
        {graph.edges.map((e, i) => {
          const a = at.get(e.from);
          const b = at.get(e.to);
          if (!a || !b) return null;
          const x1 = a.x + W;
          const y1 = a.y + H / 2;
          const x2 = b.x;
          const y2 = b.y + H / 2;
          const mid = (x1 + x2) / 2;
          return <path key={i} className="map-wire" d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`} />;
        })}
        {graph.nodes.map((n) => {
          const p = at.get(n.id) as { x: number; y: number };
          const c = counts?.get(n.id);
          const status = mine ? (mine.get(n.id) ?? "pending") : countsStatus(c);
          const label = mine ? status : c ? Object.entries(c).map(([s, k]) => `${k} ${s}`).join(", ") : "not run";
          return (
            <g
              key={n.id}
              className={`map-box ${status}${selectedInner === n.id ? " selected" : ""}`}
              transform={`translate(${p.x},${p.y})`}
              onClick={() => onPick(target(n.id))}
              data-testid={`map-node-${n.id}`}
              data-status={status}
              data-counts={c ? Object.entries(c).map(([s, k]) => `${s}=${k}`).sort().join(",") : ""}
            >
              <title>{`${n.id} (${n.type}): ${label}`}</title>
              <rect width={W} height={H} rx={5} />
              <text x={8} y={16} className="map-name">
                {n.id.length > 16 ? n.id.slice(0, 15) + "…" : n.id}
              </text>
              <text x={8} y={32} className="map-state">
                {label.length > 22 ? label.slice(0, 21) + "…" : label}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
