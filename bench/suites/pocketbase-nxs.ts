/**
 * The nxs-sync side of `npm run bench -- pocketbase`: gateways (a doc, a replica, the PocketBase
 * transport with its default settings, memory storage, real timers) over real servers.
 */
import { performance } from "node:perf_hooks";
import { type Change, createDoc, createReplica, type Doc, type Replica, type Snapshot } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  compactDoc,
  createPocketBaseClient,
  createPocketBaseTransport,
  type PocketBaseTransport,
  type PocketBaseTransportOptions,
  publishSnapshot,
  writeAck,
} from "@nxs-sync/pocketbase";
import { z } from "zod";
import { type BenchNode, recordId, trigger } from "./pocketbase-env.js";

const schema = z.object({ items: z.record(z.string(), z.number()) });
type State = z.output<typeof schema>;

/** How many distinct keys the workloads write (values overwrite, so the state stays bounded). */
export const KEYS = 1000;

export interface Gateway {
  readonly doc: Doc<State>;
  readonly replica: Replica<Doc<State>>;
  readonly transport: PocketBaseTransport;
  readonly origin: string;
  /** Calls `fn` after every remote apply (realtime or pull). */
  onApplied(fn: () => void): void;
  /** Calls `fn` with every acknowledged batch. */
  onPushed(fn: (changes: readonly Change[]) => void): void;
  stop(): Promise<void>;
}

/** Options of {@link gateway}. */
export interface GatewayOptions {
  readonly endpoints: readonly string[];
  readonly node: BenchNode;
  readonly instance: string;
  readonly docId: string;
  /** Start from this snapshot (a new replica bootstrapping from the server's newest snapshot). */
  readonly snapshot?: Snapshot;
  readonly transport?: Partial<PocketBaseTransportOptions>;
  readonly pushBatchSize?: number;
}

/** A gateway with default settings unless told otherwise. Started (connecting in the background). */
export async function gateway(o: GatewayOptions): Promise<Gateway> {
  const origin = `${o.node.id}.${o.instance}`;
  const doc: Doc<State> = createDoc({
    schema,
    docId: o.docId,
    replicaId: origin,
    clock: Date.now,
    ...(o.snapshot ? { snapshot: o.snapshot } : { initial: { items: {} } }),
  });
  const transport = createPocketBaseTransport({
    endpoints: o.endpoints,
    auth: o.node.auth,
    docId: o.docId,
    origin,
    ...o.transport,
  });
  const replica = createReplica({
    doc,
    transport,
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
    ...(o.pushBatchSize ? { pushBatchSize: o.pushBatchSize } : {}),
  });
  let applied: () => void = () => {};
  let pushed: (c: readonly Change[]) => void = () => {};
  replica.on("applied", () => applied());
  replica.on("resync", () => applied());
  replica.on("pushed", (e) => pushed(e.changes));
  await replica.start();
  return {
    doc,
    replica,
    transport,
    origin,
    onApplied(fn) {
      applied = fn;
    },
    onPushed(fn) {
      pushed = fn;
    },
    stop: () => replica.stop(),
  };
}

const versionOf = (g: Gateway, origin: string): number => g.doc.version()[origin] ?? 0;

/** Waits until the replica has done its first pull (connected and caught up). */
async function ready(g: Gateway): Promise<void> {
  await g.replica.synced();
}

/** Two gateways of one fresh doc on one server: A writes, B reads. */
async function openPair(url: string, a: BenchNode, b: BenchNode) {
  const docId = `d-${recordId()}`;
  const A = await gateway({ endpoints: [url], node: a, instance: "a", docId });
  const B = await gateway({ endpoints: [url], node: b, instance: "b", docId });
  await Promise.all([ready(A), ready(B)]);
  return { A, B, close: () => Promise.all([A.stop(), B.stop()]) };
}

/** One timed write of (a): resolves with its latency in ms. */
export interface LatencyProbe {
  write(): Promise<number>;
  close(): Promise<unknown>;
}

/**
 * (a) nxs: each `write()` is one `doc.set` on gateway A, timed until gateway B has applied it (its
 * version vector covers the change).
 */
export async function nxsLatencyProbe(url: string, a: BenchNode, b: BenchNode): Promise<LatencyProbe> {
  const { A, B, close } = await openPair(url, a, b);
  let i = 0;
  return {
    async write() {
      i++;
      const t0 = performance.now();
      const c = A.doc.set(["items", `k${i % KEYS}`], i);
      if (c === undefined) throw new Error("bench: doc.set made no change");
      const seq = c.seq;
      const t = trigger(() => versionOf(B, A.origin) >= seq, 10_000, `gateway B applying seq ${seq}`);
      B.onApplied(t.check);
      return (await t.promise) - t0;
    },
    close,
  };
}

/**
 * (b) nxs: gateway A makes `count` changes back to back (one `doc.set` each, yielding to the event
 * loop every 100), the replica pushes them with its defaults; timed until A's outbox is fully
 * acknowledged and gateway B has applied all of them. @returns changes per second.
 */
export async function nxsThroughput(url: string, a: BenchNode, b: BenchNode, count: number): Promise<number> {
  const { A, B, close } = await openPair(url, a, b);
  try {
    return await timeThroughput(A, B, count);
  } finally {
    await close();
  }
}

/** The writer and reader sides {@link timeThroughput} needs (a gateway over any transport). */
export interface ThroughputPair {
  readonly A: Pick<Gateway, "doc" | "origin"> & { readonly replica: { flush(): Promise<void> } };
  readonly B: Pick<Gateway, "doc" | "onApplied">;
}

/**
 * The measured part of (b), for any transport: A makes `count` changes back to back (yielding every
 * 100), timed until A's outbox is acknowledged and B applied all. @returns changes per second.
 */
