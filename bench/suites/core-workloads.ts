/**
 * The core suite's workload lines beyond the 10,000-key map (issue 23, item 7): counters, add-wins
 * set churn, one-key `change()` on a wide root, one-op-per-change updates (crdt-benchmarks B3.1
 * style) and snapshot encode. Each line measures nxs-sync, Yjs and Loro doing the same work the
 * idiomatic way for each library, through public APIs only.
 */
import {
  addWinsSet,
  type Change,
  counter,
  createDoc,
  type Doc,
  decodeChanges,
  encodeChanges,
} from "@nxs-sync/core";
import { LoroDoc, type LoroMap } from "loro-crdt";
import * as Y from "yjs";
import { z } from "zod";
import { gc } from "../lib/measure.js";
import { prng } from "../lib/prng.js";
import type { BenchCase } from "../lib/types.js";

const enc = new TextEncoder();
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`bench self-check failed: ${what}`);
}

/** Sizes of the workloads (smaller with `--quick`). */
export interface WorkloadSizes {
  /** Counter: replicas x increments, one change each. */
  readonly counterReplicas: number;
  readonly counterIncrements: number;
  /** Set churn: clients x ops over `setElements` strings, 70% add / 30% remove. */
  readonly setClients: number;
  readonly setOps: number;
  readonly setElements: number;
  /** Wide root: keys, and `change()` calls measured. */
  readonly wideKeys: number;
  readonly wideChanges: number;
  /** B3.1: 20 * floor(sqrt(N)) clients, one set each. */
  readonly b3Clients: number;
}

export function workloadSizes(quick: boolean): WorkloadSizes {
  return quick
    ? {
        counterReplicas: 10,
        counterIncrements: 2_000,
        setClients: 10,
        setOps: 500,
        setElements: 1_000,
        wideKeys: 10_000,
        wideChanges: 200,
        b3Clients: 20 * Math.floor(Math.sqrt(6_000)),
      }
    : {
        counterReplicas: 10,
        counterIncrements: 10_000,
        setClients: 10,
        setOps: 2_000,
        setElements: 1_000,
        wideKeys: 10_000,
        wideChanges: 1_000,
        b3Clients: 20 * Math.floor(Math.sqrt(6_000)),
      };
}

// ---------------------------------------------------------------- counters

const counterDoc = { schema: z.object({ c: counter() }), docId: "bench", clock: Date.now, initial: { c: 0 } };

/** Per subject: the replicas' full logs (as sent), merged into a fresh replica. */
interface CounterRun {
  readonly wireBytes: number;
  /** nxs: the same logs in change batch format 1 (what PocketBase packs hold today); peers: wireBytes. */
  readonly wireBytesFormat1: number;
  readonly incrementUs: number;
  merge(): { ms: number; value: number; snapshot: () => Uint8Array };
}

function nxsCounter(n: WorkloadSizes): CounterRun {
  const logs: string[] = [];
  const logs1: string[] = [];
  let incMs = 0;
  for (let r = 0; r < n.counterReplicas; r++) {
    const doc = createDoc({ ...counterDoc, replicaId: `r${r}` });
    incMs += timeMsSync(() => {
      for (let i = 0; i < n.counterIncrements; i++) doc.increment(["c"]);
    });
    logs.push(JSON.stringify(encodeChanges(doc.changesSince({}), { format: 2 })));
    logs1.push(JSON.stringify(encodeChanges(doc.changesSince({}))));
  }
  return {
    wireBytes: sum(logs.map((l) => enc.encode(l).byteLength)),
    wireBytesFormat1: sum(logs1.map((l) => enc.encode(l).byteLength)),
    incrementUs: (incMs * 1000) / (n.counterReplicas * n.counterIncrements),
    merge() {
      const dst = createDoc({ ...counterDoc, replicaId: "dst" });
      const ms = applyLogs(dst, logs);
      return { ms, value: dst.get().c, snapshot: () => dst.snapshotBinary() };
    },
  };
}

function loroCounter(n: WorkloadSizes): CounterRun {
  const logs: Uint8Array[] = [];
  let incMs = 0;
  for (let r = 0; r < n.counterReplicas; r++) {
    const doc = new LoroDoc();
    doc.setPeerId(BigInt(r + 1));
    const c = doc.getCounter("c");
    incMs += timeMsSync(() => {
      for (let i = 0; i < n.counterIncrements; i++) {
        c.increment(1);
        doc.commit();
      }
    });
    logs.push(doc.export({ mode: "update" }));
  }
  return {
    wireBytes: sum(logs.map((l) => l.byteLength)),
    wireBytesFormat1: sum(logs.map((l) => l.byteLength)),
    incrementUs: (incMs * 1000) / (n.counterReplicas * n.counterIncrements),
    merge() {
      const dst = new LoroDoc();
      const ms = timeMsSync(() => {
        for (const l of logs) dst.import(l);
      });
      return { ms, value: dst.getCounter("c").value, snapshot: () => dst.export({ mode: "snapshot" }) };
    },
  };
}

