// A Node.js y-websocket client of a workflow's shared document: the same Yjs and y-websocket the page uses,
// outside a browser. Used by the co-editing browser test (interop: a third client next to two browsers) and by
// bench/ui_bench.py (edit propagation and late-joiner sync through rayweave and through the JavaScript reference
// server). Needs Node.js 22, or 20 with --experimental-websocket (the global WebSocket, which takes headers).
//
//   node scripts/collab-client.mjs converge <ws://host/v1/workflows/ID>
//     Joins as "node-script" (awareness), syncs and prints "synced"; at a line "go" on stdin adds node "js" (builtin/negate@1 of sum.out); when
//     node "change_case" appears, sets
//     meta.description; when change_case.in.text is wired, prints the whole document as one JSON line and
//     stays connected until stdin closes.
//   node scripts/collab-client.mjs bench <ws://host/path> <room> [edits] [joins]
//     Two clients: A sets a value, B waits until it sees it (after 50 edits of warm-up); then `joins` fresh
//     clients connect and sync. Prints {"edit_ms": [...], "join_ms": [...]}.
//
// The API key, when the server wants one, comes from RAYWEAVE_API_KEY (sent as Authorization: Bearer).

import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";

if (typeof WebSocket !== "function") {
  console.error("no global WebSocket: use Node.js 22, or 20 with --experimental-websocket");
  process.exit(2);
}

const key = process.env.RAYWEAVE_API_KEY;
const headers = key ? { Authorization: `Bearer ${key}` } : {};

/** The global WebSocket (undici's), with the Authorization header on the handshake. */
class AuthedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, { protocols, headers });
  }
}

function connect(url, room, doc = new Y.Doc()) {
  const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: AuthedWebSocket, disableBc: true });
  const synced = new Promise((resolve) => {
    if (provider.synced) resolve();
    else provider.once("sync", () => resolve());
  });
  return { doc, provider, synced };
}

/** Resolves when `check()` holds, looked at after each change of `doc`. */
function until(doc, check) {
  return new Promise((resolve) => {
    if (check()) return resolve();
    const look = () => {
      if (!check()) return;
      doc.off("update", look);
      resolve();
    };
    doc.on("update", look);
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

function dump(doc) {
  return Object.fromEntries(["meta", "inputs", "nodes", "outputs"].map((name) => [name, doc.getMap(name).toJSON()]));
}

/** Resolves at the next line of stdin (rejects when stdin ends first). */
function nextLine() {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk) => {
      text += chunk;
      if (!text.includes("\n")) return;
      process.stdin.off("data", onData).off("end", onEnd);
      process.stdin.pause();
      resolve(text.split("\n")[0]);
    };
    const onEnd = () => reject(new Error("stdin closed"));
    process.stdin.setEncoding("utf8").on("data", onData).on("end", onEnd).resume();
  });
}

async function converge(url) {
  const { doc, provider, synced } = connect(url, "collab");
  provider.awareness.setLocalStateField("user", { name: "node-script" }); // shown among the co-editors
  await withTimeout(synced, 15000, "first sync");
  process.stdout.write("synced\n");
  await withTimeout(nextLine(), 60000, 'a line "go" on stdin');
  const nodes = doc.getMap("nodes");
  doc.transact(() => {
    const node = new Y.Map();
    node.set("type", "builtin/negate@1");
    const wiring = new Y.Map();
    wiring.set("x", "sum.out");
    node.set("in", wiring);
    node.set("params", new Y.Map());
    nodes.set("js", node);
  });
  await withTimeout(until(doc, () => nodes.has("change_case")), 30000, "node change_case added by a browser");
  doc.getMap("meta").set("description", "edited from Node.js");
  const wired = () => nodes.get("change_case")?.get("in")?.get("text") === "$inputs.s";
  await withTimeout(until(doc, wired), 30000, "change_case.text wired by a browser");
  process.stdout.write(JSON.stringify(dump(doc)) + "\n");
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on("end", resolve));
  provider.destroy();
}

async function bench(url, room, edits, joins) {
  const a = connect(url, room);
  const b = connect(url, room);
  await withTimeout(Promise.all([a.synced, b.synced]), 15000, "first sync");
  const sent = a.doc.getMap("bench");
  const seen = b.doc.getMap("bench");
  const editMs = [];
  for (let i = 0; i < edits + 50; i++) {
    const value = `v${i}`;
    const arrived = until(b.doc, () => seen.get("value") === value);
    const started = performance.now();
    sent.set("value", value);
    await withTimeout(arrived, 10000, `edit ${i}`);
    if (i >= 50) editMs.push(performance.now() - started);
  }
  const joinMs = [];
  for (let i = 0; i < joins; i++) {
    const started = performance.now();
    const late = connect(url, room);
    await withTimeout(late.synced, 10000, `late joiner ${i}`);
    joinMs.push(performance.now() - started);
    if (late.doc.getMap("bench").get("value") !== sent.get("value")) throw new Error("late joiner synced a stale document");
    late.provider.destroy();
  }
  a.provider.destroy();
  b.provider.destroy();
  process.stdout.write(JSON.stringify({ edit_ms: editMs, join_ms: joinMs }) + "\n");
}

const [mode, url, ...rest] = process.argv.slice(2);
try {
  if (mode === "converge" && url) await converge(url);
  else if (mode === "bench" && url && rest[0]) await bench(url, rest[0], Number(rest[1] ?? 500), Number(rest[2] ?? 20));
  else {
    console.error("usage: collab-client.mjs converge <ws-url> | bench <ws-url> <room> [edits] [joins]");
    process.exit(2);
  }
  process.exit(0);
} catch (error) {
  console.error(String(error?.stack ?? error));
  process.exit(1);
}
