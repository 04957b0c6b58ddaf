import {
  createFleetClient,
  type FleetClient,
  FleetErrorCode,
  isFleetError,
  type SwitchEvent,
} from "@nxs-sync/client/node";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { EventSource } from "eventsource";
import type { RecordModel, RecordSubscription } from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SharedAccountServers, setFenced, startSharedAccountServers } from "./shared-account.js";

const servers = usePocketBaseServers();

/** What a caught promise failed with, as `code` (or the error itself when it is no fleet error). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return isFleetError(error) ? { code: error.code, maybeApplied: error.maybeApplied } : error;
  }
  return "resolved";
}

describe("a fleet client over two servers that share an account", () => {
  let s: SharedAccountServers;
  let fleet: FleetClient;
  const switches: SwitchEvent[] = [];
  const events: RecordSubscription<RecordModel>[] = [];
  /** Where the stream was at each PB_CONNECT (fired once the subscriptions are submitted again). */
  const connectedTo: (string | undefined)[] = [];
  /** The stream is on `url` with every subscription in place. */
  const streamOn = (url: string) => () => connectedTo.at(-1) === url && fleet.realtimeEndpoint() === url;
  let token = "";

  beforeAll(async () => {
    s = await startSharedAccountServers(servers, "client");
    fleet = createFleetClient({ endpoints: [s.a.url, s.b.url], EventSource, requestTimeoutMs: 5_000 });
    fleet.on("switch", (e) => switches.push(e));
  });
  afterAll(() => fleet?.close());

  const sawNote = (id: string) => () => events.find((e) => e.record.id === id);

  it("logs in on A and receives A's realtime events", async () => {
    const auth = await fleet.pb.collection("users").authWithPassword(s.user.email, s.user.password);
    expect(auth.record.id).toBe(s.user.id);
    token = fleet.pb.authStore.token;
    await fleet.pb.realtime.subscribe("PB_CONNECT", () => connectedTo.push(fleet.realtimeEndpoint()));
    await fleet.pb.collection("notes").subscribe("*", (e) => events.push(e));
    const onA = await s.a.client().collection("notes").create({ text: "written on A" });
    await waitFor(sawNote(onA.id), { description: "A's event" });
    expect(fleet.active()).toBe(s.a.url);
  });

  it("A killed: the next read goes to B with the same session, no new login", async () => {
    await s.a.kill();
    const note = await fleet.pb.collection("notes").getOne(s.noteId);
    expect(note.text).toBe("on both servers");
    expect(fleet.active()).toBe(s.b.url);
    expect(fleet.pb.authStore.token).toBe(token);
    expect(switches[0]).toMatchObject({ from: s.a.url, to: s.b.url, kind: "failover" });
    // A's token is valid on B: an auth refresh there renews the session.
    const refreshed = await fleet.pb.collection("users").authRefresh();
    expect(refreshed.record.id).toBe(s.user.id);
    expect(fleet.pb.authStore.isValid).toBe(true);
  });

  it("the realtime subscription is re-subscribed on B and delivers B's events", async () => {
    await waitFor(streamOn(s.b.url), { description: "realtime on B" });
    const onB = await s.b.client().collection("notes").create({ text: "written on B" });
    await waitFor(sawNote(onB.id), { description: "B's event" });
  });

  it("a fenced server (503): reads go to the other one; a write is not sent again and says it was not applied", async () => {
    await s.a.restart();
    await setFenced(s.b, true);
    // A read at fenced B moves to A and is retried there at once.
    const note = await fleet.pb.collection("notes").getOne(s.noteId);
    expect(note.id).toBe(s.noteId);
    expect(fleet.active()).toBe(s.a.url);
    // Back to B (A fenced now): a create gets 503 and is not retried.
    await setFenced(s.b, false);
    await setFenced(s.a, true);
    expect(await failure(fleet.pb.collection("notes").create({ text: "while A is fenced" }))).toEqual({
      code: FleetErrorCode.WriteUnconfirmed,
      maybeApplied: false,
    });
    expect(fleet.active()).toBe(s.b.url);
    // The caller sends it again: it lands on B.
    const created = await fleet.pb.collection("notes").create({ text: "while A is fenced" });
    await expect(s.b.client().collection("notes").getOne(created.id)).resolves.toMatchObject({
      id: created.id,
    });
    await setFenced(s.a, false);
  });

  it("both fenced: a read fails with client/unavailable after one try on each", async () => {
    await setFenced(s.a, true);
    await setFenced(s.b, true);
    expect(await failure(fleet.pb.collection("notes").getOne(s.noteId))).toEqual({
      code: FleetErrorCode.Unavailable,
      maybeApplied: false,
    });
    await setFenced(s.a, false);
    await setFenced(s.b, false);
  });

  it("B killed with A back: reads and realtime move back to A, the session still without a new login", async () => {
    // The last read (both fenced) ended on B; the stream follows the active endpoint.
    expect(fleet.active()).toBe(s.b.url);
    // The fences may have left the stream reconnecting: wait until it delivers B's events.
    await waitFor(
      async () => {
        const probe = await s.b.client().collection("notes").create({ text: "stream check on B" });
        return waitFor(sawNote(probe.id), { timeoutMs: 1_000 }).catch(() => undefined);
      },
      { description: "realtime delivering on B", timeoutMs: 20_000 },
    );
    const before = switches.length;
    await s.b.kill();
    const tokenBefore = fleet.pb.authStore.token;
    const note = await fleet.pb.collection("notes").getOne(s.noteId);
    expect(note.id).toBe(s.noteId);
    expect(fleet.active()).toBe(s.a.url);
    expect(fleet.pb.authStore.token).toBe(tokenBefore);
    expect(switches.length).toBeGreaterThan(before);
    await waitFor(streamOn(s.a.url), { description: "realtime back on A" });
    const onA = await s.a.client().collection("notes").create({ text: "written on A again" });
    await waitFor(sawNote(onA.id), { description: "A's event after the move back" });
  });

  it("with failbackIntervalMs the client goes back to the preferred server once it answers; close() ends it", async () => {
    await s.b.restart();
    const gateway = createFleetClient({ endpoints: [s.a.url, s.b.url], failbackIntervalMs: 50 });
    const seen: SwitchEvent[] = [];
    gateway.on("switch", (e) => seen.push(e));
    await gateway.pb.collection("users").authWithPassword(s.user.email, s.user.password);
    await s.a.kill();
    await gateway.pb.collection("notes").getOne(s.noteId);
    expect(gateway.active()).toBe(s.b.url);
    await s.a.restart();
    await waitFor(() => seen.find((e) => e.kind === "failback"), { description: "failback to A" });
    expect(gateway.active()).toBe(s.a.url);
    await expect(gateway.pb.collection("notes").getOne(s.noteId)).resolves.toMatchObject({ id: s.noteId });
    gateway.close();
    expect(await failure(gateway.pb.collection("notes").getOne(s.noteId))).toEqual({
      code: FleetErrorCode.Closed,
      maybeApplied: false,
    });
  });
});
