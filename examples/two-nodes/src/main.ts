/**
 * The nxs-sync demo: two PocketBase nodes, a replicator, a gateway on each, a primary crash.
 * Run it with `npm run demo` from the repository root.
 */
import { randomBytes } from "node:crypto";
import { counter, createDoc, createReplica, type Doc } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  createPocketBaseTransport,
  createReplicator,
  ensureNode,
  ensureSchema,
  NodeRole,
} from "@nxs-sync/pocketbase";
import { startCluster, waitFor } from "@nxs-sync/testing";
import { z } from "zod";

const schema = z.object({
  routes: z.record(z.string(), z.string()),
  hits: counter(),
});
type Routing = z.output<typeof schema>;

const say = (msg: string) => console.log(`[demo] ${msg}`);
const id15 = () => [...randomBytes(15)].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");

async function main(): Promise<void> {
  say("starting two PocketBase v0.39.11 servers (primary, secondary)");
  const cluster = await startCluster({ nodes: 2, mode: "process", batch: false });
  const [primary, secondary] = cluster.nodes;
  if (!primary || !secondary) throw new Error("cluster did not start two nodes");
  const stops: (() => Promise<unknown>)[] = [];
  try {
    // Operator set-up, with superuser credentials, once per server: schema and node identities
    // (the same record ids on every server).
    const nodes = {
      gwA: { id: id15(), email: "gw-a@nodes.demo", password: `pw-${id15()}`, role: NodeRole.Gateway },
      gwB: { id: id15(), email: "gw-b@nodes.demo", password: `pw-${id15()}`, role: NodeRole.Gateway },
      repl: { id: id15(), email: "repl@nodes.demo", password: `pw-${id15()}`, role: NodeRole.Replicator },
    };
    for (const server of cluster.nodes) {
      await ensureSchema(server.client());
      for (const [name, n] of Object.entries(nodes)) await ensureNode(server.client(), { ...n, name });
    }
    say(`schema and node identities applied on ${primary.url} and ${secondary.url}`);

    const replicator = createReplicator({
      servers: [
        { url: primary.url, auth: { email: nodes.repl.email, password: nodes.repl.password } },
        { url: secondary.url, auth: { email: nodes.repl.email, password: nodes.repl.password } },
      ],
      intervalMs: 2_000,
    });
    await replicator.start();
    stops.push(() => replicator.stop());
    say("replicator running between the two servers");

    const scheduler = createTimerScheduler();
    const gateway = async (name: string, node: typeof nodes.gwA, endpoints: string[]) => {
      const replicaId = `${node.id}.main`;
      const doc = createDoc({
        schema,
        docId: "routing",
        replicaId,
        clock: Date.now,
        initial: { routes: {}, hits: 0 },
      });
      const transport = createPocketBaseTransport({
        endpoints,
        auth: { email: node.email, password: node.password },
        docId: "routing",
        origin: replicaId, // the server leaves this replica's own records out of its realtime stream
      });
      transport.on("failover", (e) => say(`${name}: failover ${e.from} -> ${e.to}`));
      transport.on("failback", (e) => say(`${name}: failback ${e.from} -> ${e.to}`));
      const replica = createReplica({ doc, transport, storage: createMemoryStorage(), scheduler });
      await replica.start();
      stops.push(() => replica.stop());
      return { doc, replica };
    };
    const a = await gateway("gateway A", nodes.gwA, [primary.url, secondary.url]);
    const b = await gateway("gateway B", nodes.gwB, [secondary.url, primary.url]);
    say("gateway A uses the primary, gateway B the secondary (each fails over to the other)");

    a.doc.set(["routes", "api"], "10.0.0.7:8080");
    await seen(b.doc, (s) => s.routes.api === "10.0.0.7:8080", "gateway B sees A's route");

    for (let i = 0; i < 5; i++) {
      a.doc.increment(["hits"], 1);
      b.doc.increment(["hits"], 2);
    }
    await seen(a.doc, (s) => s.hits === 15, "A counts 15 hits (5 from A + 10 from B)");
    await seen(b.doc, (s) => s.hits === 15, "B counts 15 hits");

    say("SIGKILL the primary server");
    await primary.kill();
    for (let i = 1; i <= 20; i++) a.doc.set(["routes", `svc-${i}`], `10.0.1.${i}:80`);
    await a.replica.flush();
    say("gateway A: 20 writes acknowledged while the primary is down");
    await seen(b.doc, (s) => Object.keys(s.routes).length === 21, "B sees all 21 routes");

    say("restart the primary");
    await primary.restart();
    // Every change any gateway made, by the gateways' own version vectors.
    const made = Object.values(a.doc.version()).reduce((sum, seq) => sum + seq, 0);
    await waitFor(async () => (await counts(primary.url, secondary.url)).every((n) => n === made), {
      timeoutMs: 30_000,
      description: "both servers hold every change",
    }).catch(async () => {
      throw new Error(
        `servers did not converge: ${JSON.stringify(await counts(primary.url, secondary.url))}`,
      );
    });
    const same = JSON.stringify(a.doc.get()) === JSON.stringify(b.doc.get());
    if (!same) throw new Error("gateways differ after the primary came back");
    say(
      `converged: both servers hold all ${made} changes; gateways agree on ${Object.keys(a.doc.get().routes).length} routes and ${a.doc.get().hits} hits`,
    );
    say("done");

    /** Distinct changes each server holds for the doc (a record is a pack of changes seq..last). */
    async function counts(...urls: string[]): Promise<number[]> {
      return Promise.all(
        urls.map(async (url) => {
          const s = cluster.nodes.find((n) => n.url === url)!;
          const packs = await s
            .client()
            .collection("nxs_changes")
            .getFullList({ filter: 'doc = "routing"', fields: "origin,seq,last" });
          const changes = new Set<string>();
          for (const p of packs) for (let q = p.seq; q <= p.last; q++) changes.add(`${p.origin}/${q}`);
          return changes.size;
        }),
      );
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await cluster.stop();
  }
}

async function seen(doc: Doc<Routing>, pred: (s: Routing) => boolean, what: string): Promise<void> {
  await waitFor(() => pred(doc.get() as Routing), { timeoutMs: 15_000, description: what });
  say(`ok: ${what}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error("[demo] FAILED:", e);
    process.exit(1);
  },
);
