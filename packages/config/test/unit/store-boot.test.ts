import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isNxsError } from "@nxs-sync/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type MemoryConfigBackend, replicateConfigRecords } from "../../src/memory-backend.js";
import { flush, type Harness, harness } from "./store-helpers.js";

const who = { author: "ann", message: "change" };
/** Real file I/O (fsync) on a loaded machine: a generous bound to poll within, never a timing check. */
const IO = { timeout: 20_000, interval: 5 };

/** A second gateway's store on `backend`, booting with `cacheFile` that a first store wrote (limits rps). */
async function restartFromCache(
  h: Harness,
  backend: MemoryConfigBackend,
  cacheFile: string,
  rps: number,
  link: "down" | "hang",
  over: { bootTimeoutMs?: number } = {},
) {
  const first = h.store(backend, { cacheFile });
  await first.store.start();
  await first.store.put("limits", { rps, burst: 1 }, { expectedVersion: 0, ...who });
  await first.store.close();
  backend.setLink(link);
  const second = h.store(backend, { cacheFile, node: "gw-2", ...over });
  const boot: { result?: { source: string } } = {};
  void second.store.start().then((r) => {
    boot.result = r;
  });
  return { ...second, boot };
}

describe("config store boot from the last-known-good file", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "nxs-config-boot-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("boots from the cache file when the server hangs, says so, and recovers when it answers", async () => {
    const h = harness();
    const backend = h.backend();
    const cacheFile = join(dir, "prod.json");
    const first = h.store(backend, { cacheFile });
    await first.store.start();
    await first.store.put("limits", { rps: 5, burst: 1 }, { expectedVersion: 0, ...who });
    await first.store.put(
      "providers",
      { name: "p", apiKey: "plain-secret-value" },
      { expectedVersion: 0, ...who },
    );
    await h.advance(100);
    await first.store.close();
    const text = await readFile(cacheFile, "utf8");
    expect(text).toContain('"rps":5');
    expect(text).not.toContain("plain-secret-value");

    backend.setLink("hang");
    const second = h.store(backend, { cacheFile, bootTimeoutMs: 1000, node: "gw-2" });
    let booted: { source: string } | undefined;
    void second.store.start().then((r) => {
      booted = r;
    });
    await h.advance(999);
    expect(booted).toBeUndefined();
    h.scheduler.advance(1);
    await vi.waitFor(() => expect(booted).toEqual({ source: "cache" }), IO);
    expect(second.events.map((e) => e.type)).toContain("degraded");
    expect(second.store.get("limits")).toEqual({ rps: 5, burst: 1 });
    expect(second.store.get("providers").apiKey).toBe("plain-secret-value");

    // Meanwhile a newer version reached the server (replicated); once it answers, the store catches up.
    const other = h.backend("b");
    replicateConfigRecords(backend, other);
    const writer = h.store(other, { node: "gw-w" }).store;
    await writer.start();
    await writer.put("limits", { rps: 7, burst: 1 }, { expectedVersion: 1, ...who });
    replicateConfigRecords(other, backend);
    backend.setLink("up");
    await flush(10);
    expect(second.events.map((e) => e.type)).toContain("recovered");
    expect(second.store.get("limits").rps).toBe(7);
    await Promise.all([second.store.close(), writer.close()]);
  });

  it("boots from the cache file at once when every server refuses, before the bound's timer fires, and recovers", async () => {
    const h = harness();
    const backend = h.backend();
    const start = h.scheduler.now();
    const second = await restartFromCache(h, backend, join(dir, "refused.json"), 5, "down");
    // The clock never moves: the boot bound (5000 ms by default) cannot have fired.
    await vi.waitFor(() => expect(second.boot.result).toEqual({ source: "cache" }), IO);
    expect(h.scheduler.now()).toBe(start);
    expect(second.events.find((e) => e.type === "degraded")).toMatchObject({
      reason: expect.stringContaining("unreachable"),
    });
    expect(second.store.get("limits").rps).toBe(5);

    backend.setLink("up");
    await flush(10);
    expect(second.events.map((e) => e.type).filter((t) => t !== "change")).toEqual(["degraded", "recovered"]);
    await second.store.close();
  });

  it("boots from the cache file when the link goes down during a boot that waits for a hanging server", async () => {
    const h = harness();
    const backend = h.backend();
    const second = await restartFromCache(h, backend, join(dir, "hang-then-down.json"), 6, "hang", {
      bootTimeoutMs: 1000,
    });
    await h.advance(500);
    expect(second.boot.result).toBeUndefined();
    backend.setLink("down");
    await vi.waitFor(() => expect(second.boot.result).toEqual({ source: "cache" }), IO);
    expect(h.scheduler.now()).toBeLessThan(1_700_000_000_000 + 1000);
    await second.store.close();
  });

  it("writes the cache file a delay after a burst of changes (debounced), and on close when one is pending", async () => {
    const h = harness();
    const backend = h.backend();
    const cacheFile = join(dir, "debounced.json");
    const { store } = h.store(backend, { cacheFile, cacheWriteDelayMs: 100 });
    await store.start();
    for (let i = 0; i < 5; i++)
      await store.put("limits", { rps: i + 1, burst: 0 }, { expectedVersion: i, ...who });
    await h.advance(90);
    await expect(readFile(cacheFile, "utf8")).rejects.toThrow(/ENOENT/);
    h.scheduler.advance(10);
    await vi.waitFor(
      async () => expect(JSON.parse(await readFile(cacheFile, "utf8")).versions[0].version).toBe(5),
      IO,
    );
    await store.put("limits", { rps: 6, burst: 0 }, { expectedVersion: 5, ...who });
    await store.close();
    const saved = JSON.parse(await readFile(cacheFile, "utf8"));
    expect(saved.versions.map((v: { key: string; version: number }) => [v.key, v.version])).toEqual([
      ["limits", 6],
    ]);
  });

  it("without a usable cache file, start fails with config/not-ready once the boot time is over", async () => {
    const h = harness();
    const backend = h.backend();
    backend.setLink("down");
    const none = h.store(backend, { bootTimeoutMs: 500, retryMs: 100 });
    const noFile = none.store.start().catch((e: unknown) => e);
    await h.advance(500);
    const err = await noFile;
    expect(isNxsError(err) && err.code).toBe("config/not-ready");
    await none.store.close();

    const corrupt = join(dir, "corrupt.json");
    await writeFile(corrupt, "{ not json", "utf8");
    const bad = h.store(backend, { bootTimeoutMs: 500, cacheFile: corrupt });
    const badFile = bad.store.start().catch((e: unknown) => e);
    await h.advance(500);
    let settled: unknown;
    void badFile.then((e) => {
      settled = e;
    });
    await vi.waitFor(() => expect(settled).toBeDefined(), IO);
    expect(isNxsError(settled) && settled.code).toBe("config/not-ready");
    expect(String((settled as Error).message)).toContain(corrupt);
    await bad.store.close();
  });

  it("without a cache file, retries a server that refuses at boot and boots from it when it comes back before the boot time is over", async () => {
    const h = harness();
    const backend = h.backend();
    backend.setLink("down");
    const s = h.store(backend, { bootTimeoutMs: 5000, retryMs: 100 });
    let booted: { source: string } | undefined;
    void s.store.start().then((r) => {
      booted = r;
    });
    await h.advance(300);
    expect(booted).toBeUndefined();
    backend.setLink("up");
    await h.advance(100);
    expect(booted).toEqual({ source: "server" });
    expect(s.events.map((e) => e.type)).not.toContain("degraded");
    await s.store.close();
  });

  it("close() during a boot that waits for a server fails the boot with config/not-ready", async () => {
    const h = harness();
    const backend = h.backend();
    backend.setLink("hang");
    const s = h.store(backend, { bootTimeoutMs: 5000 });
    const boot = s.store.start().catch((e: unknown) => e);
    await h.advance(100);
    await s.store.close();
    const err = await boot;
    expect(isNxsError(err) && err.code).toBe("config/not-ready");
    expect(h.scheduler.pending()).toBe(0);
  });

  it("logs say what failed, never a secret's plain text", async () => {
    const h = harness();
    const backend = h.backend();
    const lines: string[] = [];
    const capture =
      (level: string) =>
      (message: string, ...args: unknown[]) =>
        lines.push(`${level} ${message} ${JSON.stringify(args)}`);
    const logger = {
      debug: capture("debug"),
      info: capture("info"),
      warn: capture("warn"),
      error: capture("error"),
    };
    const writer = h.store(backend, { logger });
    await writer.store.start();
    await writer.store.put(
      "providers",
      { name: "p", apiKey: "do-not-log-me" },
      { expectedVersion: 0, ...who },
    );
    // A reader with another key cannot open it (logged), a failing put is refused (not logged as a value).
    const reader = h.store(backend, { logger, keyring: undefined, node: "gw-2" });
    await reader.store.start();
    await writer.store
      .put("providers", { name: 5, apiKey: "do-not-log-me-either" } as never, { expectedVersion: 1, ...who })
      .catch(() => undefined);
    backend.setLink("down");
    backend.setLink("up");
    await flush();
    expect(lines.some((l) => l.includes("not usable"))).toBe(true);
    expect(lines.join("\n")).not.toContain("do-not-log-me");
    await Promise.all([writer.store.close(), reader.store.close()]);
  });
});
