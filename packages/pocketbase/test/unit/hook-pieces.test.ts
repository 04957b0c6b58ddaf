import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, TransportError } from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import { afterEach, describe, expect, it } from "vitest";
import type { PocketBaseClient } from "../../src/client.js";
import { createCollectionRegistry, createNxsCollectionRegistry } from "../../src/collection-registry.js";
import { FENCE_HOOKS, fenceHookPiece } from "../../src/fence.js";
import {
  checkHookPiece,
  checkHookPieces,
  type HookPiece,
  hookPiecePath,
  NXS_HOOK_PIECE_NAME,
  nxsHookPiece,
  writeHooksBundle,
} from "../../src/hook-pieces.js";
import { NXS_HOOKS_VERSION, NXS_SCHEMA_VERSION, NXS_VERSION_PATH } from "../../src/hooks.js";

/** A piece as a package would ship it: its version route and one route of its own. */
function piece(name: string, version: number, file = `nxs-${name}.pb.js`): HookPiece {
  const source = `routerAdd("GET", "/nxs/hooks/${name}", (e) => e.json(200, { name: "${name}", version: ${version} }));\n`;
  return { name, version, file, source };
}

const config = (message: RegExp) =>
  expect.objectContaining({ code: ErrorCode.ConfigInvalid, message: expect.stringMatching(message) });
const incompatible = (message: RegExp) =>
  expect.objectContaining({ code: ErrorCode.ServerIncompatible, message: expect.stringMatching(message) });

describe("hook pieces in the registry", () => {
  it("the nxs registry holds the core bundle and the write fence, their files read from pb_hooks/", async () => {
    const [core, fence, ...rest] = createNxsCollectionRegistry().hooks();
    expect(rest).toEqual([]);
    expect(fence).toMatchObject(FENCE_HOOKS);
    expect(fence?.source).toBe(
      await readFile(new URL("../../pb_hooks/nxs-fence.pb.js", import.meta.url), "utf8"),
    );
    expect(() => checkHookPiece(fenceHookPiece(), { source: true })).not.toThrow();
    expect(core).toMatchObject({ name: NXS_HOOK_PIECE_NAME, version: NXS_HOOKS_VERSION, file: "nxs.pb.js" });
    const text = await readFile(new URL("../../pb_hooks/nxs.pb.js", import.meta.url), "utf8");
    expect(core?.source).toBe(text);
    expect(hookPiecePath(NXS_HOOK_PIECE_NAME)).toBe(NXS_VERSION_PATH);
    expect(() => checkHookPiece(nxsHookPiece(), { source: true })).not.toThrow();
  });

  it("registers pieces after the core one, in order; a plain registry starts empty", () => {
    const registry = createNxsCollectionRegistry().registerHooks(piece("queue", 1), piece("config", 2));
    expect(registry.hooks().map((p) => p.name)).toEqual(["nxs", "fence", "queue", "config"]);
    expect(createCollectionRegistry().hooks()).toEqual([]);
    // Each registry is its own.
    expect(createNxsCollectionRegistry().hooks()).toHaveLength(2);
  });

  it.each([
    ["a name registered already", piece("nxs", 1, "other.pb.js"), /registered already as nxs/],
    ["a file registered already", piece("queue", 1, "nxs.pb.js"), /registered already as nxs/],
    ["a name that is not kebab-case", piece("Queue_x", 1), /kebab-case/],
    ["a version that is not a positive integer", piece("queue", 0), /positive integer/],
    ["a file that PocketBase would not load", piece("queue", 1, "queue.js"), /\.pb\.js/],
    ["a file in a directory", piece("queue", 1, "../queue.pb.js"), /\.pb\.js/],
  ])("refuses %s with config/invalid", (_, p, message) => {
    expect(() => createNxsCollectionRegistry().registerHooks(p)).toThrow(config(message));
  });
});

