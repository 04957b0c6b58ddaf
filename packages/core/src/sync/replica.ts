import type { Hlc } from "../clock/ids.js";
import { createSeededRandom, type Random, seedFromString } from "../clock/random.js";
import { dominatesVersionVector, getVersion, type VersionVector } from "../clock/version-vector.js";
import type {
  ApplyResult,
  HiddenChange,
  HiddenSnapshot,
  RejectedChange,
  ReplicatedDoc,
} from "../doc/replicated-doc.js";
import { callGuarded } from "../errors/callback-guard.js";
import {
  ConflictError,
  ErrorCode,
  isNxsError,
  NxsError,
  StorageError,
  TransportError,
} from "../errors/errors.js";
import { defaultLogger, type Logger } from "../errors/logger.js";
import type { Change, Snapshot } from "../model/change.js";
import { computeBackoff, type RetryPolicy } from "./backoff.js";
import { createEmitter } from "./emitter.js";
import { createReportThrottle, throttleKey } from "./report-throttle.js";
import type { Cancel, Scheduler } from "./scheduler.js";
import type { Storage, StoredState } from "./storage.js";
import { type Transport, type TransportListener, TransportState } from "./transport.js";

/** The lifecycle states of a {@link Replica}, as a const object plus a derived union. */
export const ReplicaState = {
  /** Created, `start()` not called (or not finished) yet. */
  Idle: "idle",
  /** Connecting (or reconnecting) the transport. */
  Connecting: "connecting",
  /** The transport is connected. */
  Connected: "connected",
  /** The transport is down; the replica keeps working locally and retries. */
  Disconnected: "disconnected",
  /** `stop()` was called. */
  Stopped: "stopped",
} as const;
/** The union of replica states. */
export type ReplicaState = (typeof ReplicaState)[keyof typeof ReplicaState];

/** Where remote changes came from. */
export type ApplySource = "realtime" | "pull" | "restore";

/** What the engine was doing when an error happened. */
export type ReplicaOperation = "start" | "connect" | "push" | "pull" | "storage" | "transport" | "listener";

/** Why a pull ran. */
export type PullReason = "resync" | "gap" | "poll" | "manual";

/** The events of a {@link Replica}, by kebab-case name, with their payloads. */
export interface ReplicaEvents {
  /** The replica changed state. */
  state: { readonly state: ReplicaState; readonly previous: ReplicaState };
  /** The transport acknowledged these local changes (committed server side). */
  pushed: { readonly changes: readonly Change[]; readonly pending: number };
  /** Remote changes (or replayed stored local ones, source `restore`) were applied to the doc. */
  applied: { readonly changes: readonly Change[]; readonly source: ApplySource };
  /** The doc refused these inputs (quarantined); the replica goes on. */
  rejected: { readonly rejected: readonly RejectedChange[]; readonly source: ApplySource };
  /**
   * Remote changes applied although the local schema refuses some of what they wrote (a newer
   * schema's writer during a rolling upgrade): those paths are hidden from the typed state until
   * this replica runs a schema that accepts them (docs/core.md, "Schema upgrades"). Once per change.
   */
  hidden: {
    readonly hidden: readonly HiddenChange[];
    readonly source: ApplySource;
    /**
     * Set when a snapshot (a pull page) hid what its state holds: a newer schema's values, or a
     * forgery's (a snapshot is untrusted input). `hidden` then lists only changes applied with it.
     */
    readonly snapshot?: HiddenSnapshot;
  };
  /** A pull completed: the doc now has everything the server had when the pull started. */
  resync: {
    readonly reason: PullReason;
    readonly changes: number;
    readonly snapshot: boolean;
    readonly version: VersionVector;
  };
  /** Background work failed. `retryInMs` is set when the engine retries by itself. */
  error: {
    readonly error: NxsError;
    readonly operation: ReplicaOperation;
    readonly retryInMs: number | undefined;
  };
}

/** A point-in-time view of a {@link Replica}. */
export interface ReplicaStatus {
  readonly state: ReplicaState;
  /** Shorthand for `state === "connected"`. */
  readonly connected: boolean;
  /** Local changes not yet acknowledged by the transport (saved or not). */
  readonly pendingChanges: number;
  /** Local changes not yet durably appended to storage (normally 0 or a handful, briefly). */
  readonly unsavedChanges: number;
  /** What the doc has applied. */
  readonly version: VersionVector;
  /** Per origin, the seqs the doc waits for (held changes past a gap). */
  readonly gaps: VersionVector;
  /** Remote changes the doc holds past those gaps (bounded: `maxHeld` of `createDoc`). */
  readonly heldChanges: number;
  /** Per origin, how many changes seen (realtime or pull) are not applied yet: highest seen − applied. */
  readonly lag: Readonly<Record<string, number>>;
  /** The last background error, if any. */
  readonly lastError: NxsError | undefined;
  /** `scheduler.now()` when the last pull completed, if any. */
  readonly lastSyncAt: number | undefined;
}

/**
 * Listeners to attach before the replica starts (option `on`): nothing the replica does at start
 * (replaying and pushing a restored outbox, the first errors) is missed.
 */
export type ReplicaListeners = {
  readonly [E in keyof ReplicaEvents]?: (payload: ReplicaEvents[E]) => void;
};

