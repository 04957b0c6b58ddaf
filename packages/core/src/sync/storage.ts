import type { Hlc } from "../clock/ids.js";
import type { Change, Snapshot } from "../model/change.js";

/** What a {@link Storage} returns at start-up. */
export interface StoredState {
  /** The newest snapshot saved, if any. */
  readonly snapshot?: Snapshot;
  /** Local changes not yet acknowledged by the transport, in seq order. */
  readonly outbox: readonly Change[];
  /**
   * The highest local seq and HLC ever appended, even if those changes were acknowledged and
   * removed since: a restarted replica must never reuse a seq or go back in time.
   */
  readonly last?: { readonly seq: number; readonly hlc: Hlc };
}

/**
 * The durability port of a replica (one document). Every method resolves only once its write is
 * durable (fsync'd for a file adapter). Implementations: `createMemoryStorage` (core),
 * `createFileStorage` (`@nxs-sync/core/node`).
 */
export interface Storage {
  /** Reads what was saved; `undefined` for a fresh replica. */
  load(): Promise<StoredState | undefined>;
  /** Appends local changes to the outbox (and advances `last`). Called before they are pushed. */
  appendOutbox(changes: readonly Change[]): Promise<void>;
  /** Drops outbox changes with seq <= `seq` (they were acknowledged). */
  ackOutbox(seq: number): Promise<void>;
  /** Replaces the saved snapshot. */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Releases files or handles. Idempotent. */
  close(): Promise<void>;
}
