import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { listErrorCodes } from "@nxs-sync/core";
import { beforeAll, describe, expect, it } from "vitest";

// docs/errors.md is the complete list of codes: every code core or a package declares (its
// ErrorCode, and each area a package declares with defineErrorCodes when its entry point loads) is
// documented there, and every code documented there still exists. The harness's codes (a separate
// class, HarnessError) are compared with its HarnessErrorCode union.
const root = join(import.meta.dirname, "../../../..");
const HARNESS_HEADING = "## Test harness codes";

/** The codes of the first column of each table row in `markdown`. */
function documentedCodes(markdown: string): string[] {
  return [...markdown.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? "");
}

const docs = readFileSync(join(root, "docs/errors.md"), "utf8");
const harnessAt = docs.indexOf(HARNESS_HEADING);
const libraryDocs = harnessAt < 0 ? docs : docs.slice(0, harnessAt);
const harnessDocs = harnessAt < 0 ? "" : docs.slice(harnessAt);

/** Every package's and example's public entry point: importing it declares its error areas. */
const entryPoints = ["packages", "examples"]
  .flatMap((dir) => readdirSync(join(root, dir)).map((p) => join(root, dir, p, "src", "index.ts")))
  .filter((f) => existsSync(f));

describe("docs/errors.md lists exactly the codes the code can throw", () => {
  let declared: string[];
  beforeAll(async () => {
    for (const entry of entryPoints) await import(entry);
    declared = listErrorCodes().map((c) => c.code);
  }, 60_000);

  it("loads every package's entry point", () => {
    expect(entryPoints.map((f) => f.split("/").at(-3))).toEqual(
      expect.arrayContaining(["core", "pocketbase", "testing"]),
    );
  });

  it("documents each code once", () => {
    const codes = documentedCodes(docs);
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });

  it("documents every declared code", () => {
    const documented = new Set(documentedCodes(libraryDocs));
    expect(declared.filter((c) => !documented.has(c))).toEqual([]);
  });

  it("documents no code that is gone", () => {
    const known = new Set(declared);
    expect(documentedCodes(libraryDocs).filter((c) => !known.has(c))).toEqual([]);
  });

  it("documents each code's default retryability (the column starts with yes or no)", () => {
    const column = new Map(
      [...libraryDocs.matchAll(/^\| `([^`]+)` \| [^|]* \| (yes|no)\b/gm)].map((m) => [m[1], m[2] === "yes"]),
    );
    expect(
      listErrorCodes()
        .filter((c) => column.get(c.code) !== c.retryable)
        .map(
          (c) => `${c.code}: documented ${column.get(c.code) ?? "without a yes/no"}, declared ${c.retryable}`,
        ),
    ).toEqual([]);
  });

  it("documents the harness's codes, and only those", () => {
    const source = readFileSync(join(root, "packages/testing/src/errors.ts"), "utf8");
    const union = /export type HarnessErrorCode =([^;]+);/.exec(source)?.[1] ?? "";
    const harness = [...union.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? "");
    expect(harness.length).toBeGreaterThan(0);
    expect(documentedCodes(harnessDocs).sort()).toEqual(harness.sort());
  });
});