/** Options of {@link createReplica}. */
export interface ReplicaOptions<D extends ReplicatedDoc = ReplicatedDoc> {
  /** The document to replicate (fresh, or restored from `storage` by {@link openReplica}). */
  readonly doc: D;
  /** The network; bound to `doc.docId`. The replica owns it: `stop()` closes it. */
  readonly transport: Transport;
  /** Durability of local changes; the replica owns it: `stop()` closes it. */
  readonly storage: Storage;
  /** Time and timers (backoff, polling). */
  readonly scheduler: Scheduler;
  /**
   * Where diagnostics go. Default: {@link defaultLogger}, warnings and errors to stderr, one line
   * each; pass `silentLogger` to silence it. A repeated identical error is logged once per minute
   * with the count held back (events and `onError` still get each one).
   */
  readonly logger?: Logger;
  /** Called with every background error, along with the `error` event. */
  readonly onError?: (error: NxsError, operation: ReplicaOperation) => void;
  /**
   * Event listeners attached at construction, before anything can fire: with {@link openReplica},
   * which starts the replica before it returns, this is the way not to miss the first `pushed`,
   * `applied` or `error` events.
   */
  readonly on?: ReplicaListeners;
  /**
   * When no server has answered for this long (no connect, push or pull succeeded), the replica
   * reports `transport/unavailable` (`error` event, `onError`, `status().lastError`), once per
   * outage. Default 10 000 ms; 0 turns it off.
   */
  readonly unreachableAfterMs?: number;
  /**
   * After a connect refused for good (`transport/unauthorized`: wrong credentials; `server/incompatible`,
   * `config/invalid`), the replica tries again after this long, and reports each failure: an
   * operator may fix the account or the server meanwhile. Default 60 000 ms; 0 gives up for good.
   */
  readonly refusedRetryMs?: number;
  /**
   * On empty storage (no snapshot, outbox or last seq), ask the transport what the servers hold of
   * this replica id (`transport.highWater`) and catch up on it before `start()` resolves, so that a
   * restart without its volume never reuses the seqs of an earlier incarnation. Default true (only
   * transports with `highWater` are asked). See docs/engine.md, "Replica identity".
   */
  readonly identityCheck?: boolean;
  /** Backoff of retries (default 250 ms doubling up to 30 s, with jitter). */
  readonly retry?: RetryPolicy;
  /** Jitter source (default: seeded from the replica id, so runs reproduce). */
  readonly random?: Random;
  /** Most changes per `push` (default 100). */
  readonly pushBatchSize?: number;
  /** Save a snapshot (and trim the acknowledged outbox) after this many changes (default 100). */
  readonly snapshotEvery?: number;
  /** Pull every `pollMs` while connected, as a safety net for lost realtime events (default 0: off). */
  readonly pollMs?: number;
}

/** The sync engine of one document. */
export interface Replica<D extends ReplicatedDoc = ReplicatedDoc> {
  /** The replicated document. */
  readonly doc: D;
  /**
   * Loads storage (replays the stored outbox into the doc and queues it for pushing), subscribes and
   * connects the transport in the background (retrying), then resolves: the replica works offline.
   * On empty storage with a transport that has `highWater`, it first waits until a server says what
   * it holds of this replica id and the doc caught up on it (each failure is reported meanwhile;
   * `stop()` ends the wait): see `identityCheck`.
   * Idempotent.
   * @throws StorageError `storage/io` or `storage/corrupt` when storage cannot be loaded.
   * @throws ConflictError `conflict` (not retryable) when the doc is behind what storage says it made
   *   (it would reuse seqs).
   * @throws NxsError `closed` after `stop()`.
   */
  start(): Promise<void>;
  /**
   * Stops every loop, saves pending local changes and a final snapshot (best effort, errors go to
   * `onError`), closes the transport and the storage. Idempotent. Pending `flush()`/`synced()` reject
   * with `closed`.
   */
  stop(): Promise<void>;
  /** The current status. */
  status(): ReplicaStatus;
  /**
   * Registers a listener of `event`.
   * @returns The function that unregisters it.
   */
  on<E extends keyof ReplicaEvents>(event: E, listener: (payload: ReplicaEvents[E]) => void): () => void;
  /**
   * Resolves once every local change made so far is acknowledged by the transport.
   * @throws NxsError `closed` when the replica stops first; the push error when pushing is blocked
   *   by a non-retryable error.
   */
  flush(): Promise<void>;
  /**
   * Resolves once the replica is in sync as far as it can tell: outbox acknowledged, a pull completed
   * since the last resync and none pending, no gaps.
   * @throws Like {@link Replica.flush}.
   */
  synced(): Promise<void>;
  /** Asks for a pull now (e.g. after a hint from elsewhere). */
  pull(): void;
}

/**
 * What a doc offers, beyond {@link ReplicatedDoc}, to take a server snapshot (a pull page that
 * starts with one, after the server compacted). Optional: without it such a page is reported as an
 * `op/invalid` error and its changes are held.
 */
export interface SnapshotReceiver {
  applySnapshot(snapshot: Snapshot): ApplyResult | undefined;
}

