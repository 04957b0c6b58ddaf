import { join } from "node:path";
import { extractDocSnippets, type ProcessPocketBase, writeDocSnippetModule } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collections, ensureNode, ensureSchema } from "../../src/index.js";

// The README quick start (`<!-- doctest: pocketbase -->`) runs as written against two real servers:
// its endpoint URLs are replaced by theirs and its node account exists on both.
const root = join(import.meta.dirname, "../../../..");
const snippets = extractDocSnippets([
  join(root, "packages/pocketbase/README.md"),
  join(root, "docs/pocketbase.md"),
]).filter((s) => s.tag === "pocketbase");

const servers = usePocketBaseServers();
let primary: ProcessPocketBase;
let secondary: ProcessPocketBase;
const password = "doctest-password-1";
const previousPassword = process.env.NXS_NODE_PASSWORD;

beforeAll(async () => {
  [primary, secondary] = (await servers.startCluster({ nodes: 2, batch: false })).nodes as [
    ProcessPocketBase,
    ProcessPocketBase,
  ];
  for (const s of [primary, secondary]) {
    await ensureSchema(s.client());
    await ensureNode(s.client(), { id: "gw1aaaaaaaaaaaa", email: "gw1@nodes.local", password, name: "gw1" });
  }
  process.env.NXS_NODE_PASSWORD = password;
});
afterAll(() => {
  if (previousPassword === undefined) delete process.env.NXS_NODE_PASSWORD;
  else process.env.NXS_NODE_PASSWORD = previousPassword;
});

describe("documentation examples on real PocketBase", () => {
  it("finds the README quick start", () => {
    expect(snippets.length).toBeGreaterThan(0);
  });

  it.each(snippets.map((s) => [`${s.file.slice(root.length + 1)}:${s.line}`, s] as const))(
    "%s runs against two servers",
    async (_where, snippet) => {
      const path = writeDocSnippetModule(snippet, join(root, ".doc-snippets"), {
        replace: {
          "http://primary.tailnet:8090": primary.url,
          "http://secondary.tailnet:8090": secondary.url,
        },
      });
      const mod = (await import(/* @vite-ignore */ path)) as {
        __doctestChecks: number;
        replica?: { stop(): Promise<void> };
        docId?: string;
      };
      try {
        expect(mod.__doctestChecks).toBeGreaterThan(0);
        const rows = await primary
          .client()
          .collection(Collections.Changes)
          .getFullList({ filter: primary.client().filter("doc = {:doc}", { doc: mod.docId ?? "" }) });
        expect(rows.length).toBeGreaterThan(0);
      } finally {
        await mod.replica?.stop();
      }
    },
  );
});
