// A workflow graph drawn with React Flow: boxes with typed ports (colour and label by type), wires coloured by
// the type they carry, and decorations from whoever shows it (run states, diff changes, diagnostics).

import {
  Background,
  Controls,
  Handle,
  Position as Side,
  ReactFlow,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
  type NodeProps,
} from "@xyflow/react";
import { memo, useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import type { Graph, GraphEdge, GraphNode, GraphPort } from "./graph";
import { INPUTS_ID, OUTPUTS_ID } from "./graph";
import { BIG_GRAPH, HEADER_HEIGHT, NODE_WIDTH, ROW_HEIGHT, layoutGraph, nodeHeight, portY, type Position } from "./layout";
import type { Diagnostic } from "./model";
import { NodeStatesContext, useNodeState, type NodeStates } from "./nodeStates";
import { typeColour, typeLabel } from "./typeColors";
import { CountChips } from "./CountChips";
import { quickLayout } from "./quickLayout";

export interface NodeDecoration {
  status?: string;
  change?: string;
  diagnostics?: Diagnostic[];
  progress?: number | null;
}

export interface EdgeDecoration {
  className?: string;
  label?: string;
  title?: string;
}

type BoxData = { node: GraphNode; deco: NodeDecoration };
type BoxNode = Node<BoxData, "box">;

function portColour(p: GraphPort): string {
  return typeColour(p.type, p.spec?.type_json);
}

function constantText(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 14 ? text.slice(0, 13) + "…" : text;
}

const Box = memo(function Box({ data, selected }: NodeProps<BoxNode>) {
  const { node } = data;
  const live = useNodeState(node.id);
  const deco = live ? { ...data.deco, ...live } : data.deco;
  const pseudo = node.id === INPUTS_ID || node.id === OUTPUTS_ID;
  const classes = ["rw-node", pseudo ? "pseudo" : "", selected ? "selected" : "", node.unknown ? "unknown" : ""];
  if (deco.status) classes.push(`status-${deco.status}`);
  if (deco.change) classes.push(`change-${deco.change}`);
  if (deco.diagnostics?.some((d) => d.severity === "error")) classes.push("has-error");
  return (
    <div className={classes.join(" ")} style={{ width: NODE_WIDTH, height: nodeHeight(node) }} data-testid={`node-${node.id}`} data-status={deco.status ?? ""} data-change={deco.change ?? ""}>
      <div className="rw-node-header" style={{ height: HEADER_HEIGHT }} title={node.spec?.description ?? node.type}>
        <span className="rw-node-name">{pseudo ? (node.id === INPUTS_ID ? "inputs" : "outputs") : node.id}</span>
        <span className="rw-node-type">{pseudo ? "" : node.type}</span>
        {deco.status && <span className={`badge ${deco.status}`}>{deco.status}</span>}
        {deco.diagnostics && deco.diagnostics.length > 0 && (
          <span className="badge diag" title={deco.diagnostics.map((d) => `${d.code}: ${d.message}`).join("\n")}>
            {deco.diagnostics[0].code}
          </span>
        )}
        {typeof deco.progress === "number" && <span className="progress" style={{ width: `${Math.round(deco.progress * 100)}%` }} />}
      </div>
      {live?.counts && <CountChips counts={live.counts} testId={`counts-${node.id}`} />}
      {node.inputs.map((p) => (
        <div key={`in-${p.name}`} className="rw-port in" style={{ top: portY(node, "in", p.name) - ROW_HEIGHT / 2, height: ROW_HEIGHT }} data-testid={`port-${node.id}-in-${p.name}`} data-type={p.type}>
          <Handle type="target" position={Side.Left} id={p.name} style={{ background: portColour(p) }} />
          <span className="rw-port-name">{p.name}</span>
          {p.constant !== undefined && <span className="rw-constant">= {constantText(p.constant)}</span>}
          <span className="rw-type" style={{ color: portColour(p) }} title={p.type}>
            {typeLabel(p.type)}
          </span>
        </div>
      ))}
      {node.outputs.map((p) => (
        <div key={`out-${p.name}`} className="rw-port out" style={{ top: portY(node, "out", p.name) - ROW_HEIGHT / 2, height: ROW_HEIGHT }} data-testid={`port-${node.id}-out-${p.name}`} data-type={p.type}>
          <span className="rw-type" style={{ color: portColour(p) }} title={p.type}>
            {typeLabel(p.type)}
          </span>
          <span className="rw-port-name">{p.name}</span>
          <Handle type="source" position={Side.Right} id={p.name} style={{ background: portColour(p) }} />
        </div>
      ))}
    </div>
  );
});

const nodeTypes = { box: Box };

function sameDecoration(a: NodeDecoration, b: NodeDecoration): boolean {
  return a.status === b.status && a.change === b.change && a.progress === b.progress && a.diagnostics === b.diagnostics;
}

/** The cached data of node `n` when nothing it shows changed, else new data (remembered for next time). */
function stableData(cache: Map<string, BoxData>, node: GraphNode, deco: NodeDecoration): BoxData {
  const old = cache.get(node.id);
  if (old && old.node === node && sameDecoration(old.deco, deco)) return old;
  const data = { node, deco };
  cache.set(node.id, data);
  return data;
}

/** A structural fingerprint: the layout is recomputed only when nodes, ports or wires change. */
function shapeOf(graph: Graph): string {
  return JSON.stringify([graph.nodes.map((n) => [n.id, n.inputs.length, n.outputs.length]), graph.edges.map((e) => e.id)]);
}

/** Positions of `graph`'s nodes laid out by elkjs (null until the first layout is done), and whether they are
 * the layout of the graph's present shape (false while a recomputed layout is pending). */
export function useLayout(graph: Graph): { positions: Map<string, Position> | null; current: boolean } {
  const [laid, setLaid] = useState<{ positions: Map<string, Position>; shape: string } | null>(null);
  const shape = shapeOf(graph);
  useEffect(() => {
    let live = true;
    layoutGraph(graph).then((p) => live && setLaid({ positions: p, shape }));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);
  // Until elk's first layout arrives, a quick one is drawn (src/quickLayout.ts): the graph paints at once.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const quick = useMemo(() => (laid ? null : quickLayout(graph)), [laid === null, shape]);
  return { positions: laid?.positions ?? quick, current: laid?.shape === shape };
}

export interface GraphViewProps {
  graph: Graph;
  decorate?: (node: GraphNode) => NodeDecoration;
  decorateEdge?: (edge: GraphEdge) => EdgeDecoration;
  editable?: boolean;
  onConnect?: (edge: Omit<GraphEdge, "id">) => void;
  onDisconnect?: (edge: GraphEdge) => void;
  onRemoveNode?: (id: string) => void;
  onSelect?: (id: string | null) => void;
  selected?: string | null;
  /** Live node decorations (a run's states), read by each box on its own. */
  states?: NodeStates;
  /** Drawn inside React Flow, over the graph (co-editors' pointers and selections: src/Presence.tsx). */
  children?: ReactNode;
}

/** How many nodes the view of a big graph is fitted to at first. */
const FIT_NODES = 60;

/** Fits the view to the graph (to its start when big) whenever a layout is applied (the first and every recomputed one). */
function FitOnLayout({ layout, count, onFitted }: { layout: Map<string, Position>; count: number; onFitted: (layout: Map<string, Position>) => void }) {
  const { fitView } = useReactFlow();
  useEffect(() => {
    if (count === 0) return;
    // A big graph fitted whole is unreadable (1,000 nodes at a zoom of 0.1) and draws every node: fit its
    // start (the first nodes from the left) instead; zooming out shows the rest.
    const start =
      layout.size > BIG_GRAPH
        ? [...layout]
            .sort(([, a], [, b]) => a.x - b.x || a.y - b.y)
            .slice(0, FIT_NODES)
            .map(([id]) => ({ id }))
        : undefined;
    const frame = requestAnimationFrame(() => void fitView({ padding: 0.05, minZoom: 0.05, nodes: start }).then(() => onFitted(layout)));
    return () => cancelAnimationFrame(frame);
  }, [layout, count > 0, fitView, onFitted]);
  return null;
}

/** A graph drawn with React Flow. Memoised: a parent re-rendering with the same props (a run page folding
 * events) does not re-render it; live node states come through `states` and re-render only their boxes. */
export const GraphView = memo(function GraphView(props: GraphViewProps) {
  const { graph, decorate, decorateEdge, editable, onConnect, onDisconnect, onRemoveNode, onSelect, selected, states, children } = props;
  const { positions: layout, current } = useLayout(graph);
  // The view is settled when the layout of the present shape is applied and the view fitted to it: until then
  // boxes may still move (tests, and anyone scripting the page, wait for data-settled before dragging).
  const [fitted, setFitted] = useState<Map<string, Position> | null>(null);
  const [nodes, setNodes] = useState<BoxNode[]>([]);
  // The data of a node keeps its identity while its node and decoration are unchanged, so a run event
  // re-renders only the boxes whose state it changed (Box is memoised on its props).
  const dataCache = useRef(new Map<string, BoxData>());
  const computed = useMemo(() => {
    if (!layout) return [];
    const cache = dataCache.current;
    return graph.nodes.map<BoxNode>((n) => ({
      id: n.id,
      type: "box",
      position: layout.get(n.id) ?? { x: 0, y: 0 },
      data: stableData(cache, n, decorate ? decorate(n) : {}),
      width: NODE_WIDTH,
      height: nodeHeight(n),
      selected: selected === n.id,
      deletable: editable && n.id !== INPUTS_ID && n.id !== OUTPUTS_ID,
    }));
  }, [graph, layout, decorate, selected, editable]);
  // Keep what React Flow measured and where the user dragged a node, until the layout itself changes.
  useEffect(() => {
    setNodes((previous) => {
      const before = new Map(previous.map((n) => [n.id, n]));
      return computed.map((n) => {
        const old = before.get(n.id);
        if (old && old.data === n.data && old.selected === n.selected && old.deletable === n.deletable) return old;
        return old ? { ...old, data: n.data, selected: n.selected, width: n.width, height: n.height, deletable: n.deletable } : n;
      });
    });
  }, [computed]);
  useEffect(() => {
    setNodes((previous) => previous.map((n) => ({ ...n, position: layout?.get(n.id) ?? n.position })));
  }, [layout]);
  const onNodesChange = useCallback((changes: NodeChange<BoxNode>[]) => {
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), ns));
  }, []);
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    setSelectedEdges((previous) => {
      const next = new Set(previous);
      for (const c of changes) if (c.type === "select") (c.selected ? next.add(c.id) : next.delete(c.id));
      return next;
    });
  }, []);
  const edges = useMemo<Edge[]>(() => {
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    return graph.edges.map((e) => {
        const source = byId.get(e.source);
        const port = source?.outputs.find((p) => p.name === e.sourcePort);
        const deco = decorateEdge ? decorateEdge(e) : {};
        return {
          id: e.id,
          source: e.source,
          target: e.target,
          sourceHandle: e.sourcePort,
          targetHandle: e.targetPort,
          className: deco.className,
          label: deco.label,
          style: { stroke: port ? portColour(port) : "#999", strokeWidth: 2 },
          deletable: !!editable,
          selectable: !!editable,
          selected: selectedEdges.has(e.id),
          data: { title: deco.title },
        };
      });
  }, [graph, decorateEdge, editable, selectedEdges]);
  const connect = useCallback(
    (c: Connection) => {
      if (onConnect && c.sourceHandle && c.targetHandle) onConnect({ source: c.source, sourcePort: c.sourceHandle, target: c.target, targetPort: c.targetHandle });
    },
    [onConnect],
  );
  if (!layout) return <div className="graph loading">Laying out…</div>;
  return (
    <div className="graph" data-testid="graph" data-nodes={nodes.length} data-settled={current && fitted === layout} aria-busy={!(current && fitted === layout)}>
      <NodeStatesContext.Provider value={states ?? null}>
      <ReactFlow<BoxNode, Edge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={editable ? connect : undefined}
        nodesConnectable={!!editable}
        onEdgesDelete={editable && onDisconnect ? (es) => es.forEach((e) => onDisconnect(graph.edges.find((g) => g.id === e.id)!)) : undefined}
        onNodesDelete={editable && onRemoveNode ? (ns) => ns.forEach((n) => onRemoveNode(n.id)) : undefined}
        onNodeClick={(_e, n) => onSelect?.(n.id)}
        onPaneClick={() => onSelect?.(null)}
        onlyRenderVisibleElements={graph.nodes.length > BIG_GRAPH}
        minZoom={0.05}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
        <FitOnLayout layout={layout} count={nodes.length} onFitted={setFitted} />
        {children}
      </ReactFlow>
      </NodeStatesContext.Provider>
    </div>
  );
});
