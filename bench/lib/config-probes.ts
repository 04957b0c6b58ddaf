/**
 * The measured sections of `npm run bench -- config`, nxs and raw side by side: a put against a raw
 * SDK create, a watch round (put until a listener fires) against a raw SSE round (create until a
 * subscriber's callback fires), on one server or across two through the replicator (and a raw relay
 * that does by hand what the replicator does), and the boot of a store from its cache file or a server.
 */
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { type ConfigStore, type ConfigWatchEvent, sealValue } from "@nxs-sync/config";
import type { PocketBaseConfigBackend } from "@nxs-sync/config/pocketbase";
import { encodeHlc, type Json } from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import type { BenchNode } from "../suites/pocketbase-env.js";
import { recordId, trigger } from "../suites/pocketbase-env.js";
import { rawClient } from "../suites/pocketbase-raw.js";
import {
  benchBackend,
  benchKeyring,
  benchSchemas,
  benchStore,
  type GatewayConfig,
  gatewaySchema,
  gatewayValue,
  RAW_CONFIG,
} from "./config-env.js";

/** The stored (sealed) form of the `i`-th value: what both the route and the raw create carry. */
export function sealedValue(i: number): Json {
  return sealValue("gateway", gatewayValue(i) as unknown as Json, gatewaySchema, benchKeyring);
}

/** A record body shaped like a version of `key` in `env` (the fields the put route stores). */
export function rawVersionBody(env: string, node: BenchNode, version: number, value: Json) {
  return {
    id: recordId(),
    env,
    key: "gateway",
    version,
    hlc: encodeHlc({ ms: Date.now(), counter: 0, node: node.id as never }),
    origin: "raw",
    node: node.id,
    author: "bench",
    message: `raw ${version}`,
    createdAt: Date.now(),
    rollbackOf: 0,
    rollout: null,
    value,
    compacted: false,
  };
}

/** A started store of the bench schemas, with its backend (closed together). */
export interface BenchStore {
  readonly store: ConfigStore<typeof benchSchemas>;
  readonly backend: PocketBaseConfigBackend;
  close(): Promise<void>;
}

export async function openStore(
  endpoints: readonly string[],
  node: BenchNode,
  env: string,
): Promise<BenchStore> {
  const backend = benchBackend(endpoints, node);
  const store = benchStore(backend, { env, node: node.id, schemas: benchSchemas });
  await store.start();
  return {
    store,
    backend,
    async close() {
      await store.close();
      await backend.close();
    },
  };
}

/** The put of the next version of `gateway` (based on what the store serves). */
export async function putNext(s: ConfigStore<typeof benchSchemas>, i: number): Promise<number> {
  const expected = s.version("gateway")?.version ?? 0;
  const meta = await s.put("gateway", gatewayValue(i), {
    expectedVersion: expected,
    author: "bench",
    message: `put ${i}`,
  });
  return meta.version;
}

/** A raw SDK subscriber to the raw collection of one env: calls `onCreate` with each record's version. */
export async function rawSubscriber(
  pb: PocketBase,
  env: string,
  onCreate: (record: Record<string, unknown>) => void,
): Promise<void> {
  await pb.collection(RAW_CONFIG).subscribe(
    "*",
    (e) => {
      if (e.action === "create") onCreate(e.record);
    },
    { filter: pb.filter("env = {:env}", { env }) },
  );
}

