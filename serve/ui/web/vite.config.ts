import { defineConfig, parseAst, type Plugin } from "vite";
import type { Program } from "estree";
import react from "@vitejs/plugin-react";
import { stripDescriptions } from "./src/elkDescriptions.ts";

/** elkjs's worker script without the prose descriptions of ELK's options (src/elkDescriptions.ts). `done` keeps
 * the result across the worker bundles of one build (parsing the 1.6 MB script takes about 2 s). */
function elkDescriptions(done: Map<string, string>): Plugin {
  return {
    name: "rayweave-elk-descriptions",
    transform(code, id) {
      if (!id.split("?")[0].endsWith("elkjs/lib/elk-worker.min.js")) return null;
      let out = done.get(code);
      if (out === undefined) {
        out = stripDescriptions(code, (source) => parseAst(source) as unknown as Program).code;
        done.set(code, out);
      }
      return { code: out, map: null };
    },
  };
}

// The bundle is served by the API itself under /ui (serve/ui/routes.py), so every URL it references starts there.
// It lands in serve/ui/dist, which the Python package ships (pyproject package-data) and `make ui` builds.
export default defineConfig(() => {
  const stripped = new Map<string, string>();
  return {
    base: "/ui/",
    plugins: [react()],
    // elkjs's worker is built as a worker bundle of its own (src/layout.ts), so the plugin goes here; its 2-3 s
    // of parsing is expected (no timing report).
    worker: { plugins: () => [elkDescriptions(stripped)], rolldownOptions: { checks: { bundlerTimings: false } } },
    build: {
      outDir: "../dist",
      emptyOutDir: true,
      assetsDir: "assets",
      sourcemap: false,
      chunkSizeWarningLimit: 2000,
    },
    test: {
      include: ["src/**/*.test.ts"],
      environment: "node",
    },
  };
});
