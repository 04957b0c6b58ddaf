import type { DocId } from "../clock/ids.js";
import { createSeededRandom } from "../clock/random.js";
import { dominatesVersionVector, getVersion, type VersionVector } from "../clock/version-vector.js";
import { ErrorCode, TransportError } from "../errors/errors.js";
import type { Change, Snapshot } from "../model/change.js";
import type { Cancel, Scheduler } from "../sync/scheduler.js";
import {
  type HighWater,
  type PullPage,
  type PushAck,
  type Transport,
  type TransportListener,
  TransportState,
} from "../sync/transport.js";

/** Options of {@link createMemoryHub}. Every probability is in [0, 1] and defaults to 0. */
export interface MemoryHubOptions {
  /** Seed of the fault injection (default 1): the same seed and calls give the same run. */
  readonly seed?: number;
  /**
   * When given, realtime deliveries (changes and resync signals) run by themselves after `delay`
   * through this scheduler; without it they wait for `hub.step()` / `hub.flush()`.
   */
  readonly scheduler?: Scheduler;
  /** Delivery delay in ms with a scheduler: fixed, or uniform in [min, max] (default 0). */
  readonly delay?: number | { readonly min: number; readonly max: number };
  /** Probability that a delivery overtakes others (queued at a random place / extra random delay). */
  readonly reorder?: number;
  /** Probability that a delivery is made twice. */
  readonly duplicate?: number;
  /** Probability that a realtime delivery of changes is lost (resync signals are never dropped). */
  readonly drop?: number;
  /** Probability that `push` fails before committing anything (retryable `transport/unavailable`). */
  readonly pushFailure?: number;
  /** Probability that `push` commits but its answer is lost (retryable `transport/unavailable`). */
  readonly lostAck?: number;
  /** Most changes one `push` commits (default: all); fewer means `acked < changes.length`. */
  readonly maxPushBatch?: number;
  /** Changes per pull page (default 100). */
  readonly pageSize?: number;
}

/** Counters of what a {@link MemoryHub} did, to assert that faults really happened. */
export interface MemoryHubStats {
  readonly pushes: number;
  readonly committed: number;
  readonly failedPushes: number;
  readonly lostAcks: number;
  readonly pulls: number;
  readonly delivered: number;
  readonly dropped: number;
  readonly duplicated: number;
  readonly reordered: number;
}

/** A {@link Transport} bound to a {@link MemoryHub} (the `MemoryTransport` adapter). */
export interface MemoryTransport extends Transport {
  /** A name for logs and assertions (`t1`, `t2`, … unless given). */
  readonly name: string;
  /** The document it is bound to. */
  readonly docId: DocId;
  /** Its connection state. */
  state(): TransportState;
}

/** An operation whose next call {@link MemoryHub.failNext} can make fail. */
export type MemoryFaultTarget = "push" | "pull" | "connect";

/**
 * An in-process "server" holding the committed changes of each document, with a simulated,
 * deterministic network between it and its transports.
 */
export interface MemoryHub {
  /**
   * Creates a transport bound to `docId` (not connected yet).
   * @param docId - The document.
   * @param options - `name`: a label for logs.
   * @returns A new transport.
   */
  transport(docId: DocId, options?: { readonly name?: string }): MemoryTransport;
  /**
   * Delivers the next pending realtime message (changes or resync signal).
   * @returns False when none was pending.
   */
  step(): boolean;
  /**
   * Delivers pending messages, those they cause included, until none is left or `limit` ran.
   * @returns How many were delivered.
   */
  flush(limit?: number): number;
  /** How many realtime messages are waiting. */
  pending(): number;
  /** Cuts one transport (or all): its pending deliveries are lost, push/pull fail until reconnect. */
  disconnect(transport?: MemoryTransport): void;
  /** Restores one transport (or all); each one that was connected gets a resync signal. */
  reconnect(transport?: MemoryTransport): void;
  /** Makes the next call of `operation` (on any transport) reject with `error`. Queues up. */
  failNext(operation: MemoryFaultTarget, error: Error): void;
  /**
   * Compacts a document on the server: keeps `snapshot` and drops the changes it covers. Pulls from
   * a version that lacks any of them start with the snapshot.
   */
  compact(snapshot: Snapshot): void;
  /** The changes committed for `docId` and still held, in commit order (frozen). */
  changes(docId: DocId): readonly Change[];
  /** The snapshot the document was compacted to, if any. */
  snapshot(docId: DocId): Snapshot | undefined;
  /** Counters since creation. */
  stats(): MemoryHubStats;
}

