import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JobState } from "../../src/job.js";
import { encodeJobVersion, JobPhase, phaseOf } from "../../src/job-version.js";
import { queueHookPiece, queueHooksPath } from "../../src/pocketbase/collections.js";

/**
 * The hook piece encodes job versions in JavaScript the server runs (it cannot import
 * job-version.ts): the block between its `version:` markers is run here against
 * encodeJobVersion and phaseOf, so the two stay equal.
 */
const source = readFileSync(queueHooksPath(), "utf8");
const block = /\/\/ version:[^\n]*\n([\s\S]*?)\/\/ end version/.exec(source)?.[1];
const hook = new Function(`${block ?? ""}; return { encodeVersion, phaseOf };`)() as {
  encodeVersion: (g: number, a: number, e: number, p: number, r: number) => string;
  phaseOf: (state: string, attempt: number) => number;
};

describe("the queue hook piece", () => {
  it("encodes versions as job-version.ts does", () => {
    expect(block).toBeDefined();
    const part = fc.oneof(fc.nat(20), fc.integer({ min: -5, max: 2 * 10 ** 9 }));
    fc.assert(
      fc.property(part, part, part, fc.constantFrom(0, 1, 2, 3), part, (g, a, e, p, r) => {
        const parts = { generation: g, attempt: a, epoch: e, phase: p as JobPhase, rev: r };
        expect(hook.encodeVersion(g, a, e, p, r)).toBe(encodeJobVersion(parts));
      }),
      { seed: 20261207, numRuns: 500 },
    );
  });

  it("gives every state the phase job-version.ts gives it", () => {
    for (const state of Object.values(JobState)) {
      for (const attempt of [0, 1, 7]) {
        expect(hook.phaseOf(state, attempt), `${state} ${attempt}`).toBe(phaseOf({ state, attempt }));
      }
    }
    expect(hook.phaseOf(JobState.Cancelled, 2)).toBe(JobPhase.Cancelled);
  });

  it("serves its version route at the piece's version", () => {
    const piece = queueHookPiece();
    expect(piece.source).toBe(source);
    expect(source).toContain(
      `routerAdd("GET", "/nxs/hooks/queue", (e) => e.json(200, { name: "queue", version: ${piece.version} }))`,
    );
  });
});