/** What {@link openReplica} hands to `createDoc`: what storage held. */
export interface RestoredState {
  /** The newest snapshot saved. */
  readonly snapshot?: Snapshot;
  /** The highest local seq and HLC ever made: the doc must continue after them. */
  readonly last?: { readonly seq: number; readonly hlc: Hlc };
  /** Stored local changes not yet trimmed (the replica replays them into the doc itself). */
  readonly outbox: readonly Change[];
}

/** Options of {@link openReplica}: those of {@link createReplica}, with a doc factory instead of a doc. */
export interface OpenReplicaOptions<D extends ReplicatedDoc> extends Omit<ReplicaOptions<D>, "doc"> {
  /** Creates the doc from what storage held (restore the snapshot, continue the clock after `last`). */
  createDoc(restored: RestoredState): D;
}

const hasSnapshotReceiver = (doc: ReplicatedDoc): doc is ReplicatedDoc & SnapshotReceiver =>
  typeof (doc as Partial<SnapshotReceiver>).applySnapshot === "function";

const isEmptyVector = (vv: VersionVector): boolean => Object.keys(vv).length === 0;

function toTransportError(error: unknown, what: string): NxsError {
  if (isNxsError(error)) return error;
  return new TransportError(ErrorCode.TransportUnavailable, `${what} failed: ${String(error)}`, {
    cause: error,
    retryable: true,
  });
}

function toStorageError(error: unknown, what: string): NxsError {
  if (isNxsError(error)) return error;
  return new StorageError(ErrorCode.StorageIo, `${what} failed: ${String(error)}`, { cause: error });
}

