// Others' pointers and selections on the graph while co-editing (Yjs awareness, src/presence.ts). Rendered
// inside React Flow (a child of GraphView): pointers are shared in graph coordinates, so each person sees
// another's pointer over the same node whatever their own pan and zoom; drawn in React Flow's viewport, over
// the nodes, never catching the mouse. Only this component re-renders when someone moves.

import { ViewportPortal, useReactFlow, useStore, useStoreApi, type ReactFlowState } from "@xyflow/react";
import { useCallback, useEffect, useState } from "react";
import type { WebsocketProvider } from "y-websocket";
import { CURSOR_INTERVAL_MS, colourOf, cursorAt, drawnTarget, peersOf, throttle, type Cursor, type Peer, type Rect } from "./presence";

export type Awareness = WebsocketProvider["awareness"];

/** The others in the room, read again at each awareness change. */
export function usePeers(awareness: Awareness | null): Peer[] {
  const [peers, setPeers] = useState<Peer[]>([]);
  useEffect(() => {
    if (!awareness) return setPeers([]);
    const read = () => setPeers(peersOf(awareness.getStates() as Map<number, Record<string, unknown>>, awareness.clientID));
    read();
    awareness.on("change", read);
    return () => awareness.off("change", read);
  }, [awareness]);
  return peers;
}

/** Announce who this is in the room: name and a colour of its own. */
export function announce(awareness: Awareness, name: string): void {
  awareness.setLocalStateField("user", { name, color: colourOf(awareness.clientID) });
}

/** Where the given nodes are (graph coordinates), as a string so the component re-renders only when one moves. */
function rectsOf(ids: string[]) {
  return (s: ReactFlowState): string =>
    ids
      .map((id) => {
        const n = s.nodeLookup.get(id);
        if (!n) return "";
        const p = n.internals.positionAbsolute;
        return `${id}\t${p.x}\t${p.y}\t${n.measured.width ?? n.width ?? 0}\t${n.measured.height ?? n.height ?? 0}`;
      })
      .filter(Boolean)
      .join("\n");
}

function parseRects(text: string): Map<string, Rect> {
  const out = new Map<string, Rect>();
  for (const line of text ? text.split("\n") : []) {
    const [id, x, y, w, h] = line.split("\t");
    out.set(id, { x: Number(x), y: Number(y), w: Number(w), h: Number(h) });
  }
  return out;
}

/** Shares this person's pointer (throttled) and selection, and draws everyone else's. `groupOf` (member id ->
 * group id) lets a selected node folded into a group here be outlined as its group. */
export function Presence({ awareness, selected, groupOf }: { awareness: Awareness; selected: string | null; groupOf?: ReadonlyMap<string, string> }) {
  const { screenToFlowPosition } = useReactFlow();
  const flow = useStoreApi();
  const peers = usePeers(awareness);

  useEffect(() => {
    const dom = flow.getState().domNode;
    if (!dom) return;
    const send = throttle((cursor: Cursor | null) => awareness.setLocalStateField("cursor", cursor), CURSOR_INTERVAL_MS);
    // Capture: seen also while React Flow drags a node or a wire (it stops those events' propagation).
    const move = (e: PointerEvent) => {
      const at = screenToFlowPosition({ x: e.clientX, y: e.clientY });
      // Over a node: which one and where on it, so others see the pointer on that node wherever it stands.
      const id = (e.target as Element | null)?.closest?.(".react-flow__node")?.getAttribute("data-id");
      const node = id ? flow.getState().nodeLookup.get(id) : undefined;
      if (!id || !node) return send(at);
      const p = node.internals.positionAbsolute;
      send({ ...at, node: id, dx: at.x - p.x, dy: at.y - p.y });
    };
    const leave = () => {
      send(null);
      send.flush();
    };
    dom.addEventListener("pointermove", move, { capture: true });
    dom.addEventListener("pointerleave", leave);
    return () => {
      dom.removeEventListener("pointermove", move, { capture: true });
      dom.removeEventListener("pointerleave", leave);
      send.cancel();
      awareness.setLocalStateField("cursor", null);
    };
  }, [awareness, flow, screenToFlowPosition]);

  useEffect(() => awareness.setLocalStateField("selection", selected ? [selected] : []), [awareness, selected]);

  const ids = [...peers.flatMap((p) => p.selection), ...peers.flatMap((p) => (p.cursor?.node ? [p.cursor.node] : []))];
  const wanted = [...new Set([...ids, ...ids.map((id) => groupOf?.get(id) ?? id)])].sort();
  const key = wanted.join("\n");
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const select = useCallback(rectsOf(wanted), [key]);
  const rects = parseRects(useStore(select));
  // Pointers keep their size on screen whatever the zoom.
  const zoom = useStore((s) => s.transform[2]);

  return (
    <ViewportPortal>
      <div className="rw-presence" data-testid="presence" style={{ position: "absolute", left: 0, top: 0, pointerEvents: "none" }}>
        {peers.flatMap((p) =>
          p.selection.map((id) => {
            const target = drawnTarget(id, (x) => rects.has(x), groupOf);
            const r = target === null ? undefined : rects.get(target);
            if (!r) return null;
            const pad = 4 / zoom;
            return (
              <div
                key={`sel-${p.id}-${id}`}
                data-testid={`remote-selection-${id}`}
                data-user={p.name}
                data-color={p.color}
                data-drawn-as={target}
                title={target === id ? `${p.name} selected ${id}` : `${p.name} selected ${id} (in ${target})`}
                style={{
                  position: "absolute",
                  transform: `translate(${r.x - pad}px, ${r.y - pad}px)`,
                  width: r.w + 2 * pad,
                  height: r.h + 2 * pad,
                  border: `${2 / zoom}px solid ${p.color}`,
                  borderRadius: 6 / zoom,
                  boxShadow: `0 0 0 ${1 / zoom}px white`,
                }}
              >
                <span style={{ position: "absolute", right: 0, top: 0, transform: `translateY(-100%) scale(${1 / zoom})`, transformOrigin: "right bottom", background: p.color, color: "white", font: "11px system-ui, sans-serif", padding: "1px 4px", borderRadius: 3, whiteSpace: "nowrap" }}>
                  {p.name}
                </span>
              </div>
            );
          }),
        )}
        {peers.map((p) => {
          if (!p.cursor) return null;
          const at = cursorAt(p.cursor, (id) => rects.get(id), groupOf);
          return (
            <div
              key={`cur-${p.id}`}
              data-testid="remote-cursor"
              data-user={p.name}
              data-color={p.color}
              data-over={p.cursor.node ?? ""}
              style={{ position: "absolute", transform: `translate(${at.x}px, ${at.y}px) scale(${1 / zoom})`, transformOrigin: "0 0", transition: "transform 60ms linear" }}
            >
              <svg width="16" height="20" viewBox="0 0 16 20" style={{ display: "block" }} aria-hidden="true">
                <path d="M1 1 L1 16 L5 12 L8 19 L11 18 L8 11 L14 11 Z" fill={p.color} stroke="white" strokeWidth="1.5" />
              </svg>
              <span style={{ position: "absolute", left: 14, top: 16, background: p.color, color: "white", font: "11px system-ui, sans-serif", padding: "1px 4px", borderRadius: 3, whiteSpace: "nowrap" }}>
                {p.name}
              </span>
            </div>
          );
        })}
      </div>
    </ViewportPortal>
  );
}
