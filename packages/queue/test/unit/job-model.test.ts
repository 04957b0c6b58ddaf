import { createManualScheduler, type ManualScheduler } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { QueueBackendCapabilities, Settlement } from "../../src/backend.js";
import { type JobId, JobState, type LeaseToken } from "../../src/job.js";
import { jobVersion } from "../../src/job-version.js";
import { createMemoryQueueBackend } from "../../src/memory-backend.js";

/**
 * A model-based test of the job state machine (fc.commands, seeded): random sequences of enqueue,
 * claim, heartbeat, settle (complete, fail with and without a retry, retry-later, release,
 * cancelled), cancel, time passing, redrive and clean run against the memory backend and a plain
 * model. After every command each job's state, attempt, budget and generation match the model,
 * tokens are refused exactly when the model says their lease is gone (and such a refusal changes
 * nothing: the version stays), every write raises the version, and no job is lost.
 */

const Q = "model";
const IDS = ["job0", "job1", "job2", "job3", "job4"].map((s) => s.padEnd(15, "0") as JobId);

interface MJob {
  readonly id: JobId;
  readonly seq: number;
  state: JobState;
  attempt: number;
  attemptsMade: number;
  maxAttempts: number;
  generation: number;
  runAt: number;
  leaseUntil?: number;
  token?: LeaseToken;
  cancelRequested: boolean;
  finishedAt?: number;
  version: string;
}

interface Model {
  jobs: Map<JobId, MJob>;
  /** Every token ever issued per job, current and stale. */
  tokens: Map<JobId, LeaseToken[]>;
  seq: number;
  cleaned: number;
}

interface Real {
  readonly backend: QueueBackendCapabilities;
  readonly scheduler: ManualScheduler;
}

const valid = (job: MJob | undefined, token: LeaseToken, now: number): job is MJob =>
  job !== undefined && job.state === JobState.Active && job.token === token && (job.leaseUntil ?? 0) > now;

const finishJob = (job: MJob, state: JobState, now: number): void => {
  job.state = state;
  job.finishedAt = now;
  delete job.token;
  delete job.leaseUntil;
  job.cancelRequested = false;
};

/** Compares every job with the model; `written` jobs must have a greater version, the rest the same. */
async function verify(m: Model, r: Real, written: ReadonlySet<JobId>): Promise<void> {
  const now = r.scheduler.now();
  const counts = { waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 0, delayed: 0 };
  for (const job of m.jobs.values()) {
    const real = await r.backend.getJob(job.id);
    expect(real, `job ${job.id} lost`).toBeDefined();
    expect({
      state: real!.state,
      attempt: real!.attempt,
      attemptsMade: real!.attemptsMade,
      generation: real!.generation,
      runAt: real!.runAt,
      leaseUntil: real!.leaseUntil,
      cancelRequested: real!.cancelRequested === true,
    }).toEqual({
      state: job.state,
      attempt: job.attempt,
      attemptsMade: job.attemptsMade,
      generation: job.generation,
      runAt: job.runAt,
      leaseUntil: job.leaseUntil,
      cancelRequested: job.cancelRequested,
    });
    const version = jobVersion(real!);
    if (written.has(job.id)) expect(version > job.version, `version of ${job.id} rises`).toBe(true);
    else expect(version).toBe(job.version);
    job.version = version;
    if (job.state === JobState.Waiting && job.runAt > now) counts.delayed++;
    else counts[job.state]++;
  }
  expect(await r.backend.counts(Q)).toEqual(counts);
}

type Cmd = fc.AsyncCommand<Model, Real>;

class EnqueueCmd implements Cmd {
  constructor(
    readonly idIndex: number,
    readonly delayMs: number,
    readonly maxAttempts: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const id = IDS[this.idIndex]!;
    const [res] = await r.backend.enqueue([
      {
        id,
        queue: Q,
        payload: { i: this.idIndex },
        delayMs: this.delayMs,
        maxAttempts: this.maxAttempts,
        backoff: {},
        timeoutMs: 0,
      },
    ]);
    const existed = m.jobs.has(id);
    expect(res).toEqual({ id, created: !existed });
    if (!existed) {
      const now = r.scheduler.now();
      const job: MJob = {
        id,
        seq: m.seq++,
        state: JobState.Waiting,
        attempt: 0,
        attemptsMade: 0,
        maxAttempts: this.maxAttempts,
        generation: 0,
        runAt: now + this.delayMs,
        cancelRequested: false,
        version: "",
      };
      m.jobs.set(id, job);
      job.version = jobVersion((await r.backend.getJob(id))!);
    }
    await verify(m, r, new Set());
  }
  toString = () => `enqueue(${this.idIndex}, delay ${this.delayMs}, attempts ${this.maxAttempts})`;
}

