import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The bundle is served by the API itself under /ui (serve/ui/routes.py), so every URL it references starts there.
// It lands in serve/ui/dist, which the Python package ships (pyproject package-data) and `make ui` builds.
export default defineConfig({
  base: "/ui/",
  plugins: [react()],
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
});