interface DocLog {
  readonly log: Change[];
  readonly keys: Set<string>;
  snapshot: Snapshot | undefined;
}

interface Message {
  readonly target: Endpoint;
  readonly epoch: number;
  readonly changes: readonly Change[] | undefined;
  due: number;
  cancel: Cancel | undefined;
}

interface Endpoint {
  readonly transport: MemoryTransport;
  readonly docId: DocId;
  readonly listeners: Set<TransportListener>;
  wanted: boolean;
  online: boolean;
  closed: boolean;
  epoch: number;
  state: TransportState;
  waiting: { resolve: () => void; reject: (e: Error) => void }[];
}

const unavailable = (what: string): TransportError =>
  new TransportError(ErrorCode.TransportUnavailable, `memory transport: ${what}`);

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Creates an in-memory hub: a server that stores changes per document (idempotent by doc, origin,
 * seq) and transports to it whose realtime deliveries can be delayed, reordered, duplicated or
 * dropped, and whose pushes can fail, all from a seeded PRNG so a seed reproduces a run.
 * Deliveries run on `hub.step()` / `hub.flush()`, or by themselves through an injected scheduler.
 * A transport never receives its own pushes in real time (they are already in its document).
 * @param options - Fault probabilities, seed, scheduler and page size; see {@link MemoryHubOptions}.
 * @returns A hub with no documents.
 * @example
 * ```ts
 * const hub = createMemoryHub({ seed: 7, duplicate: 0.2, reorder: 0.3 });
 * const a = hub.transport(toDocId("routes"));
 * const b = hub.transport(toDocId("routes"));
 * b.subscribe({ onChanges: (cs) => console.log(cs.length), onResync: () => {} });
 * await a.connect(); await b.connect();
 * await a.push([change]);
 * hub.flush(); // b's listener runs now (maybe twice: duplicate)
 * ```
 */
