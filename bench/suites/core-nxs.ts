/** nxs-sync's document as a key-value subject of the core suite, used the way the docs show. */
import { type Change, createDoc, type Doc, decodeChanges, encodeChanges } from "@nxs-sync/core";
import { z } from "zod";
import type { KvReplica, KvSubject } from "./core-subjects.js";

const schema = z.record(z.string(), z.number());
type Kv = z.output<typeof schema>;
const enc = new TextEncoder();

/**
 * Uses the write helpers docs/core.md recommends for hot paths: `set` (one change per call) and
 * `batch` (one change for many writes). The immer `change()` API is measured by the
 * `*-immer-*` lines of the suite through {@link NxsImmerReplica}.
 */
class NxsReplica implements KvReplica {
  constructor(readonly doc: Doc<Kv>) {}
  setEach(keys: readonly string[], values: readonly number[]) {
    for (let i = 0; i < keys.length; i++) this.doc.set([keys[i]!], values[i]!);
  }
  setBatch(keys: readonly string[], values: readonly number[]) {
    this.doc.batch((w) => {
      for (let i = 0; i < keys.length; i++) w.set([keys[i]!], values[i]!);
    });
  }
  encode() {
    // The binary snapshot (columns, deflated), written straight from the document's state.
    return this.doc.snapshotBinary();
  }
  captureUpdates() {
    // Each change as JSON (the form core's decodeChange checks; a PocketBase record packs such changes).
    const out: unknown[] = [];
    this.doc.onLocalChange((c: Change) => out.push(JSON.stringify(c)));
    return out;
  }
  applyUpdate(update: unknown) {
    const r = this.doc.applyRemote([JSON.parse(update as string)]);
    if (r.rejected.length) throw r.rejected[0]!.error;
  }
  catchUp(behind: KvReplica) {
    const b = behind as NxsReplica;
    // The behind replica sends its version vector; this one answers with the changes it lacks, as
    // one change batch (`encodeChanges`, the compact list codec that PocketBase pack records and a
    // peer-to-peer exchange use).
    const vv = JSON.stringify(b.doc.version());
    const missing = JSON.stringify(encodeChanges(this.doc.changesSince(JSON.parse(vv))));
    const r = b.doc.applyRemote(decodeChanges(JSON.parse(missing)));
    if (r.rejected.length) throw r.rejected[0]!.error;
    return enc.encode(vv).byteLength + enc.encode(missing).byteLength;
  }
  size() {
    return Object.keys(this.doc.get()).length;
  }
}

/** The same document written through immer `change()` drafts. */
class NxsImmerReplica extends NxsReplica {
  override setEach(keys: readonly string[], values: readonly number[]) {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = values[i]!;
      this.doc.change((d) => {
        d[k] = v;
      });
    }
  }
  override setBatch(keys: readonly string[], values: readonly number[]) {
    this.doc.change((d) => {
      for (let i = 0; i < keys.length; i++) d[keys[i]!] = values[i]!;
    });
  }
}

/** nxs-sync through immer `change()`. */
export const nxsImmer: KvSubject = {
  name: "nxs",
  create: (i) =>
    new NxsImmerReplica(createDoc({ schema, docId: "bench", replicaId: `r${i}`, clock: Date.now })),
  load: (encoded, i) =>
    new NxsImmerReplica(
      createDoc({
        schema,
        docId: "bench",
        replicaId: `r${i}`,
        clock: Date.now,
        snapshot: encoded,
      }),
    ),
};

export const nxs: KvSubject = {
  name: "nxs",
  create: (i) => new NxsReplica(createDoc({ schema, docId: "bench", replicaId: `r${i}`, clock: Date.now })),
  load: (encoded, i) =>
    new NxsReplica(
      createDoc({
        schema,
        docId: "bench",
        replicaId: `r${i}`,
        clock: Date.now,
        snapshot: encoded,
      }),
    ),
};
