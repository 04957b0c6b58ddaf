import { describe, expect, it } from "vitest";
import { JobState } from "../../src/job.js";
import { jobVersion } from "../../src/job-version.js";
import { eventsOf, type SeenJob, type StoredJob, seenOf, toJobRecord } from "../../src/pocketbase/records.js";

/** How the PocketBase backend's watch turns record changes into job events (a pure function). */
const base: StoredJob = {
  id: "abcdefghij12345",
  queue: "q",
  state: JobState.Waiting,
  payload: { n: 1 },
  runAt: 1000,
  attempt: 0,
  attemptsMade: 0,
  maxAttempts: 3,
  backoff: {},
  timeoutMs: 0,
  generation: 0,
  epoch: 0,
  worker: "",
  leaseUntil: 0,
  token: "",
  cancelRequested: false,
  progress: null,
  result: null,
  reason: "",
  failures: [],
  rev: 1,
  version: "",
  createdAt: 1000,
  updatedAt: 1000,
  finishedAt: 0,
  deleted: false,
};
const at = (patch: Partial<StoredJob>): StoredJob => {
  const s = { ...base, ...patch };
  return { ...s, version: jobVersion(s) };
};
const types = (prev: SeenJob | undefined, s: StoredJob, created = false) =>
  eventsOf(prev, s, created).map((e) => e.type);

describe("eventsOf", () => {
  const added = at({});
  const active = at({
    state: JobState.Active,
    attempt: 1,
    attemptsMade: 1,
    worker: "w",
    leaseUntil: 9000,
    rev: 2,
  });
  const progressed = at({ ...active, progress: { pct: 50 }, rev: 3 });
  const retrying = at({
    state: JobState.Waiting,
    attempt: 1,
    attemptsMade: 1,
    rev: 4,
    failures: [{ attempt: 1, code: "e", message: "m", at: 2000 }],
  });
  const stalledActive = at({
    state: JobState.Active,
    attempt: 2,
    attemptsMade: 2,
    worker: "w2",
    rev: 5,
    failures: [{ attempt: 1, code: "queue/stalled", message: "lapsed", at: 2000 }],
  });

  it("tells each step of a job from the previous copy", () => {
    expect(types(undefined, added, true)).toEqual(["added"]);
    expect(types(seenOf(added), active)).toEqual(["active"]);
    expect(types(seenOf(active), progressed)).toEqual(["progress"]);
    expect(types(seenOf(progressed), retrying)).toEqual(["failed", "waiting"]);
    expect(eventsOf(seenOf(progressed), retrying, false)[0]).toMatchObject({ final: false, code: "e" });
    expect(types(seenOf(active), stalledActive)).toEqual(["stalled", "active"]);
  });

  it("tells nothing of a duplicate noted on a settled job", () => {
    const done = at({
      state: JobState.Completed,
      attempt: 1,
      attemptsMade: 1,
      epoch: 2,
      rev: 4,
      finishedAt: 3000,
    });
    const noted = at({
      ...done,
      rev: 5,
      failures: [{ attempt: 1, code: "queue/duplicate", message: "also ran under epoch 1", at: 4000 }],
    });
    expect(types(seenOf(done), noted)).toEqual([]);
    expect(types(seenOf(active), noted)).toEqual(["completed"]);
  });

  it("tells nothing for a copy seen already or older, nor for a tombstone", () => {
    expect(types(seenOf(progressed), active)).toEqual([]);
    expect(types(seenOf(active), active)).toEqual([]);
    expect(types(undefined, at({ ...active, deleted: true }))).toEqual([]);
  });

  it("tells the whole history of a job created while watching when first seen late (catch-up)", () => {
    const dead = at({
      state: JobState.Failed,
      attempt: 2,
      attemptsMade: 2,
      rev: 9,
      finishedAt: 3000,
      reason: "e",
      failures: [
        { attempt: 1, code: "e", message: "m", at: 2000 },
        { attempt: 2, code: "e", message: "m", at: 3000 },
      ],
    });
    expect(
      eventsOf(undefined, dead, true).map((e) => (e.type === "failed" ? `failed:${e.final}` : e.type)),
    ).toEqual(["added", "failed:false", "waiting", "failed:true"]);
    expect(types(undefined, dead, false)).toEqual(["failed"]);
  });

  it("maps a stored record to the port's job, without the token and storage fields", () => {
    const job = toJobRecord({ ...progressed, token: "secret" });
    expect(job).not.toHaveProperty("token");
    expect(job).not.toHaveProperty("version");
    expect(job).toMatchObject({ state: "active", worker: "w", leaseUntil: 9000, progress: { pct: 50 } });
    expect(toJobRecord(retrying)).not.toHaveProperty("worker");
  });
});