describe("writeHooksBundle", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("writes every piece's file into the hooks dir (created), leaving other files alone", async () => {
    dir = await mkdtemp(join(tmpdir(), "nxs-hooks-"));
    const target = join(dir, "pb_hooks");
    const queue = piece("queue", 3);
    const written = await writeHooksBundle(target, createNxsCollectionRegistry().registerHooks(queue));
    expect(written).toEqual([
      join(target, "nxs.pb.js"),
      join(target, "nxs-fence.pb.js"),
      join(target, "nxs-queue.pb.js"),
    ]);
    expect(await readFile(join(target, "nxs-queue.pb.js"), "utf8")).toBe(queue.source);
    expect(await readFile(join(target, "nxs.pb.js"), "utf8")).toBe(nxsHookPiece().source);
  });

  it("refuses, before writing anything, a piece whose source does not serve its version route", async () => {
    dir = await mkdtemp(join(tmpdir(), "nxs-hooks-"));
    const bad = {
      ...piece("queue", 1),
      source: 'routerAdd("GET", "/nxs/queue/claim", (e) => e.json(200, {}));',
    };
    await expect(writeHooksBundle(dir, createCollectionRegistry([], [bad]))).rejects.toThrow(
      config(/must serve GET \/nxs\/hooks\/queue.*routerAdd/),
    );
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("checkHookPieces", () => {
  /** A client of a server answering `routes` (path -> body); any other path is a 404. */
  function client(routes: Record<string, unknown>): Pick<PocketBaseClient, "url" | "call"> {
    const pb = {
      send: async (path: string) => {
        if (path in routes) return routes[path];
        throw new TransportError(ErrorCode.TransportRejected, `GET ${path}: rejected (404)`, { status: 404 });
      },
    } as unknown as PocketBase;
    return { url: "http://pb:8090", call: (_what, fn) => fn(pb) };
  }
  const core = {
    name: "nxs-sync",
    hooks: NXS_HOOKS_VERSION,
    schema: NXS_SCHEMA_VERSION,
    schemaInstalled: true,
  };
  const pieces = createNxsCollectionRegistry().registerHooks(piece("queue", 2)).hooks();
  const fence = {
    [`/nxs/hooks/${FENCE_HOOKS.name}`]: { name: FENCE_HOOKS.name, version: FENCE_HOOKS.version },
  };

  it("passes when every piece answers its name and version (the core bundle on /nxs/version)", async () => {
    const c = client({
      [NXS_VERSION_PATH]: core,
      ...fence,
      "/nxs/hooks/queue": { name: "queue", version: 2 },
    });
    await expect(checkHookPieces(c, pieces)).resolves.toBeUndefined();
  });

  it.each([
    [
      "a missing piece",
      { "/nxs/hooks/queue": undefined },
      /no hook piece queue \(GET \/nxs\/hooks\/queue answered 404\).*writeHooksBundle/,
    ],
    [
      "a piece of another version",
      { "/nxs/hooks/queue": { name: "queue", version: 1 } },
      /hook piece queue is version 1, this client needs 2.*--hooksDir/,
    ],
    ["another answer", { "/nxs/hooks/queue": { hello: 1 } }, /did not answer as the hook piece queue/],
    ["a missing core bundle", { [NXS_VERSION_PATH]: undefined }, /no nxs-sync hooks bundle/],
    ["a core bundle of another version", { [NXS_VERSION_PATH]: { ...core, hooks: 0 } }, /this client needs/],
  ])("refuses %s with server/incompatible", async (_, change, message) => {
    const routes: Record<string, unknown> = {
      [NXS_VERSION_PATH]: core,
      ...fence,
      "/nxs/hooks/queue": { name: "queue", version: 2 },
    };
    for (const [path, body] of Object.entries(change)) {
      if (body === undefined) delete routes[path];
      else routes[path] = body;
    }
    await expect(checkHookPieces(client(routes), pieces)).rejects.toThrow(incompatible(message));
  });

  it("passes other errors through (an unreachable server stays transport/unavailable)", async () => {
    const down = new TransportError(ErrorCode.TransportUnavailable, "down", { retryable: true });
    const c: Pick<PocketBaseClient, "url" | "call"> = {
      url: "http://pb:8090",
      call: async () => Promise.reject(down),
    };
    await expect(checkHookPieces(c, pieces)).rejects.toBe(down);
  });
});
