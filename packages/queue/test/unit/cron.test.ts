import { createManualScheduler, isNxsError, type ManualScheduler } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createCronScheduler, type FireEvent } from "../../src/cron.js";
import { JobState } from "../../src/job.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";
import { createQueue } from "../../src/queue.js";
import { tickJobId } from "../../src/scheduling.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

/** Waits (real time, a few event-loop turns at most) until `n` timers are pending: every loop slept again. */
async function idle(scheduler: ManualScheduler, n: number): Promise<void> {
  // A round awaits the backend and a SHA-256 digest (off the thread): poll, bounded at ~10 s.
  for (let i = 0; i < 10_000 && scheduler.pending() !== n; i++) {
    await new Promise((r) => (i < 100 ? setImmediate(r) : setTimeout(r, 1)));
  }
  expect(scheduler.pending()).toBe(n);
}

/** Runs the loops' timers up to `until`, letting each round finish before the next timer. */
async function runUntil(scheduler: ManualScheduler, until: number, loops: number): Promise<void> {
  await idle(scheduler, loops);
  for (;;) {
    const at = scheduler.nextAt();
    if (at === undefined || at > until) break;
    scheduler.advance(at - scheduler.now());
    await idle(scheduler, loops);
  }
  scheduler.advance(until - scheduler.now());
  await idle(scheduler, loops);
}

function setup(start: number) {
  const scheduler = createManualScheduler({ now: start });
  const backend = createMemoryQueueBackend({ scheduler });
  const queue = createQueue({ name: "reports", schema: z.object({ kind: z.string() }), backend });
  const jobs = async () =>
    (await backend.admin!.list("reports", { limit: 1000 })).map((j) => j.runAt).sort((a, b) => a - b);
  return { scheduler, backend, queue, jobs };
}