/** Watch probes: a writer and a listener, one `round()` = one timed write until the listener has it. */
export interface WatchProbe {
  round(i: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * nxs: `put` on a store at `writerUrl` until a watch listener of a store at `readerUrl` is told
 * that version (the two stores are two gateways; across servers the replicator carries it).
 * `onPutDone` gets the time the put resolved (a breakdown of where the time goes).
 */
export async function nxsWatchProbe(
  writerUrl: string,
  readerUrl: string,
  writer: BenchNode,
  reader: BenchNode,
  onPutDone?: (t0: number, tPut: number) => void,
): Promise<WatchProbe> {
  const env = `w-${recordId()}`;
  const w = await openStore([writerUrl], writer, env);
  const r = await openStore([readerUrl], reader, env);
  // Version 1 before the watch, so every round is the next version after what the reader holds.
  await putNext(w.store, 0);
  let seen = 0;
  const ready = trigger(() => seen >= 1, 30_000, "the reader's watch of version 1");
  let check = ready.check;
  const events: ConfigWatchEvent<GatewayConfig>[] = [];
  const stopWatch = r.store.watch(
    "gateway",
    (e) => {
      events.push(e);
      if (e.type === "version") seen = Math.max(seen, e.version.version);
      check();
    },
    { fromVersion: 0 },
  );
  await ready.promise;
  return {
    async round(i) {
      let target = Number.POSITIVE_INFINITY;
      const t = trigger(() => seen >= target, 30_000, `nxs watch of version ${i}`);
      check = t.check;
      const t0 = performance.now();
      target = await putNext(w.store, i);
      onPutDone?.(t0, performance.now());
      t.check();
      return (await t.promise) - t0;
    },
    async close() {
      stopWatch();
      await Promise.all([w.close(), r.close()]);
      const bad = events.filter((e) => e.type !== "version");
      if (bad.length > 0) throw new Error(`bench self-check failed: watch events ${JSON.stringify(bad[0])}`);
    },
  };
}

/**
 * raw: SDK create at `writerUrl` until an SDK subscriber at `readerUrl` gets it. Across servers
 * (`writerUrl !== readerUrl`) a relay client subscribed at the writer's server creates each record
 * on the reader's (what the replicator does, by hand, without its checks).
 */
export async function rawWatchProbe(
  writerUrl: string,
  readerUrl: string,
  writer: BenchNode,
  reader: BenchNode,
): Promise<WatchProbe> {
  const env = `r-${recordId()}`;
  const pw = await rawClient(writerUrl, writer);
  const pr = await rawClient(readerUrl, reader);
  const clients = [pw, pr];
  let seen = 0;
  let check = () => {};
  await rawSubscriber(pr, env, (rec) => {
    seen = Math.max(seen, Number(rec.version));
    check();
  });
  if (writerUrl !== readerUrl) {
    const relayFrom = await rawClient(writerUrl, reader);
    const relayTo = await rawClient(readerUrl, reader);
    clients.push(relayFrom, relayTo);
    await rawSubscriber(relayFrom, env, (rec) => {
      const { collectionId: _c, collectionName: _n, created: _cr, updated: _u, ...body } = rec;
      relayTo
        .collection(RAW_CONFIG)
        .create(body, { requestKey: null })
        .catch((e: unknown) => console.error("raw relay:", e));
    });
  }
  const values = new Map<number, Json>();
  let version = 0;
  return {
    async round(i) {
      const v = ++version;
      const value = values.get(i % 16) ?? sealedValue(i % 16);
      values.set(i % 16, value);
      const body = rawVersionBody(env, writer, v, value);
      const t = trigger(() => seen >= v, 30_000, `raw SSE event of version ${v}`);
      check = t.check;
      const t0 = performance.now();
      await pw.collection(RAW_CONFIG).create(body, { requestKey: null });
      t.check();
      return (await t.promise) - t0;
    },
    async close() {
      for (const pb of clients) {
        await pb.realtime.unsubscribe().catch(() => undefined);
        pb.cancelAllRequests();
      }
    },
  };
}

/** Put probes: one `put(i)` = one timed write (ms). */
export interface PutProbe {
  /** `store.put` (validate, seal, the CAS route). */
  nxs(i: number): Promise<number>;
  /** `backend.put` alone (the CAS route, value sealed beforehand). */
  port(i: number): Promise<number>;
  /** A raw SDK create of a record of the same shape and value. */
  raw(i: number): Promise<number>;
  close(): Promise<void>;
}

export async function putProbe(url: string, node: BenchNode): Promise<PutProbe> {
  const env = `p-${recordId()}`;
  const s = await openStore([url], node, env);
  const portEnv = `q-${recordId()}`;
  const pb = await rawClient(url, node);
  let portVersion = 0;
  let rawVersion = 0;
  return {
    async nxs(i) {
      const t0 = performance.now();
      await putNext(s.store, i);
      return performance.now() - t0;
    },
    async port(i) {
      const value = sealedValue(i);
      const id = recordId();
      const t0 = performance.now();
      const v = await s.backend.put({
        id,
        env: portEnv,
        key: "gateway",
        expectedVersion: portVersion,
        hlc: encodeHlc({ ms: Date.now(), counter: 0, node: node.id as never }),
        node: node.id,
        author: "bench",
        message: `port ${i}`,
        value,
      });
      const ms = performance.now() - t0;
      portVersion = v.version;
      return ms;
    },
    async raw(i) {
      const body = rawVersionBody(env, node, ++rawVersion, sealedValue(i));
      const t0 = performance.now();
      await pb.collection(RAW_CONFIG).create(body, { requestKey: null });
      return performance.now() - t0;
    },
    async close() {
      pb.cancelAllRequests();
      await s.close();
    },
  };
}

/** Reads the cache file the raw way: `readFile` + `JSON.parse` (no checks): the floor of a boot from it. */
export async function rawReadCache(path: string): Promise<number> {
  const t0 = performance.now();
  const parsed = JSON.parse(await readFile(path, "utf8")) as { versions: unknown[] };
  const ms = performance.now() - t0;
  if (parsed.versions.length === 0) throw new Error("bench self-check failed: an empty cache file");
  return ms;
}
