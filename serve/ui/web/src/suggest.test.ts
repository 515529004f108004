import { describe, expect, it } from "vitest";
import { rankBySuggestions } from "./catalog";
import type { NodeSpec } from "./model";

const spec = (id: string): NodeSpec => ({ id, plugin: "builtin", name: id, version: "1.0.0", description: "", category: "data", inputs: [], outputs: [], params: [] });

describe("rankBySuggestions", () => {
  it("puts the suggested node types first in the suggestions' order and keeps the others' order", () => {
    const found = ["a", "b", "c", "d"].map(spec);
    const ranked = rankBySuggestions(found, [
      { type: "c", port: "table", score: 0.9 },
      { type: "zz", port: null, score: 0.8 },
      { type: "a", port: "x", score: 0.5 },
    ]);
    expect(ranked.map((s) => s.id)).toEqual(["c", "a", "b", "d"]);
  });

  it("leaves the search's order alone without suggestions", () => {
    expect(rankBySuggestions(["b", "a"].map(spec), []).map((s) => s.id)).toEqual(["b", "a"]);
  });
});
