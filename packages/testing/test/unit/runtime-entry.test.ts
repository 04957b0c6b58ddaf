import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

// `@nxs-sync/testing` is imported by the runtime code of examples and benchmarks: its entry must not
// load vitest (the lifecycle helpers are in `./vitest`, the conformance suites in `./conformance`).
// Each entry is imported in a fresh Node process (tsx, the sources as the tests see them) whose
// resolve hook records every module of vitest that gets resolved.
const root = join(import.meta.dirname, "../../../..");
const src = join(root, "packages/testing/src");

const PROBE = `
import { registerHooks } from "node:module";
const vitest = [];
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    if (/^vitest(\\/|$)/.test(specifier) || /[\\\\/]node_modules[\\\\/]vitest[\\\\/]/.test(resolved.url))
      vitest.push(resolved.url);
    return resolved;
  },
});
await import(process.argv[1]);
process.stdout.write(JSON.stringify(vitest));
`;

/** The vitest modules resolved while importing `entry` (a source file) in a fresh process. */
function vitestModulesLoadedBy(entry: string): string[] {
  const out = execFileSync(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", PROBE, pathToFileURL(join(src, entry)).href],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 },
  );
  return JSON.parse(out) as string[];
}

describe("@nxs-sync/testing entry points", () => {
  it("the runtime entry `.` loads no vitest module", () => {
    expect(vitestModulesLoadedBy("index.ts")).toEqual([]);
  }, 60_000);

  it("the `./vitest` entry does (the probe sees vitest when it is loaded)", () => {
    expect(vitestModulesLoadedBy("vitest-hooks.ts").length).toBeGreaterThan(0);
  }, 60_000);
});
