import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const entry = fileURLToPath(new URL("../../src/index.ts", import.meta.url));

/** Type-checks files as browser code: DOM and ES2023 libraries, no `@types/node`. */
function browserDiagnostics(files: readonly string[]): string[] {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
    types: [],
    skipLibCheck: true,
  };
  const program = ts.createProgram(files, options);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

describe("the browser entry", () => {
  it("bundles for platform=browser with no Node built-in among its imports", async () => {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [entry],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.entries(result.metafile.inputs);
    // Only the package's own sources and the SDK go in.
    expect(
      inputs
        .map(([file]) => file)
        .filter((f) => !/^(packages\/client\/src\/|node_modules\/pocketbase\/)/.test(f)),
    ).toEqual([]);
    expect(inputs.length).toBeGreaterThan(1);
    const builtins = inputs.flatMap(([, input]) =>
      input.imports.filter((i) => i.path.startsWith("node:") || isBuiltin(i.path)).map((i) => i.path),
    );
    expect(builtins).toEqual([]);
    const text = result.outputFiles[0]!.text;
    expect(text).not.toMatch(/\brequire\(/);
    expect(text).toContain("createFleetClient");
  });

  // The TypeScript compiler runs in these two: seconds on a busy 2-core machine (5 s timed out once).
  it("type-checks with the DOM library and without Node's types (no process, Buffer, node: modules)", {
    timeout: 60_000,
  }, () => {
    expect(browserDiagnostics([entry])).toEqual([]);
  });

  it("the same check rejects a file that uses a Node global (the check bites)", { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "nxs-client-probe-"));
    try {
      const probe = join(dir, "probe.ts");
      writeFileSync(probe, "export const home: string | undefined = process.env.HOME;\n");
      expect(browserDiagnostics([probe]).join("\n")).toMatch(/Cannot find name 'process'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
