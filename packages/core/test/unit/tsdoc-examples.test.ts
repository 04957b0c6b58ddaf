import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { type DocSnippet, extractDocSnippets, extractTsDocExamples } from "@nxs-sync/testing";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";

// Every TSDoc `@example` of packages/*/src is type-checked here, with the repository's tsconfig
// (strict, noUncheckedIndexedAccess), and so is every Markdown block marked `<!-- doctest -->` or
// `<!-- doctest: NAME -->` (documentation.test.ts and the integration project run those; vitest strips
// their types without checking them).
//
// An example is a fragment, as on a documentation page, so it is checked in a context:
// - its own `import` lines come first, as written;
// - every name exported by its source file, by its package's entry point (`@nxs-sync/core/node` and
//   `@nxs-sync/core` for core; core too for the other packages) and vitest's `describe`, `it`,
//   `expect`, `beforeAll`, `afterAll` is in scope, unless the example imports that name itself;
// - the free names of PRELUDE below (a doc, a transport, a server…) are declared;
// - the rest of the example is the body of an async function, so top-level `await` works and the
//   example's own declarations shadow the prelude's.
// A Markdown block is checked as the module it is (no context).
const root = join(import.meta.dirname, "../../../..");

/** The names an example may use without declaring them. Keep it short: an example should read on its own. */
const PRELUDE = `
import * as __core from "@nxs-sync/core";
import type * as __testing from "@nxs-sync/testing";
import type __PocketBase from "pocketbase";
import { z as __z } from "zod";
const schema = __z.object({ routes: __z.record(__z.string(), __z.string()), port: __z.number(), hits: __core.counter() });
const docId = "routes";
const doc = __core.createDoc({ schema, docId, replicaId: "node-a", clock: Date.now, initial: { routes: {}, port: 80, hits: 0 } });
declare const transport: __core.Transport;
declare const storage: __core.Storage;
declare const scheduler: __core.Scheduler;
declare const logger: __core.Logger;
declare const change: __core.Change;
declare const error: __core.NxsError;
declare const storedSnapshot: __core.Snapshot;
declare const acks: readonly __core.AckedVersion[];
declare const url: string;
declare const email: string;
declare const password: string;
declare const endpoints: string[];
declare const auth: { email: string; password: string };
declare const pb: __PocketBase;
declare const b: __testing.PocketBaseServer;
declare const id: string;
declare const cluster: __testing.PocketBaseCluster;
declare const ns: __testing.Namespace;
`;
const PRELUDE_NAMES = [...PRELUDE.matchAll(/^(?:declare )?const (\w+)/gm)].map((m) => m[1] ?? "");

const VITEST = ["describe", "it", "expect", "beforeAll", "afterAll"];

/** Names exported by a module, read from its syntax (named re-exports and exported declarations). */
function exportedNames(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false);
  const names: string[] = [];
  for (const s of source.statements) {
    if (ts.isExportDeclaration(s) && s.exportClause && ts.isNamedExports(s.exportClause)) {
      for (const e of s.exportClause.elements) names.push(e.name.text);
      continue;
    }
    const exported =
      ts.canHaveModifiers(s) && ts.getModifiers(s)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (!exported) continue;
    if (ts.isVariableStatement(s)) {
      for (const d of s.declarationList.declarations) if (ts.isIdentifier(d.name)) names.push(d.name.text);
    } else if (
      (ts.isFunctionDeclaration(s) ||
        ts.isClassDeclaration(s) ||
        ts.isInterfaceDeclaration(s) ||
        ts.isTypeAliasDeclaration(s) ||
        ts.isEnumDeclaration(s)) &&
      s.name
    ) {
      names.push(s.name.text);
    }
  }
  return [...new Set(names)];
}

/** The modules whose exports are in scope for an example of `file`, nearest first. */
function contextModules(file: string): string[] {
  const pkg = relative(join(root, "packages"), file).split("/")[0] ?? "";
  const entries = [join(root, "packages", pkg, "src/index.ts")];
  if (pkg === "core" && file.includes("/src/node/"))
    entries.unshift(join(root, "packages/core/src/node/index.ts"));
  if (pkg !== "core")
    entries.push(join(root, "packages/core/src/index.ts"), join(root, "packages/core/src/node/index.ts"));
  return [file, ...entries.filter((e) => e !== file)];
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
  });

const IMPORT = /^\s*import\s[\s\S]*?from\s+["'][^"']+["'];?\s*$|^\s*import\s+["'][^"']+["'];?\s*$/gm;

