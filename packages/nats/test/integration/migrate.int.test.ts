/**
 * Moving a doc from PocketBase onto NATS (docs/nats.md): a replay with the changes' own
 * identities, run twice, leaves every change once on NATS; a gateway over NATS then has the doc.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type Change, type DocId, encodeHlc, silentLogger, type Transport } from "@nxs-sync/core";
import { createPocketBaseTransport, ensureSchema } from "@nxs-sync/pocketbase";
import { type NatsServer, type ProcessPocketBase, startNatsServer } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { makeNode, provision, recordId } from "../../../pocketbase/test/integration/helpers.js";
import { createNatsTransport, docChangesFilter, type NatsTransport, replayChanges } from "../../src/index.js";

const servers = usePocketBaseServers();
let pb: ProcessPocketBase;
let nats: NatsServer;
const gw = makeNode("gw-migrate");
beforeAll(async () => {
  [pb, nats] = await Promise.all([
    servers.start({ name: "migrate", batch: false }),
    startNatsServer({ name: "migrate" }),
  ]);
  await ensureSchema(pb.client());
  await provision(pb, [gw]);
});
afterAll(async () => {
  await nats?.destroy();
});
let open: Transport[] = [];
afterEach(async () => {
  for (const t of open) await t.close();
  open = [];
});

const change = (doc: string, origin: string, seq: number): Change =>
  ({
    doc,
    origin,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
    ops: [{ kind: "set", path: ["k", `${origin}-${seq}`], value: seq }],
  }) as unknown as Change;
/** How many pack messages the changes stream holds for the doc. */
async function storedMessages(t: NatsTransport, docId: string): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(t.names.changesStream, {
      subjects_filter: docChangesFilter(t.names, docId),
    });
    return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  } finally {
    await nc.close();
  }
}
const keys = async (t: Transport) => {
  const out: string[] = [];
  for await (const p of t.pull({})) out.push(...p.changes.map((c) => `${c.origin}:${c.seq}`));
  return out.sort();
};

it("replays a PocketBase doc onto NATS with the original identities; a second replay stores nothing twice", async () => {
  const docId = `m-${recordId()}` as DocId;
  const origins = [`${gw.id}.a`, `${gw.id}.b`];
  const track = <T extends Transport>(t: T): T => {
    open.push(t);
    return t;
  };
  for (const origin of origins) {
    const writer = track(
      createPocketBaseTransport({
        endpoints: [pb.url],
        auth: gw.auth,
        docId,
        origin,
        packSize: 7,
        logger: silentLogger,
      }),
    );
    await writer.connect();
    const all = Array.from({ length: 30 }, (_, i) => change(docId, origin, i + 1));
    for (let rest: readonly Change[] = all; rest.length > 0; )
      rest = rest.slice((await writer.push(rest)).acked);
  }
  const from = track(
    createPocketBaseTransport({ endpoints: [pb.url], auth: gw.auth, docId, logger: silentLogger }),
  );
  const to = track(createNatsTransport({ servers: nats.url, docId, logger: silentLogger, packSize: 10 }));
  await Promise.all([from.connect(), to.connect()]);
  const first = await replayChanges({ from, to });
  expect(first.changes).toBe(60);
  const stored = await storedMessages(to as NatsTransport, docId);
  expect(stored).toBe(6); // 2 origins x 30 changes in packs of 10
  // Again (an interrupted migration started over, or a catch-up before the last gateway moves):
  // the same packs, the same message ids, dropped as duplicates.
  await replayChanges({ from, to });
  expect(await storedMessages(to as NatsTransport, docId)).toBe(stored);
  const onPb = await keys(from);
  expect(onPb).toHaveLength(60);
  expect(await keys(to)).toEqual(onPb);
  // A gateway switched to NATS with its storage: its outbox pushes the same (origin, seq) again.
  const gateway = track(
    createNatsTransport({ servers: nats.url, docId, origin: origins[0], logger: silentLogger }),
  );
  await gateway.connect();
  expect((await gateway.push([change(docId, origins[0] as string, 30)])).acked).toBe(1);
  expect(await keys(to)).toEqual(onPb);
  expect(await storedMessages(to as NatsTransport, docId)).toBe(stored + 1); // an overlap, skipped by readers
});
