/**
 * `npm run bench -- config`: the config store (`@nxs-sync/config` over its PocketBase backend) on
 * real PocketBase servers against the raw PocketBase SDK in the same run (issue 17, item 12):
 * put latency vs a raw create, cached get vs a raw getOne, watch latency (put until a listener
 * fires, on one server and across two through the replicator) vs a raw SSE round, and the boot of
 * a store from its cache file (no server reachable) and from a server.
 * Goals: put <= 1.5x raw create; cached get <= 1 µs; watch <= 1.25x raw SSE round; boot from cache < 50 ms.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CONFIG_HOOKS, configHookPiece } from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";
import { createReplicator, NodeRole, type Replicator } from "@nxs-sync/pocketbase";
import { ensurePocketBaseBinary, type PocketBaseServer } from "@nxs-sync/testing";
import {
  benchBackend,
  benchStore,
  bootSchemas,
  configRegistry,
  gatewayValue,
  RAW_CONFIG,
  startConfigBenchServer,
} from "../lib/config-env.js";
import {
  nxsWatchProbe,
  openStore,
  putNext,
  putProbe,
  rawReadCache,
  rawVersionBody,
  rawWatchProbe,
  sealedValue,
  type WatchProbe,
} from "../lib/config-probes.js";
import { median, quantile } from "../lib/stats.js";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { createStash, makeNode, recordId } from "./pocketbase-env.js";
import { rawClient } from "./pocketbase-raw.js";

/** A local port nothing listens on (taken, then released). */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Runs `rounds` of each probe, interleaved one by one (the first one rotates), and gives each one's rounds. */
async function interleave(
  rounds: number,
  probes: Readonly<Record<string, (i: number) => Promise<number>>>,
): Promise<Record<string, number[]>> {
  const names = Object.keys(probes);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < rounds; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length]!;
      out[name]!.push(await probes[name]!(i + 1));
    }
  }
  return out;
}

