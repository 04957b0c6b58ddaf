import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Vitest 4+ no longer reads a workspace file by this name on its own: the scripts pass
// `--config vitest.workspace.ts`, and the projects are declared under `test.projects`.

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Tests import the packages' sources, not their builds, so no build is needed before a test run. */
const alias = [
  { find: /^@nxs-sync\/core\/memory$/, replacement: here("./packages/core/src/memory.ts") },
  { find: /^@nxs-sync\/core\/node$/, replacement: here("./packages/core/src/node/index.ts") },
  {
    find: /^@nxs-sync\/testing\/conformance$/,
    replacement: here("./packages/testing/src/conformance/index.ts"),
  },
  { find: /^@nxs-sync\/testing\/vitest$/, replacement: here("./packages/testing/src/vitest-hooks.ts") },
  { find: /^@nxs-sync\/queue\/pocketbase$/, replacement: here("./packages/queue/src/pocketbase/index.ts") },
  { find: /^@nxs-sync\/config\/pocketbase$/, replacement: here("./packages/config/src/pocketbase/index.ts") },
  {
    find: /^@nxs-sync\/metrics\/pocketbase$/,
    replacement: here("./packages/metrics/src/pocketbase/index.ts"),
  },
  { find: /^@nxs-sync\/client\/node$/, replacement: here("./packages/client/src/node.ts") },
  {
    find: /^@nxs-sync\/(core|pocketbase|queue|config|metrics|client|cli|testing|nats)$/,
    replacement: here("./packages/$1/src/index.ts"),
  },
];

const packages = [
  "core",
  "pocketbase",
  "queue",
  "config",
  "metrics",
  "client",
  "cli",
  "testing",
  "nats",
] as const;

/** The settings of the projects that start real servers (PocketBase, NATS, containers). */
const realServers = {
  root: here("./"),
  environment: "node" as const,
  globalSetup: [here("./packages/testing/src/vitest-global-setup.ts")],
  testTimeout: 120_000,
  hookTimeout: 120_000,
  // Real servers share two cores: keep files sequential, tests inside a file sequential.
  fileParallelism: false,
  sequence: { concurrent: false },
};

export default defineConfig({
  resolve: { alias },
  test: {
    // Off unless asked (`--coverage.enabled`, as scripts/test-all.sh does for the unit projects):
    // a floor on core, the package every other one builds on. Measured at 94% lines / 85% branches.
    coverage: {
      provider: "v8",
      include: ["packages/core/src/**"],
      reporter: ["text-summary"],
      reportsDirectory: ".test-results/coverage",
      thresholds: { lines: 90, statements: 88, functions: 88, branches: 80 },
    },
    projects: [
      ...packages.map((name) => ({
        resolve: { alias },
        test: {
          name: `unit:${name}`,
          root: here("./"),
          include: [`packages/${name}/test/unit/**/*.test.ts`],
          typecheck: { enabled: true, include: [`packages/${name}/test/unit/**/*.test-d.ts`] },
          environment: "node",
        },
      })),
      {
        resolve: { alias },
        test: {
          name: "integration",
          include: ["packages/*/test/integration/**/*.int.test.ts", "examples/*/test/**/*.int.test.ts"],
          ...realServers,
        },
      },
      // Runs of real servers too long for `npm test`'s budget: `npm run test:long` runs them.
      {
        resolve: { alias },
        test: {
          name: "long",
          include: ["packages/*/test/long/**/*.long.test.ts", "examples/*/test/**/*.long.test.ts"],
          ...realServers,
        },
      },
    ],
  },
});