/** Yjs has no counter type: the usual emulation is a map slot per replica holding its running total. */
function yjsCounter(n: WorkloadSizes): CounterRun {
  const logs: Uint8Array[] = [];
  let incMs = 0;
  for (let r = 0; r < n.counterReplicas; r++) {
    const doc = new Y.Doc();
    const m = doc.getMap<number>("c");
    const slot = String(doc.clientID);
    incMs += timeMsSync(() => {
      for (let i = 0; i < n.counterIncrements; i++) m.set(slot, (m.get(slot) ?? 0) + 1);
    });
    logs.push(Y.encodeStateAsUpdateV2(doc));
  }
  return {
    wireBytes: sum(logs.map((l) => l.byteLength)),
    wireBytesFormat1: sum(logs.map((l) => l.byteLength)),
    incrementUs: (incMs * 1000) / (n.counterReplicas * n.counterIncrements),
    merge() {
      const dst = new Y.Doc();
      const ms = timeMsSync(() => {
        for (const l of logs) Y.applyUpdateV2(dst, l);
      });
      const value = sum([...dst.getMap<number>("c").values()]);
      return { ms, value, snapshot: () => Y.encodeStateAsUpdateV2(dst) };
    },
  };
}

/** Encodes per measurement: the first one runs code paths cold, so a single encode measures mostly the JIT. */
const ENCODES = 15;

/** The median milliseconds of {@link ENCODES} calls of `encode` (garbage collected first), and the bytes. */
function encodeMedian(encode: () => Uint8Array): { ms: number; bytes: number } {
  let bytes = 0;
  const times: number[] = [];
  gc();
  for (let k = 0; k < ENCODES; k++) {
    const t0 = performance.now();
    bytes = encode().byteLength;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[ENCODES >> 1] as number, bytes };
}

