/**
 * The queue's write path on PocketBase, as a design measure (issue 16, the drain goal; ADR 0010):
 * a claim of a batch of jobs written as one record save per job inside one transaction, the way
 * the claim route writes today (`nxs`), against the same batch written by one SQL `UPDATE`
 * (`sql-update`), which PocketBase does not turn into realtime events. Both are hook routes on one
 * server over a collection shaped like `nxs_jobs` (the fields a claim writes, and an index on
 * state and run time); the client drains a backlog by calling its route until it answers 0.
 * Figures: jobs claimed per second, and the server process's CPU per job (utime + stime from
 * `/proc/<pid>/stat`, 10 ms ticks, over the whole drain).
 *
 * `npm run bench -- queue-writes [--runs N] [--quick]`
 */
import { readFileSync } from "node:fs";
import { startPocketBase } from "@nxs-sync/testing";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { createStash } from "./pocketbase-env.js";

/** Jobs claimed per request, as a worker's prefetch asks. */
const BATCH = 40;

/** The two routes: `/bench/claim/save` and `/bench/claim/sql`, each one transaction per call. */
const HOOK = `
routerAdd("POST", "/bench/claim/{mode}", (e) => {
  const mode = e.request.pathValue("mode");
  const n = (e.requestInfo().body || {}).n || ${BATCH};
  let count = 0;
  $app.runInTransaction((tx) => {
    const rows = arrayOf(new DynamicModel({ id: "" }));
    tx.db()
      .newQuery("SELECT id FROM bench_jobs WHERE state = 'waiting' ORDER BY runAt LIMIT {:n}")
      .bind({ n: n })
      .all(rows);
    const now = Date.now();
    const token = $security.randomString(24);
    if (mode === "save") {
      for (const r of rows) {
        const rec = tx.findRecordById("bench_jobs", r.id);
        rec.set("state", "active");
        rec.set("token", token);
        rec.set("leaseUntil", now + 30000);
        rec.set("attempt", rec.getInt("attempt") + 1);
        rec.set("worker", "w1");
        rec.set("version", "v" + now);
        tx.save(rec);
        count++;
      }
      return;
    }
    if (rows.length === 0) return;
    const params = { lease: now + 30000, token: token, v: "v" + now };
    const names = rows.map((r, i) => {
      params["i" + i] = r.id;
      return "{:i" + i + "}";
    });
    tx.db()
      .newQuery(
        "UPDATE bench_jobs SET state = 'active', token = {:token}, leaseUntil = {:lease}, " +
          "attempt = attempt + 1, worker = 'w1', version = {:v} WHERE id IN (" + names.join(",") + ")",
      )
      .bind(params)
      .execute();
    count = rows.length;
  });
  return e.json(200, { count: count });
});
`;

export const suite: BenchSuite = {
  name: "queue-writes",
  description:
    "the queue's claim write on PocketBase: a record save per job (today's claim route) vs one SQL UPDATE per batch",
  defaultRuns: 3,
  async setup({ quick }) {
    const jobs = quick ? 1_000 : 4_000;
    const server = await startPocketBase({
      name: "bench-queue-writes",
      hookFiles: [{ file: "bench-claim.pb.js", source: HOOK }],
    });
    const pb = await server.client();
    await pb.collections.create({
      name: "bench_jobs",
      type: "base",
      fields: [
        { name: "queue", type: "text" },
        { name: "state", type: "text" },
        { name: "payload", type: "json" },
        { name: "runAt", type: "number" },
        { name: "attempt", type: "number" },
        { name: "token", type: "text" },
        { name: "leaseUntil", type: "number" },
        { name: "worker", type: "text" },
        { name: "version", type: "text" },
        { name: "failures", type: "json" },
        { name: "epoch", type: "number" },
        { name: "priority", type: "number" },
      ],
      indexes: ["CREATE INDEX idx_bench_jobs_state ON bench_jobs (state, runAt)"],
    });
    /** CPU time of the server process so far, ms. */
    const serverCpuMs = (): number => {
      const fields = readFileSync(`/proc/${server.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) * 10;
    };
    const fill = async () => {
      for (let i = 0; i < jobs; i += 500) {
        const b = pb.createBatch();
        for (let k = 0; k < 500 && i + k < jobs; k++)
          b.collection("bench_jobs").create({
            queue: "q",
            state: "waiting",
            payload: { i: i + k },
            runAt: i + k,
          });
        await b.send();
      }
    };
    /** Fills a backlog, drains it through `mode`'s route; both figures of that drain. */
    const drain = async (mode: "save" | "sql") => {
      await fill();
      const cpu0 = serverCpuMs();
      const t0 = performance.now();
      let done = 0;
      for (;;) {
        const r = await pb.send<{ count: number }>(`/bench/claim/${mode}`, {
          method: "POST",
          body: { n: BATCH },
        });
        if (r.count === 0) break;
        done += r.count;
      }
      const ms = performance.now() - t0;
      if (done !== jobs) throw new Error(`bench self-check failed: ${mode} claimed ${done} of ${jobs}`);
      return { perSecond: (done / ms) * 1000, cpuPerJob: (serverCpuMs() - cpu0) / done };
    };
    // One drain per subject and run feeds both lines.
    const stash = createStash();
    const measured = (mode: "save" | "sql", key: "perSecond" | "cpuPerJob") => async () => {
      if (!stash.has(`${mode}/${key}`)) {
        const figures = await drain(mode);
        stash.put(`${mode}/perSecond`, figures.perSecond);
        stash.put(`${mode}/cpuPerJob`, figures.cpuPerJob);
      }
      return stash.take(`${mode}/${key}`);
    };
    const cases: BenchCase[] = [
      {
        metric: "claim-jobs-per-s",
        unit: "jobs/s",
        better: "higher",
        note: `${jobs} waiting jobs claimed in batches of ${BATCH} by a hook route, one transaction per call; nxs: a record save per job (today's claim route), sql-update: one UPDATE per batch (no realtime events)`,
        subjects: { nxs: measured("save", "perSecond"), "sql-update": measured("sql", "perSecond") },
      },
      {
        metric: "claim-server-cpu-per-job",
        unit: "ms",
        better: "lower",
        note: "the server process's CPU time (utime + stime) over the same drain, per job",
        subjects: { nxs: measured("save", "cpuPerJob"), "sql-update": measured("sql", "cpuPerJob") },
      },
    ];
    return {
      cases,
      teardown: () => server.destroy(),
      machine: { pocketbase: "v0.39.11" },
    };
  },
};
