/**
 * One key-value adapter per library for the core suite. Every adapter does the same thing the
 * idiomatic way for its library: a map of string keys to numbers, local sets in changes
 * (transactions) of 1 or many, full-state encode/load, remote updates, and catch-up of a replica.
 */
import * as Automerge from "@automerge/automerge";
import { createMergeableStore, type MergeableStore } from "tinybase";
import * as Y from "yjs";

/** A replica of one library under test. */
export interface KvReplica {
  /** One change (transaction) per entry. */
  setEach(keys: readonly string[], values: readonly number[]): void;
  /** One change (transaction) for all entries. */
  setBatch(keys: readonly string[], values: readonly number[]): void;
  /** Full state, as it would be stored or sent. */
  encode(): Uint8Array;
  /** Starts capturing every local change as it would be sent to peers. */
  captureUpdates(): unknown[];
  /** Applies one captured update from another replica. */
  applyUpdate(update: unknown): void;
  /** Brings `behind` up to this replica's state; returns every byte exchanged, both ways. */
  catchUp(behind: KvReplica): number;
  /** Number of keys visible (used to check the work really happened). */
  size(): number;
}

/** A library under test. */
export interface KvSubject {
  readonly name: string;
  create(replicaIndex: number): KvReplica;
  load(encoded: Uint8Array, replicaIndex: number): KvReplica;
}

/** Keys in the benchmark document. */
export const KEYS = 10_000;

