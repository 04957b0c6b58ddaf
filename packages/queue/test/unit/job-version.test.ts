import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type JobRecord, JobState } from "../../src/job.js";
import {
  decodeJobVersion,
  encodeJobVersion,
  JobPhase,
  jobVersion,
  mergeJobCopies,
  phaseOf,
} from "../../src/job-version.js";

/** Property tests of the job version order (how two servers' copies of a job reconcile), seeded. */
const params = { seed: 20261207, numRuns: 400 };

type Copy = Pick<JobRecord, "generation" | "attempt" | "epoch" | "state" | "rev"> & { note: string };

const copy: fc.Arbitrary<Copy> = fc.record({
  generation: fc.nat(3),
  attempt: fc.nat(4),
  epoch: fc.nat(3),
  state: fc.constantFrom(...Object.values(JobState)),
  rev: fc.nat(6),
  note: fc.constantFrom("a", "b"),
});

describe("job version", () => {
  it("round-trips and sorts as its parts do (lexicographic)", () => {
    const parts = fc.record({
      generation: fc.nat(9999),
      attempt: fc.nat(999_999),
      epoch: fc.nat(99_999_999),
      phase: fc.constantFrom(...Object.values(JobPhase)),
      rev: fc.nat(999_999_999),
    });
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        expect(decodeJobVersion(encodeJobVersion(a))).toEqual(a);
        const key = (p: typeof a) => [p.generation, p.attempt, p.epoch, p.phase, p.rev];
        const ka = key(a);
        const kb = key(b);
        const i = ka.findIndex((v, j) => v !== kb[j]);
        const want = i < 0 ? 0 : (ka[i] as number) < (kb[i] as number) ? -1 : 1;
        const ea = encodeJobVersion(a);
        const eb = encodeJobVersion(b);
        expect(ea === eb ? 0 : ea < eb ? -1 : 1).toBe(want);
      }),
      params,
    );
  });

  it("refuses strings of another form", () => {
    expect(decodeJobVersion("1.2.3.4.5")).toBeUndefined();
    expect(decodeJobVersion("0000.000001.00000001.4.000000001")).toBeUndefined();
  });

  it("merge is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(copy, copy, copy, (a, b, c) => {
        expect(mergeJobCopies(a, b)).toEqual(mergeJobCopies(b, a));
        expect(mergeJobCopies(mergeJobCopies(a, b), c)).toEqual(mergeJobCopies(a, mergeJobCopies(b, c)));
        expect(mergeJobCopies(a, a)).toBe(a);
      }),
      params,
    );
  });

  it("active never overwrites a settled copy of the same attempt, whatever the revs", () => {
    fc.assert(
      fc.property(
        copy,
        fc.constantFrom(JobState.Completed, JobState.Failed, JobState.Waiting),
        fc.nat(6),
        (base, settled, rev) => {
          const active: Copy = { ...base, attempt: base.attempt + 1, state: JobState.Active, rev: rev + 100 };
          const done: Copy = { ...base, attempt: base.attempt + 1, state: settled, rev };
          expect(mergeJobCopies(active, done)).toBe(done);
        },
      ),
      params,
    );
  });

  it("a later attempt or generation wins; a newer epoch fences the same attempt", () => {
    const done: Copy = { generation: 0, attempt: 2, epoch: 1, state: JobState.Completed, rev: 9, note: "" };
    expect(mergeJobCopies(done, { ...done, attempt: 3, state: JobState.Active, rev: 0 }).attempt).toBe(3);
    expect(
      mergeJobCopies(done, { ...done, generation: 1, attempt: 0, state: JobState.Waiting }).generation,
    ).toBe(1);
    expect(mergeJobCopies(done, { ...done, epoch: 2, state: JobState.Active, rev: 0 }).epoch).toBe(2);
  });

  it("phases follow the attempt's order", () => {
    expect(phaseOf({ state: JobState.Waiting, attempt: 0 })).toBe(JobPhase.New);
    expect(phaseOf({ state: JobState.Active, attempt: 1 })).toBe(JobPhase.Active);
    expect(phaseOf({ state: JobState.Waiting, attempt: 1 })).toBe(JobPhase.Settled);
    expect(phaseOf({ state: JobState.Completed, attempt: 1 })).toBe(JobPhase.Settled);
    expect(phaseOf({ state: JobState.Cancelled, attempt: 1 })).toBe(JobPhase.Cancelled);
    expect(jobVersion({ generation: 0, attempt: 1, epoch: 2, state: JobState.Active, rev: 3 })).toBe(
      "0000.000001.00000002.1.000000003",
    );
  });
});
