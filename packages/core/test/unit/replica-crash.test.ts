import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { toDocId, toReplicaId } from "../../src/clock/ids.js";
import { createDoc } from "../../src/doc/doc.js";
import { createMemoryHub } from "../../src/memory/memory-transport.js";
import { createFileStorage } from "../../src/node/file-storage.js";
import { createReplica, openReplica, type Replica } from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import type { Storage } from "../../src/sync/storage.js";
import { createIoTracker, drive, driveUntilSettled } from "./support/drive.js";
import { createFakeDoc, type FakeDoc } from "./support/fake-doc.js";

const docId = toDocId("routes");
const me = toReplicaId("gw-1");
const dirs: string[] = [];
const storages: Storage[] = [];
afterEach(async () => {
  // the "crashed" replicas never closed their files: release them now that the test is over
  for (const s of storages.splice(0)) await s.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function world() {
  const scheduler = createManualScheduler({ now: 5_000 });
  const hub = createMemoryHub({ seed: 9 });
  // the files' real I/O: drive waits for it instead of spinning (or moving fake time) meanwhile
  const io = createIoTracker();
  const w = { hub, scheduler, io };
  const reopen = (dir: string, online: boolean, snapshotEvery = 100) => {
    const transport = hub.transport(docId);
    if (!online) hub.disconnect(transport);
    const storage = createFileStorage({ dir });
    storages.push(storage);
    return openReplica<FakeDoc>({
      storage: io.storage(storage),
      transport,
      scheduler,
      snapshotEvery,
      // A first start offline: the id is new, and no server could tell (see "Replica identity").
      identityCheck: online,
      createDoc: (restored) => createFakeDoc({ docId, replicaId: me, now: () => scheduler.now(), restored }),
    }).then((replica) => ({ replica, transport }));
  };
  return { ...w, reopen, drive: (until: () => boolean) => drive(w, until) };
}

const saved = (r: Replica) => () => r.status().unsavedChanges === 0;

describe("crash and reload from file storage", () => {
  it("loses no local change made offline when the process dies without stop()", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-crash-"));
    dirs.push(dir);
    const w = world();
    const { replica: r1 } = await w.reopen(dir, false);
    for (let i = 1; i <= 10; i++) r1.doc.set(`route-${i}`, `10.0.0.${i}`);
    await w.drive(saved(r1));
    // crash: r1 is never stopped, its files never closed
    const { replica: r2, transport } = await w.reopen(dir, false);
    expect(r2.doc.get()).toEqual(r1.doc.get());
    expect(r2.status().pendingChanges).toBe(10);
    w.hub.reconnect(transport);
    await driveUntilSettled(w, r2.flush());
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(r2.doc.set("route-11", "x").seq).toBe(11);
    await r2.stop();
  });

  it("restores acknowledged (snapshotted) and unacknowledged changes, and never reuses a seq", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-crash-"));
    dirs.push(dir);
    const w = world();
    const { replica: r1, transport: t1 } = await w.reopen(dir, true, 3);
    for (let i = 1; i <= 7; i++) r1.doc.set(`k${i}`, i);
    await driveUntilSettled(w, r1.flush());
    w.hub.disconnect(t1);
    for (let i = 8; i <= 9; i++) r1.doc.set(`k${i}`, i);
    await w.drive(saved(r1));
    // let the snapshot + trim that the acks triggered reach the disk (crashing before is fine too,
    // but then nothing would be trimmed and this test would check less)
    await w.io.idle();
    const { replica: r2, transport } = await w.reopen(dir, false);
    expect(r2.doc.get()).toEqual(r1.doc.get());
    expect(r2.doc.version()).toEqual({ "gw-1": 9 });
    expect(r2.status().pendingChanges).toBeLessThan(9); // the snapshot covers the acknowledged ones
    expect(r2.status().pendingChanges).toBeGreaterThanOrEqual(2);
    expect(r2.doc.set("k10", 10).seq).toBe(10);
    w.hub.reconnect(transport);
    await driveUntilSettled(w, r2.flush());
    expect(w.hub.changes(docId).map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await r2.stop();
  }, 20_000);

  it("survives a torn write at the end of the outbox", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-crash-"));
    dirs.push(dir);
    const w = world();
    const { replica: r1 } = await w.reopen(dir, false);
    r1.doc.set("a", 1);
    r1.doc.set("b", 2);
    await w.drive(saved(r1));
    await appendFile(join(dir, "outbox.log"), '0badc0de {"t":"c","c":{"doc":"routes","origin":"gw-1","se');
    const { replica: r2 } = await w.reopen(dir, false);
    expect(r2.doc.get()).toEqual({ a: 1, b: 2 });
    expect(r2.status().pendingChanges).toBe(2);
  });

  it("refuses a fresh doc over storage that holds its history (would reuse seqs)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-crash-"));
    dirs.push(dir);
    const w = world();
    const { replica: r1 } = await w.reopen(dir, true, 1);
    r1.doc.set("a", 1);
    await driveUntilSettled(w, r1.flush());
    await r1.stop();
    const fresh = createFakeDoc({ docId, replicaId: me, now: () => 0, snapshots: false });
    const storage = createFileStorage({ dir });
    storages.push(storage);
    const r2 = createReplica({
      doc: fresh,
      transport: w.hub.transport(docId),
      storage: w.io.storage(storage),
      scheduler: w.scheduler,
    });
    await expect(r2.start()).rejects.toMatchObject({ code: "conflict" });
  });

  it("restores a real document (createDoc) from snapshot + outbox after a crash", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-crash-"));
    dirs.push(dir);
    const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
    const hub = createMemoryHub({ seed: 3 });
    const io = createIoTracker();
    const w = { hub, scheduler, io };
    const schema = z.object({ routes: z.record(z.string(), z.string()) });
    const open = async () => {
      const transport = hub.transport(docId);
      hub.disconnect(transport);
      const storage = createFileStorage({ dir });
      storages.push(storage);
      const replica = await openReplica({
        storage: io.storage(storage),
        transport,
        scheduler,
        snapshotEvery: 2,
        identityCheck: false, // the first start is offline, with a new id
        createDoc: ({ snapshot, last }) =>
          createDoc({
            schema,
            docId,
            replicaId: me,
            clock: () => scheduler.now(),
            initial: { routes: {} },
            ...(snapshot === undefined ? {} : { snapshot }),
            ...(last === undefined ? {} : { last }),
          }),
      });
      return { replica, transport };
    };
    const first = await open();
    hub.reconnect(first.transport);
    for (let i = 1; i <= 5; i++) first.replica.doc.set(["routes", `r${i}`], `10.0.0.${i}`);
    await driveUntilSettled(w, first.replica.flush());
    hub.disconnect(first.transport);
    first.replica.doc.set(["routes", "r6"], "offline");
    first.replica.doc.set(["routes", "r1"], "moved");
    await drive(w, saved(first.replica));
    // crash, then restart from the same directory
    const second = await open();
    expect(second.replica.doc.get()).toEqual(first.replica.doc.get());
    expect(second.replica.doc.version()).toEqual({ [me]: 7 });
    expect(second.replica.status().pendingChanges).toBeGreaterThanOrEqual(2);
    expect(second.replica.doc.set(["routes", "r7"], "new")?.seq).toBe(8);
    hub.reconnect(second.transport);
    await driveUntilSettled(w, second.replica.flush());
    expect(hub.changes(docId).map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await second.replica.stop();
  });
});
