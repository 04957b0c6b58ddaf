import { defineConfig } from "tsup";

// platform "neutral": the default entry runs in browsers (no Node built-ins, no Node globals;
// test/unit/browser-safety.test.ts proves it), `./node` in Node.
export default defineConfig({
  entry: {
    index: "src/index.ts",
    node: "src/node.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "es2022",
  platform: "neutral",
});
