import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkHookPieces,
  createNxsCollectionRegistry,
  createPocketBaseClient,
  ensureSchema,
  type HookPiece,
  writeHooksBundle,
} from "../../src/index.js";

// Item 1 of issue 15's remainder: a package ships its own hook file, installed beside the core
// bundle and checked by clients on real servers.

/** A package's piece: its version route, and a route of its own run in a transaction. */
function probePiece(version: number): HookPiece {
  return {
    name: "probe",
    version,
    file: "nxs-probe.pb.js",
    source: `// A test piece.
routerAdd("GET", "/nxs/hooks/probe", (e) => e.json(200, { name: "probe", version: ${version} }));
routerAdd("GET", "/nxs/probe/count", (e) => {
  let n = 0;
  $app.runInTransaction((tx) => {
    n = tx.findAllCollections().length;
  });
  return e.json(200, { collections: n });
});
`,
  };
}

const servers = usePocketBaseServers();
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("hook pieces on real servers", () => {
  const registry = createNxsCollectionRegistry().registerHooks(probePiece(2));

  it("a hooks dir written by writeHooksBundle serves the core bundle and the piece: the check passes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-hooks-int-"));
    dirs.push(dir);
    await writeHooksBundle(dir, registry);
    // The core bundle comes from the written dir only (nxsHooks: false).
    const server = await servers.start({ name: "pieces", batch: false, nxsHooks: false, hooksDir: dir });
    await ensureSchema(server.client());
    const client = createPocketBaseClient({ url: server.url });
    try {
      await expect(checkHookPieces(client, registry.hooks())).resolves.toBeUndefined();
      const count = await client.call("probe", (pb) => pb.send("/nxs/probe/count", { method: "GET" }));
      expect(count).toMatchObject({ collections: expect.any(Number) });
    } finally {
      client.close();
    }
  });

  it("a server without the piece, or with another version of it, is server/incompatible naming the fix", async () => {
    const bare = await servers.start({ name: "no-piece", batch: false });
    const old = await servers.start({ name: "old-piece", batch: false, hookFiles: [probePiece(1)] });
    for (const s of [bare, old]) await ensureSchema(s.client());
    const clients = [bare, old].map((s) => createPocketBaseClient({ url: s.url }));
    try {
      const [a, b] = clients as [(typeof clients)[0], (typeof clients)[0]];
      await expect(checkHookPieces(a, registry.hooks())).rejects.toMatchObject({
        code: "server/incompatible",
        message: expect.stringMatching(
          /no hook piece probe \(GET \/nxs\/hooks\/probe answered 404\).*--hooksDir/,
        ),
      });
      await expect(checkHookPieces(b, registry.hooks())).rejects.toMatchObject({
        code: "server/incompatible",
        message: expect.stringMatching(/hook piece probe is version 1, this client needs 2/),
      });
    } finally {
      for (const c of clients) c.close();
    }
  });
});
