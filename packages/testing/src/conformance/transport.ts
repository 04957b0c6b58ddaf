import {
  type Change,
  type DocId,
  encodeHlc,
  isNxsError,
  type PullPage,
  type Transport,
  type VersionVector,
} from "@nxs-sync/core";
import { afterEach, describe, expect, it } from "vitest";

/** What {@link runTransportConformance} needs for one test. */
export interface TransportConformanceContext {
  /** A document id no other test uses (an empty document on the server). */
  readonly docId: DocId;
  /** A second unused document id, to check that documents are isolated. */
  readonly otherDocId: DocId;
  /** Opens a new, not yet connected transport bound to `docId` (default: `ctx.docId`). */
  open(docId?: DocId): Transport | Promise<Transport>;
  /**
   * Lets pending deliveries happen once: the memory hub flushes; a real server waits a little.
   * The suite calls it in a loop (at most `maxSettleRounds` times) until what it waits for holds:
   * it is a poll interval, never a bound that decides a check (a "nothing arrives" check waits on a
   * sentinel change pushed after the ones that must not arrive).
   */
  settle(): Promise<void>;
  /** Cuts the connection of `transport` and brings it back. When given, resync-after-reconnect is tested. */
  reconnect?(transport: Transport): Promise<void>;
  /** The adapter's pull page size: the suite then pushes enough changes to span several pages. */
  readonly pageSize?: number;
  /** How many `settle()` rounds a wait may take (default 200). */
  readonly maxSettleRounds?: number;
  /** Releases what the test used; called after each test (transports are closed by the suite). */
  cleanup?(): Promise<void>;
}

const A = "conf-a";
const B = "conf-b";

function makeChange(doc: DocId, origin: string, seq: number): Change {
  return {
    doc,
    origin: origin as Change["origin"],
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: origin === A ? 0 : 1, node: origin }),
    ops: [{ kind: "set", path: ["items", `${origin}-${seq}`], value: { seq, origin } }],
  };
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const key = (c: Change): string => `${c.origin}:${c.seq}`;

/** Pushes until every change is acknowledged (a transport may acknowledge a prefix only). */
async function pushAll(t: Transport, changes: readonly Change[]): Promise<void> {
  let rest = changes;
  for (let attempt = 0; rest.length > 0; attempt++) {
    if (attempt > 100) throw new Error("push never acknowledged everything");
    const { acked } = await t.push(rest);
    expect(acked).toBeGreaterThanOrEqual(0);
    expect(acked).toBeLessThanOrEqual(rest.length);
    rest = rest.slice(acked);
  }
}

async function pullAll(
  t: Transport,
  since: VersionVector,
): Promise<{ pages: PullPage[]; changes: Change[] }> {
  const pages: PullPage[] = [];
  for await (const page of t.pull(since)) pages.push(page);
  return { pages, changes: pages.flatMap((p) => [...p.changes]) };
}

/** Asserts `changes` holds each origin's changes in ascending seq order (so they apply without gaps). */
function expectSeqOrderPerOrigin(changes: readonly Change[]): void {
  const lastSeq = new Map<string, number>();
  for (const c of changes) {
    expect(c.seq, `${key(c)} out of order`).toBeGreaterThan(lastSeq.get(c.origin) ?? 0);
    lastSeq.set(c.origin, c.seq);
  }
}

/**
 * The conformance suite of the `Transport` port: `MemoryTransport` runs it in core's unit tests and
 * `PocketBaseTransport` against real servers. Registers a vitest `describe` block.
 * @param name - A label of the adapter, used in the describe title.
 * @param setup - Called before each test; returns fresh document ids and a transport factory.
 * @example
 * ```ts
 * import { createMemoryHub } from "@nxs-sync/core/memory";
 *
 * runTransportConformance("memory", () => {
 *   const hub = createMemoryHub({ pageSize: 4 });
 *   return { docId: toDocId("d"), otherDocId: toDocId("e"), pageSize: 4,
 *     open: (id) => hub.transport(id ?? toDocId("d")), settle: async () => { hub.flush() } };
 * });
 * ```
 */
