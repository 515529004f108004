// Presence while co-editing: what each person shares through Yjs awareness (name, colour, pointer in graph
// coordinates, selected nodes), read back as a list of the others, and a throttle so a moving pointer sends at
// most one awareness update per interval (y-websocket sends one message per change).

/** How often a moving pointer is sent to the others at most (ms): 20 updates a second. */
export const CURSOR_INTERVAL_MS = 50;

/** Colours of people, chosen by awareness client id (distinct on white, readable as text). */
export const PEOPLE_COLOURS = ["#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#e8590c", "#0c8599", "#c2255c", "#5f3dc4"];

export interface Point {
  x: number;
  y: number;
}

/** A pointer as shared: where it is in graph coordinates, and, over a node, which node and where on it, so that
 * it is drawn on that node even where the node stands elsewhere (dragged, or laid out with other groups
 * expanded). */
export interface Cursor extends Point {
  node?: string;
  dx?: number;
  dy?: number;
}

/** A node's box in graph coordinates. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What one person's awareness state holds (fields of `awareness.setLocalStateField`). */
export interface PresenceState {
  user?: { name?: string; color?: string };
  /** The pointer in graph coordinates (React Flow's flow position), null when off the graph. */
  cursor?: Cursor | null;
  /** Ids of the nodes selected. */
  selection?: string[];
}

/** Another person in the room, as drawn. */
export interface Peer {
  id: number;
  name: string;
  color: string;
  cursor: Cursor | null;
  selection: string[];
}

/** Where another person's selected node is drawn here: the node itself when drawn, else the collapsed group
 * that holds it (a big graph is drawn with its fan-outs folded, and each person expands groups of their own),
 * else nowhere (null). */
export function drawnTarget(id: string, drawn: (id: string) => boolean, groupOf?: ReadonlyMap<string, string>): string | null {
  if (drawn(id)) return id;
  const group = groupOf?.get(id);
  return group !== undefined && drawn(group) ? group : null;
}

export function colourOf(clientId: number): string {
  return PEOPLE_COLOURS[Math.abs(clientId) % PEOPLE_COLOURS.length];
}

function isPoint(value: unknown): value is Point {
  const p = value as Point | null;
  return !!p && typeof p === "object" && Number.isFinite(p.x) && Number.isFinite(p.y);
}

function cursorOf(value: unknown): Cursor | null {
  if (!isPoint(value)) return null;
  const c = value as Cursor;
  const cursor: Cursor = { x: c.x, y: c.y };
  if (typeof c.node === "string" && c.node.length <= 256 && Number.isFinite(c.dx) && Number.isFinite(c.dy)) {
    Object.assign(cursor, { node: c.node, dx: c.dx, dy: c.dy });
  }
  return cursor;
}

function clamp(v: number, low: number, high: number): number {
  return Math.min(Math.max(v, low), Math.max(low, high));
}

/** Where to draw another person's pointer here: on the node it is over (or the collapsed group holding it),
 * at the same place on it (kept inside the box), else at its graph coordinates. */
export function cursorAt(cursor: Cursor, rectOf: (id: string) => Rect | undefined, groupOf?: ReadonlyMap<string, string>): Point {
  if (cursor.node !== undefined && cursor.dx !== undefined && cursor.dy !== undefined) {
    const target = drawnTarget(cursor.node, (id) => rectOf(id) !== undefined, groupOf);
    const r = target === null ? undefined : rectOf(target);
    if (r) return { x: r.x + clamp(cursor.dx, 0, r.w), y: r.y + clamp(cursor.dy, 0, r.h) };
  }
  return { x: cursor.x, y: cursor.y };
}

/** The people in `states` (awareness states by client id) but `self`, in a stable order; fields a client sent
 * malformed are left out rather than drawn (awareness is relayed as each client sent it). */
export function peersOf(states: Map<number, Record<string, unknown>>, self: number): Peer[] {
  const peers: Peer[] = [];
  for (const [id, raw] of states) {
    if (id === self || !raw) continue;
    const state = raw as PresenceState;
    const user = state.user && typeof state.user === "object" ? state.user : {};
    const color = typeof user.color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(user.color) ? user.color : colourOf(id);
    peers.push({
      id,
      name: typeof user.name === "string" && user.name ? user.name.slice(0, 64) : "someone",
      color,
      cursor: cursorOf(state.cursor),
      selection: Array.isArray(state.selection) ? state.selection.filter((s): s is string => typeof s === "string").slice(0, 100) : [],
    });
  }
  return peers.sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
}

export interface Throttled<T> {
  (value: T): void;
  /** Send a pending value now. */
  flush(): void;
  /** Drop a pending value. */
  cancel(): void;
}

/** `send` called at most once per `interval` ms: the first value at once, then the latest value at the end of
 * each interval (a pointer that stops is sent where it stopped). `now` and timers are injectable for tests. */
export function throttle<T>(
  send: (value: T) => void,
  interval: number,
  clock: { now: () => number; set: (fn: () => void, ms: number) => unknown; clear: (handle: unknown) => void } = {
    now: () => performance.now(),
    set: (fn, ms) => setTimeout(fn, ms),
    clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  },
): Throttled<T> {
  let last = -Infinity;
  let pending: { value: T } | null = null;
  let timer: unknown = null;
  const fire = () => {
    timer = null;
    if (!pending) return;
    const { value } = pending;
    pending = null;
    last = clock.now();
    send(value);
  };
  const throttled = ((value: T) => {
    pending = { value };
    const wait = last + interval - clock.now();
    if (wait <= 0 && timer === null) fire();
    else if (timer === null) timer = clock.set(fire, Math.max(0, wait));
  }) as Throttled<T>;
  throttled.flush = () => {
    if (timer !== null) clock.clear(timer);
    fire();
  };
  throttled.cancel = () => {
    if (timer !== null) clock.clear(timer);
    timer = null;
    pending = null;
  };
  return throttled;
}