interface Waiter {
  readonly ready: () => boolean;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * Creates the sync engine of one document. Every local change of `doc` is appended to `storage`
 * before it is pushed; pushes go in seq order, in batches, and leave the outbox only once
 * acknowledged (and covered by a saved snapshot). Every resync signal of the transport triggers a
 * pull of what `doc.version()` lacks; realtime changes are applied at once and a gap triggers a pull.
 * Failures retry with exponential backoff and jitter through `scheduler`; nothing throws into the
 * void: errors go to the `error` event, `onError` and `logger`. See `docs/engine.md`.
 *
 * Local changes made before `start()` resolves are kept in memory and saved right after loading.
 * To restore a doc from its storage after a restart, use {@link openReplica}.
 * @param options - Doc, transport, storage, scheduler and tuning; see {@link ReplicaOptions}.
 * @returns A replica in state `idle`; call `start()`.
 * @example
 * ```ts
 * import { createMemoryHub, createMemoryStorage } from "@nxs-sync/core/memory";
 *
 * const hub = createMemoryHub({ seed: 1 });
 * const replica = createReplica({
 *   doc,
 *   transport: hub.transport(doc.docId),
 *   storage: createMemoryStorage(),
 *   scheduler: createManualScheduler(),
 * });
 * replica.on("applied", ({ changes }) => console.log(changes.length, "remote changes"));
 * await replica.start();
 * ```
 */
export function createReplica<D extends ReplicatedDoc>(options: ReplicaOptions<D>): Replica<D> {
  const { doc, transport, storage, scheduler } = options;
  const self = doc.replicaId;
  if (transport.docId !== undefined && transport.docId !== doc.docId) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `the transport carries doc "${transport.docId}" but the replica's doc is "${doc.docId}": ` +
        "give the transport and createDoc the same docId",
      { retryable: false },
    );
  }
  if (transport.origin !== undefined && transport.origin !== self) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `the transport pushes for origin "${transport.origin}" but the doc's replica id is "${self}": ` +
        "give the transport's origin and createDoc's replicaId the same value",
      { retryable: false },
    );
  }
  const logger = options.logger ?? defaultLogger;
  const unreachableAfterMs = Math.max(0, options.unreachableAfterMs ?? 10_000);
  const refusedRetryMs = Math.max(0, options.refusedRetryMs ?? 60_000);
  const logThrottle = createReportThrottle({ now: () => scheduler.now() });
  const retry = options.retry ?? {};
  const random = options.random ?? createSeededRandom(seedFromString(`${doc.docId}/${self}`));
  const pushBatchSize = Math.max(1, options.pushBatchSize ?? 100);
  const snapshotEvery = Math.max(1, options.snapshotEvery ?? 100);
  const pollMs = options.pollMs ?? 0;
  const tag = `[nxs-sync replica ${doc.docId}/${self}]`;
  const closedError = (): NxsError => new NxsError(ErrorCode.Closed, `${tag} stopped`);

  let state: ReplicaState = ReplicaState.Idle;
  let startPromise: Promise<void> | undefined;
  let stopPromise: Promise<void> | undefined;
  let loaded = false;
  let stopped = false;
  let transportUp = false;
  let lastError: NxsError | undefined;
  let lastSyncAt: number | undefined;
  const seen: Record<string, number> = {};
  const waiters: Waiter[] = [];

  // local changes: buffered (not saved) → unacked (saved, not acknowledged) → acknowledged
  const buffered: Change[] = [];
  const unacked: Change[] = [];
  let appendLoop: Promise<void> | undefined;
  let appendTimer: Cancel | undefined;
  let appendAttempt = 0;

  let pushing = false;
  let pushTimer: Cancel | undefined;
  let pushAttempt = 0;
  let pushBlocked: NxsError | undefined;
  /** Set while `start()` learns what the servers hold of this replica id: nothing is pushed meanwhile. */
  let identityPending = false;
  /** Local changes the doc made before `start()` learned what the servers hold of this replica id. */
  let madeBeforeIdentity = 0;
  /** Wakes a `start()` waiting between identity attempts when the replica stops. */
  let wakeStart: (() => void) | undefined;
  let highestAcked = 0;

  let pulling = false;
  let pullRequested: PullReason | undefined;
  let pullTimer: Cancel | undefined;
  let pullAttempt = 0;
  let pulledSinceResync = false;

  let connectTimer: Cancel | undefined;
  let connectAttempt = 0;
  let unreachableTimer: Cancel | undefined;
  /** `scheduler.now()` when a server last answered (connected, or a push or pull succeeded). */
  let lastContactAt = 0;
  let outageReported = false;
  let pollTimer: Cancel | undefined;
  let unsubscribeTransport: (() => void) | undefined;

  let snapshotting: Promise<void> | undefined;
  let changesSinceSnapshot = 0;
  let storageAcked = 0;

  const events = createEmitter<ReplicaEvents>((error, event) => {
    logger.error(`${tag} a listener of "${String(event)}" threw`, error);
    if (event !== "error") {
      const wrapped = new NxsError(ErrorCode.ListenerFailed, `a listener of "${String(event)}" threw`, {
        cause: error,
        retryable: false,
      });
      report(wrapped, "listener", undefined);
    }
  });

  for (const [event, listener] of Object.entries(options.on ?? {})) {
    if (typeof listener === "function") events.on(event as keyof ReplicaEvents, listener as never);
  }

  const setState = (next: ReplicaState): void => {
    if (next === ReplicaState.Connected) {
      lastContactAt = scheduler.now();
      outageReported = false;
    }
    if (state === next || state === ReplicaState.Stopped) return;
    const previous = state;
    state = next;
    events.emit("state", { state: next, previous });
  };

  function report(error: NxsError, operation: ReplicaOperation, retryInMs: number | undefined): void {
    lastError = error;
    const decision = logThrottle.admit(`${operation} ${throttleKey(error)}`);
    if (decision.report) {
      const more = decision.suppressed > 0 ? ` (and ${decision.suppressed} more like it since)` : "";
      const cause =
        error.cause instanceof Error && !error.message.includes(error.cause.message)
          ? ` (cause: ${error.cause.message})`
          : "";
      const line = `${tag} ${operation}: ${error.code}: ${error.message}${cause}`;
      if (retryInMs === undefined) logger.error(`${line}${more}`);
      else logger.warn(`${line} (retry in ${retryInMs} ms)${more}`);
    }
    events.emit("error", { error, operation, retryInMs });
    // A throw or a rejected promise of onError is logged, never an unhandled rejection.
    callGuarded("onError", options.onError, [error, operation], (failed) =>
      logger.error(`${tag} ${failed.message}`, failed.cause),
    );
  }

  const backoff = (attempt: number): number => computeBackoff(attempt, retry, random);

  const later = (delayMs: number, task: () => void): Cancel =>
    scheduler.schedule(delayMs, () => {
      try {
        task();
      } catch (error) {
        report(toTransportError(error, "scheduled task"), "listener", undefined);
      }
    });

  // ── waiters (flush / synced) ──────────────────────────────────────────────────────────────
  const flushed = (): boolean => buffered.length === 0 && unacked.length === 0 && appendLoop === undefined;
  const inSync = (): boolean =>
    flushed() && pulledSinceResync && !pulling && pullRequested === undefined && isEmptyVector(doc.gaps());

  const notify = (): void => {
    for (const w of [...waiters]) {
      if (stopped) w.reject(closedError());
      else if (w.ready()) w.resolve();
      else if (pushBlocked !== undefined && !flushed()) w.reject(pushBlocked);
      else continue;
      waiters.splice(waiters.indexOf(w), 1);
    }
  };

  const waitFor = (ready: () => boolean): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      waiters.push({ ready, resolve, reject });
      notify();
    });

  // ── applying remote changes ───────────────────────────────────────────────────────────────
  const noteSeen = (changes: readonly unknown[]): void => {
    for (const c of changes) {
      if (c === null || typeof c !== "object") continue;
      const { origin, seq } = c as { origin?: unknown; seq?: unknown };
      if (typeof origin === "string" && typeof seq === "number" && seq > (seen[origin] ?? 0))
        seen[origin] = seq;
    }
  };

  const afterApply = (result: ApplyResult, source: ApplySource): void => {
    if (result.applied.length > 0) {
      changesSinceSnapshot += result.applied.length;
      events.emit("applied", { changes: result.applied, source });
    }
    if (result.rejected.length > 0) {
      logger.warn(`${tag} ${result.rejected.length} ${source} change(s) rejected`, result.rejected);
      events.emit("rejected", { rejected: result.rejected, source });
    }
    if ((result.dropped ?? 0) > 0 && logThrottle.admit("dropped past a gap").report) {
      logger.warn(
        `${tag} ${result.dropped} ${source} change(s) past a gap not held (the most this replica holds per origin): a pull brings them again once the gap is filled`,
      );
    }
    const hidden = result.hidden ?? [];
    const snapshot = result.snapshotHidden;
    if (snapshot !== undefined) {
      const paths = snapshot.paths.map((p) => JSON.stringify(p)).join(", ");
      if (logThrottle.admit(`hidden snapshot ${paths}`).report) {
        logger.warn(
          `${tag} snapshot applied but hidden at ${paths}: this replica's schema refuses it (${snapshot.error.message})`,
        );
      }
    }
    if (hidden.length > 0 || snapshot !== undefined) {
      for (const h of hidden) {
        const key = `hidden ${h.change.origin} ${h.paths.map((p) => JSON.stringify(p)).join(",")}`;
        if (!logThrottle.admit(key).report) continue;
        logger.warn(
          `${tag} change ${h.change.origin}/${h.change.seq} applied but hidden at ${h.paths.map((p) => JSON.stringify(p)).join(", ")}: ` +
            `this replica's schema refuses it (${h.error.message}); it shows once this replica runs a schema that accepts it`,
        );
      }
      events.emit("hidden", snapshot === undefined ? { hidden, source } : { hidden, source, snapshot });
    }
  };

  const applyRemote = (changes: readonly unknown[], source: ApplySource): ApplyResult | undefined => {
    noteSeen(changes);
    let result: ApplyResult;
    try {
      result = doc.applyRemote(changes);
    } catch (error) {
      const wrapped = isNxsError(error)
        ? error
        : new NxsError(ErrorCode.OpInvalid, `doc.applyRemote threw: ${String(error)}`, { cause: error });
      report(wrapped, source === "realtime" ? "transport" : source === "pull" ? "pull" : "start", undefined);
      return undefined;
    }
    afterApply(result, source);
    return result;
  };

  const applySnapshot = (snapshot: Snapshot): boolean => {
    if (dominatesVersionVector(doc.version(), snapshot.version)) return false;
    if (!hasSnapshotReceiver(doc)) {
      report(
        new NxsError(ErrorCode.OpInvalid, `${tag} got a snapshot but the doc has no applySnapshot()`, {
          retryable: false,
        }),
        "pull",
        undefined,
      );
      return false;
    }
    noteSeen(Object.entries(snapshot.version).map(([origin, seq]) => ({ origin, seq })));
    const result = doc.applySnapshot(snapshot);
    if (result !== undefined && result !== null) afterApply(result, "pull");
    else changesSinceSnapshot += 1;
    return true;
  };

  // ── storage: append, snapshot, trim ───────────────────────────────────────────────────────
  const pumpAppend = (): Promise<void> => {
    if (appendLoop !== undefined) return appendLoop;
    if (!loaded || appendTimer !== undefined || buffered.length === 0) return Promise.resolve();
    appendLoop = (async () => {
      while (buffered.length > 0) {
        const batch = buffered.slice();
        try {
          await storage.appendOutbox(batch);
        } catch (error) {
          const wrapped = toStorageError(error, "appendOutbox");
          if (stopped) {
            report(wrapped, "storage", undefined);
            return;
          }
          const delay = backoff(appendAttempt++);
          report(wrapped, "storage", delay);
          appendTimer = later(delay, () => {
            appendTimer = undefined;
            void pumpAppend();
          });
          return;
        }
        appendAttempt = 0;
        buffered.splice(0, batch.length);
        unacked.push(...batch);
        void pumpPush();
      }
    })().finally(() => {
      appendLoop = undefined;
      notify();
    });
    return appendLoop;
  };

  const snapshotNow = (): Promise<void> => {
    if (snapshotting !== undefined) return snapshotting;
    snapshotting = (async () => {
      let snapshot: Snapshot;
      try {
        snapshot = doc.snapshot();
      } catch (error) {
        report(toStorageError(error, "doc.snapshot"), "storage", undefined);
        return;
      }
      const covered = Math.min(getVersion(snapshot.version, self), highestAcked);
      const counted = changesSinceSnapshot;
      changesSinceSnapshot = 0;
      try {
        await storage.saveSnapshot(snapshot);
        if (covered > storageAcked) {
          await storage.ackOutbox(covered);
          storageAcked = covered;
        }
      } catch (error) {
        changesSinceSnapshot += counted;
        report(toStorageError(error, "saveSnapshot/ackOutbox"), "storage", undefined);
      }
    })().finally(() => {
      snapshotting = undefined;
    });
    return snapshotting;
  };

  const maybeSnapshot = (): void => {
    if (changesSinceSnapshot >= snapshotEvery && snapshotting === undefined && !stopped) void snapshotNow();
  };

  // ── push ──────────────────────────────────────────────────────────────────────────────────
  const pumpPush = async (): Promise<void> => {
    if (pushing || pushBlocked !== undefined || pushTimer !== undefined || identityPending) return;
    if (!transportUp || stopped || unacked.length === 0) return;
    pushing = true;
    try {
      while (!stopped && unacked.length > 0 && pushBlocked === undefined) {
        const batch = unacked.slice(0, pushBatchSize);
        let acked: number;
        try {
          acked = Math.max(0, Math.min(batch.length, (await transport.push(batch)).acked));
          if (acked === 0) {
            throw new TransportError(ErrorCode.TransportUnavailable, "push acknowledged nothing");
          }
        } catch (error) {
          if (stopped) return;
          const wrapped = toTransportError(error, "push");
          if (wrapped.code === ErrorCode.TransportUnavailable) setState(ReplicaState.Disconnected);
          if (wrapped.retryable) {
            const delay = backoff(pushAttempt++);
            report(wrapped, "push", delay);
            pushTimer = later(delay, () => {
              pushTimer = undefined;
              void pumpPush();
            });
          } else {
            pushBlocked = wrapped;
            report(wrapped, "push", undefined);
          }
          return;
        }
        if (stopped) return;
        pushAttempt = 0;
        if (state === ReplicaState.Disconnected) setState(ReplicaState.Connected);
        const done = unacked.splice(0, acked);
        highestAcked = Math.max(highestAcked, done[done.length - 1]!.seq);
        changesSinceSnapshot += done.length;
        events.emit("pushed", { changes: done, pending: unacked.length + buffered.length });
        maybeSnapshot();
      }
    } finally {
      pushing = false;
      notify();
    }
  };

  // ── pull ──────────────────────────────────────────────────────────────────────────────────
  const requestPull = (reason: PullReason): void => {
    if (pullRequested === undefined || reason === "resync") pullRequested = reason;
    if (pullTimer !== undefined && reason !== "gap") {
      pullTimer();
      pullTimer = undefined;
    }
    void pumpPull();
  };

  const pumpPull = async (): Promise<void> => {
    if (pulling || pullTimer !== undefined || !transportUp || stopped || !loaded) return;
    pulling = true;
    try {
      while (pullRequested !== undefined && !stopped) {
        const reason = pullRequested;
        pullRequested = undefined;
        let count = 0;
        let gotSnapshot = false;
        try {
          for await (const page of transport.pull(doc.version())) {
            if (stopped) return;
            if (page.snapshot !== undefined && applySnapshot(page.snapshot)) gotSnapshot = true;
            if (page.changes.length > 0) {
              count += page.changes.length;
              applyRemote(page.changes, "pull");
            }
          }
        } catch (error) {
          if (stopped) return;
          const wrapped = toTransportError(error, "pull");
          if (wrapped.code === ErrorCode.TransportUnavailable) setState(ReplicaState.Disconnected);
          pullRequested ??= reason;
          if (wrapped.retryable) {
            const delay = backoff(pullAttempt++);
            report(wrapped, "pull", delay);
            pullTimer = later(delay, () => {
              pullTimer = undefined;
              void pumpPull();
            });
          } else {
            pullRequested = undefined;
            report(wrapped, "pull", undefined);
          }
          return;
        }
        pullAttempt = 0;
        if (state === ReplicaState.Disconnected) setState(ReplicaState.Connected);
        pulledSinceResync = true;
        lastSyncAt = scheduler.now();
        events.emit("resync", { reason, changes: count, snapshot: gotSnapshot, version: doc.version() });
        maybeSnapshot();
      }
    } finally {
      pulling = false;
      notify();
    }
  };

  const schedulePoll = (): void => {
    if (pollMs <= 0 || stopped) return;
    pollTimer = later(pollMs, () => {
      pollTimer = undefined;
      if (transportUp) requestPull("poll");
      schedulePoll();
    });
  };

  // ── connection ────────────────────────────────────────────────────────────────────────────
  /** Reports, once per outage, that no server has answered for `unreachableAfterMs`. */
  const checkUnreachable = (): void => {
    unreachableTimer = undefined;
    if (stopped || unreachableAfterMs <= 0) return;
    const now = scheduler.now();
    // Connected, or refused by a server (an answer: that failure is reported on its own).
    if (state === ReplicaState.Connected || (lastError !== undefined && refusedCodes.has(lastError.code)))
      lastContactAt = now;
    const silentFor = now - lastContactAt;
    if (silentFor >= unreachableAfterMs && !outageReported) {
      outageReported = true;
      const last = lastError === undefined ? "" : ` (last error: ${lastError.code}: ${lastError.message})`;
      report(
        new TransportError(
          ErrorCode.TransportUnavailable,
          `no server has answered for ${silentFor} ms${last}`,
          {
            cause: lastError,
            retryable: true,
          },
        ),
        "connect",
        undefined,
      );
    }
    unreachableTimer = later(
      silentFor >= unreachableAfterMs ? unreachableAfterMs : unreachableAfterMs - silentFor,
      checkUnreachable,
    );
  };

  /** Codes of a connect refused for good: retried only after `refusedRetryMs`, for an operator to fix. */
  const refusedCodes: ReadonlySet<string> = new Set([
    ErrorCode.TransportUnauthorized,
    ErrorCode.ServerIncompatible,
    ErrorCode.ConfigInvalid,
  ]);

  const connect = async (): Promise<void> => {
    connectTimer = undefined;
    if (stopped) return;
    setState(ReplicaState.Connecting);
    try {
      await transport.connect();
    } catch (error) {
      if (stopped) return;
      const wrapped = toTransportError(error, "connect");
      setState(ReplicaState.Disconnected);
      if (wrapped.retryable) {
        const delay = backoff(connectAttempt++);
        report(wrapped, "connect", delay);
        connectTimer = later(delay, () => void connect());
      } else if (refusedRetryMs > 0 && refusedCodes.has(wrapped.code)) {
        report(wrapped, "connect", refusedRetryMs);
        connectTimer = later(refusedRetryMs, () => void connect());
      } else {
        report(wrapped, "connect", undefined);
      }
      return;
    }
    if (stopped) return;
    connectAttempt = 0;
    transportUp = true;
    if (state === ReplicaState.Connecting) setState(ReplicaState.Connected);
    void pumpPush();
    void pumpPull();
  };

  const listener: TransportListener = {
    onChanges(changes) {
      if (stopped || !loaded) return;
      const result = applyRemote(changes, "realtime");
      if (result !== undefined && result.held > 0) requestPull("gap");
      else maybeSnapshot();
      notify();
    },
    onResync() {
      if (stopped) return;
      transportUp = true;
      setState(ReplicaState.Connected);
      pulledSinceResync = false;
      pushBlocked = undefined;
      pushAttempt = 0;
      pullAttempt = 0;
      if (pushTimer !== undefined) {
        pushTimer();
        pushTimer = undefined;
      }
      void pumpPush();
      requestPull("resync");
    },
    onState(next) {
      if (stopped) return;
      if (next === TransportState.Connected) setState(ReplicaState.Connected);
      else if (next === TransportState.Connecting) setState(ReplicaState.Connecting);
      else setState(ReplicaState.Disconnected);
    },
    onError(error) {
      if (stopped) return;
      report(toTransportError(error, "transport"), "transport", undefined);
    },
  };

  const stopLocal = doc.onLocalChange((change) => {
    if (identityPending) madeBeforeIdentity++;
    buffered.push(change);
    void pumpAppend();
  });

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────
  const restore = (stored: StoredState | undefined): void => {
    if (stored === undefined) return;
    if (stored.snapshot !== undefined && !dominatesVersionVector(doc.version(), stored.snapshot.version)) {
      if (!hasSnapshotReceiver(doc)) {
        throw new ConflictError(
          `${tag} storage holds a snapshot the doc does not have and the doc cannot load one: use openReplica`,
          { retryable: false },
        );
      }
      const result = doc.applySnapshot(stored.snapshot);
      if (result !== undefined && result !== null) afterApply(result, "restore");
    }
    if (stored.outbox.length > 0) {
      applyRemote(stored.outbox, "restore");
      unacked.push(...stored.outbox);
    }
    const made = stored.last?.seq ?? 0;
    if (getVersion(doc.version(), self) < made) {
      throw new ConflictError(
        `${tag} storage says this replica made seq ${made} but the doc has only ${getVersion(doc.version(), self)}: ` +
          "it would reuse seqs; restore the doc from storage (openReplica)",
        { retryable: false },
      );
    }
  };

  /** Waits `ms` on the scheduler, or until the replica stops. */
  const pause = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const cancel = later(ms, () => {
        wakeStart = undefined;
        resolve();
      });
      wakeStart = () => {
        cancel();
        resolve();
      };
    });

  /**
   * A replica on empty storage: asks the servers what they hold of this replica id and catches up on
   * it (the pulls bring those changes; the doc continues its seqs and clock after them) before any
   * local change is pushed.
   */
  const adoptIdentity = async (highWater: NonNullable<Transport["highWater"]>): Promise<void> => {
    let floor: { readonly seq: number } | undefined;
    for (let attempt = 0; floor === undefined; attempt++) {
      if (stopped) throw closedError();
      try {
        floor = await highWater(self);
      } catch (error) {
        const wrapped = toTransportError(error, "highWater");
        if (stopped) throw closedError();
        if (!wrapped.retryable && !refusedCodes.has(wrapped.code)) throw wrapped;
        const delay = wrapped.retryable ? backoff(attempt) : Math.max(refusedRetryMs, 1);
        report(wrapped, "start", delay);
        await pause(delay);
      }
    }
    if (floor.seq === 0) return;
    const made = madeBeforeIdentity;
    if (made > 0) {
      const error = new ConflictError(
        `${tag} the servers hold ${floor.seq} change(s) of replica id ${self} (an earlier incarnation) and this ` +
          `doc made ${made} on empty storage before start() finished: their seqs clash. ` +
          "Write only after start() (or openReplica) resolves; these local changes are not pushed",
        { retryable: false },
      );
      pushBlocked = error;
      throw error;
    }
    logger.info(
      `${tag} the servers hold ${floor.seq} change(s) of this replica id: catching up before writing`,
    );
    for (let attempt = 0; getVersion(doc.version(), self) < floor.seq; attempt++) {
      if (stopped) throw closedError();
      if (attempt > 0) {
        const missing = floor.seq - getVersion(doc.version(), self);
        const delay = backoff(attempt);
        if (attempt >= 3) {
          report(
            new TransportError(
              ErrorCode.TransportUnavailable,
              `waiting for ${missing} change(s) of replica id ${self} that a server holds (an earlier incarnation) before writing`,
            ),
            "start",
            delay,
          );
        }
        await pause(delay);
      }
      requestPull("manual");
      await waitFor(() => !pulling && pullRequested === undefined).catch(() => undefined);
    }
  };

  const start = async (): Promise<void> => {
    if (stopped) throw closedError();
    let stored: StoredState | undefined;
    try {
      stored = await storage.load();
    } catch (error) {
      throw toStorageError(error, "load");
    }
    if (stopped) throw closedError();
    restore(stored);
    const fresh =
      stored === undefined ||
      (stored.snapshot === undefined && stored.outbox.length === 0 && stored.last === undefined);
    const highWater = transport.highWater?.bind(transport);
    identityPending = fresh && highWater !== undefined && options.identityCheck !== false;
    // Nothing remote is applied yet: every change of this replica id the doc has, it made here.
    madeBeforeIdentity = getVersion(doc.version(), self);
    loaded = true;
    void pumpAppend();
    unsubscribeTransport = transport.subscribe(listener);
    schedulePoll();
    lastContactAt = scheduler.now();
    if (unreachableAfterMs > 0) unreachableTimer = later(unreachableAfterMs, checkUnreachable);
    void connect();
    if (identityPending && highWater !== undefined) {
      try {
        await adoptIdentity(highWater);
      } finally {
        identityPending = false;
        wakeStart = undefined;
      }
      void pumpPush();
    }
  };

  const stop = async (): Promise<void> => {
    stopped = true;
    wakeStart?.();
    for (const cancel of [appendTimer, pushTimer, pullTimer, connectTimer, pollTimer, unreachableTimer])
      cancel?.();
    appendTimer = pushTimer = pullTimer = connectTimer = pollTimer = unreachableTimer = undefined;
    stopLocal();
    unsubscribeTransport?.();
    if (startPromise !== undefined) await startPromise.catch(() => undefined);
    if (loaded) {
      await pumpAppend();
      if (snapshotting !== undefined) await snapshotting;
      if (changesSinceSnapshot > 0 || highestAcked > storageAcked) await snapshotNow();
    }
    try {
      await transport.close();
    } catch (error) {
      report(toTransportError(error, "close"), "transport", undefined);
    }
    try {
      await storage.close();
    } catch (error) {
      report(toStorageError(error, "close"), "storage", undefined);
    }
    setState(ReplicaState.Stopped);
    state = ReplicaState.Stopped;
    notify();
  };

  return {
    doc,
    start() {
      if (stopped) return Promise.reject(closedError());
      startPromise ??= start();
      return startPromise;
    },
    stop() {
      stopPromise ??= stop();
      return stopPromise;
    },
    status() {
      const version = doc.version();
      const lag: Record<string, number> = {};
      for (const [origin, seq] of Object.entries(seen)) {
        const behind = seq - getVersion(version, origin);
        if (behind > 0) lag[origin] = behind;
      }
      return {
        state,
        connected: state === ReplicaState.Connected,
        pendingChanges: buffered.length + unacked.length,
        unsavedChanges: buffered.length,
        version,
        gaps: doc.gaps(),
        heldChanges: doc.heldCount(),
        lag: Object.freeze(lag),
        lastError,
        lastSyncAt,
      };
    },
    on: (event, fn) => events.on(event, fn),
    flush: () => waitFor(flushed),
    synced: () => waitFor(inSync),
    pull() {
      if (!stopped) requestPull("manual");
    },
  };
}