export function runTransportConformance(
  name: string,
  setup: () => TransportConformanceContext | Promise<TransportConformanceContext>,
): void {
  describe(`Transport conformance: ${name}`, () => {
    let ctx: TransportConformanceContext | undefined;
    let opened: Transport[] = [];

    const start = async (): Promise<TransportConformanceContext> => {
      ctx = await setup();
      return ctx;
    };
    const open = async (docId?: DocId): Promise<Transport> => {
      const t = await ctx!.open(docId);
      opened.push(t);
      return t;
    };
    const connected = async (docId?: DocId): Promise<Transport> => {
      const t = await open(docId);
      await t.connect();
      return t;
    };
    const eventually = async (what: string, condition: () => boolean): Promise<void> => {
      const rounds = ctx!.maxSettleRounds ?? 200;
      for (let i = 0; i < rounds; i++) {
        if (condition()) return;
        await ctx!.settle();
      }
      expect(condition(), `timed out waiting for: ${what}`).toBe(true);
    };

    /** A connected transport of `ctx.docId` whose subscriber collects the keys of what it receives. */
    const subscribed = async (): Promise<Set<string>> => {
      const t = await open();
      const seen = new Set<string>();
      t.subscribe({
        onChanges: (cs) => {
          for (const c of cs) seen.add(key(c));
        },
        onResync: () => {},
      });
      await t.connect();
      return seen;
    };

    afterEach(async () => {
      for (const t of opened) await t.close();
      opened = [];
      await ctx?.cleanup?.();
      ctx = undefined;
    });

    it("connects, and closes idempotently (also when never connected)", async () => {
      await start();
      const t = await connected();
      await t.close();
      await t.close();
      const never = await open();
      await never.close();
    });

    it("acknowledges pushes idempotently: a re-push is a no-op counted as acknowledged", async () => {
      const { docId } = await start();
      const t = await connected();
      const changes = range(1, 3).map((s) => makeChange(docId, A, s));
      await pushAll(t, changes);
      await pushAll(t, changes);
      await pushAll(t, changes.slice(1));
      const { changes: pulled } = await pullAll(t, {});
      expect(pulled.map(key).sort()).toEqual(changes.map(key).sort());
      expect(pulled.find((c) => c.seq === 2)).toEqual(changes[1]);
    });

    it("pulls exactly what a version vector lacks, each origin in seq order, across pages", async () => {
      const { docId, pageSize } = await start();
      const t = await connected();
      const n = pageSize === undefined ? 30 : 2 * pageSize + 1;
      const fromA = range(1, n).map((s) => makeChange(docId, A, s));
      const fromB = range(1, 3).map((s) => makeChange(docId, B, s));
      await pushAll(t, fromA.slice(0, 2));
      await pushAll(t, fromB);
      await pushAll(t, fromA.slice(2));

      const all = await pullAll(t, {});
      expect(all.changes.map(key).sort()).toEqual([...fromA, ...fromB].map(key).sort());
      expectSeqOrderPerOrigin(all.changes);
      if (pageSize !== undefined) {
        expect(all.pages.length).toBeGreaterThan(1);
        for (const p of all.pages) expect(p.changes.length).toBeLessThanOrEqual(pageSize);
      }

      const since = { [A]: 2, [B]: 1 };
      const part = await pullAll(t, since);
      const expected = [...fromA.slice(2), ...fromB.slice(1)];
      expect(part.changes.map(key).sort()).toEqual(expected.map(key).sort());
      expect(new Set(part.changes.map(key)).size).toBe(part.changes.length);
      expectSeqOrderPerOrigin(part.changes);

      const none = await pullAll(t, { [A]: n, [B]: 3 });
      expect(none.changes).toEqual([]);
    });

    it("keeps documents apart", async () => {
      const { docId, otherDocId } = await start();
      const t = await connected();
      const other = await open(otherDocId);
      const seenOnOther = new Set<string>();
      other.subscribe({
        onChanges: (cs) => {
          for (const c of cs) seenOnOther.add(`${c.doc}/${key(c)}`);
        },
        onResync: () => {},
      });
      await other.connect();
      const witness = await subscribed();
      const otherWriter = await connected(otherDocId);
      const change = makeChange(docId, A, 1);
      await pushAll(t, [change]);
      expect((await pullAll(other, {})).changes).toEqual([]);
      // Nothing of `docId` reaches `other`: wait until the change reached a subscriber of its own
      // doc and a sentinel change of `otherDocId`, pushed after it, reached `other`.
      const sentinel = makeChange(otherDocId, B, 1);
      await pushAll(otherWriter, [sentinel]);
      await eventually("the change at a subscriber of its doc", () => witness.has(key(change)));
      await eventually("the sentinel at the other doc", () =>
        seenOnOther.has(`${otherDocId}/${key(sentinel)}`),
      );
      expect([...seenOnOther]).toEqual([`${otherDocId}/${key(sentinel)}`]);
    });

    it("delivers changes pushed by another transport of the same document to subscribers", async () => {
      const { docId } = await start();
      const writer = await connected();
      const reader = await open();
      const received = new Set<string>();
      reader.subscribe({
        onChanges: (cs) => {
          for (const c of cs) received.add(key(c));
        },
        onResync: () => {},
      });
      let resyncs = 0;
      reader.subscribe({ onChanges: () => {}, onResync: () => resyncs++ });
      await reader.connect();
      await eventually("the reader's first resync", () => resyncs > 0);
      const changes = range(1, 3).map((s) => makeChange(docId, B, s));
      await pushAll(writer, changes);
      await eventually("the reader to see 3 changes", () => changes.every((c) => received.has(key(c))));
    });

    it("fires onResync after connect", async () => {
      await start();
      const t = await open();
      let resyncs = 0;
      t.subscribe({ onChanges: () => {}, onResync: () => resyncs++ });
      await t.connect();
      await eventually("a resync after connect", () => resyncs >= 1);
    });

    it("fires onResync again after a reconnect", async (test) => {
      const c = await start();
      if (c.reconnect === undefined) {
        test.skip("this transport setup provides no reconnect(): resync after reconnect cannot be checked");
        return;
      }
      const t = await open();
      let resyncs = 0;
      t.subscribe({ onChanges: () => {}, onResync: () => resyncs++ });
      await t.connect();
      await eventually("a resync after connect", () => resyncs >= 1);
      const before = resyncs;
      await c.reconnect(t);
      await eventually("a resync after reconnect", () => resyncs > before);
      await pushAll(t, [makeChange(c.docId, A, 1)]);
      expect((await pullAll(t, {})).changes.map(key)).toEqual([`${A}:1`]);
    });

    it("stops callbacks on unsubscribe and on close", async () => {
      const { docId } = await start();
      const writer = await connected();
      const unsubscribed = await open();
      const closed = await open();
      let afterUnsubscribe = 0;
      let afterClose = 0;
      let resyncs = 0;
      const stop = unsubscribed.subscribe({
        onChanges: (cs) => (afterUnsubscribe += cs.length),
        onResync: () => {},
      });
      // A listener that stays: it shows when the changes reached `unsubscribed`.
      const stayed = new Set<string>();
      unsubscribed.subscribe({
        onChanges: (cs) => {
          for (const c of cs) stayed.add(key(c));
        },
        onResync: () => {},
      });
      closed.subscribe({ onChanges: (cs) => (afterClose += cs.length), onResync: () => resyncs++ });
      await unsubscribed.connect();
      await closed.connect();
      await eventually("a resync", () => resyncs > 0);
      stop();
      await closed.close();
      const resyncsAtClose = resyncs;
      const changes = [makeChange(docId, A, 1), makeChange(docId, A, 2)];
      await pushAll(writer, changes);
      // A sentinel pushed after them: once the staying listener has it and them, the transport
      // has delivered everything it will (no sleep that a slow server could outlast).
      const sentinel = makeChange(docId, A, 3);
      await pushAll(writer, [sentinel]);
      await eventually("the changes and the sentinel at the staying listener", () =>
        [...changes, sentinel].every((c) => stayed.has(key(c))),
      );
      expect(afterUnsubscribe).toBe(0);
      expect(afterClose).toBe(0);
      expect(resyncs).toBe(resyncsAtClose);
    });

    it("refuses push after close with the code `closed`", async () => {
      const { docId } = await start();
      const t = await connected();
      await t.close();
      const error = await t.push([makeChange(docId, A, 1)]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isNxsError(error) && error.code).toBe("closed");
    });
  });
}
