// Bundles an entry into one minified ESM file for Node 24 with @nxs-sync/* resolved to the
// sources (no build of the packages needed): the gateway and CLI of the images
// (scripts/build-images.mjs) and the whole-gateway benchmark's child (bench/suites/metrics-gateway.ts).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = (p) => join(root, "packages", p);
/** Where each @nxs-sync entry's source is. */
const SOURCES = {
  "@nxs-sync/core": src("core/src/index.ts"),
  "@nxs-sync/core/node": src("core/src/node/index.ts"),
  "@nxs-sync/core/memory": src("core/src/memory.ts"),
  "@nxs-sync/pocketbase": src("pocketbase/src/index.ts"),
  "@nxs-sync/queue": src("queue/src/index.ts"),
  "@nxs-sync/queue/pocketbase": src("queue/src/pocketbase/index.ts"),
  "@nxs-sync/config": src("config/src/index.ts"),
  "@nxs-sync/config/pocketbase": src("config/src/pocketbase/index.ts"),
  "@nxs-sync/metrics": src("metrics/src/index.ts"),
  "@nxs-sync/metrics/pocketbase": src("metrics/src/pocketbase/index.ts"),
  "@nxs-sync/cli": src("cli/src/index.ts"),
};

/**
 * @param {string} entry - The entry file.
 * @param {string} outfile - The bundle to write.
 * @returns {Promise<void>}
 */
export async function bundleForNode(entry, outfile) {
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    minify: true,
    legalComments: "none",
    logLevel: "error",
    // CommonJS dependencies inside an ESM bundle call require(): give them one.
    banner: {
      js: "import { createRequire as __nxsCreateRequire } from 'node:module'; const require = __nxsCreateRequire(import.meta.url);",
    },
    plugins: [
      {
        name: "nxs-sources",
        setup(b) {
          b.onResolve({ filter: /^@nxs-sync\// }, (a) =>
            SOURCES[a.path] ? { path: SOURCES[a.path] } : undefined,
          );
        },
      },
    ],
  });
}