/** A replica holding all {@link KEYS} keys, built in changes of 100. */
export function filledReplica(s: KvSubject, replica: number): KvReplica {
  const r = s.create(replica);
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
  const values = keys.map((_, i) => i);
  for (let i = 0; i < KEYS; i += 100) r.setBatch(keys.slice(i, i + 100), values.slice(i, i + 100));
  return r;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const jsonBytes = (v: unknown) => enc.encode(JSON.stringify(v)).byteLength;

// ---------------------------------------------------------------- Yjs (Y.Map)
class YjsReplica implements KvReplica {
  readonly doc: Y.Doc;
  readonly map: Y.Map<number>;
  constructor(doc?: Y.Doc) {
    this.doc = doc ?? new Y.Doc();
    this.map = this.doc.getMap("m");
  }
  setEach(keys: readonly string[], values: readonly number[]) {
    for (let i = 0; i < keys.length; i++) this.map.set(keys[i]!, values[i]!);
  }
  setBatch(keys: readonly string[], values: readonly number[]) {
    this.doc.transact(() => {
      for (let i = 0; i < keys.length; i++) this.map.set(keys[i]!, values[i]!);
    });
  }
  encode() {
    return Y.encodeStateAsUpdate(this.doc);
  }
  captureUpdates() {
    const out: unknown[] = [];
    this.doc.on("update", (u: Uint8Array) => out.push(u));
    return out;
  }
  applyUpdate(update: unknown) {
    Y.applyUpdate(this.doc, update as Uint8Array);
  }
  catchUp(behind: KvReplica) {
    const b = behind as YjsReplica;
    const sv = Y.encodeStateVector(b.doc);
    const diff = Y.encodeStateAsUpdate(this.doc, sv);
    Y.applyUpdate(b.doc, diff);
    return sv.byteLength + diff.byteLength;
  }
  size() {
    return this.map.size;
  }
}

export const yjs: KvSubject = {
  name: "yjs",
  create: () => new YjsReplica(),
  load(encoded) {
    const d = new Y.Doc();
    Y.applyUpdate(d, encoded);
    return new YjsReplica(d);
  },
};

// ---------------------------------------------------------------- Automerge
type AmDoc = Record<string, number>;
class AutomergeReplica implements KvReplica {
  doc: Automerge.Doc<AmDoc>;
  private sink: unknown[] | undefined;
  constructor(doc: Automerge.Doc<AmDoc>) {
    this.doc = doc;
  }
  private emit() {
    if (!this.sink) return;
    const c = Automerge.getLastLocalChange(this.doc);
    if (c) this.sink.push(c);
  }
  setEach(keys: readonly string[], values: readonly number[]) {
    for (let i = 0; i < keys.length; i++) {
      this.doc = Automerge.change(this.doc, (d) => {
        d[keys[i]!] = values[i]!;
      });
      this.emit();
    }
  }
  setBatch(keys: readonly string[], values: readonly number[]) {
    this.doc = Automerge.change(this.doc, (d) => {
      for (let i = 0; i < keys.length; i++) d[keys[i]!] = values[i]!;
    });
    this.emit();
  }
  encode() {
    return Automerge.save(this.doc);
  }
  captureUpdates() {
    this.sink = [];
    return this.sink;
  }
  applyUpdate(update: unknown) {
    [this.doc] = Automerge.applyChanges(this.doc, [update as Automerge.Change]);
  }
  catchUp(behind: KvReplica) {
    const b = behind as AutomergeReplica;
    // The Automerge sync protocol, run to quiescence; every message counted.
    let sa = Automerge.initSyncState();
    let sb = Automerge.initSyncState();
    let bytes = 0;
    for (let round = 0; round < 20; round++) {
      let msg: Uint8Array | null;
      let moved = false;
      [sb, msg] = Automerge.generateSyncMessage(b.doc, sb);
      if (msg) {
        bytes += msg.byteLength;
        [this.doc, sa] = Automerge.receiveSyncMessage(this.doc, sa, msg);
        moved = true;
      }
      [sa, msg] = Automerge.generateSyncMessage(this.doc, sa);
      if (msg) {
        bytes += msg.byteLength;
        [b.doc, sb] = Automerge.receiveSyncMessage(b.doc, sb, msg);
        moved = true;
      }
      if (!moved) break;
    }
    return bytes;
  }
  size() {
    return Object.keys(this.doc).length;
  }
}

export const automerge: KvSubject = {
  name: "automerge",
  create: (i) => new AutomergeReplica(Automerge.init<AmDoc>({ actor: actorId(i) })),
  load: (encoded, i) => new AutomergeReplica(Automerge.load<AmDoc>(encoded, { actor: actorId(i) })),
};

function actorId(i: number): string {
  return (i + 1).toString(16).padStart(32, "0");
}

// ---------------------------------------------------------------- TinyBase MergeableStore (values)
class TinybaseReplica implements KvReplica {
  readonly store: MergeableStore;
  constructor(store: MergeableStore) {
    this.store = store;
  }
  setEach(keys: readonly string[], values: readonly number[]) {
    for (let i = 0; i < keys.length; i++) this.store.setValue(keys[i]!, values[i]!);
  }
  setBatch(keys: readonly string[], values: readonly number[]) {
    this.store.transaction(() => {
      for (let i = 0; i < keys.length; i++) this.store.setValue(keys[i]!, values[i]!);
    });
  }
  encode() {
    return enc.encode(JSON.stringify(this.store.getMergeableContent()));
  }
  captureUpdates() {
    const out: unknown[] = [];
    this.store.addDidFinishTransactionListener(() => {
      // What TinyBase's synchronizers broadcast after a transaction, serialised as they send it.
      out.push(JSON.stringify(this.store.getTransactionMergeableChanges()));
    });
    return out;
  }
  applyUpdate(update: unknown) {
    this.store.applyMergeableChanges(JSON.parse(update as string));
  }
  catchUp(behind: KvReplica) {
    const b = behind as TinybaseReplica;
    // The hash-comparison exchange TinyBase's synchronizer does for values: the behind replica
    // sends its content hashes, then its value hashes; this one answers with the value diff.
    const contentHashes = b.store.getMergeableContentHashes();
    const valueHashes = b.store.getMergeableValueHashes();
    const diff = this.store.getMergeableValueDiff(valueHashes);
    const bytes = jsonBytes(contentHashes) + jsonBytes(valueHashes) + jsonBytes(diff);
    b.store.applyMergeableChanges([[{}, 0], diff, 1] as never);
    return bytes;
  }
  size() {
    return this.store.getValueIds().length;
  }
}

export const tinybase: KvSubject = {
  name: "tinybase",
  create: (i) => new TinybaseReplica(createMergeableStore(`r${i}`)),
  load(encoded, i) {
    const s = createMergeableStore(`r${i}`);
    s.setMergeableContent(JSON.parse(dec.decode(encoded)));
    return new TinybaseReplica(s);
  },
};
