import { type Change, encodeHlc, type Transport, type TransportListener } from "@nxs-sync/core";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { getTokenPayload } from "pocketbase";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Collections,
  createPocketBaseClient,
  createPocketBaseTransport,
  createSdkClient,
  ensureSchema,
  fleetRateLimitRules,
  NODE_TOKEN_DURATION_S,
} from "../../src/index.js";
import { makeNode, provision, recordId } from "./helpers.js";

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");

beforeAll(async () => {
  server = await servers.start({ name: "rate-limits", batch: false });
  await ensureSchema(server.client());
  await provision(server, [gw]);
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
    ops: [{ kind: "set", path: ["k", String(seq)], value: seq }],
  }) as unknown as Change;

function collector(): TransportListener & { changes: Change[]; resyncs: number } {
  const c = {
    changes: [] as Change[],
    resyncs: 0,
    onChanges: (cs: readonly Change[]) => c.changes.push(...cs),
    onResync: () => c.resyncs++,
  };
  return c;
}

/** Every test here shares one IP (127.0.0.1): the gateways', the replicator's and the attacker's. */
describe("rate limits (ensureSchema)", () => {
  it("are on, with the fleet's rules", async () => {
    const settings = await server.client().settings.getAll();
    expect(settings.rateLimits.enabled).toBe(true);
    expect(settings.rateLimits.rules).toEqual(
      expect.arrayContaining(fleetRateLimitRules().map((r) => expect.objectContaining(r))),
    );
  });

  it("the hooks bundle's routes are limited too: a guest flood of /nxs/version gets 429s, a gateway's check does not", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, () =>
          fetch(`${server.url}/nxs/version`).then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          }),
        ),
      );
      statuses.push(...batch);
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    // A gateway logging in meanwhile is not throttled: its version check carries its token.
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth });
    await c.authenticate();
    expect(c.nodeId).toBe(gw.id);
    c.close();
  });

  it("a node token lasts NODE_TOKEN_DURATION_S (6 h), and a server with 5-day tokens is shortened", async () => {
    const admin = server.client();
    await admin.collections.update(Collections.Nodes, { authToken: { duration: 432_000 } });
    expect((await ensureSchema(admin)).updated).toEqual([Collections.Nodes]);
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth });
    await c.authenticate();
    const { exp } = getTokenPayload(c.pb.authStore.token) as { exp: number };
    expect(exp - Date.now() / 1000).toBeGreaterThan(NODE_TOKEN_DURATION_S - 60);
    expect(exp - Date.now() / 1000).toBeLessThanOrEqual(NODE_TOKEN_DURATION_S);
    c.close();
  });

  it("a restart storm of 20 gateways on one IP logs in, writes, pulls and subscribes; then 300 wrong passwords get 429s while they keep working", async () => {
    const doc = `d-${recordId()}`;
    const gateways = Array.from({ length: 20 }, (_, i) => {
      const t = createPocketBaseTransport({
        endpoints: [server.url],
        auth: gw.auth,
        docId: doc,
        origin: `${gw.id}.g${i}`,
      });
      open.push(t);
      return t;
    });
    const listeners = gateways.map(() => collector());
    for (const [i, t] of gateways.entries()) t.subscribe(listeners[i]!);
    await Promise.all(gateways.map((t) => t.connect()));
    await waitFor(() => listeners.every((l) => l.resyncs >= 1), { description: "every gateway subscribed" });
    await Promise.all(gateways.map((t, i) => t.push([change(doc, `${gw.id}.g${i}`, 1)])));
    await waitFor(() => listeners.every((l) => l.changes.length >= 19), {
      description: "every gateway got the others' writes over realtime",
    });

    // A password guesser on the same IP: 300 wrong passwords for the gateway's account.
    const guesser = createSdkClient(server.url);
    const statuses: number[] = [];
    for (let i = 0; i < 300; i++) {
      try {
        await guesser.collection(Collections.Nodes).authWithPassword(gw.email, `wrong-${i}`);
        statuses.push(200);
      } catch (e) {
        statuses.push((e as { status: number }).status);
      }
    }
    const throttled = statuses.filter((s) => s === 429).length;
    expect(statuses.filter((s) => s === 200)).toEqual([]);
    // nxs_nodes:auth allows 120 logins per 60 s per IP; the storm used 20 of them (or the window turned).
    expect(throttled).toBeGreaterThanOrEqual(300 - 120);

    // Meanwhile the logged-in gateways (tokens last 6 h) write, pull and get realtime as before.
    const [a, b] = [gateways[0]!, gateways[1]!];
    const before = listeners[1]!.changes.length;
    for (let seq = 2; seq <= 40; seq++) await a.push([change(doc, `${gw.id}.g0`, seq)]);
    await waitFor(() => listeners[1]!.changes.length >= before + 39, {
      description: "realtime after the attack",
    });
    let pulled = 0;
    for await (const p of b.pull({})) pulled += p.changes.length;
    expect(pulled).toBe(20 + 39);
  });
});