export async function timeThroughput(
  A: ThroughputPair["A"],
  B: ThroughputPair["B"],
  count: number,
): Promise<number> {
  const all = trigger(
    () => (B.doc.version()[A.origin] ?? 0) >= count,
    120_000,
    `gateway B applying ${count} changes`,
  );
  B.onApplied(all.check);
  const t0 = performance.now();
  for (let i = 1; i <= count; i++) {
    A.doc.set(["items", `k${i % KEYS}`], i);
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  await A.replica.flush();
  all.check();
  const t1 = await all.promise;
  return (count * 1000) / (t1 - t0);
}

/** Changes per push of the catch-up fill: each push is one pack record (`packSize` 1000, `packMaxBytes` raised for it). */
const FILL_CHUNK = 1000;

/** What the catch-up fill left on the server. */
export interface Filled {
  readonly docId: string;
  readonly origin: string;
  readonly count: number;
  /** The snapshot published: the doc after `count - tail` changes. */
  readonly snapshot: Snapshot;
  readonly tail: number;
}

/**
 * Set-up of (c), not measured: a writer doc makes `count` changes over {@link KEYS} keys; they are
 * pushed with 4 transports at once in batches of 1,000 (the server's single writer is the limit; this
 * only saves set-up time). The doc's snapshot after `count - tail` changes is published, the way a
 * checkpointer does.
 */
export async function fillChanges(
  url: string,
  node: BenchNode,
  count: number,
  tail: number,
): Promise<Filled> {
  const docId = `catchup-${recordId()}`;
  const origin = `${node.id}.fill`;
  const doc: Doc<State> = createDoc({
    schema,
    docId,
    replicaId: origin,
    clock: Date.now,
    initial: { items: {} },
  });
  const changes: Change[] = [];
  const off = doc.onLocalChange((c) => changes.push(c));
  let snapshot: Snapshot | undefined;
  for (let i = 1; i <= count; i++) {
    doc.set(["items", `k${i % KEYS}`], i);
    if (i === count - tail) snapshot = doc.snapshot();
  }
  off();
  if (snapshot === undefined) throw new Error("bench: no snapshot taken");
  const chunks: Change[][] = [];
  for (let i = 0; i < changes.length; i += FILL_CHUNK) chunks.push(changes.slice(i, i + FILL_CHUNK));
  const transports = Array.from({ length: 4 }, () =>
    createPocketBaseTransport({
      endpoints: [url],
      auth: node.auth,
      docId,
      batchSize: 1000,
      packMaxBytes: 1024 * 1024,
      requestTimeoutMs: 60_000,
    }),
  );
  try {
    await Promise.all(
      transports.map(async (t) => {
        for (let c = chunks.shift(); c; c = chunks.shift()) {
          const ack = await t.push(c);
          if (ack.acked !== c.length) throw new Error(`bench: fill push acked ${ack.acked} of ${c.length}`);
        }
      }),
    );
  } finally {
    for (const t of transports) await t.close();
  }
  const client = createPocketBaseClient({ url, auth: node.auth });
  await publishSnapshot(client, snapshot);
  client.close();
  return { docId, origin, count, tail, snapshot };
}

/**
 * Set-up of (c), not measured: on a server holding a filled doc, the writer acknowledges what it
 * applied (`writeAck`, as its checkpointer would) and `compactDoc` (as a replicator-role node)
 * deletes the changes the newest snapshot covers, leaving the snapshot plus the `tail` changes.
 */
export async function compactFilled(
  url: string,
  writer: BenchNode,
  maintenance: BenchNode,
  f: Filled,
): Promise<void> {
  const client = createPocketBaseClient({ url, auth: writer.auth });
  await writeAck(client, {
    doc: f.docId,
    replica: f.origin,
    version: { [f.origin]: f.count },
    at: Date.now(),
  });
  client.close();
  const m = createPocketBaseClient({ url, auth: maintenance.auth, requestTimeoutMs: 60_000 });
  const r = await compactDoc(m, f.docId);
  m.close();
  // A pack goes only when the snapshot covers all of it.
  const expected = Math.floor((f.count - f.tail) / FILL_CHUNK) * FILL_CHUNK;
  if (r.deletedChanges !== expected) {
    throw new Error(`bench: compaction deleted ${r.deletedChanges} changes, expected ${expected}`);
  }
}

/**
 * (c) nxs: a new replica (fresh doc, memory storage, default transport) of the filled doc, started
 * until it has applied all `count` changes and is in sync. On a compacted server its first pull
 * gets the newest snapshot and then the tail (the transport sees that changes it lacks were
 * compacted away); on an uncompacted one it replays every change.
 * `done` is called at that moment (before the replica stops).
 * @returns ms from `start()` to in sync, and whether a snapshot arrived.
 */
export async function nxsCatchUp(
  url: string,
  node: BenchNode,
  f: Filled,
  done: () => void = () => {},
): Promise<{ ms: number; snapshot: boolean }> {
  const t0 = performance.now();
  const R = await gateway({ endpoints: [url], node, instance: `r${recordId().slice(0, 6)}`, docId: f.docId });
  let snapshot = false;
  R.replica.on("resync", (e) => {
    if (e.snapshot) snapshot = true;
  });
  try {
    const all = trigger(() => versionOf(R, f.origin) >= f.count, 300_000, `catch-up of ${f.count} changes`);
    R.onApplied(all.check);
    await all.promise;
    await R.replica.synced();
    const ms = performance.now() - t0;
    done();
    if (Object.keys(R.doc.get().items).length !== Math.min(KEYS, f.count)) {
      throw new Error("bench self-check failed: caught-up state has the wrong number of keys");
    }
    return { ms, snapshot };
  } finally {
    await R.stop();
  }
}
