import { describe, expect, it } from "vitest";
import { parseAst } from "vite";
import type { Program } from "estree";
import ElkApi from "elkjs/lib/elk-api.js";
import script from "elkjs/lib/elk-worker.min.js?raw";
import { toGraph } from "./graph";
import { BIG_GRAPH, toElk, type ElkNode } from "./layout";
import type { NodeSpec, WorkflowDocument } from "./model";
import { ANCHORS, stripDescriptions } from "./elkDescriptions";

const parse = (code: string) => parseAst(code) as unknown as Program;

interface Elk {
  layout(graph: ElkNode): Promise<ElkNode>;
  knownLayoutOptions(): Promise<{ id: string; description?: string }[]>;
}

/** An ELK running `code` (an elk-worker script) in this process, through elkjs's own API. */
function elkOf(code: string): Elk {
  const module = { exports: {} as { Worker?: new () => Worker } };
  new Function("module", "exports", code)(module, module.exports);
  const Worker = module.exports.Worker;
  if (!Worker) throw new Error("the script exports no Worker");
  return new ElkApi({ workerFactory: () => new Worker() }) as unknown as Elk;
}

const port = (name: string) => ({ name, type: "Int", type_json: { kind: "primitive" as const, name: "Int" } });
const ADD: NodeSpec = {
  id: "builtin/add@1", plugin: "builtin", name: "add", version: "1.0.0", description: "a + b", category: "math",
  inputs: [port("a"), port("b")], outputs: [port("out")], params: [],
};

/** bench/ui_bench.py's layered workflow: `count` adds in layers of `width`, each wired to two of the layer before. */
function layered(count: number, width: number): WorkflowDocument {
  const nodes = Object.fromEntries(
    Array.from({ length: count }, (_, i) => {
      const [layer, column] = [Math.floor(i / width), i % width];
      const before = (layer - 1) * width;
      const wiring = layer === 0 ? { a: "$inputs.a", b: { value: column } } : { a: `n${before + column}.out`, b: `n${before + ((column + 1) % width)}.out` };
      return [`n${i}`, { type: "builtin/add@1", in: wiring }];
    }),
  );
  return { format: "rayweave.workflow/1", name: "layered", inputs: { a: { type: "Int" } }, nodes, outputs: { last: `n${count - 1}.out` } };
}

describe("elkjs's worker without descriptions", () => {
  it("empties every option, algorithm and category description and lays graphs out exactly as before", async () => {
    const stripped = stripDescriptions(script, parse);
    expect(stripped.count).toBeGreaterThan(200);
    expect(stripped.saved).toBeGreaterThan(40_000);
    for (const anchor of Object.values(ANCHORS)) expect(stripped.code).not.toContain(anchor);
    const [before, after] = [elkOf(script), elkOf(stripped.code)];
    const specs = new Map([[ADD.id, ADD]]);
    // Small (the polished options: network simplex, splines) and big (the quick ones), as the page asks.
    for (const doc of [layered(12, 4), layered(BIG_GRAPH + 30, 25)]) {
      const graph = toElk(toGraph(doc, specs));
      const [a, b] = await Promise.all([before.layout(structuredClone(graph)), after.layout(structuredClone(graph))]);
      expect(b).toEqual(a);
      expect(a.children?.every((c) => typeof c.x === "number")).toBe(true);
    }
    // What it drops: the prose a tool listing ELK's options would show (this UI lists none).
    const options = await after.knownLayoutOptions();
    expect(options.find((o) => o.id === "org.eclipse.elk.randomSeed")?.description ?? "").toBe("");
  }, 60_000); // parsing and running the 1.6 MB script twice: about 5 s, more on a loaded machine

  it("empties only string literals given to the anchors' setters in builder chains", () => {
    // GWT's shape: setters `function f(a,b){a.x=b;return a}`, builders chained from `new B`.
    const code = [
      "function B(){}function id(a,b){a.i=b;return a}function nm(a,b){a.n=b;return a}function ds(a,b){a.d=b;return a}",
      "function other(a,b){return a+b}",
      ...Object.values(ANCHORS).map((anchor, i) => `r(ds(nm(id(new B,'x${i}'),'Name ${i}'),'${anchor}, and so on.'));`),
      "r(ds(nm(id(new B,'y'),'Name y'),\"Another description.\"));r(ds(nm(id(new B,'z'),'Name z'),shared));",
      "other(ds,'Not in a builder chain.');ds(new B,'Not a chain either.');",
    ].join("\n");
    const stripped = stripDescriptions(code, parse);
    expect(stripped.count).toBe(4);
    expect(stripped.code).toContain("r(ds(nm(id(new B,'y'),'Name y'),''));r(ds(nm(id(new B,'z'),'Name z'),shared));");
    expect(stripped.code).toContain("other(ds,'Not in a builder chain.');ds(new B,'Not a chain either.');");
    expect(stripped.code).toContain("'Name 0'");
    // An anchor gone (elkjs changed): the build stops, naming what to do.
    const moved = code.replace(ANCHORS.algorithm, "Places the nodes anywhere");
    expect(() => stripDescriptions(moved, parse)).toThrow(/algorithm description starting "Distributes the nodes.*update ANCHORS/);
  });
});