describe("cron schedules (injected clock)", { timeout: 30_000 }, () => {
  it("three schedulers alive at once fire every tick of 2 hours exactly once (120 ticks)", async () => {
    const start = Date.UTC(2026, 0, 5, 8, 0, 30);
    const { scheduler, queue, jobs } = setup(start);
    await queue.schedule("minutely", "* * * * *", { kind: "usage" });
    const fired: FireEvent[] = [];
    const crons = [1, 2, 3].map(() =>
      createCronScheduler({ queue, scheduler, refreshMs: 7_000, onFire: (e) => fired.push(e) }),
    );
    await runUntil(scheduler, start + 2 * HOUR, 3);
    const expected = Array.from({ length: 120 }, (_, i) => Date.UTC(2026, 0, 5, 8, 1 + i));
    expect(await jobs()).toEqual(expected);
    expect(fired.filter((e) => e.fired)).toHaveLength(120);
    // Every tick's job has the deterministic id of (queue, schedule, tick).
    for (const e of fired) expect(e.jobId).toBe(await tickJobId("reports", "minutely", e.tick));
    expect((await queue.schedules())[0]).toMatchObject({ runs: 120, lastTick: expected[119] });
    for (const c of crons) await c.stop();
  });

  it("missed ticks after downtime: the latest fires once, the older ones are skipped (missed: once)", async () => {
    const start = Date.UTC(2026, 0, 5, 9, 59, 0);
    const { scheduler, queue, jobs } = setup(start);
    await queue.schedule("hourly", "0 * * * *", { kind: "h" });
    scheduler.advance(2 * MIN); // 10:01
    const a = createCronScheduler({ queue, scheduler });
    expect((await a.runOnce()).map((e) => [e.tick, e.fired, e.skipped])).toEqual([
      [Date.UTC(2026, 0, 5, 10), true, 0],
    ]);
    await a.stop();
    scheduler.advance(5 * HOUR); // every scheduler down until 15:01: ticks 11..15 missed
    const b = createCronScheduler({ queue, scheduler });
    expect((await b.runOnce()).map((e) => [e.tick, e.fired, e.skipped])).toEqual([
      [Date.UTC(2026, 0, 5, 15), true, 4],
    ]);
    expect(await b.runOnce()).toEqual([]);
    await b.stop();
    expect(await jobs()).toEqual([Date.UTC(2026, 0, 5, 10), Date.UTC(2026, 0, 5, 15)]);
  });

  it("missed ticks with missed: skip: a tick later than graceMs does not fire; the next one does", async () => {
    const start = Date.UTC(2026, 0, 5, 10, 30);
    const { scheduler, queue, jobs } = setup(start - 2 * HOUR);
    await queue.schedule("hourly", "0 * * * *", { kind: "h" });
    scheduler.advance(2 * HOUR); // 10:30, ticks 9:00 and 10:00 missed
    const cron = createCronScheduler({ queue, scheduler, missed: "skip", graceMs: MIN });
    expect(await cron.runOnce()).toEqual([]);
    await runUntil(scheduler, Date.UTC(2026, 0, 5, 11, 0, 30), 1);
    expect(await jobs()).toEqual([Date.UTC(2026, 0, 5, 11)]);
    await cron.stop();
  });

  it("no tick before the schedule was stored, none at or after endDate, none past limit", async () => {
    const start = Date.UTC(2026, 0, 5, 10, 0, 30);
    const { scheduler, queue, jobs } = setup(start);
    await queue.schedule(
      "ends",
      "*/10 * * * *",
      { kind: "e" },
      { endDate: new Date(Date.UTC(2026, 0, 5, 11)) },
    );
    await queue.schedule("three", "*/10 * * * *", { kind: "t" }, { limit: 3 });
    const cron = createCronScheduler({ queue, scheduler, refreshMs: HOUR });
    await runUntil(scheduler, start + 3 * HOUR, 1);
    const byId = Object.fromEntries((await queue.schedules()).map((s) => [s.id, s]));
    expect(byId.ends).toMatchObject({ runs: 5, lastTick: Date.UTC(2026, 0, 5, 10, 50) });
    expect(byId.three).toMatchObject({ runs: 3, lastTick: Date.UTC(2026, 0, 5, 10, 30) });
    expect((await jobs()).length).toBe(8);
    await cron.stop();
  });

  it("DST in Europe/Berlin: a wall time in the spring gap fires at the first valid instant; one repeated in the fall fires once", async () => {
    // 2026-03-29: 02:00 CET -> 03:00 CEST (02:30 does not exist). 2026-10-25: 03:00 CEST -> 02:00 CET.
    const spring = setup(Date.UTC(2026, 2, 27, 12));
    await spring.queue.schedule("night", "30 2 * * *", { kind: "n" }, { tz: "Europe/Berlin" });
    const c1 = createCronScheduler({ queue: spring.queue, scheduler: spring.scheduler, refreshMs: HOUR });
    await runUntil(spring.scheduler, Date.UTC(2026, 2, 31, 12), 1);
    expect(await spring.jobs()).toEqual([
      Date.UTC(2026, 2, 28, 1, 30), // 02:30 CET
      Date.UTC(2026, 2, 29, 1, 0), // 03:00 CEST: the first valid instant after the gap
      Date.UTC(2026, 2, 30, 0, 30), // 02:30 CEST
      Date.UTC(2026, 2, 31, 0, 30),
    ]);
    await c1.stop();

    const fall = setup(Date.UTC(2026, 9, 23, 12));
    await fall.queue.schedule("night", "30 2 * * *", { kind: "n" }, { tz: "Europe/Berlin" });
    await fall.queue.schedule("half-hourly", "*/30 * * * *", { kind: "h" }, { tz: "Europe/Berlin" });
    const c2 = createCronScheduler({ queue: fall.queue, scheduler: fall.scheduler, refreshMs: HOUR });
    await runUntil(fall.scheduler, Date.UTC(2026, 9, 26, 12), 1);
    const nights = (await fall.backend.admin!.list("reports", { limit: 1000 }))
      .filter((j) => (j.payload as { kind: string }).kind === "n")
      .map((j) => j.runAt)
      .sort((a, b) => a - b);
    expect(nights).toEqual([
      Date.UTC(2026, 9, 24, 0, 30), // 02:30 CEST
      Date.UTC(2026, 9, 25, 0, 30), // 02:30 CEST, the first of the two 02:30s; not again at 01:30Z
      Date.UTC(2026, 9, 26, 1, 30), // 02:30 CET
    ]);
    // The half-hourly pattern follows real instants: the repeated hour has its two runs.
    const halves = (await fall.backend.admin!.list("reports", { limit: 1000 }))
      .filter((j) => (j.payload as { kind: string }).kind === "h")
      .map((j) => j.runAt);
    // 02:00 and 02:30 local, twice each: 00:00Z, 00:30Z (CEST) and 01:00Z, 01:30Z (CET).
    const repeated = halves.filter((t) => t >= Date.UTC(2026, 9, 25, 0) && t <= Date.UTC(2026, 9, 25, 1, 30));
    expect(repeated).toHaveLength(4);
    // 72 h from 23 Oct 12:00Z (its first tick, the time it was stored) to 26 Oct 12:00Z: 145 instants.
    expect(halves).toHaveLength(145);
    await c2.stop();
  });

  it("two schedulers whose rounds interleave on one tick store one job (fire is atomic)", async () => {
    const { scheduler, queue, backend } = setup(Date.UTC(2026, 0, 5, 10, 0, 30));
    await queue.schedule("m", "* * * * *", { kind: "m" });
    scheduler.advance(MIN);
    const a = createCronScheduler({ queue, scheduler });
    const b = createCronScheduler({ queue, scheduler });
    const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
    expect([...ra, ...rb].filter((e) => e.fired)).toHaveLength(1);
    expect([...ra, ...rb].filter((e) => !e.fired).map((e) => e.reason)).toEqual(["past"]);
    expect((await backend.counts("reports")).waiting).toBe(1);
    await a.stop();
    await b.stop();
  });

  it("a removed schedule fires no more; a fired job runs like any other (waiting at its tick)", async () => {
    const { scheduler, queue, backend } = setup(Date.UTC(2026, 0, 5, 10, 0, 30));
    await queue.schedule("m", "* * * * *", { kind: "m" });
    const cron = createCronScheduler({ queue, scheduler });
    await runUntil(scheduler, Date.UTC(2026, 0, 5, 10, 2, 30), 1);
    expect(await queue.unschedule("m")).toBe(true);
    expect(await queue.unschedule("m")).toBe(false);
    await runUntil(scheduler, Date.UTC(2026, 0, 5, 10, 10), 1);
    const list = await backend.admin!.list("reports");
    expect(list.map((j) => j.state)).toEqual([JobState.Waiting, JobState.Waiting]);
    await cron.stop();
  });

  it("refuses a bad cron, time zone, payload or id, and a backend without schedules", async () => {
    const { queue, backend } = setup(Date.UTC(2026, 0, 5));
    const refused = async (p: Promise<unknown>) =>
      p.then(
        () => "stored",
        (e: unknown) => (isNxsError(e) ? e.code : String(e)),
      );
    expect(await refused(queue.schedule("x", "61 * * * *", { kind: "x" }))).toBe("schema/invalid");
    expect(await refused(queue.schedule("x", "* * * * *", { kind: "x" }, { tz: "Mars/Olympus" }))).toBe(
      "schema/invalid",
    );
    expect(await refused(queue.schedule("x", "* * * * *", { kind: 1 } as never))).toBe("schema/invalid");
    expect(await refused(queue.schedule("bad id", "* * * * *", { kind: "x" }))).toBe("schema/invalid");
    expect(await queue.schedules()).toEqual([]);
    const bare = createQueue({
      name: "bare",
      schema: z.object({}),
      backend: { ...backend, schedules: undefined, priorities: undefined, dedupeModes: undefined },
    });
    expect(await refused(bare.schedule("x", "* * * * *", {}))).toBe("config/invalid");
    expect(await refused(bare.add({}, { priority: 2 }))).toBe("config/invalid");
    expect(await refused(bare.add({}, { jobKey: { key: "k", mode: "simple" } }))).toBe("config/invalid");
  });
});

describe("queue.add with scheduling options (memory backend)", () => {
  it("returns the key holder's id for a deduped add, and sends the priority", async () => {
    const { queue, backend } = setup(Date.UTC(2026, 0, 5));
    const first = await queue.add({ kind: "a" }, { jobKey: { key: "k", mode: "simple" }, priority: 4 });
    const again = await queue.add({ kind: "b" }, { jobKey: { key: "k", mode: "simple" } });
    expect(again).toBe(first);
    const [x, y] = await queue.addBulk([
      { payload: { kind: "c" }, options: { jobKey: { key: "k", mode: "simple" } } },
      { payload: { kind: "d" } },
    ]);
    expect(x).toBe(first);
    expect(y).not.toBe(first);
    expect(await backend.getJob(first)).toMatchObject({ priority: 4, jobKey: "k", keyMode: "simple" });
    const refused = await queue.add({ kind: "e" }, { priority: 1001 }).then(
      () => "stored",
      (e: unknown) => (isNxsError(e) ? e.code : String(e)),
    );
    expect(refused).toBe("schema/invalid");
  });
});
