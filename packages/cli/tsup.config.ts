import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", bin: "src/bin.ts" },
  format: ["esm", "cjs"],
  dts: { entry: { index: "src/index.ts" } },
  clean: true,
  sourcemap: true,
  target: "node22",
  platform: "node",
  shims: true,
  // The workspace packages stay imports: @nxs-sync/queue and @nxs-sync/config are optional (loaded
  // with a dynamic import when installed) and their hook pieces read pb_hooks/ beside their own dist.
  external: [/^@nxs-sync\//],
});