class ClaimCmd implements Cmd {
  constructor(
    readonly max: number,
    readonly leaseMs: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = r.scheduler.now();
    const claimed = await r.backend.claim({ queue: Q, worker: "w", leaseMs: this.leaseMs, max: this.max });
    const due = (j: MJob) => (j.state === JobState.Active ? (j.leaseUntil ?? 0) : j.runAt);
    const ready = [...m.jobs.values()]
      .filter(
        (j) =>
          (j.state === JobState.Waiting && j.runAt <= now) ||
          (j.state === JobState.Active && (j.leaseUntil ?? 0) <= now),
      )
      .sort((a, b) => due(a) - due(b) || a.seq - b.seq);
    const expected: JobId[] = [];
    const written = new Set<JobId>();
    for (const job of ready) {
      if (expected.length >= this.max) break;
      written.add(job.id);
      if (job.state === JobState.Active) {
        if (job.cancelRequested) {
          finishJob(job, JobState.Cancelled, now);
          continue;
        }
        if (job.attemptsMade >= job.maxAttempts) {
          finishJob(job, JobState.Failed, now);
          continue;
        }
      }
      expected.push(job.id);
      job.state = JobState.Active;
      job.attempt++;
      job.attemptsMade++;
      job.leaseUntil = now + this.leaseMs;
      job.cancelRequested = false;
    }
    expect(claimed.map((c) => c.job.id)).toEqual(expected);
    for (const c of claimed) {
      const job = m.jobs.get(c.job.id)!;
      expect(c.job.attempt).toBe(job.attempt);
      expect(m.tokens.get(job.id) ?? []).not.toContain(c.token);
      job.token = c.token;
      m.tokens.set(job.id, [...(m.tokens.get(job.id) ?? []), c.token]);
    }
    await verify(m, r, written);
  }
  toString = () => `claim(max ${this.max}, lease ${this.leaseMs})`;
}

/** Picks one of the tokens ever issued for a job (often a stale one). */
const pickToken = (m: Model, idIndex: number, tokenIndex: number): LeaseToken | undefined => {
  const list = m.tokens.get(IDS[idIndex]!) ?? [];
  return list.length === 0 ? undefined : list[tokenIndex % list.length];
};

class HeartbeatCmd implements Cmd {
  constructor(
    readonly idIndex: number,
    readonly tokenIndex: number,
    readonly leaseMs: number,
  ) {}
  check = (m: Readonly<Model>) => pickToken(m as Model, this.idIndex, this.tokenIndex) !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    const id = IDS[this.idIndex]!;
    const token = pickToken(m, this.idIndex, this.tokenIndex)!;
    const now = r.scheduler.now();
    const job = m.jobs.get(id);
    const [res] = await r.backend.heartbeat([{ id, token, leaseMs: this.leaseMs, progress: now }]);
    if (valid(job, token, now)) {
      job.leaseUntil = now + this.leaseMs;
      expect(res).toEqual({ ok: true, leaseUntil: job.leaseUntil, cancelRequested: job.cancelRequested });
      await verify(m, r, new Set([id]));
    } else {
      expect(res).toEqual({ ok: false, code: "queue/lease-lost" });
      await verify(m, r, new Set());
    }
  }
  toString = () => `heartbeat(${this.idIndex}, token ${this.tokenIndex}, lease ${this.leaseMs})`;
}

type SettleKind = "complete" | "fail-retry" | "fail" | "retry-later" | "release" | "cancelled";

class SettleCmd implements Cmd {
  constructor(
    readonly idIndex: number,
    readonly tokenIndex: number,
    readonly kind: SettleKind,
    readonly delayMs: number,
  ) {}
  check = (m: Readonly<Model>) => pickToken(m as Model, this.idIndex, this.tokenIndex) !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    const id = IDS[this.idIndex]!;
    const token = pickToken(m, this.idIndex, this.tokenIndex)!;
    const now = r.scheduler.now();
    const ref = { id, token };
    const settlement: Settlement =
      this.kind === "fail-retry"
        ? { ...ref, kind: "fail", code: "e", message: "m", retryDelayMs: this.delayMs }
        : this.kind === "fail"
          ? { ...ref, kind: "fail", code: "e", message: "m" }
          : this.kind === "retry-later"
            ? { ...ref, kind: "retry-later", delayMs: this.delayMs }
            : { ...ref, kind: this.kind };
    const job = m.jobs.get(id);
    const [res] = await r.backend.settle([settlement]);
    if (!valid(job, token, now)) {
      expect(res).toEqual({ ok: false, code: "queue/lease-lost" });
      await verify(m, r, new Set());
      return;
    }
    const requeue = (runAt: number, giveBack: boolean): void => {
      job.state = JobState.Waiting;
      job.runAt = runAt;
      if (giveBack) job.attemptsMade--;
      delete job.token;
      delete job.leaseUntil;
      job.cancelRequested = false;
    };
    switch (this.kind) {
      case "complete":
        finishJob(job, JobState.Completed, now);
        break;
      case "fail-retry":
        if (job.attemptsMade < job.maxAttempts) requeue(now + this.delayMs, false);
        else finishJob(job, JobState.Failed, now);
        break;
      case "fail":
        finishJob(job, JobState.Failed, now);
        break;
      case "retry-later":
        requeue(now + this.delayMs, true);
        break;
      case "release":
        requeue(now, true);
        break;
      case "cancelled":
        finishJob(job, JobState.Cancelled, now);
        break;
    }
    expect(res).toEqual({ ok: true, state: job.state });
    await verify(m, r, new Set([id]));
  }
  toString = () => `settle(${this.idIndex}, token ${this.tokenIndex}, ${this.kind}, ${this.delayMs})`;
}

