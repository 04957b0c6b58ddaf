/**
 * `npm run bench -- accounts`: how long a write on server A takes to be visible on server B through
 * the replicator (issue 21, item 6): an account change (a sign-up, through the `records` piece), an
 * app record change (a `posts` create, the same piece), and, in the same run and the same way, an
 * nxs-sync change record (the replicator's own collections): the ratio is the goal (at most 2x).
 * Each sample: a write on A, then the time from A's answer until B's realtime (a superuser
 * subscription on B) says the record is there; the median of `ROUNDS` writes.
 */
import { performance } from "node:perf_hooks";
import { type Change, encodeHlc } from "@nxs-sync/core";
import {
  createNxsCollectionRegistry,
  createReplicator,
  encodeChangeRecord,
  ensureSchema,
  NodeRole,
  type Replicator,
  readSecrets,
  recordsCollections,
  recordsHookPiece,
  writeSecrets,
} from "@nxs-sync/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import type PocketBase from "pocketbase";
import { median } from "../lib/stats.js";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { makeNode, recordId, startBenchServer, trigger } from "./pocketbase-env.js";

const COLLECTIONS = ["users", "posts"];
const registry = () => createNxsCollectionRegistry().register(...recordsCollections());

export const suite: BenchSuite = {
  name: "accounts",
  description:
    "replication latency A -> B: an account and an app record (records piece) vs an nxs change record, same run",
  defaultRuns: 5,
  async setup({ quick }) {
    const ROUNDS = quick ? 10 : 30;
    const gw = makeNode("gw");
    const repl = makeNode("repl", NodeRole.Replicator);
    const piece = recordsHookPiece({ collections: COLLECTIONS });
    const servers: ProcessPocketBase[] = [];
    let replicator: Replicator | undefined;
    const subscriptions: PocketBase[] = [];
    const teardown = async () => {
      await replicator?.stop();
      for (const pb of subscriptions) pb.realtime.unsubscribe().catch(() => undefined);
      for (const s of servers) await s.destroy().catch(() => undefined);
    };
    try {
      for (const name of ["accounts-a", "accounts-b"]) {
        const s = await startBenchServer(name, [gw, repl], { hookFiles: [piece] });
        servers.push(s);
        await ensureSchema(s.client(), { collections: registry(), batchMaxRequests: 1000 });
        await s.client().collections.create({
          id: "pbc_bench_posts001",
          name: "posts",
          type: "base",
          fields: [
            { name: "title", type: "text" },
            { name: "created", type: "autodate", onCreate: true, onUpdate: false },
            { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
          ],
          listRule: "",
          viewRule: "",
          createRule: "",
          updateRule: null,
          deleteRule: null,
        });
      }
      const [a, b] = servers as [ProcessPocketBase, ProcessPocketBase];
      await writeSecrets(b.client(), "users", (await readSecrets(a.client(), "users")).secrets);
      replicator = createReplicator({
        servers: servers.map((s) => ({ url: s.url, auth: repl.auth })),
        collections: registry(),
        records: COLLECTIONS,
      });
      await replicator.start();

      // B's realtime: every record seen, by collection and id, with when it arrived.
      const seen = new Map<string, number>();
      const waiting = new Set<() => void>();
      const watcher = b.client();
      subscriptions.push(watcher);
      for (const col of ["users", "posts", "nxs_changes"]) {
        await watcher.collection(col).subscribe("*", (e) => {
          const at = performance.now();
          seen.set(`${col}/${e.record.id}`, at);
          // A change's copy has B's own id: it is known by its key.
          if (col === "nxs_changes")
            seen.set(`nxs_changes/${e.record.doc}/${e.record.origin}/${e.record.seq}`, at);
          for (const w of waiting) w();
        });
      }
      const visibleOnB = async (key: string, write: () => Promise<unknown>): Promise<number> => {
        const t = trigger(() => seen.has(key), 15_000, `${key} on B`);
        waiting.add(t.check);
        try {
          await write();
          // From A's answer (the write is acknowledged) to B's event: the replication, not the
          // write itself (a sign-up's bcrypt alone takes ~100 ms here). 0 when B was first.
          const acked = performance.now();
          return Math.max(0, (await t.promise) - acked);
        } finally {
          waiting.delete(t.check);
        }
      };
      // Writes as a superuser: guest sign-ups are rate limited (20 per 5 s per IP), replication is not.
      const guest = a.client();
      const gateway = a.client();
      await gateway.collection("nxs_nodes").authWithPassword(gw.email, gw.password);
      let seq = 0;
      const doc = `bench-${recordId()}`;
      const probes: Record<string, () => Promise<number>> = {
        account: () => {
          const id = recordId();
          return visibleOnB(`users/${id}`, () =>
            guest.collection("users").create({
              id,
              email: `u-${id}@bench.test`,
              password: "bench-password-1",
              passwordConfirm: "bench-password-1",
            }),
          );
        },
        "app-record": () => {
          const id = recordId();
          return visibleOnB(`posts/${id}`, () => guest.collection("posts").create({ id, title: "hello" }));
        },
        "nxs-change": async () => {
          seq++;
          const origin = `${gw.id}.b`;
          const change = {
            doc,
            origin,
            seq,
            hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
            ops: [{ kind: "set", path: ["k", String(seq)], value: seq }],
          } as unknown as Change;
          return visibleOnB(`nxs_changes/${doc}/${origin}/${seq}`, () =>
            gateway.collection("nxs_changes").create(encodeChangeRecord([change], gw.id)),
          );
        },
      };
      // Warm-up: one of each.
      for (const p of Object.values(probes)) await p();
      const sample = (name: string) => async () => {
        const values: number[] = [];
        for (let i = 0; i < ROUNDS; i++) values.push(await probes[name]!());
        return median(values);
      };
      const cases: BenchCase[] = [
        {
          metric: "account-propagation",
          unit: "ms",
          better: "lower",
          subjects: { nxs: sample("account"), "nxs-change": sample("nxs-change") },
          note: `a sign-up acknowledged by A until B's realtime shows the account (records piece), vs a gateway's change record acknowledged by A until B shows its copy (the replicator's own path); median of ${ROUNDS} writes per run`,
        },
        {
          metric: "app-record-propagation",
          unit: "ms",
          better: "lower",
          subjects: { nxs: sample("app-record"), "nxs-change": sample("nxs-change") },
          note: `a posts create acknowledged by A until B's realtime shows it (records piece), vs a change record the same way; median of ${ROUNDS} writes per run`,
        },
      ];
      return { cases, teardown };
    } catch (e) {
      await teardown();
      throw e;
    }
  },
};