/**
 * The restore path: loads `storage`, creates the doc from what it held (`createDoc` restores the
 * snapshot and continues the clock after `last`), builds the replica (which replays the stored
 * outbox into the doc and queues it for pushing) and starts it.
 * @param options - Those of {@link createReplica}, with `createDoc` instead of `doc`.
 * @returns The started replica; `replica.doc` is the restored doc.
 * @throws StorageError `storage/io` or `storage/corrupt` when storage cannot be loaded.
 * @throws ConflictError `conflict` (not retryable) when the created doc is behind the stored state.
 * @example
 * ```ts
 * import { createDoc, openReplica } from "@nxs-sync/core";
 * import { createFileStorage, createTimerScheduler } from "@nxs-sync/core/node";
 *
 * const replica = await openReplica({
 *   storage: createFileStorage({ dir: "/var/lib/nxs/routes" }),
 *   transport, // e.g. createPocketBaseTransport({ endpoints, auth, docId: "routes" })
 *   scheduler: createTimerScheduler(),
 *   createDoc: ({ snapshot, last }) =>
 *     createDoc({ schema, docId: "routes", replicaId: "gw1aaaaaaaaaaaa.main", clock: Date.now, snapshot, last }),
 * });
 * replica.doc.get(); // the restored state
 * ```
 */
export async function openReplica<D extends ReplicatedDoc>(
  options: OpenReplicaOptions<D>,
): Promise<Replica<D>> {
  const { createDoc, storage, ...rest } = options;
  let stored: StoredState | undefined;
  try {
    stored = await storage.load();
  } catch (error) {
    throw toStorageError(error, "load");
  }
  const doc = createDoc({
    ...(stored?.snapshot === undefined ? {} : { snapshot: stored.snapshot }),
    ...(stored?.last === undefined ? {} : { last: stored.last }),
    outbox: stored?.outbox ?? [],
  });
  let first = true;
  const preloaded: Storage = {
    load: async () => {
      if (!first) return storage.load();
      first = false;
      return stored;
    },
    appendOutbox: (changes) => storage.appendOutbox(changes),
    ackOutbox: (seq) => storage.ackOutbox(seq),
    saveSnapshot: (snapshot) => storage.saveSnapshot(snapshot),
    close: () => storage.close(),
  };
  const replica = createReplica({ ...rest, doc, storage: preloaded });
  await replica.start();
  return replica;
}