export function createMemoryHub(options: MemoryHubOptions = {}): MemoryHub {
  const rnd = createSeededRandom(options.seed ?? 1);
  const scheduler = options.scheduler;
  const pageSize = Math.max(1, options.pageSize ?? 100);
  const docs = new Map<DocId, DocLog>();
  const endpoints: Endpoint[] = [];
  const queue: Message[] = [];
  const faults: Record<MemoryFaultTarget, Error[]> = { push: [], pull: [], connect: [] };
  const stats = {
    pushes: 0,
    committed: 0,
    failedPushes: 0,
    lostAcks: 0,
    pulls: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
  };
  let counter = 0;

  const docLog = (docId: DocId): DocLog => {
    let d = docs.get(docId);
    if (d === undefined) {
      d = { log: [], keys: new Set(), snapshot: undefined };
      docs.set(docId, d);
    }
    return d;
  };

  const connected = (e: Endpoint): boolean => e.wanted && e.online && !e.closed;

  const setState = (e: Endpoint, state: TransportState): void => {
    if (e.state === state) return;
    e.state = state;
    for (const l of [...e.listeners]) guard(e, l, () => l.onState?.(state));
  };

  const guard = (e: Endpoint, l: TransportListener, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      const wrapped = new TransportError(
        ErrorCode.TransportUnavailable,
        `memory transport ${e.transport.name}: a listener threw`,
        { cause: error, retryable: false },
      );
      try {
        l.onError?.(wrapped);
      } catch {
        // a listener that throws from onError too has nothing left to tell
      }
    }
  };

  const sampleDelay = (): number => {
    const d = options.delay ?? 0;
    if (typeof d === "number") return d;
    return d.min + rnd.int(Math.max(0, d.max - d.min) + 1);
  };

  const deliver = (m: Message): void => {
    const i = queue.indexOf(m);
    if (i < 0) return;
    queue.splice(i, 1);
    m.cancel?.();
    const e = m.target;
    if (!connected(e) || e.epoch !== m.epoch) {
      stats.dropped++;
      return;
    }
    stats.delivered++;
    for (const l of [...e.listeners]) {
      if (m.changes === undefined) guard(e, l, () => l.onResync());
      else {
        const changes = m.changes;
        guard(e, l, () => l.onChanges(changes));
      }
    }
  };

  const enqueue = (target: Endpoint, changes: readonly Change[] | undefined): void => {
    const reorder = rnd.chance(options.reorder ?? 0);
    if (reorder) stats.reordered++;
    const m: Message = { target, epoch: target.epoch, changes, due: 0, cancel: undefined };
    if (scheduler === undefined) {
      if (reorder && queue.length > 0) queue.splice(rnd.int(queue.length + 1), 0, m);
      else queue.push(m);
      return;
    }
    const base = sampleDelay();
    const extra = reorder ? 1 + rnd.int(2 * base + 10) : 0;
    m.due = scheduler.now() + base + extra;
    let i = queue.length;
    while (i > 0 && queue[i - 1]!.due > m.due) i--;
    queue.splice(i, 0, m);
    m.cancel = scheduler.schedule(base + extra, () => deliver(m));
  };

  const broadcast = (from: Endpoint, changes: readonly Change[]): void => {
    for (const e of endpoints) {
      if (e === from || e.docId !== from.docId || !connected(e) || e.listeners.size === 0) continue;
      if (rnd.chance(options.drop ?? 0)) {
        stats.dropped++;
        continue;
      }
      enqueue(e, changes);
      if (rnd.chance(options.duplicate ?? 0)) {
        stats.duplicated++;
        enqueue(e, changes);
      }
    }
  };

  const goOnline = (e: Endpoint): void => {
    setState(e, TransportState.Connected);
    enqueue(e, undefined);
    const waiting = e.waiting.splice(0);
    for (const w of waiting) w.resolve();
  };

  const usable = (e: Endpoint, op: string): void => {
    if (e.closed)
      throw new TransportError(ErrorCode.Closed, `memory transport ${e.transport.name} is closed`);
    if (!connected(e)) throw unavailable(`${e.transport.name} is not connected (${op})`);
  };

  const takeFault = (op: MemoryFaultTarget): void => {
    const error = faults[op].shift();
    if (error !== undefined) throw error;
  };

  /** Commit order, except that each origin's changes are put in seq order among its own slots. */
  const pullOrder = (list: Change[]): Change[] => {
    const byOrigin = new Map<string, Change[]>();
    for (const c of list) {
      const l = byOrigin.get(c.origin);
      if (l === undefined) byOrigin.set(c.origin, [c]);
      else l.push(c);
    }
    for (const l of byOrigin.values()) l.sort((a, b) => a.seq - b.seq);
    const next = new Map<string, number>();
    return list.map((c) => {
      const i = next.get(c.origin) ?? 0;
      next.set(c.origin, i + 1);
      return byOrigin.get(c.origin)![i]!;
    });
  };

  const hub: MemoryHub = {
    transport(docId, opts = {}) {
      counter++;
      const name = opts.name ?? `t${counter}`;
      const e: Endpoint = {
        transport: undefined as unknown as MemoryTransport,
        docId,
        listeners: new Set(),
        wanted: false,
        online: true,
        closed: false,
        epoch: 0,
        state: TransportState.Disconnected,
        waiting: [],
      };
      const transport: MemoryTransport = {
        name,
        docId,
        state: () => e.state,
        async connect() {
          if (e.closed) throw new TransportError(ErrorCode.Closed, `memory transport ${name} is closed`);
          takeFault("connect");
          if (connected(e)) return;
          e.wanted = true;
          e.epoch++;
          if (e.online) {
            goOnline(e);
            return;
          }
          setState(e, TransportState.Connecting);
          await new Promise<void>((resolve, reject) => e.waiting.push({ resolve, reject }));
        },
        async close() {
          if (e.closed) return;
          e.closed = true;
          e.wanted = false;
          e.epoch++;
          setState(e, TransportState.Closed);
          e.listeners.clear();
          const aborted = new TransportError(ErrorCode.Aborted, `memory transport ${name} was closed`);
          for (const w of e.waiting.splice(0)) w.reject(aborted);
        },
        async push(changes): Promise<PushAck> {
          usable(e, "push");
          stats.pushes++;
          try {
            takeFault("push");
          } catch (error) {
            stats.failedPushes++;
            throw error;
          }
          if (rnd.chance(options.pushFailure ?? 0)) {
            stats.failedPushes++;
            throw unavailable("push failed (simulated)");
          }
          for (const c of changes) {
            if (c.doc !== docId) {
              throw new TransportError(
                ErrorCode.TransportRejected,
                `memory transport ${name}: change of doc ${c.doc} pushed to doc ${docId}`,
              );
            }
          }
          const d = docLog(docId);
          const limit = Math.min(changes.length, Math.max(1, options.maxPushBatch ?? changes.length));
          const fresh: Change[] = [];
          for (const c of changes.slice(0, limit)) {
            const key = `${c.origin}\u0000${c.seq}`;
            const compacted = d.snapshot !== undefined && c.seq <= getVersion(d.snapshot.version, c.origin);
            if (compacted || d.keys.has(key)) continue;
            const stored = deepFreeze(structuredClone(c) as Change);
            d.keys.add(key);
            d.log.push(stored);
            fresh.push(stored);
          }
          stats.committed += fresh.length;
          if (fresh.length > 0) broadcast(e, Object.freeze(fresh));
          if (rnd.chance(options.lostAck ?? 0)) {
            stats.lostAcks++;
            throw unavailable("push committed but its answer was lost (simulated)");
          }
          return { acked: limit };
        },
        async highWater(origin: string): Promise<HighWater> {
          // A server answers this without a realtime connection: only a cut or a close fails it.
          if (e.closed) throw new TransportError(ErrorCode.Closed, `memory transport ${name} is closed`);
          if (!e.online) throw unavailable(`${name} is cut off (highWater)`);
          const d = docLog(docId);
          let best: Change | undefined;
          for (const c of d.log)
            if (c.origin === origin && (best === undefined || c.seq > best.seq)) best = c;
          const seq = Math.max(best?.seq ?? 0, getVersion(d.snapshot?.version ?? {}, origin));
          return best === undefined ? { seq } : { seq, hlc: best.hlc };
        },
        pull(since: VersionVector): AsyncIterable<PullPage> {
          return {
            async *[Symbol.asyncIterator]() {
              usable(e, "pull");
              takeFault("pull");
              stats.pulls++;
              const d = docLog(docId);
              const snapshot =
                d.snapshot !== undefined && !dominatesVersionVector(since, d.snapshot.version)
                  ? d.snapshot
                  : undefined;
              const missing = pullOrder(d.log.filter((c) => c.seq > getVersion(since, c.origin)));
              if (snapshot === undefined && missing.length === 0) return;
              for (let i = 0; i === 0 || i < missing.length; i += pageSize) {
                if (i > 0) usable(e, "pull");
                const changes = missing.slice(i, i + pageSize);
                yield i === 0 && snapshot !== undefined ? { snapshot, changes } : { changes };
              }
            },
          };
        },
        subscribe(listener) {
          if (e.closed) return () => {};
          e.listeners.add(listener);
          return () => {
            e.listeners.delete(listener);
          };
        },
      };
      (e as { transport: MemoryTransport }).transport = transport;
      endpoints.push(e);
      return transport;
    },
    step() {
      const m = queue[0];
      if (m === undefined) return false;
      deliver(m);
      return true;
    },
    flush(limit = 100_000) {
      let n = 0;
      while (n < limit && hub.step()) n++;
      return n;
    },
    pending: () => queue.length,
    disconnect(transport) {
      for (const e of endpoints) {
        if (transport !== undefined && e.transport !== transport) continue;
        if (!e.online) continue;
        e.online = false;
        if (e.wanted && !e.closed) {
          e.epoch++;
          setState(e, TransportState.Disconnected);
        }
      }
    },
    reconnect(transport) {
      for (const e of endpoints) {
        if (transport !== undefined && e.transport !== transport) continue;
        if (e.online) continue;
        e.online = true;
        if (e.wanted && !e.closed) {
          e.epoch++;
          goOnline(e);
        }
      }
    },
    failNext(operation, error) {
      faults[operation].push(error);
    },
    compact(snapshot) {
      const d = docLog(snapshot.doc);
      d.snapshot = deepFreeze(structuredClone(snapshot) as Snapshot);
      const kept = d.log.filter((c) => c.seq > getVersion(snapshot.version, c.origin));
      d.log.splice(0, d.log.length, ...kept);
    },
    changes: (docId) => Object.freeze([...(docs.get(docId)?.log ?? [])]),
    snapshot: (docId) => docs.get(docId)?.snapshot,
    stats: () => ({ ...stats }),
  };
  return hub;
}
