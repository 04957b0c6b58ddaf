import { createRecorder } from "@nxs-sync/metrics";
import { ackLagProbe } from "@nxs-sync/metrics/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { clientOf, closeAll, gateway, startMetricsServer } from "./servers.js";

/**
 * Replication lag per record from nxs_acks, on two real servers without a replicator (the copies
 * are written by hand): a server holding an older copy, or none, of a replica's ack is behind by
 * the difference; once both hold the same copies, both are at 0.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startMetricsServer(servers, "acklag-a"),
    startMetricsServer(servers, "acklag-b"),
  ]);
});
afterAll(() => closeAll());

const ack = (doc: string, at: number) => ({
  doc,
  replica: `${gateway.id}.main`,
  version: {},
  at,
  node: gateway.id,
});

it("reports per server the largest lag of an ack record and how many are behind; 0 once converged", async () => {
  const t = Date.now();
  const onA = await a.client().collection("nxs_acks").create(ack("orders", t));
  const onB = await b
    .client()
    .collection("nxs_acks")
    .create(ack("orders", t - 5_000));
  await a
    .client()
    .collection("nxs_acks")
    .create(ack("carts", t - 1_000)); // not on B at all
  const client = clientOf([a.url, b.url]);
  const errors: unknown[] = [];
  const probe = ackLagProbe(client, { everyMs: 60_000, onError: (e) => errors.push(e) });
  const m = createRecorder();
  await probe(m, t + 2_000);
  const w = m.takeWindow().s;
  const last = (k: string) => w[k]?.[5];
  expect(errors).toEqual([]);
  expect(last(`nxs_replication_ack_lag_seconds{server="${a.url}"}`)).toBe(0);
  expect(last(`nxs_replication_acks_behind{server="${a.url}"}`)).toBe(0);
  // B: "orders" 5 s older; "carts" missing, written 3 s before the probe ran.
  expect(last(`nxs_replication_ack_lag_seconds{server="${b.url}"}`)).toBe(5);
  expect(last(`nxs_replication_acks_behind{server="${b.url}"}`)).toBe(2);

  // Converged: the same copies on both.
  await b.client().collection("nxs_acks").update(onB.id, { at: t });
  await b
    .client()
    .collection("nxs_acks")
    .create(ack("carts", t - 1_000));
  await probe(m, t + 30_000); // within everyMs: not read again
  expect(m.takeWindow().s[`nxs_replication_acks_behind{server="${b.url}"}`]?.[5]).toBe(2);
  await probe(m, t + 62_000);
  const w2 = m.takeWindow().s;
  expect(w2[`nxs_replication_ack_lag_seconds{server="${b.url}"}`]?.[5]).toBe(0);
  expect(w2[`nxs_replication_acks_behind{server="${b.url}"}`]?.[5]).toBe(0);
  expect(onA.id).not.toBe("");
});