class CancelCmd implements Cmd {
  constructor(readonly idIndex: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const id = IDS[this.idIndex]!;
    const now = r.scheduler.now();
    const job = m.jobs.get(id);
    const res = await r.backend.admin!.cancel(id, "model");
    const written = new Set<JobId>();
    if (job?.state === JobState.Waiting) {
      finishJob(job, JobState.Cancelled, now);
      written.add(id);
    } else if (job?.state === JobState.Active && !job.cancelRequested) {
      job.cancelRequested = true;
      written.add(id);
    }
    expect(res).toBe(job?.state);
    await verify(m, r, written);
  }
  toString = () => `cancel(${this.idIndex})`;
}

class AdvanceCmd implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.scheduler.advance(this.ms);
    await verify(m, r, new Set());
  }
  toString = () => `advance(${this.ms})`;
}

class RedriveCmd implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = r.scheduler.now();
    const moved = await r.backend.admin!.redrive(Q);
    const written = new Set<JobId>();
    for (const job of m.jobs.values()) {
      if (job.state !== JobState.Failed) continue;
      job.state = JobState.Waiting;
      job.generation++;
      job.attempt = 0;
      job.attemptsMade = 0;
      job.runAt = now;
      delete job.finishedAt;
      written.add(job.id);
    }
    expect(moved).toBe(written.size);
    await verify(m, r, written);
  }
  toString = () => "redrive()";
}

class CleanCmd implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const before = r.scheduler.now();
    const deleted = await r.backend.admin!.clean(Q, {
      states: [JobState.Completed, JobState.Cancelled, JobState.Waiting, JobState.Active],
      before,
    });
    let expected = 0;
    for (const job of [...m.jobs.values()]) {
      const terminal = job.state === JobState.Completed || job.state === JobState.Cancelled;
      if (terminal && (job.finishedAt ?? before) < before) {
        m.jobs.delete(job.id);
        m.tokens.delete(job.id);
        expect(await r.backend.getJob(job.id)).toBeUndefined();
        expected++;
      }
    }
    expect(deleted).toBe(expected);
    m.cleaned += deleted;
    await verify(m, r, new Set());
  }
  toString = () => "clean()";
}

const idIndex = fc.nat(IDS.length - 1);
const commands = [
  fc
    .tuple(idIndex, fc.constantFrom(0, 0, 50, 300), fc.integer({ min: 1, max: 3 }))
    .map(([i, d, a]) => new EnqueueCmd(i, d, a)),
  fc
    .tuple(fc.integer({ min: 1, max: 3 }), fc.constantFrom(100, 250))
    .map(([max, lease]) => new ClaimCmd(max, lease)),
  fc.tuple(idIndex, fc.nat(5), fc.constantFrom(100, 250)).map(([i, t, l]) => new HeartbeatCmd(i, t, l)),
  fc
    .tuple(
      idIndex,
      fc.nat(5),
      fc.constantFrom<SettleKind>("complete", "fail-retry", "fail", "retry-later", "release", "cancelled"),
      fc.constantFrom(0, 40, 200),
    )
    .map(([i, t, k, d]) => new SettleCmd(i, t, k, d)),
  idIndex.map((i) => new CancelCmd(i)),
  fc.constantFrom(10, 60, 150, 400).map((ms) => new AdvanceCmd(ms)),
  fc.constant(new RedriveCmd()),
  fc.constant(new CleanCmd()),
];

describe("job state machine (model-based, memory backend)", () => {
  it("matches the model over random command sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: "large" }), async (cmds) => {
        const scheduler = createManualScheduler({ now: 1_000_000 });
        const backend = createMemoryQueueBackend({ scheduler });
        const model: Model = { jobs: new Map(), tokens: new Map(), seq: 0, cleaned: 0 };
        await fc.asyncModelRun(() => ({ model, real: { backend, scheduler } }), cmds);
        await backend.close!();
      }),
      { seed: 20261207, numRuns: 300 },
    );
  });
});
