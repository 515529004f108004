// A layout computed at once, in the page, for a graph's first paint: the page draws it while elkjs (a 1.6 MB
// script compiled in a worker) is still starting, then moves the boxes to elk's layout (tested in
// groups.test.ts). Columns by depth, left to right, boxes stacked in document order.

import type { Graph } from "./graph";
import { depths } from "./groups";
import { NODE_WIDTH, nodeHeight, type Position } from "./layout";

/** The gaps the elk layout uses too (layout.ts): between columns, and between boxes in a column. */
const COLUMN_GAP = 70;
const ROW_GAP = 36;

/** Positions of `graph`'s nodes: column = depth (the longest path to the node), rows in document order. */
export function quickLayout(graph: Graph): Map<string, Position> {
  const depth = depths(graph);
  const bottom = new Map<number, number>();
  const positions = new Map<string, Position>();
  for (const node of graph.nodes) {
    const column = depth.get(node.id) ?? 0;
    const y = bottom.get(column) ?? 0;
    positions.set(node.id, { x: column * (NODE_WIDTH + COLUMN_GAP), y });
    bottom.set(column, y + nodeHeight(node) + ROW_GAP);
  }
  return positions;
}
