/**
 * The raw floor of `npm run bench -- pocketbase`: the PocketBase JS SDK alone, logged in as a node,
 * writing records shaped like nxs-sync's change records into `bench_raw` (same fields, same unique
 * index) and receiving them over the SDK's realtime subscription.
 */
import { performance } from "node:perf_hooks";
import { encodeHlc } from "@nxs-sync/core";
import { installEventSource } from "@nxs-sync/testing";
import PocketBase from "pocketbase";
import { type BenchNode, RAW_COLLECTION, recordId, trigger } from "./pocketbase-env.js";

/** A plain SDK client logged in as `node` (auto-cancellation off, as any concurrent caller needs). */
export async function rawClient(url: string, node: BenchNode): Promise<PocketBase> {
  installEventSource();
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  await pb.collection("nxs_nodes").authWithPassword(node.email, node.password);
  return pb;
}

/** A record body like an nxs change record of `doc.set(["items", "k<i>"], i)`. */
export function rawBody(doc: string, node: BenchNode, origin: string, seq: number, key: number) {
  return {
    doc,
    origin,
    seq,
    hlc: encodeHlc({ ms: Date.now(), counter: 0, node: origin as never }),
    ops: [{ kind: "set", path: ["items", `k${key}`], value: seq }],
    node: node.id,
  };
}

interface RawPair {
  readonly writer: PocketBase;
  readonly reader: PocketBase;
  readonly doc: string;
  readonly origin: string;
  /** Highest seq seen by the reader's SSE subscription, and how many distinct events arrived. */
  readonly seen: Set<number>;
  onEvent: () => void;
  close(): Promise<void>;
}

/** Writer and reader SDK clients on one server; the reader subscribes to this run's doc. */
export async function openRawPair(
  url: string,
  writerNode: BenchNode,
  readerNode: BenchNode,
): Promise<RawPair> {
  const doc = `raw-${recordId()}`;
  const writer = await rawClient(url, writerNode);
  const reader = await rawClient(url, readerNode);
  const pair: RawPair = {
    writer,
    reader,
    doc,
    origin: `${writerNode.id}.w`,
    seen: new Set(),
    onEvent: () => {},
    async close() {
      await reader.realtime.unsubscribe().catch(() => undefined);
      writer.cancelAllRequests();
      reader.cancelAllRequests();
    },
  };
  await reader.collection(RAW_COLLECTION).subscribe(
    "*",
    (e) => {
      if (e.action !== "create") return;
      pair.seen.add(Number(e.record.seq));
      pair.onEvent();
    },
    { filter: reader.filter("doc = {:doc}", { doc }) },
  );
  return pair;
}

/** (a) raw: each `write()` is one SDK create, timed until the reader's SSE event for it arrives. */
export async function rawLatencyProbe(
  url: string,
  w: BenchNode,
  r: BenchNode,
): Promise<{ write(): Promise<number>; close(): Promise<void> }> {
  const p = await openRawPair(url, w, r);
  let seq = 0;
  return {
    async write() {
      const s = ++seq;
      const t = trigger(() => p.seen.has(s), 10_000, `raw SSE event ${s}`);
      p.onEvent = t.check;
      const t0 = performance.now();
      await p.writer.collection(RAW_COLLECTION).create(rawBody(p.doc, w, p.origin, s, s % 1000));
      t.check();
      return (await t.promise) - t0;
    },
    close: () => p.close(),
  };
}

/**
 * (b) raw: `count` creates, one record per request, `concurrency` requests in flight, until every
 * create is answered and the reader received every SSE event. @returns records per second.
 */
export async function rawThroughput(
  url: string,
  w: BenchNode,
  r: BenchNode,
  count: number,
  concurrency: number,
): Promise<number> {
  const p = await openRawPair(url, w, r);
  try {
    const all = trigger(() => p.seen.size >= count, 120_000, `raw SSE events (${count})`);
    p.onEvent = all.check;
    let next = 1;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let seq = next++; seq <= count; seq = next++) {
          await p.writer.collection(RAW_COLLECTION).create(rawBody(p.doc, w, p.origin, seq, seq % 1000));
        }
      }),
    );
    all.check();
    const t1 = await all.promise;
    return (count * 1000) / (t1 - t0);
  } finally {
    await p.close();
  }
}

/**
 * Set-up of (c), not measured: `count` records of one doc in the raw collection, one record per
 * change (what an app on the SDK alone stores), written in `/api/batch` requests of 1,000 with 4 in
 * flight (only to save set-up time). @returns The doc.
 */
export async function fillRaw(url: string, node: BenchNode, count: number): Promise<string> {
  const doc = `raw-catchup-${recordId()}`;
  const origin = `${node.id}.fill`;
  const pb = await rawClient(url, node);
  let next = 1;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let from = next; from <= count; from = next) {
        next = from + 1000;
        const batch = pb.createBatch();
        for (let seq = from; seq < Math.min(from + 1000, count + 1); seq++) {
          batch.collection(RAW_COLLECTION).create(rawBody(doc, node, origin, seq, seq % 1000));
        }
        await batch.send({ requestKey: null });
      }
    }),
  );
  return doc;
}

/**
 * (c) raw: a fresh SDK client logs in and reads every record of `doc` from `collection` with
 * `getFullList` (1,000 per page), the way an app on the SDK alone replays what it missed.
 * @returns records read.
 */
export async function rawReplayAll(
  url: string,
  node: BenchNode,
  collection: string,
  doc: string,
): Promise<number> {
  const pb = await rawClient(url, node);
  const items = await pb.collection(collection).getFullList({
    filter: pb.filter("doc = {:doc}", { doc }),
    sort: "origin,seq",
    batch: 1000,
  });
  return items.length;
}
