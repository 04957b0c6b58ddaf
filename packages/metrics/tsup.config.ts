import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    pocketbase: "src/pocketbase/index.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node22",
  platform: "node",
  // import.meta.url in the CJS build (metricsHookPiece reads pb_hooks/ beside dist/).
  shims: true,
});
