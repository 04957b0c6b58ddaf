import { createManualScheduler } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { runExample } from "../../../../examples/queue-basic/src/transcribe.js";

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("examples/queue-basic", () => {
  it("transcribes two recordings (one after a rate limit) and dead-letters the empty one", async () => {
    const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
    let summary: Awaited<ReturnType<typeof runExample>> | undefined;
    const run = runExample({ scheduler }).then((s) => {
      summary = s;
    });
    for (let i = 0; i < 200 && summary === undefined; i++) {
      scheduler.advance(10);
      await flush();
    }
    await run;
    expect(summary!.jobs.map((j) => j.state)).toEqual(["completed", "completed", "failed"]);
    expect(summary!.jobs[0]!.result).toEqual({ text: "32000 bytes of de speech" });
    expect(summary!.jobs[1]!.result).toEqual({ text: "48000 bytes of en speech" });
    expect(summary!.jobs[2]!.reason).toBe("queue/handler-failed");
    expect(summary!.events.filter((e) => e.startsWith("waiting"))).toHaveLength(1);
    expect(summary!.events.filter((e) => e.startsWith("active"))).toHaveLength(4);
  });
});
