import { describe, expect, it } from "vitest";
import { PEOPLE_COLOURS, colourOf, cursorAt, drawnTarget, peersOf, throttle } from "./presence";

function fakeClock() {
  let t = 0;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  return {
    now: () => t,
    set: (fn: () => void, ms: number) => {
      timers.push({ at: t + ms, fn, id: next });
      return next++;
    },
    clear: (id: unknown) => {
      const i = timers.findIndex((x) => x.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    advance(ms: number) {
      t += ms;
      for (const timer of [...timers].sort((a, b) => a.at - b.at)) {
        if (timer.at <= t && timers.includes(timer)) {
          timers.splice(timers.indexOf(timer), 1);
          timer.fn();
        }
      }
    },
  };
}

describe("throttle", () => {
  it("sends the first value at once, then at most one per interval, ending with the latest", () => {
    const clock = fakeClock();
    const sent: number[] = [];
    const send = throttle((v: number) => sent.push(v), 50, clock);
    send(1);
    expect(sent).toEqual([1]);
    for (let i = 2; i <= 10; i++) {
      clock.advance(10);
      send(i);
    }
    // 90 ms of moves after the first: one send at 50 ms (the value then), the last still pending.
    expect(sent).toEqual([1, 5]);
    clock.advance(20);
    expect(sent).toEqual([1, 5, 10]); // where the pointer stopped
    clock.advance(500);
    expect(sent).toEqual([1, 5, 10]);
  });

  it("flushes a pending value now, and cancel drops it", () => {
    const clock = fakeClock();
    const sent: string[] = [];
    const send = throttle((v: string) => sent.push(v), 50, clock);
    send("a");
    send("b");
    send.flush();
    expect(sent).toEqual(["a", "b"]);
    clock.advance(10);
    send("c");
    send.cancel();
    clock.advance(100);
    expect(sent).toEqual(["a", "b"]);
  });
});

describe("peersOf", () => {
  it("lists the others with their name, colour, pointer and selection, leaving malformed fields out", () => {
    const states = new Map<number, Record<string, unknown>>([
      [1, { user: { name: "me", color: "#000000" }, cursor: { x: 1, y: 2 } }],
      [7, { user: { name: "bob", color: "#1971c2" }, cursor: { x: 10.5, y: -3, node: "sum", dx: 4, dy: "x" }, selection: ["sum"] }],
      [3, { user: { name: "alice", color: "red; background: url(x)" }, cursor: { x: "1", y: 2 }, selection: ["a", 5] }],
      [4, {}],
    ]);
    const peers = peersOf(states, 1);
    expect(peers.map((p) => p.name)).toEqual(["alice", "bob", "someone"]);
    const [alice, bob, someone] = peers;
    expect(bob).toEqual({ id: 7, name: "bob", color: "#1971c2", cursor: { x: 10.5, y: -3 }, selection: ["sum"] });
    expect(alice.color).toBe(colourOf(3)); // not a colour: the client id's own
    expect(alice.cursor).toBeNull();
    expect(alice.selection).toEqual(["a"]);
    expect(someone).toMatchObject({ cursor: null, selection: [] });
    expect(PEOPLE_COLOURS).toContain(someone.color);
  });
});

describe("drawnTarget", () => {
  it("outlines the node, else the collapsed group holding it, else nothing", () => {
    const drawn = new Set(["a", "f0…f9"]);
    const groupOf = new Map([["f3", "f0…f9"], ["g1", "g0…g9"]]);
    const has = (id: string) => drawn.has(id);
    expect(drawnTarget("a", has, groupOf)).toBe("a");
    expect(drawnTarget("f3", has, groupOf)).toBe("f0…f9");
    expect(drawnTarget("g1", has, groupOf)).toBeNull(); // its group is not drawn here either
    expect(drawnTarget("gone", has)).toBeNull();
  });
});

describe("cursorAt", () => {
  const rects = new Map([
    ["sum", { x: 100, y: 50, w: 200, h: 80 }],
    ["f0…f9", { x: 400, y: 0, w: 200, h: 60 }],
  ]);
  const rectOf = (id: string) => rects.get(id);
  it("draws a pointer over a node at the same place on that node, wherever the node stands here", () => {
    expect(cursorAt({ x: 5, y: 5, node: "sum", dx: 20, dy: 30 }, rectOf)).toEqual({ x: 120, y: 80 });
    // On a member folded into a group here: on the group, kept inside its box.
    expect(cursorAt({ x: 5, y: 5, node: "f3", dx: 20, dy: 300 }, rectOf, new Map([["f3", "f0…f9"]]))).toEqual({ x: 420, y: 60 });
  });
  it("falls back to the graph coordinates off the nodes or when the node is not drawn here", () => {
    expect(cursorAt({ x: 5, y: 6 }, rectOf)).toEqual({ x: 5, y: 6 });
    expect(cursorAt({ x: 5, y: 6, node: "gone", dx: 1, dy: 1 }, rectOf)).toEqual({ x: 5, y: 6 });
  });
});
