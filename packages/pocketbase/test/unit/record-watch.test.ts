import { createManualScheduler, createSeededRandom, silentLogger } from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import { describe, expect, it } from "vitest";
import { createEndpointPool, type Endpoint } from "../../src/failover.js";
import { MergeRules, type RecordFields } from "../../src/merge-plan.js";
import type { RealtimeHandlers, RealtimeLink } from "../../src/realtime-session.js";
import { createRecordWatch, type RecordWatchSource } from "../../src/record-watch.js";

// The watch's logic only: a fake realtime link, endpoints whose client answers the catch-up from a
// list the test sets, a manual scheduler.

const at = (s: number) => `2026-12-07 00:00:${String(s).padStart(2, "0")}.000Z`;
const rec = (k: string, rev: number, s: number) => ({ id: `id-${k}`, k, rev, updated: at(s) });

function rig() {
  const scheduler = createManualScheduler({ now: 1_000 });
  const pool = createEndpointPool({ endpoints: ["http://a.invalid", "http://b.invalid"], scheduler });
  const opens: RealtimeHandlers[] = [];
  const link: RealtimeLink = {
    async open(_ep, _topic, handlers) {
      opens.push(handlers);
      return () => {};
    },
  };
  /** What the next catch-up of each server answers (an Error: it fails), and the filters it got. */
  const answers: (RecordFields[] | Error)[] = [];
  const filters: (string | undefined)[] = [];
  for (const ep of pool.endpoints as Endpoint[]) {
    const pb = {
      filter: (f: string, p: Record<string, string>) => f.replace("{:since}", `'${p.since}'`),
      collection: () => ({
        getFullList: async (o: { filter?: string }) => {
          filters.push(o.filter);
          const a = answers.shift() ?? [];
          if (a instanceof Error) throw a;
          return a;
        },
      }),
    } as unknown as PocketBase;
    (ep.client as { call: unknown }).call = (_what: string, fn: (pb: PocketBase) => unknown) => fn(pb);
  }
  const seen: [string, number, RecordWatchSource][] = [];
  const watch = createRecordWatch({
    pool,
    collection: "items",
    spec: { key: ["k"], merge: MergeRules.lww("rev") },
    cursor: "updated",
    onChange: (r, source) => seen.push([String(r.k), Number(r.rev), source]),
    scheduler,
    random: createSeededRandom(1),
    logger: silentLogger,
    link,
  });
  return { scheduler, watch, opens, answers, filters, seen };
}

/** Lets every pending promise callback run (the fakes answer at once). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("record watch", () => {
  it("primes on the first catch-up, then delivers each newer version once, by realtime or by a catch-up from the cursor", async () => {
    const r = rig();
    await r.watch.connect();
    r.answers.push([rec("a", 1, 1), rec("b", 1, 2)]);
    r.opens[0]!.onConnect();
    await flush();
    expect(r.filters).toEqual([undefined]); // the first catch-up of a server lists it whole
    expect(r.seen).toEqual([]); // what exists is recorded, not delivered

    r.opens[0]!.onEvent({ action: "update", record: rec("a", 2, 3) });
    r.opens[0]!.onEvent({ action: "update", record: rec("a", 2, 3) }); // a duplicate
    r.opens[0]!.onEvent({ action: "update", record: rec("a", 1, 1) }); // an older version
    expect(r.seen).toEqual([["a", 2, "realtime"]]);

    // A reconnect: the catch-up lists from the greatest `updated` seen (>=: same-ms writes too).
    r.answers.push([rec("a", 2, 3), rec("b", 2, 4)]);
    r.opens[0]!.onConnect();
    await flush();
    expect(r.filters[1]).toBe(`updated >= '${at(3)}'`);
    expect(r.seen).toEqual([
      ["a", 2, "realtime"],
      ["b", 2, "catch-up"],
    ]);
    r.watch.stop();
  });

  it("a failed catch-up restarts the session, whose new PB_CONNECT catches up again", async () => {
    const r = rig();
    await r.watch.connect();
    r.answers.push(new Error("down"));
    r.opens[0]!.onConnect();
    await flush();
    r.scheduler.advance(5_000);
    await flush();
    expect(r.opens.length).toBe(2);
    r.answers.push([rec("a", 1, 1)]);
    r.opens[1]!.onConnect();
    await flush();
    expect(r.filters).toEqual([undefined, undefined]);
    r.watch.stop();
  });
});
