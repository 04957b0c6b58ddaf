import { readdirSync } from "node:fs";
import { join } from "node:path";
import { extractDocSnippets, writeDocSnippetModule } from "@nxs-sync/testing";
import { describe, expect, it } from "vitest";

// Every ```ts block marked `<!-- doctest -->` in the READMEs and docs/ runs here as written, and its
// `EXPR; // => VALUE` lines are checked. Blocks that need servers are marked `<!-- doctest: pocketbase -->`
// and run in the integration project (packages/pocketbase/test/integration/documentation.int.test.ts).
const root = join(import.meta.dirname, "../../../..");
const md = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(root, dir, f));
const files = [
  join(root, "README.md"),
  ...md("docs"),
  ...readdirSync(join(root, "packages")).flatMap((p) => md(join("packages", p))),
  ...readdirSync(join(root, "examples")).flatMap((p) => md(join("examples", p))),
];
const snippets = extractDocSnippets(files).filter((s) => s.tag === "");

describe("documentation examples", () => {
  it("finds the runnable examples (at least the core README's quick start)", () => {
    expect(snippets.some((s) => s.file.endsWith(join("packages", "core", "README.md")))).toBe(true);
  });

  it.each(snippets.map((s) => [`${s.file.slice(root.length + 1)}:${s.line}`, s] as const))(
    "%s runs and its `// =>` results hold",
    async (_where, snippet) => {
      const path = writeDocSnippetModule(snippet, join(root, ".doc-snippets"));
      const mod = (await import(/* @vite-ignore */ path)) as { __doctestChecks: number };
      expect(mod.__doctestChecks).toBeGreaterThan(0);
    },
  );
});
