/**
 * Core's transport-neutral `StabilityStore` port over one PocketBase server's collections: acks in
 * `nxs_acks`, snapshots in `nxs_snapshots`, the purge of `nxs_changes`. The rules of a checkpoint
 * and a compaction are core's (`checkpointWithStore`, `compactWithStore`); the PocketBase rules
 * stay here: acks and snapshots bound to their author node (origin binding, enforced by the
 * hooks), snapshots judged against the server's change records (only a backed one is the latest),
 * and a purge that never deletes an origin's newest pack. `compactDoc` and the checkpointer use
 * the same reads and the same purge.
 */
import { randomUUID } from "node:crypto";
import {
  type CompactionLease,
  ConflictError,
  type Snapshot,
  type StabilityStore,
  type StoredAck,
  type VersionVector,
} from "@nxs-sync/core";
import type { PocketBaseClient } from "./client.js";
import { fetchLatestSnapshot, listAcks, publishSnapshot, purgeChangesBelow, writeAck } from "./compaction.js";

/** Options of {@link createPocketBaseStabilityStore}. */
export interface PocketBaseStabilityStoreOptions {
  /**
   * A client of one server. A gateway's (an `nxs_nodes` account) writes acks and snapshots of its
   * own replica ids; a replicator's (`nxs_replicators`, maintenance) purges. A call the account may
   * not make is refused by the server (`transport/unauthorized` or `transport/rejected`).
   */
  readonly client: PocketBaseClient;
  /** Time source of the leases (ms). Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * Creates a {@link StabilityStore} over one PocketBase server.
 *
 * Compaction leases are held in this store (one compactor per store at a time), not on the server:
 * on PocketBase the purge needs no exclusion across processes, because each server compacts its own
 * log and a purge is idempotent and bounded by the acks, a backed snapshot and each origin's newest
 * pack (two compactors of one server delete each record once between them). The lease's token is
 * checked before a purge all the same: a purge under a lease this store gave back, or that ran out,
 * is refused with `conflict`.
 * @param options - The client.
 * @returns The store.
 * @example
 * ```ts
 * async function compactOnce(client: PocketBaseClient) {
 *   const store = createPocketBaseStabilityStore({ client }); // a replicator's client
 *   const r = await compactWithStore({ store, doc: "routes", holder: "compactor-1", now: Date.now() });
 *   console.log(r.skipped ?? `${r.deleted} changes deleted`);
 * }
 * ```
 */
export function createPocketBaseStabilityStore(options: PocketBaseStabilityStoreOptions): StabilityStore {
  const { client } = options;
  const now = options.now ?? Date.now;
  const leases = new Map<string, CompactionLease>();
  const held = (doc: string): CompactionLease | undefined => {
    const lease = leases.get(doc);
    if (lease !== undefined && lease.expiresAt <= now()) {
      leases.delete(doc);
      return undefined;
    }
    return lease;
  };
  return {
    writeAck: (doc, ack) => writeAck(client, { doc, replica: ack.replica, version: ack.version, at: ack.at }),
    async readAcks(doc): Promise<readonly StoredAck[]> {
      return (await listAcks(client, doc)).map((a) => ({ replica: a.replica, version: a.version, at: a.at }));
    },
    async publishSnapshot(snapshot: Snapshot) {
      await publishSnapshot(client, snapshot);
    },
    async latestSnapshot(doc) {
      return (await fetchLatestSnapshot(client, doc))?.snapshot;
    },
    async acquireLease(doc, holder, ttlMs) {
      const current = held(doc);
      if (current !== undefined && current.holder !== holder) return undefined;
      const lease: CompactionLease = { doc, holder, expiresAt: now() + ttlMs, token: randomUUID() };
      leases.set(doc, lease);
      return lease;
    },
    async releaseLease(lease) {
      if (leases.get(lease.doc)?.token === lease.token) leases.delete(lease.doc);
    },
    async purgeBelow(doc, bound: VersionVector, lease) {
      if (held(doc)?.token !== lease.token) {
        throw new ConflictError(
          `the compaction lease of ${doc} held by ${lease.holder} was lost: nothing purged`,
        );
      }
      const { deletedChanges } = await purgeChangesBelow(client, doc, bound);
      return { deleted: deletedChanges };
    },
  };
}