/** Milliseconds `fn` takes (the garbage of building its input is collected first, when node runs with --expose-gc). */
function timeMsSync(fn: () => void): number {
  gc();
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Applies nxs change logs (encodeChanges JSON) to `dst`; returns the milliseconds taken. */
function applyLogs(dst: { applyRemote: Doc<unknown>["applyRemote"] }, logs: readonly string[]): number {
  return timeMsSync(() => {
    for (const l of logs) {
      const res = dst.applyRemote(decodeChanges(JSON.parse(l)));
      if (res.rejected.length) throw res.rejected[0]!.error;
    }
  });
}

// ---------------------------------------------------------------- add-wins set churn

/** One client's op list: 70% add, 30% remove, of one of `elements` strings. */
function setOps(seed: number, ops: number, elements: number): { add: boolean; el: string }[] {
  const r = prng(seed);
  return Array.from({ length: ops }, () => ({ add: r() < 0.7, el: `e${Math.floor(r() * elements)}` }));
}

interface SetRun {
  readonly localUs: number;
  merge(): { ms: number; size: number };
}

const setDoc = {
  schema: z.object({ s: addWinsSet(z.string()) }),
  docId: "bench",
  clock: Date.now,
  initial: { s: [] },
};

function nxsSet(n: WorkloadSizes): SetRun {
  const logs: string[] = [];
  let ms = 0;
  for (let c = 0; c < n.setClients; c++) {
    const doc = createDoc({ ...setDoc, replicaId: `r${c}` });
    const ops = setOps(c + 1, n.setOps, n.setElements);
    ms += timeMsSync(() => {
      for (const o of ops) o.add ? doc.add(["s"], o.el) : doc.remove(["s"], o.el);
    });
    logs.push(JSON.stringify(encodeChanges(doc.changesSince({}))));
  }
  return {
    localUs: (ms * 1000) / (n.setClients * n.setOps),
    merge() {
      const dst = createDoc({ ...setDoc, replicaId: "dst" });
      const t = applyLogs(dst, logs);
      return { ms: t, size: dst.get().s.length };
    },
  };
}

function loroSet(n: WorkloadSizes): SetRun {
  const logs: Uint8Array[] = [];
  let ms = 0;
  for (let c = 0; c < n.setClients; c++) {
    const doc = new LoroDoc();
    doc.setPeerId(BigInt(c + 1));
    const m = doc.getMap("s");
    const ops = setOps(c + 1, n.setOps, n.setElements);
    ms += timeMsSync(() => {
      for (const o of ops) {
        if (o.add) m.set(o.el, true);
        else m.delete(o.el);
        doc.commit();
      }
    });
    logs.push(doc.export({ mode: "update" }));
  }
  return {
    localUs: (ms * 1000) / (n.setClients * n.setOps),
    merge() {
      const dst = new LoroDoc();
      const t = timeMsSync(() => {
        for (const l of logs) dst.import(l);
      });
      return { ms: t, size: dst.getMap("s").size };
    },
  };
}

function yjsSet(n: WorkloadSizes): SetRun {
  const logs: Uint8Array[] = [];
  let ms = 0;
  for (let c = 0; c < n.setClients; c++) {
    const doc = new Y.Doc();
    const m = doc.getMap<boolean>("s");
    const ops = setOps(c + 1, n.setOps, n.setElements);
    ms += timeMsSync(() => {
      for (const o of ops) o.add ? m.set(o.el, true) : m.delete(o.el);
    });
    logs.push(Y.encodeStateAsUpdateV2(doc));
  }
  return {
    localUs: (ms * 1000) / (n.setClients * n.setOps),
    merge() {
      const dst = new Y.Doc();
      const t = timeMsSync(() => {
        for (const l of logs) Y.applyUpdateV2(dst, l);
      });
      return { ms: t, size: dst.getMap("s").size };
    },
  };
}

// ---------------------------------------------------------------- wide root, one key per change

const wideSchema = z.record(z.string(), z.number());

function wideKeys(n: WorkloadSizes): { keys: string[]; touch: string[] } {
  const keys = Array.from({ length: n.wideKeys }, (_, i) => `k${i}`);
  const r = prng(7);
  const touch = Array.from({ length: n.wideChanges }, () => keys[Math.floor(r() * keys.length)]!);
  return { keys, touch };
}

/**
 * µs per `change()` touching one key, then a read of that key: by path (`get([k])`), or through the
 * whole state (`get()[k]`, which rebuilds the root object after each change: O(keys)).
 */
function nxsWide(n: WorkloadSizes, read: "path" | "full"): number {
  const { keys, touch } = wideKeys(n);
  const doc = createDoc({ schema: wideSchema, docId: "bench", replicaId: "r0", clock: Date.now });
  doc.batch((w) => {
    for (let i = 0; i < keys.length; i++) w.set([keys[i]!], i);
  });
  let seen = 0;
  const ms = timeMsSync(() => {
    for (let i = 0; i < touch.length; i++) {
      const k = touch[i]!;
      doc.change((d) => {
        d[k] = -i;
      });
      seen += (read === "path" ? doc.get([k]) : doc.get()[k]) === -i ? 1 : 0;
    }
  });
  check(seen === touch.length, "nxs wide get");
  check(Object.keys(doc.get()).length === keys.length, "nxs wide keys");
  return (ms * 1000) / touch.length;
}

function yjsWide(n: WorkloadSizes, read: "path" | "full"): number {
  const { keys, touch } = wideKeys(n);
  const doc = new Y.Doc();
  const m = doc.getMap<number>("m");
  doc.transact(() => {
    for (let i = 0; i < keys.length; i++) m.set(keys[i]!, i);
  });
  let seen = 0;
  const ms = timeMsSync(() => {
    for (let i = 0; i < touch.length; i++) {
      const k = touch[i]!;
      m.set(k, -i);
      seen += (read === "path" ? m.get(k) : m.toJSON()[k]) === -i ? 1 : 0;
    }
  });
  check(seen === touch.length, "yjs wide get");
  return (ms * 1000) / touch.length;
}

function loroWide(n: WorkloadSizes, read: "path" | "full"): number {
  const { keys, touch } = wideKeys(n);
  const doc = new LoroDoc();
  const m = doc.getMap("m");
  for (let i = 0; i < keys.length; i++) m.set(keys[i]!, i);
  doc.commit();
  let seen = 0;
  const ms = timeMsSync(() => {
    for (let i = 0; i < touch.length; i++) {
      const k = touch[i]!;
      m.set(k, -i);
      doc.commit();
      seen += (read === "path" ? m.get(k) : (m.toJSON() as Record<string, unknown>)[k]) === -i ? 1 : 0;
    }
  });
  check(seen === touch.length, "loro wide get");
  return (ms * 1000) / touch.length;
}

// ---------------------------------------------------------------- B3.1: one op per change

/** The value client `i` writes (an int32, as crdt-benchmarks does). */
const b3Value = (i: number) => (Math.imul(i + 1, 2654435761) | 0) >>> 1;

interface B3Run {
  readonly updateBytes: number;
  /** The merged document's full state encoding, timed. */
  encode(): { ms: number; bytes: number };
}

/**
 * What each client sets: B3.1 a number, B3.2 an object, B3.3 a string (crdt-benchmarks' B3.1-B3.3
 * shapes), with nxs's schema for it.
 */
interface B3Shape {
  readonly schema: z.ZodType<{ v?: unknown }>;
  value(i: number): number | string | { readonly name: string; readonly address: string };
}

const B3_SHAPES: Readonly<Record<"b3" | "b3.2" | "b3.3", B3Shape>> = {
  b3: { schema: z.object({ v: z.number().optional() }), value: b3Value },
  "b3.2": {
    schema: z.object({ v: z.object({ name: z.string(), address: z.string() }).optional() }),
    value: (i) => ({ name: `client ${i}`, address: `street ${b3Value(i)}` }),
  },
  "b3.3": { schema: z.object({ v: z.string().optional() }), value: (i) => `value ${b3Value(i)}` },
};

function nxsB3(n: WorkloadSizes, shape: B3Shape = B3_SHAPES.b3): B3Run {
  const updates: string[] = [];
  const schema = shape.schema;
  for (let i = 0; i < n.b3Clients; i++) {
    const doc = createDoc({ schema, docId: "b3", replicaId: `client-${i}`, clock: Date.now });
    const c = doc.set(["v"], shape.value(i)) as Change;
    updates.push(JSON.stringify(encodeChanges([c])));
  }
  const dst = createDoc({ schema, docId: "b3", replicaId: "dst", clock: Date.now });
  for (const u of updates) dst.applyRemote(decodeChanges(JSON.parse(u)));
  check(dst.version()["client-0"] === 1, "nxs b3 merged");
  return {
    updateBytes: sum(updates.map((u) => enc.encode(u).byteLength)),
    encode() {
      return encodeMedian(() => dst.snapshotBinary());
    },
  };
}

function yjsB3(n: WorkloadSizes, shape: B3Shape = B3_SHAPES.b3): B3Run {
  const updates: Uint8Array[] = [];
  for (let i = 0; i < n.b3Clients; i++) {
    const doc = new Y.Doc();
    doc.on("updateV2", (u: Uint8Array) => updates.push(u));
    doc.getMap<unknown>("m").set("v", shape.value(i));
  }
  const dst = new Y.Doc();
  for (const u of updates) Y.applyUpdateV2(dst, u);
  return {
    updateBytes: sum(updates.map((u) => u.byteLength)),
    encode() {
      return encodeMedian(() => Y.encodeStateAsUpdateV2(dst));
    },
  };
}

function loroB3(n: WorkloadSizes, shape: B3Shape = B3_SHAPES.b3): B3Run {
  const updates: Uint8Array[] = [];
  for (let i = 0; i < n.b3Clients; i++) {
    const doc = new LoroDoc();
    doc.setPeerId(BigInt(i + 1));
    (doc.getMap("m") as LoroMap<Record<string, unknown>>).set("v", shape.value(i));
    doc.commit();
    updates.push(doc.export({ mode: "update" }));
  }
  const dst = new LoroDoc();
  dst.importBatch(updates);
  return {
    updateBytes: sum(updates.map((u) => u.byteLength)),
    encode() {
      return encodeMedian(() => dst.export({ mode: "snapshot" }));
    },
  };
}

// ---------------------------------------------------------------- the cases

/** The workload lines, each measuring nxs against Yjs and Loro in the same run. */
export function workloadCases(quick: boolean): BenchCase[] {
  const n = workloadSizes(quick);
  const counters = { nxs: nxsCounter, yjs: yjsCounter, loro: loroCounter };
  const sets = { nxs: nxsSet, yjs: yjsSet, loro: loroSet };
  const b3 = { nxs: nxsB3, yjs: yjsB3, loro: loroB3 };
  const each = <R>(table: Record<string, (n: WorkloadSizes) => R>, f: (r: R) => number) =>
    Object.fromEntries(Object.entries(table).map(([k, make]) => [k, () => f(make(n))]));
  const total = n.counterReplicas * n.counterIncrements;
  const counterNote = `${n.counterReplicas} replicas x ${n.counterIncrements} increments of 1, one change (commit) each; yjs: a map slot per replica holding its running total (the usual emulation: no counter type)`;
  const setNote = `${n.setClients} clients x ${n.setOps} ops, 70% add / 30% remove of one of ${n.setElements} strings, one change each; yjs and loro: a map used as a set`;
  const b3Note = `${n.b3Clients} clients, one change of one set each (crdt-benchmarks B3.1 style)`;
  return [
    {
      metric: "counter-increment",
      unit: "µs/inc",
      better: "lower",
      note: counterNote,
      subjects: each(counters, (r) => r.incrementUs),
    },
    {
      metric: "counter-wire-bytes",
      unit: "bytes",
      better: "lower",
      note: "every replica's full log as sent (nxs: encodeChanges JSON, change batch format 2; loro: update export; yjs: V2 state update)",
      subjects: each(counters, (r) => r.wireBytes),
    },
    {
      metric: "counter-wire-bytes-format1",
      unit: "bytes",
      better: "lower",
      note: "as counter-wire-bytes, nxs in change batch format 1 (what PocketBase packs hold until formats are negotiated)",
      subjects: each(counters, (r) => r.wireBytesFormat1),
    },
    {
      metric: "counter-merge",
      unit: "ms",
      better: "lower",
      note: "the replicas' full logs applied to a fresh replica (nxs: format 2 logs, decodeChanges + applyRemote)",
      subjects: each(counters, (r) => {
        const m = r.merge();
        check(m.value === total, `counter value ${m.value}`);
        return m.ms;
      }),
    },
    {
      metric: "counter-snapshot-bytes",
      unit: "bytes",
      better: "lower",
      note: "the merged replica's full state (nxs: snapshotBinary; loro: snapshot export; yjs: V2 state update)",
      subjects: each(counters, (r) => r.merge().snapshot().byteLength),
    },
    {
      metric: "set-local-op",
      unit: "µs/op",
      better: "lower",
      note: setNote,
      subjects: each(sets, (r) => r.localUs),
    },
    {
      metric: "set-merge",
      unit: "ms",
      better: "lower",
      note: "the clients' full logs applied to a fresh replica",
      subjects: each(sets, (r) => r.merge().ms),
    },
    ...(
      [
        [
          "wide-root-change",
          "path",
          `a flat root of ${n.wideKeys} keys: one change touching one key, then a read of that key (nxs: change() then get([key]); yjs: map.set then get; loro: set, commit, get)`,
        ],
        [
          "wide-root-change-full-get",
          "full",
          "as wide-root-change, the key read through the whole state after each change (nxs: get()[key], which rebuilds the root object: O(keys); yjs: map.toJSON()[key]; loro: map.toJSON()[key])",
        ],
      ] as const
    ).map(
      ([metric, read, note]): BenchCase => ({
        metric,
        unit: "µs/change",
        better: "lower",
        note,
        subjects: { nxs: () => nxsWide(n, read), yjs: () => yjsWide(n, read), loro: () => loroWide(n, read) },
      }),
    ),
    {
      metric: "b3-update-bytes",
      unit: "bytes",
      better: "lower",
      note: `${b3Note}: bytes of all updates, each encoded alone (nxs: encodeChanges JSON of the one change)`,
      subjects: each(b3, (r) => r.updateBytes),
    },
    ...(["b3.2", "b3.3"] as const).map(
      (k): BenchCase => ({
        metric: `${k}-update-bytes`,
        unit: "bytes",
        better: "lower",
        note: `as b3-update-bytes, each client setting ${k === "b3.2" ? "an object {name, address}" : "a string"} (crdt-benchmarks ${k.toUpperCase()} style)`,
        subjects: {
          nxs: () => nxsB3(n, B3_SHAPES[k]).updateBytes,
          yjs: () => yjsB3(n, B3_SHAPES[k]).updateBytes,
          loro: () => loroB3(n, B3_SHAPES[k]).updateBytes,
        },
      }),
    ),
    {
      metric: "b3-snapshot-encode",
      unit: "ms",
      better: "lower",
      note: `${b3Note}, merged: full state encode, median of 15 encodes in a row (nxs: snapshotBinary; yjs: encodeStateAsUpdateV2; loro: snapshot export)`,
      subjects: each(b3, (r) => r.encode().ms),
    },
    {
      metric: "b3-snapshot-bytes",
      unit: "bytes",
      better: "lower",
      note: `${b3Note}, merged: full state bytes`,
      subjects: each(b3, (r) => r.encode().bytes),
    },
  ];
}
