/**
 * Executable documentation: finds the ```ts blocks of Markdown files that are marked runnable and
 * turns each into a module a test can import (tinybase's documentation test, in spirit), and the
 * ```ts blocks of TSDoc `@example` tags in source files (type-checked by the test suite).
 *
 * - A block is runnable when the line before its fence is `<!-- doctest -->` (in-process, run by
 *   a unit test) or `<!-- doctest: NAME -->` (run by the test that handles NAME, e.g. `pocketbase`
 *   in an integration test with real servers).
 * - A statement line `EXPR; // => VALUE` becomes an assertion that EXPR deep-equals VALUE.
 * - The module exports every top-level `const`/`let` name, so the test can inspect and clean up.
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

/** One runnable block of a Markdown file. */
export interface DocSnippet {
  /** The Markdown file. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /**
   * `""` for `<!-- doctest -->`, else the NAME of `<!-- doctest: NAME -->`; `"tsdoc"` for a block of
   * a TSDoc `@example` tag.
   */
  readonly tag: string;
  /** The block's code, as written. */
  readonly code: string;
}

const MARK = /^<!--\s*doctest(?::\s*([\w-]+))?\s*-->\s*$/;

/**
 * Extracts the runnable blocks of Markdown files.
 * @param files - Markdown paths.
 * @returns Every block marked `<!-- doctest -->` or `<!-- doctest: NAME -->`, in file order.
 */
export function extractDocSnippets(files: readonly string[]): DocSnippet[] {
  const out: DocSnippet[] = [];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const mark = MARK.exec(lines[i]?.trim() ?? "");
      if (!mark) continue;
      const fence = lines[i + 1]?.trim();
      if (fence !== "```ts" && fence !== "```typescript") {
        throw new Error(`${file}:${i + 1}: a doctest mark must be followed by a \`\`\`ts block`);
      }
      const end = lines.findIndex((l, j) => j > i + 1 && l.trim() === "```");
      if (end < 0) throw new Error(`${file}:${i + 2}: unterminated code block`);
      out.push({ file, line: i + 2, tag: mark[1] ?? "", code: lines.slice(i + 2, end).join("\n") });
      i = end;
    }
  }
  return out;
}

const EXAMPLE_TAG = /^\s*(?:\/\*\*)?\s*\*?\s*@example\b/;
const COMMENT_LINE = /^\s*\*(?: ?)(.*)$/;

/**
 * Extracts the code of every TSDoc `@example` tag of TypeScript source files: the ```ts (or
 * ```typescript) block that follows the tag inside its doc comment, without the comment's `* `
 * prefix.
 * @param files - TypeScript source paths.
 * @returns One snippet per `@example`, tagged `"tsdoc"`, in file order; `line` is the opening fence.
 * @throws Error when an `@example` has no ```ts block before its doc comment ends, or the block is
 * not closed.
 * @example
 * ```ts
 * const [first] = extractTsDocExamples(["packages/core/src/hlc.ts"]);
 * console.log(`${first?.file}:${first?.line}`, first?.code);
 * ```
 */
export function extractTsDocExamples(files: readonly string[]): DocSnippet[] {
  const out: DocSnippet[] = [];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!EXAMPLE_TAG.test(lines[i] ?? "")) continue;
      let open = -1;
      for (let j = i + 1; j < lines.length && !lines[j]?.includes("*/"); j++) {
        const text = COMMENT_LINE.exec(lines[j] ?? "")?.[1]?.trim();
        if (text === "```ts" || text === "```typescript") {
          open = j;
          break;
        }
        if (text !== "") break;
      }
      if (open < 0) throw new Error(`${file}:${i + 1}: an @example must be followed by a \`\`\`ts block`);
      const code: string[] = [];
      let end = -1;
      for (let j = open + 1; j < lines.length && !lines[j]?.includes("*/"); j++) {
        const text = COMMENT_LINE.exec(lines[j] ?? "")?.[1] ?? "";
        if (text.trim() === "```") {
          end = j;
          break;
        }
        code.push(text);
      }
      if (end < 0) throw new Error(`${file}:${open + 1}: unterminated code block in an @example`);
      out.push({ file, line: open + 1, tag: "tsdoc", code: code.join("\n") });
      i = end;
    }
  }
  return out;
}

const EXPECT = /^(\s*)(.+?);\s*\/\/\s*=>\s*(.+)$/;
const DECL = /^(?:export\s+)?(?:const|let)\s+(?:(\w+)|\[([^\]]+)\]|\{([^}]+)\})/;

/**
 * Writes a snippet as an ES module: `// =>` lines become `assert.deepStrictEqual` checks and
 * top-level declarations are exported.
 * @param snippet - The block.
 * @param dir - Where to write (inside the test runner's root, so its module resolution applies).
 * @param options.replace - Literal text replacements applied to the code first (e.g. URLs).
 * @returns The module's absolute path.
 */
export function writeDocSnippetModule(
  snippet: DocSnippet,
  dir: string,
  options: { readonly replace?: Readonly<Record<string, string>> } = {},
): string {
  let code = snippet.code;
  for (const [from, to] of Object.entries(options.replace ?? {})) code = code.split(from).join(to);
  const names = new Set<string>();
  let checks = 0;
  const body = code.split("\n").map((line) => {
    const d = DECL.exec(line);
    if (d) {
      const list = d[1] ?? d[2] ?? d[3] ?? "";
      for (const n of list.split(",")) {
        const name = n.split(":").pop()?.split("=")[0]?.trim();
        if (name && /^\w+$/.test(name)) names.add(name);
      }
    }
    const m = EXPECT.exec(line);
    if (!m) return line;
    checks++;
    return `${m[1]}__nxsDocAssert.deepStrictEqual(__nxsDocPlain(${m[2]}), ${m[3]}, ${JSON.stringify(`${relative(process.cwd(), snippet.file)}:${snippet.line}: ${m[2]}`)});`;
  });
  const header = [
    `import __nxsDocAssert from "node:assert/strict";`,
    "const __nxsDocPlain = (v: unknown) => JSON.parse(JSON.stringify(v));",
  ];
  const footer = [
    `export const __doctestChecks = ${checks};`,
    names.size ? `export { ${[...names].join(", ")} };` : "",
  ];
  // Import declarations are hoisted by the module system, so the snippet's own imports may follow the header.
  mkdirSync(dir, { recursive: true });
  const slug = `${relative(process.cwd(), snippet.file).replace(/[^\w]+/g, "_")}_${snippet.line}`;
  const path = join(dir, `${slug}.ts`);
  writeFileSync(path, [...header, ...body, ...footer].join("\n"));
  return path;
}
