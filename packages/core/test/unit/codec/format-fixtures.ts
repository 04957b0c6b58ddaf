/**
 * The document behind the format fixtures (format1/*.json): changes and snapshots written by the
 * code before issue 23's new layouts, kept as files so that later formats are tested against bytes
 * the old code wrote. `node --import tsx packages/core/test/unit/codec/format-fixtures.ts write`
 * regenerates them (only ever on the code of the layout they stand for).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { encodeChanges } from "../../../src/codec/changes-codec.js";
import type { Doc } from "../../../src/doc/doc.js";
import { fakeClock, newDoc, type State } from "../doc/fixtures.js";

/** Builds the fixture documents: three replicas with counters (integer, fractional, deleted, compacted), sets, records and deletes. */
export function buildFixtureDocs(): { merged: Doc<State>; compacted: Doc<State> } {
  const clock = fakeClock(1_700_000_000_000);
  const a = newDoc("node-a", clock.now);
  const b = newDoc("node-b", clock.now);
  const c = newDoc("node-c", clock.now);
  const sync = (to: Doc<State>, from: Doc<State>) => {
    const res = to.applyRemote(from.changesSince(to.version()));
    if (res.rejected.length > 0) throw res.rejected[0]?.error;
  };
  a.set(["kv", "x"], 1);
  a.set(["kv", "s"], "str");
  a.set(["kv", "arr"], [1, 2, 3]);
  a.set(["kv", "nul"], null);
  a.set(["nested", "n1"], { x: 1, y: "y" });
  for (let k = 0; k < 40; k++) {
    a.increment(["hits"]);
    if (k % 7 === 0) clock.advance(1);
  }
  clock.advance(5);
  b.increment(["hits"], 3);
  b.increment(["hits"], -1);
  b.increment(["counts", "f"], 0.1);
  b.increment(["counts", "f"], 0.2);
  c.increment(["counts", "f"], 0.3);
  c.increment(["counts", "g"], 2);
  a.add(["tags"], "t1");
  a.add(["tags"], "t2");
  a.add(["groups", "g1"], 1);
  a.add(["groups", "g1"], 2);
  clock.advance(3);
  sync(b, a);
  sync(c, a);
  b.remove(["tags"], "t1");
  c.add(["tags"], "t1");
  c.remove(["groups", "g1"], 2);
  b.delete(["nested", "n1"]);
  c.set(["nested", "n2", "x"], 5);
  clock.advance(2);
  b.delete(["counts", "g"]);
  c.increment(["counts", "g"], 4);
  for (let k = 0; k < 20; k++) b.increment(["hits"], 0.25);
  clock.advance(1000);
  a.increment(["counts", "h"], 7);
  a.batch((w) => {
    w.increment(["hits"], 2);
    w.set(["kv", "y"], 2);
    w.increment(["hits"], 3);
  });
  for (const [x, y] of [
    [a, b],
    [a, c],
    [b, a],
    [b, c],
    [c, a],
    [c, b],
  ] as const)
    sync(x, y);
  const merged = a;
  const compacted = newDoc("node-d", clock.now);
  sync(compacted, merged);
  compacted.compact({ "node-a": 20, "node-b": 3, "node-c": 2 });
  return { merged, compacted };
}

/** The fixture file's content. */
export interface FormatFixture {
  readonly state: unknown;
  readonly changes: unknown;
  readonly snapshot: unknown;
  readonly binary: string;
  readonly binaryRaw: string;
  readonly compactedState: unknown;
  readonly compactedSnapshot: unknown;
  readonly compactedBinary: string;
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString("base64");

if (process.argv[2] === "write" && process.argv[1] === fileURLToPath(import.meta.url)) {
  const { merged, compacted } = buildFixtureDocs();
  const fixture: FormatFixture = {
    state: merged.get(),
    changes: encodeChanges(merged.changesSince({})),
    snapshot: merged.snapshot(),
    binary: b64(merged.snapshotBinary()),
    binaryRaw: b64(merged.snapshotBinary({ compress: false })),
    compactedState: compacted.get(),
    compactedSnapshot: compacted.snapshot(),
    compactedBinary: b64(compacted.snapshotBinary()),
  };
  const out = fileURLToPath(new URL("./format1/fixture.json", import.meta.url));
  writeFileSync(out, `${JSON.stringify(fixture, null, 1)}\n`);
  console.log(out);
}
