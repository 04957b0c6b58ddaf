import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStorageConformance } from "@nxs-sync/testing/conformance";
import { afterEach, describe, expect, it } from "vitest";
import { encodeHlc } from "../../src/clock/hlc.js";
import { toDocId, toReplicaId } from "../../src/clock/ids.js";
import { isNxsError } from "../../src/errors/errors.js";
import { createMemoryStorage } from "../../src/memory/memory-storage.js";
import type { Change } from "../../src/model/change.js";
import { createFileStorage } from "../../src/node/file-storage.js";

const tempDirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "nxs-file-storage-"));
  tempDirs.push(dir);
  return dir;
};
afterEach(async () => {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

runStorageConformance("memory", () => {
  const storage = createMemoryStorage();
  return { storage, reopen: () => storage.reopen() };
});

runStorageConformance("file", async () => {
  const dir = await tempDir();
  return { storage: createFileStorage({ dir }), reopen: () => createFileStorage({ dir }) };
});

runStorageConformance("file (compacting after every ack)", async () => {
  const dir = await tempDir();
  return {
    storage: createFileStorage({ dir, compactAfter: 1 }),
    reopen: () => createFileStorage({ dir, compactAfter: 1 }),
  };
});

const doc = toDocId("d");
const me = toReplicaId("me");
const change = (seq: number): Change => ({
  doc,
  origin: me,
  seq,
  hlc: encodeHlc({ ms: 1000 + seq, counter: 0, node: me }),
  ops: [{ kind: "set", path: ["k"], value: seq }],
});

const codeOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => "resolved",
    (e: unknown) => (isNxsError(e) ? e.code : e),
  );

describe("createMemoryStorage", () => {
  const deepFreeze = <T>(v: T): T => {
    if (typeof v === "object" && v !== null) {
      for (const x of Object.values(v)) deepFreeze(x);
      Object.freeze(v);
    }
    return v;
  };

  it("copies a change that is not deeply frozen, so a caller cannot alias it (a frozen one needs no copy)", async () => {
    const s = createMemoryStorage();
    const frozen = deepFreeze(change(1));
    const loose = { ...change(2), ops: [{ kind: "set" as const, path: ["k"], value: { n: 2 } }] };
    // Frozen on top, mutable inside: copied too.
    const shallow = Object.freeze({
      ...change(3),
      ops: [{ kind: "set" as const, path: ["k"], value: { n: 3 } }],
    });
    await s.appendOutbox([frozen]);
    await s.appendOutbox([loose, shallow]);
    (loose.ops[0]?.value as { n: number }).n = 99;
    (shallow.ops[0]?.value as { n: number }).n = 99;
    const out = (await s.load())?.outbox ?? [];
    expect(out.map((c) => (c.ops[0] as { value?: unknown } | undefined)?.value)).toEqual([
      1,
      { n: 2 },
      { n: 3 },
    ]);
  });

  it("refuses at append what it cannot copy, frozen or not (a function, a Map)", async () => {
    const s = createMemoryStorage();
    const withFn = deepFreeze({ ...change(1), ops: [{ kind: "set" as const, path: ["k"], value: () => 1 }] });
    await expect(s.appendOutbox([withFn as unknown as Change])).rejects.toThrow();
    const withMap = Object.freeze({
      ...change(1),
      ops: Object.freeze([
        Object.freeze({ kind: "set" as const, path: Object.freeze(["k"]), value: new Map() }),
      ]),
    });
    // A Map is copied (structuredClone can), never aliased: frozen or not, it stays mutable.
    await s.appendOutbox([withMap as unknown as Change]);
    (withMap.ops[0] as { value: Map<string, number> }).value.set("x", 1);
    const out = (await s.load())?.outbox ?? [];
    const stored = out[0]?.ops[0] as { value?: unknown } | undefined;
    expect(stored?.value).toBeInstanceOf(Map);
    expect((stored?.value as Map<string, number> | undefined)?.size).toBe(0);
  });
});

describe("createFileStorage", () => {
  it("drops a torn last line (a crash during an unresolved append) and appends cleanly after it", async () => {
    const dir = await tempDir();
    const s1 = createFileStorage({ dir });
    await s1.appendOutbox([change(1), change(2)]);
    // no close: the process "crashed" in the middle of writing record 3
    await appendFile(join(dir, "outbox.log"), '1a2b3c4d {"t":"c","c":{"doc":"d","ori');
    const s2 = createFileStorage({ dir });
    expect((await s2.load())?.outbox.map((c) => c.seq)).toEqual([1, 2]);
    await s2.appendOutbox([change(3)]);
    await s2.close();
    const s3 = createFileStorage({ dir });
    expect((await s3.load())?.outbox.map((c) => c.seq)).toEqual([1, 2, 3]);
    await s3.close();
    await s1.close();
  });

  it("reports a damaged complete record as storage/corrupt", async () => {
    const dir = await tempDir();
    const s1 = createFileStorage({ dir });
    await s1.appendOutbox([change(1), change(2), change(3)]);
    await s1.close();
    const path = join(dir, "outbox.log");
    const text = await readFile(path, "utf8");
    await writeFile(path, text.replace('"value":2', '"value":9'));
    const s2 = createFileStorage({ dir });
    expect(await codeOf(s2.load())).toBe("storage/corrupt");
    await s2.close();
  });

  it("reports a record with a valid checksum but a wrong shape as storage/corrupt", async () => {
    const dir = await tempDir();
    const { crc32 } = await import("node:zlib");
    const json = JSON.stringify({ t: "c", c: { doc: "d", seq: "one" } });
    await writeFile(join(dir, "outbox.log"), `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`);
    const s = createFileStorage({ dir });
    expect(await codeOf(s.load())).toBe("storage/corrupt");
    await s.close();
  });

  it("reports a damaged snapshot as storage/corrupt and ignores a leftover temp file", async () => {
    const dir = await tempDir();
    const s1 = createFileStorage({ dir });
    await s1.saveSnapshot({ format: 1, doc, version: { me: 1 }, state: { a: 1 } });
    await s1.close();
    await writeFile(join(dir, "snapshot.json.tmp"), "half a snapsh");
    const s2 = createFileStorage({ dir });
    expect((await s2.load())?.snapshot?.state).toEqual({ a: 1 });
    await s2.close();
    const text = await readFile(join(dir, "snapshot.json"), "utf8");
    await writeFile(join(dir, "snapshot.json"), text.replace('"a":1', '"a":2'));
    const s3 = createFileStorage({ dir });
    expect(await codeOf(s3.load())).toBe("storage/corrupt");
    await s3.close();
  });

  it("rewrites the outbox file once it is mostly acknowledged, keeping last", async () => {
    const dir = await tempDir();
    const path = join(dir, "outbox.log");
    const s = createFileStorage({ dir, compactAfter: 8 });
    await s.appendOutbox(Array.from({ length: 20 }, (_, i) => change(i + 1)));
    const full = (await stat(path)).size;
    await s.ackOutbox(3); // 3 dead of 21 records: an ack mark is appended
    expect((await stat(path)).size).toBeGreaterThan(full);
    await s.ackOutbox(19); // mostly dead: rewritten
    const compacted = (await stat(path)).size;
    expect(compacted).toBeLessThan(full / 5);
    await s.ackOutbox(20);
    await s.close();
    const again = createFileStorage({ dir });
    const state = await again.load();
    expect(state?.outbox).toEqual([]);
    expect(state?.last).toEqual({ seq: 20, hlc: change(20).hlc });
    await again.close();
  });

  it("reports an unreadable location as storage/io", async () => {
    const dir = await tempDir();
    const file = join(dir, "a-file");
    await writeFile(file, "x");
    const s = createFileStorage({ dir: join(file, "sub") });
    const error = await s.load().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isNxsError(error) && error.code).toBe("storage/io");
    expect(isNxsError(error) && error.retryable).toBe(true);
    await s.close();
  });
});
