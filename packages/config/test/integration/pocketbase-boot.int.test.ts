import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConfigStoreEvent, createConfigStore } from "@nxs-sync/config";
import { type Scheduler, silentLogger } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { backendOf, closeBackends, closedPort, newEnv, startConfigServer } from "./pocketbase-servers.js";

/**
 * A gateway restarting while its servers refuse connections boots from its last-known-good file as
 * soon as the pool has marked every endpoint down, not after `bootTimeoutMs`.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
let dir = "";
beforeAll(async () => {
  server = await startConfigServer(servers, "config-boot");
  dir = await mkdtemp(join(tmpdir(), "nxs-config-pb-boot-"));
});
afterAll(async () => {
  await closeBackends();
  await rm(dir, { recursive: true, force: true });
});

const schemas = { limits: z.object({ rps: z.number().int().min(1) }) };

it("boots from the cache file when every endpoint refuses connections, before the boot bound's timer fires", async () => {
  const env = newEnv();
  const cacheFile = join(dir, `${env}.json`);
  const first = createConfigStore({
    backend: backendOf([server.url]),
    env,
    node: "gwboot00000001",
    schemas,
    cacheFile,
    logger: silentLogger,
  });
  expect(await first.start()).toEqual({ source: "server" });
  await first.put("limits", { rps: 9 }, { expectedVersion: 0, author: "ann", message: "first" });
  await first.close(); // writes the cache file

  // The store's scheduler, spied: the boot bound is the one timer of BOUND ms.
  const BOUND = 600_000;
  const timers = createTimerScheduler();
  const log: string[] = [];
  const scheduler: Scheduler = {
    now: () => timers.now(),
    schedule(delayMs, task) {
      if (delayMs !== BOUND) return timers.schedule(delayMs, task);
      log.push("bound scheduled");
      return timers.schedule(delayMs, () => {
        log.push("bound fired");
        task();
      });
    },
  };
  const ports = [await closedPort(), await closedPort()];
  const events: ConfigStoreEvent[] = [];
  const second = createConfigStore({
    // The defaults of the pool (no fast failover): two refused calls mark an endpoint down.
    backend: backendOf(
      ports.map((p) => `http://127.0.0.1:${p}`),
      { failover: {} },
    ),
    env,
    node: "gwboot00000002",
    schemas,
    cacheFile,
    bootTimeoutMs: BOUND,
    scheduler,
    logger: silentLogger,
    onEvent: (e) => {
      events.push(e);
      log.push(e.type);
    },
  });
  expect(await second.start()).toEqual({ source: "cache" });
  log.push("booted");
  expect(second.get("limits")).toEqual({ rps: 9 });
  expect(log.filter((l) => l !== "change")).toEqual(["bound scheduled", "degraded", "booted"]);
  expect(events.find((e) => e.type === "degraded")).toMatchObject({
    reason: expect.stringContaining("every server of the pool is down"),
  });
  await second.close();
});
