import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isNxsError } from "@nxs-sync/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CACHE_FILE_FORMAT,
  type CacheFileContent,
  readCacheFile,
  writeCacheFile,
} from "../../src/cache-file.js";
import type { StoredVersion } from "../../src/version.js";

const v1: StoredVersion = {
  id: "abcdefghij00001",
  env: "production",
  key: "routes",
  version: 1,
  hlc: "0001",
  origin: "a",
  node: "gw-1",
  author: "ann",
  message: "first",
  createdAt: 1_700_000_000_000,
  value: {
    rps: 5,
    apiKey: { $secret: 1, kid: "k1", iv: "AAAAAAAAAAAAAAAA", ct: "AA==", tag: "AAAAAAAAAAAAAAAAAAAAAA==" },
  },
  compacted: false,
  rollout: { nodes: ["gw-1"] },
};
const content: CacheFileContent = {
  format: CACHE_FILE_FORMAT,
  env: "production",
  savedAt: 1_700_000_000_500,
  versions: [v1],
  rollouts: [
    {
      id: v1.id,
      env: "production",
      key: "routes",
      version: 1,
      state: "staged",
      reason: "",
      updatedAt: 1_700_000_000_100,
    },
  ],
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nxs-config-cache-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeCacheFile and readCacheFile", () => {
  it("round-trips, creating the directory, leaving no temp file, mode 0600", async () => {
    const path = join(dir, "a", "b", "config.json");
    await writeCacheFile(path, content);
    expect(await readCacheFile(path)).toEqual({ ok: true, content });
    expect(await readdir(join(dir, "a", "b"))).toEqual(["config.json"]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("replaces the file whole; concurrent writes each succeed and the file stays whole", async () => {
    const path = join(dir, "config.json");
    await writeCacheFile(path, content);
    const next = { ...content, savedAt: content.savedAt + 1, versions: [], rollouts: [] };
    await writeCacheFile(path, next);
    expect(await readCacheFile(path)).toEqual({ ok: true, content: next });
    const writes = Array.from({ length: 8 }, (_, i) => writeCacheFile(path, { ...content, savedAt: i }));
    await Promise.all(writes);
    const read = await readCacheFile(path);
    expect(read.ok).toBe(true);
    if (read.ok) expect(read.content.savedAt).toBeLessThan(8);
    expect(await readdir(dir)).toEqual(["config.json"]);
  });

  it("a write that cannot happen is storage/io and leaves the old file as it was", async () => {
    const blocker = join(dir, "file");
    await writeFile(blocker, "x");
    let caught: unknown;
    await writeCacheFile(join(blocker, "config.json"), content).catch((e: unknown) => {
      caught = e;
    });
    expect(isNxsError(caught) && caught.code).toBe("storage/io");
    // the target path is a directory: the rename fails, the temp file is removed
    const path = join(dir, "taken");
    await writeCacheFile(join(path, "inner.json"), content);
    caught = undefined;
    await writeCacheFile(path, content).catch((e: unknown) => {
      caught = e;
    });
    expect(isNxsError(caught) && caught.code).toBe("storage/io");
    expect((await readdir(dir)).sort()).toEqual(["file", "taken"]);
  });

  it("a missing file is reported as missing, never thrown", async () => {
    expect(await readCacheFile(join(dir, "none.json"))).toMatchObject({ ok: false, reason: "missing" });
    await writeFile(join(dir, "plain"), "x");
    expect(await readCacheFile(join(dir, "plain", "none.json"))).toMatchObject({
      ok: false,
      reason: "missing",
    });
  });

  it("a corrupt file is reported as corrupt with a detail naming the problem, never thrown", async () => {
    const path = join(dir, "config.json");
    const corrupt = async (text: string, detail: RegExp) => {
      await writeFile(path, text);
      const read = await readCacheFile(path);
      expect(read).toMatchObject({ ok: false, reason: "corrupt" });
      if (!read.ok) expect(read.detail).toMatch(detail);
    };
    const good = JSON.stringify(content);
    await corrupt("", /empty/);
    await corrupt(good.slice(0, good.length / 2), /not JSON/);
    await corrupt("[1,2]", /\(file\)/);
    await corrupt(JSON.stringify({ ...content, format: "nxs-config-cache/2" }), /^format:/);
    await corrupt(JSON.stringify({ ...content, versions: [{ ...v1, id: "BAD" }] }), /^versions\.0\.id:/);
    await corrupt(
      JSON.stringify({
        ...content,
        versions: [
          { ...v1, version: 0 },
          { ...v1, hlc: "" },
        ],
      }),
      /versions\.0\.version.*1 more/,
    );
    await corrupt(
      JSON.stringify({ ...content, versions: [{ ...v1, env: "staging" }] }),
      /versions\.0\.env: not the file's env/,
    );
    await corrupt(
      JSON.stringify({ ...content, rollouts: [{ ...content.rollouts[0], state: "done" }] }),
      /^rollouts\.0\.state/,
    );
    await corrupt(JSON.stringify({ ...content, savedAt: undefined }), /^savedAt/);
    // the file as written reads back; the test file itself is left as written by the last case
    expect(JSON.parse(await readFile(path, "utf8")).format).toBe(CACHE_FILE_FORMAT);
    // a directory where the file should be
    const read = await readCacheFile(dir);
    expect(read).toMatchObject({ ok: false, reason: "corrupt" });
    if (!read.ok) expect(read.detail).toMatch(/cannot read/);
  });
});