/** The module text of a TSDoc example: its imports, the context, and its body inside an async function. */
function exampleModule(example: DocSnippet, dir: string): string {
  const imports = example.code.match(IMPORT) ?? [];
  const body = example.code.replace(IMPORT, "");
  const taken = new Set<string>();
  for (const line of imports) {
    for (const m of line.matchAll(/\b(\w+)\s*(?=,|}|\sfrom)/g)) taken.add(m[1] ?? "");
  }
  const context: string[] = [];
  for (const module of contextModules(example.file)) {
    const names = exportedNames(module).filter((n) => !taken.has(n) && !PRELUDE_NAMES.includes(n));
    for (const n of names) taken.add(n);
    let spec = relative(dir, module).replace(/\.ts$/, ".js");
    if (!spec.startsWith(".")) spec = `./${spec}`;
    if (names.length) context.push(`import { ${names.join(", ")} } from "${spec}";`);
  }
  const vitest = VITEST.filter((n) => !taken.has(n));
  if (vitest.length) context.push(`import { ${vitest.join(", ")} } from "vitest";`);
  const prelude = PRELUDE.split("\n").filter((line) => {
    const name = /^(?:declare )?const (\w+)/.exec(line)?.[1];
    return name === undefined || !taken.has(name);
  });
  return [
    ...imports,
    ...context,
    ...prelude,
    "export async function __example(): Promise<void> {",
    body,
    "}",
  ].join("\n");
}

interface Checked {
  readonly where: string;
  readonly errors: string[];
}

const examples = extractTsDocExamples(
  readdirSync(join(root, "packages")).flatMap((p) => {
    const src = join(root, "packages", p, "src");
    try {
      return sourceFiles(src);
    } catch {
      return [];
    }
  }),
);
const md = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(root, dir, f));
const markdown = extractDocSnippets([
  join(root, "README.md"),
  ...md("docs"),
  ...readdirSync(join(root, "packages")).flatMap((p) => md(join("packages", p))),
  ...readdirSync(join(root, "examples")).flatMap((p) => md(join("examples", p))),
]);

/** Type-checks every snippet in one program (virtual files next to the repository's sources). */
function typeCheck(snippets: readonly DocSnippet[]): Checked[] {
  const dir = join(root, ".doc-snippets", "typecheck");
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (!config) throw new Error("tsconfig.json not found");
  const virtual = new Map<string, { snippet: DocSnippet; text: string }>();
  for (const snippet of snippets) {
    const slug = `${relative(root, snippet.file).replace(/[^\w]+/g, "_")}_${snippet.line}`;
    const text = snippet.tag === "tsdoc" ? exampleModule(snippet, dir) : snippet.code;
    virtual.set(join(dir, `${slug}.ts`), { snippet, text });
  }
  // The context imports types and values alike in one `import { … }`: verbatimModuleSyntax would refuse that.
  const options = { ...config.options, noEmit: true, incremental: false, verbatimModuleSyntax: false };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
  host.readFile = (f) => virtual.get(f)?.text ?? readFile.call(host, f);
  host.getSourceFile = (f, language, ...rest) => {
    const v = virtual.get(f);
    return v ? ts.createSourceFile(f, v.text, language) : getSourceFile.call(host, f, language, ...rest);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  return [...virtual].map(([path, { snippet }]) => {
    const file = program.getSourceFile(path);
    const diagnostics = file
      ? [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
      : [];
    const prefix =
      snippet.tag === "tsdoc"
        ? exampleModule(snippet, dir)
            .split("\n")
            .indexOf("export async function __example(): Promise<void> {") + 1
        : 0;
    return {
      where: `${relative(root, snippet.file)}:${snippet.line}`,
      errors: diagnostics.map((d) => {
        const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
        if (d.start === undefined || !d.file) return message;
        const { line } = d.file.getLineAndCharacterOfPosition(d.start);
        // Lines of the example body map to the source: fence line + 1 + offset in the body.
        const at = line >= prefix ? `example line ${line - prefix + 1}` : `context line ${line + 1}`;
        return `${at}: ${message}`;
      }),
    };
  });
}

describe("TSDoc @example blocks and Markdown doctest blocks type-check", () => {
  let results: Map<string, Checked>;
  beforeAll(() => {
    results = new Map(typeCheck([...examples, ...markdown]).map((r) => [r.where, r]));
  }, 120_000);

  it("finds the examples (openReplica's among them) and the README quick starts", () => {
    expect(examples.length).toBeGreaterThan(30);
    expect(examples.some((e) => e.code.includes("openReplica("))).toBe(true);
    expect(markdown.some((s) => s.file.endsWith(join("packages", "core", "README.md")))).toBe(true);
  });

  it.each([...examples, ...markdown].map((s) => [`${relative(root, s.file)}:${s.line}`] as const))(
    "%s",
    (where) => {
      expect(results.get(where)?.errors ?? ["not checked"]).toEqual([]);
    },
  );
});