export const suite: BenchSuite = {
  name: "config",
  description:
    "config store over PocketBase vs the raw PocketBase SDK: put, cached get, watch (one server, two servers), boot",
  defaultRuns: 5,
  async setup({ quick, wants }) {
    const ROUNDS = quick ? 40 : 150;
    const GETS = quick ? 200_000 : 2_000_000;
    const GET_ONES = quick ? 50 : 200;
    const BOOT_KEYS = 50;
    const load = loadavg()[0]!;

    const gwA = makeNode("gw-a");
    const gwB = makeNode("gw-b");
    const repl = makeNode("repl", NodeRole.Replicator);
    const nodes = [gwA, gwB, repl];

    const started: PocketBaseServer[] = [];
    const closers: (() => Promise<void>)[] = [];
    let replicator: Replicator | undefined;
    const dir = await mkdtemp(join(tmpdir(), "nxs-bench-config-"));
    /** Every run's figure per `metric/subject` (for the goal lines printed at the end). */
    const figures = new Map<string, number[]>();
    const keep = (metric: string, subject: string, v: number): number => {
      const k = `${metric}/${subject}`;
      figures.set(k, [...(figures.get(k) ?? []), v]);
      return v;
    };
    const med = (metric: string, subject: string): number =>
      median(figures.get(`${metric}/${subject}`) ?? [NaN]);

    /** The goals of issue 17: [metric, what is compared, the figure, the bound]. */
    const goals: readonly [string, string, () => number, number][] = [
      ["put", "put / raw create", () => med("put", "nxs") / med("put", "raw"), 1.5],
      ["get-cached", "cached get (µs)", () => med("get-cached", "nxs"), 1],
      [
        "watch-one-server",
        "watch one server / raw SSE round",
        () => med("watch-one-server", "nxs") / med("watch-one-server", "raw"),
        1.25,
      ],
      [
        "watch-two-servers",
        "watch two servers / raw SSE round on one server",
        () => med("watch-two-servers", "nxs") / med("watch-two-servers", "raw"),
        1.25,
      ],
      ["boot-cache", "boot from cache, bootTimeoutMs 0 (ms)", () => med("boot-cache", "nxs"), 50],
      [
        "boot-cache-defaults",
        "boot from cache, defaults, every server refusing (ms)",
        () => med("boot-cache-defaults", "nxs"),
        50,
      ],
    ];
    const printGoals = () => {
      for (const [metric, what, value, bound] of goals) {
        if (!figures.has(`${metric}/nxs`)) continue;
        const v = value();
        console.error(
          `  goal ${what}: ${v.toPrecision(3)} (bound ${bound}) ${v <= bound ? "MET" : "NOT MET"}`,
        );
        if (figures.has(`${metric}/put-part`))
          console.error(
            `    of the nxs round, the put took ${med(metric, "put-part").toFixed(2)} ms (median)`,
          );
      }
      if (figures.has("watch-two-servers/raw-relay"))
        console.error(
          `  watch two servers / raw relay: ${(med("watch-two-servers", "nxs") / med("watch-two-servers", "raw-relay")).toPrecision(3)}`,
        );
      console.error(
        `  load average (1 min) at set-up ${load.toFixed(2)}, at the end ${loadavg()[0]!.toFixed(2)}`,
      );
    };

    const teardown = async () => {
      printGoals();
      for (const c of closers.reverse()) await c().catch((e: unknown) => console.error("bench close:", e));
      await replicator?.stop().catch(() => undefined);
      for (const s of started) await s.destroy().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    };

    try {
      const bin = await ensurePocketBaseBinary();
      const wantsTwo = wants("watch-two-servers");
      // NXS_BENCH_CONFIG_HOOKS=path/to/nxs-config.pb.js: the servers run that variant of the hook
      // piece (development aid: to see what a change of a route does to the figures).
      const variant = process.env.NXS_BENCH_CONFIG_HOOKS;
      const hooks =
        variant === undefined || variant === ""
          ? [configHookPiece()]
          : [{ ...CONFIG_HOOKS, source: await readFile(variant, "utf8") }];
      if (hooks[0] !== undefined && variant) console.error(`  hook piece variant: ${variant}`);
      const [a, b] = await Promise.all([
        startConfigBenchServer("bench-config-a", nodes, hooks),
        wantsTwo ? startConfigBenchServer("bench-config-b", nodes, hooks) : undefined,
      ]);
      started.push(a);
      if (b !== undefined) started.push(b);

      // ---- put: store.put, backend.put alone, a raw create; interleaved one by one ----
      const puts = createStash();
      const putRun = async () => {
        const p = await putProbe(a.url, gwA);
        try {
          const xs = await interleave(ROUNDS, { nxs: p.nxs, port: p.port, raw: p.raw });
          for (const [k, v] of Object.entries(xs)) puts.put(k, quantile(v, 0.5));
          puts.put("raw@port", quantile(xs.raw!, 0.5));
        } finally {
          await p.close();
        }
      };
      const putSubject = (metric: string, key: string, subject: string) => async () => {
        if (!puts.has(key)) await putRun();
        return keep(metric, subject, puts.take(key));
      };

      // ---- cached get ----
      let getStore: Awaited<ReturnType<typeof openStore>> | undefined;
      let rawGetId: string | undefined;
      const getReady = async () => {
        if (getStore !== undefined) return getStore;
        getStore = await openStore([a.url], gwA, `g-${recordId()}`);
        closers.push(getStore.close);
        await putNext(getStore.store, 1);
        const pb = await rawClient(a.url, gwA);
        rawGetId = (
          await pb.collection(RAW_CONFIG).create(rawVersionBody(`g-${recordId()}`, gwA, 1, sealedValue(1)))
        ).id;
        return getStore;
      };

      // ---- watch: put until a listener fires; on one server, and from server A to a gateway of B ----
      const watches = createStash();
      const watchRun = async (metric: string, probes: Record<string, () => Promise<WatchProbe>>) => {
        const opened: Record<string, WatchProbe> = {};
        try {
          for (const [k, open] of Object.entries(probes)) opened[k] = await open();
          const xs = await interleave(
            ROUNDS,
            Object.fromEntries(Object.entries(opened).map(([k, p]) => [k, (i: number) => p.round(i)])),
          );
          for (const [k, v] of Object.entries(xs)) watches.put(`${metric}/${k}`, quantile(v, 0.5));
        } finally {
          for (const p of Object.values(opened)) await p.close();
        }
      };
      const putParts: number[] = [];
      const watchSubject =
        (metric: string, subject: string, probes: () => Record<string, () => Promise<WatchProbe>>) =>
        async () => {
          const key = `${metric}/${subject}`;
          if (!watches.has(key)) {
            putParts.length = 0;
            await watchRun(metric, probes());
            if (putParts.length > 0) keep(metric, "put-part", quantile(putParts, 0.5));
          }
          return keep(metric, subject, watches.take(key));
        };
      const oneServer = () => ({
        nxs: () => nxsWatchProbe(a.url, a.url, gwA, gwB, (t0, tPut) => putParts.push(tPut - t0)),
        raw: () => rawWatchProbe(a.url, a.url, gwA, gwB),
      });
      const twoServers = () => {
        if (b === undefined) throw new Error("bench: server B was not started");
        return {
          nxs: async () => {
            if (replicator === undefined) {
              // Started on first use: no replication work in this process during the other cases.
              replicator = createReplicator({
                servers: [a, b].map((s) => ({ url: s.url, auth: repl.auth })),
                collections: configRegistry(),
                logger: silentLogger,
              });
              await replicator.start();
            }
            return nxsWatchProbe(a.url, b.url, gwA, gwB, (t0, tPut) => putParts.push(tPut - t0));
          },
          raw: () => rawWatchProbe(a.url, a.url, gwA, gwB),
          "raw-relay": () => rawWatchProbe(a.url, b.url, gwA, gwB),
        };
      };

      // ---- boot: from the cache file with no server reachable, and from a server ----
      const bootEnv = `boot-${recordId()}`;
      const cacheFile = join(dir, "config-cache.json");
      const schemas = bootSchemas(BOOT_KEYS);
      let bootPrepared = false;
      const prepareBoot = async () => {
        if (bootPrepared) return;
        bootPrepared = true;
        const backend = benchBackend([a.url], gwA);
        const s = benchStore(backend, {
          env: bootEnv,
          node: gwA.id,
          schemas,
          cacheFile,
          cacheWriteDelayMs: 0,
        });
        await s.start();
        for (let i = 0; i < BOOT_KEYS; i++) {
          await s.put(`k${i}`, gatewayValue(i), { expectedVersion: 0, author: "bench", message: "boot" });
        }
        await s.close();
        await backend.close();
        const pb = await rawClient(a.url, gwA);
        for (let i = 0; i < BOOT_KEYS; i++) {
          await pb
            .collection(RAW_CONFIG)
            .create({ ...rawVersionBody(bootEnv, gwA, 1, sealedValue(i)), key: `k${i}` });
        }
      };
      const dead = `http://127.0.0.1:${await deadPort()}`;
      const bootOnce = async (
        endpoints: string[],
        bootTimeoutMs: number | undefined,
        want: "cache" | "server",
      ) => {
        await prepareBoot();
        const backend = benchBackend(endpoints, gwB);
        const s = benchStore(backend, {
          env: bootEnv,
          node: gwB.id,
          schemas,
          cacheFile,
          ...(bootTimeoutMs === undefined ? {} : { bootTimeoutMs }),
        });
        try {
          const t0 = performance.now();
          const r = await s.start();
          const ms = performance.now() - t0;
          if (r.source !== want)
            throw new Error(`bench self-check failed: booted from ${r.source}, not ${want}`);
          if ((s.get("k7") as { apiKey: string }).apiKey !== gatewayValue(7).apiKey)
            throw new Error("bench self-check failed: k7 is not the value written");
          return ms;
        } finally {
          await s.close();
          await backend.close();
        }
      };

      const cases: BenchCase[] = [
        {
          metric: "put",
          unit: "ms",
          better: "lower",
          note:
            `${ROUNDS} sequential writes per run on one server, p50 of the run, median over runs. ` +
            "nxs: store.put of the next version of one key (zod validation, one secret field sealed with AES-256-GCM, " +
            "POST /nxs/config/put: head read and insert in one transaction) by a started store (its realtime watch open, as a gateway's is); " +
            "raw: an SDK create of a record of the same fields and the same sealed value (about 1 KB) in a collection with the same head index, " +
            "no head read. The subjects' writes alternate one by one (nxs, backend.put alone, raw; the first rotates)",
          subjects: { nxs: putSubject("put", "nxs", "nxs"), raw: putSubject("put", "raw", "raw") },
        },
        {
          metric: "put-route-only",
          unit: "ms",
          better: "lower",
          note: "the same runs as put: nxs is backend.put alone (the value sealed beforehand: the route call, its retry layer and decoding), raw the same raw creates",
          subjects: {
            nxs: putSubject("put-route-only", "port", "nxs"),
            raw: putSubject("put-route-only", "raw@port", "raw"),
          },
        },
        {
          metric: "get-cached",
          unit: "µs",
          better: "lower",
          note:
            `nxs: store.get of one key (a frozen object of about 1 KB, secret opened) ${GETS.toLocaleString("en")} times in a loop, ` +
            `time per call; raw: an SDK getOne of a record of the same shape, median of ${GET_ONES} sequential calls`,
          subjects: {
            nxs: async () => {
              const s = (await getReady()).store;
              let sum = 0;
              for (let i = 0; i < 200_000; i++) sum += s.get("gateway").timeoutMs; // warm-up (JIT)
              const t0 = performance.now();
              for (let i = 0; i < GETS; i++) sum += s.get("gateway").timeoutMs;
              const us = ((performance.now() - t0) * 1000) / GETS;
              if (sum === 0) throw new Error("bench self-check failed: get read nothing");
              return keep("get-cached", "nxs", us);
            },
            raw: async () => {
              await getReady();
              const pb = await rawClient(a.url, gwA);
              const xs: number[] = [];
              for (let i = 0; i < GET_ONES; i++) {
                const t0 = performance.now();
                await pb.collection(RAW_CONFIG).getOne(rawGetId!, { requestKey: null });
                xs.push((performance.now() - t0) * 1000);
              }
              return keep("get-cached", "raw", median(xs));
            },
          },
        },
        {
          metric: "watch-one-server",
          unit: "ms",
          better: "lower",
          note:
            `${ROUNDS} sequential writes per run, p50 of the run, median over runs; one server. ` +
            "nxs: store.put on gateway A's store until the watch listener of gateway B's store (another store, another backend, its own realtime session) " +
            "is told that version; raw: an SDK create on client A until client B's SSE subscription (filtered by env) calls back. Interleaved one by one",
          subjects: {
            nxs: watchSubject("watch-one-server", "nxs", oneServer),
            raw: watchSubject("watch-one-server", "raw", oneServer),
          },
        },
        {
          metric: "boot-cache",
          unit: "ms",
          better: "lower",
          note:
            `start() of a new store of ${BOOT_KEYS} keys (each about 1 KB with a secret) whose only endpoint refuses connections, ` +
            "bootTimeoutMs 0, until it resolves { source: 'cache' }: the cache-file read, its checks (zod over every version), " +
            `${BOOT_KEYS} secrets opened and validated (the floor: with the defaults see boot-cache-defaults). ` +
            "raw: readFile + JSON.parse of the same file (no checks)",
          subjects: {
            nxs: async () => keep("boot-cache", "nxs", await bootOnce([dead], 0, "cache")),
            raw: async () => {
              await prepareBoot();
              return keep("boot-cache", "raw", await rawReadCache(cacheFile));
            },
          },
        },
        {
          metric: "boot-cache-defaults",
          unit: "ms",
          better: "lower",
          note:
            `start() of the same store with the default bootTimeoutMs, its only endpoint refusing connections: the store ` +
            "reads its cache file as soon as the backend's pool has marked every endpoint down (onUnreachable), not after the bound. " +
            "raw: readFile + JSON.parse of the same file (no checks)",
          subjects: {
            nxs: async () => keep("boot-cache-defaults", "nxs", await bootOnce([dead], undefined, "cache")),
            raw: async () => {
              await prepareBoot();
              return keep("boot-cache-defaults", "raw", await rawReadCache(cacheFile));
            },
          },
        },
        {
          metric: "boot-server",
          unit: "ms",
          better: "lower",
          note:
            `start() of a new store and backend of ${BOOT_KEYS} keys on a reachable server until it resolves { source: 'server' } ` +
            "(login, hook-piece check and origin, the heads route, the rollouts list, every value opened and validated; the realtime watch opens beside); " +
            `raw: a new SDK client logs in and lists the ${BOOT_KEYS} records of the same shape (getFullList)`,
          subjects: {
            nxs: async () => keep("boot-server", "nxs", await bootOnce([a.url], undefined, "server")),
            raw: async () => {
              await prepareBoot();
              const t0 = performance.now();
              const pb = await rawClient(a.url, gwB);
              const all = await pb.collection(RAW_CONFIG).getFullList({
                filter: pb.filter("env = {:env}", { env: bootEnv }),
                batch: 1000,
                requestKey: null,
              });
              const ms = performance.now() - t0;
              pb.cancelAllRequests();
              if (all.length !== BOOT_KEYS)
                throw new Error(`bench self-check failed: raw listed ${all.length}`);
              return keep("boot-server", "raw", ms);
            },
          },
        },
        {
          metric: "watch-two-servers",
          unit: "ms",
          better: "lower",
          note:
            `${ROUNDS} sequential writes per run, p50 of the run, median over runs. nxs: store.put on gateway A's store (server A) until the watch ` +
            "listener of gateway B's store on server B is told that version: the replicator (defaults, in the bench process, started for this case) " +
            "copies it from A to B; raw: the raw SSE round on one server (create on A, subscriber on A), the goal's yardstick; raw-relay: create on A, " +
            "a relay client subscribed on A creates the record on B, a subscriber on B calls back (what the replicator does, by hand). Interleaved one by one",
          subjects: {
            nxs: watchSubject("watch-two-servers", "nxs", twoServers),
            raw: watchSubject("watch-two-servers", "raw", twoServers),
            "raw-relay": watchSubject("watch-two-servers", "raw-relay", twoServers),
          },
        },
      ];
      return {
        cases,
        teardown,
        machine: {
          pocketbase: bin.version,
          ...(variant ? { hookVariant: variant } : {}),
          rounds: ROUNDS,
          gets: GETS,
          bootKeys: BOOT_KEYS,
          loadAvg1m: Number(load.toFixed(2)),
        },
      };
    } catch (e) {
      await teardown();
      throw e;
    }
  },
};
