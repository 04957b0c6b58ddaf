/**
 * Core's `StabilityStore` port on NATS: acks in the KV bucket (`ack.<doc>.<replica>`, one entry per
 * replica), snapshots as messages of the snapshots stream (the newest few per doc), the compaction
 * lease as a KV entry taken by compare-and-set (`lease.<doc>`, its revision the fencing token), and
 * a purge of each origin's subject strictly below the first pack the bound does not cover. Core's
 * `compactWithStore` and `checkpointWithStore` run over it.
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import {
  type CompactionLease,
  ErrorCode,
  NxsError,
  type Snapshot,
  type StabilityStore,
  type StoredAck,
  type VersionVector,
  versionVectorSchema,
} from "@nxs-sync/core";
import { z } from "zod";
import { readLatestSnapshot, scanSubject } from "./direct-read.js";
import { NatsError, NatsErrorCode, toNatsTransportError } from "./errors.js";
import { PackHeader } from "./packs.js";
import { ensureStreams } from "./streams.js";
import {
  ackKey,
  changeSubject,
  decodeSubjectToken,
  encodeSubjectToken,
  leaseKey,
  type NatsNames,
  natsNames,
  snapshotSubject,
} from "./subjects.js";

/** Options of {@link createNatsStabilityStore}. */
export interface NatsStabilityStoreOptions {
  /** Server URLs; ignored with `connection`. */
  readonly servers?: string | readonly string[];
  /** A connection to use (not closed by `close()`). */
  readonly connection?: NatsConnection;
  readonly connectOptions?: Partial<NodeConnectionOptions>;
  /** Subject prefix (default `nxs`), as the transports'. */
  readonly prefix?: string;
  /** Replicas of the streams and bucket when it creates them. Default 1. */
  readonly replicas?: number;
  /** Time source of the leases (ms). Default `Date.now`. */
  readonly now?: () => number;
}

/** {@link StabilityStore} on NATS, with a `close()`. */
export interface NatsStabilityStore extends StabilityStore {
  /** Drains the connection it opened. Idempotent. */
  close(): Promise<void>;
}

const ackValueSchema = z.object({ version: versionVectorSchema, at: z.number().int().min(0) });
const leaseValueSchema = z.object({ holder: z.string(), expiresAt: z.number() });

const encode = (value: unknown) => JSON.stringify(value);

/**
 * Creates the NATS stability store (connects on first use).
 * @param options - Servers or a connection, prefix, replicas.
 * @returns The store.
 * @throws NxsError `config/invalid` for a bad prefix.
 * @example
 * ```ts
 * const store = createNatsStabilityStore({ servers: ["nats://core-1:4222"], replicas: 3 });
 * const r = await compactWithStore({ store, doc: "routes", holder: "compactor-1", now: Date.now() });
 * await store.close();
 * ```
 */
export function createNatsStabilityStore(options: NatsStabilityStoreOptions): NatsStabilityStore {
  const names: NatsNames = natsNames(options.prefix);
  const now = options.now ?? Date.now;
  let opened: Promise<{ nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; kv: KV }> | undefined;
  let closed = false;

  const open = () => {
    if (closed) return Promise.reject(new NxsError(ErrorCode.Closed, "NATS stability store is closed"));
    opened ??= (async () => {
      const nc =
        options.connection ??
        (await connect({
          servers: [options.servers ?? []].flat() as string[],
          maxReconnectAttempts: -1,
          ...options.connectOptions,
        }));
      const jsm = await jetstreamManager(nc);
      await ensureStreams(nc, jsm, names, {
        replicas: options.replicas ?? 1,
        duplicateWindowMs: 120_000,
        maxMessageBytes: 1024 * 1024,
        snapshotsPerDoc: 2,
      });
      const kv = await new Kvm(nc).open(names.acksBucket);
      return { nc, js: jetstream(nc), jsm, kv };
    })().catch((e: unknown) => {
      opened = undefined;
      throw toNatsTransportError(e, "open the stability store");
    });
    return opened;
  };

  const guard = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (e) {
      if (e instanceof NxsError) throw e;
      throw toNatsTransportError(e, what);
    }
  };

  return {
    writeAck: (doc, ack) =>
      guard("write ack", async () => {
        const { kv } = await open();
        await kv.put(ackKey(doc, ack.replica), encode({ version: ack.version, at: ack.at }));
      }),

    readAcks: (doc) =>
      guard("read acks", async () => {
        const { kv } = await open();
        const prefix = `ack.${encodeSubjectToken(doc)}.`;
        const keys: string[] = [];
        for await (const k of await kv.keys(`${prefix}*`)) keys.push(k);
        const acks: StoredAck[] = [];
        for (const k of keys) {
          const entry = await kv.get(k);
          if (entry?.operation !== "PUT") continue;
          const parsed = ackValueSchema.safeParse(entry.json());
          if (!parsed.success) continue; // a malformed ack is left out (never widens the frontier)
          acks.push({ replica: decodeSubjectToken(k.slice(prefix.length)), ...parsed.data });
        }
        return acks;
      }),

    publishSnapshot: (snapshot: Snapshot) =>
      guard("publish snapshot", async () => {
        const { js } = await open();
        await js.publish(snapshotSubject(names, snapshot.doc), encode(snapshot));
      }),

    latestSnapshot: (doc) =>
      guard("read snapshot", async () => readLatestSnapshot((await open()).jsm, names, doc)),

    acquireLease: (doc, holder, ttlMs) =>
      guard("acquire lease", async () => {
        const { kv } = await open();
        const key = leaseKey(doc);
        const at = now();
        const value = encode({ holder, expiresAt: at + ttlMs });
        const entry = await kv.get(key);
        let revision: number;
        try {
          if (entry?.operation !== "PUT") {
            revision = entry ? await kv.update(key, value, entry.revision) : await kv.create(key, value);
          } else {
            const held = leaseValueSchema.safeParse(entry.json());
            if (held.success && held.data.holder !== holder && held.data.expiresAt > at) return undefined;
            revision = await kv.update(key, value, entry.revision);
          }
        } catch (e) {
          // Another compactor took it between the read and the write (a wrong last sequence).
          if ((e as { status?: number }).status === 400 || /wrong last sequence|exists/i.test(String(e))) {
            return undefined;
          }
          throw e;
        }
        const lease: CompactionLease = { doc, holder, expiresAt: at + ttlMs, token: String(revision) };
        return lease;
      }),

    releaseLease: (lease) =>
      guard("release lease", async () => {
        const { kv } = await open();
        try {
          await kv.delete(leaseKey(lease.doc), { previousSeq: Number(lease.token) });
        } catch {
          // Lost already: nothing to give back.
        }
      }),

    purgeBelow: (doc, bound: VersionVector, lease) =>
      guard("purge", async () => {
        const { kv, jsm } = await open();
        let deleted = 0;
        for (const [origin, upTo] of Object.entries(bound)) {
          if (upTo <= 0) continue;
          // Fencing: the lease must still be ours (same revision, not expired) before each purge.
          const entry = await kv.get(leaseKey(doc));
          if (!entry || String(entry.revision) !== lease.token || now() >= lease.expiresAt) {
            throw new NatsError(
              NatsErrorCode.LeaseHeld,
              `the compaction lease of ${doc} was lost: nothing more purged`,
            );
          }
          const subject = changeSubject(names, doc, origin);
          // Purge strictly below the first pack the bound does not cover: packs may be stored out
          // of order (a retried pack), so one that ends above the bound protects all after it.
          let keepFrom: number | undefined;
          let below = 0;
          for await (const m of scanSubject(jsm, names.changesStream, subject)) {
            const last = Number(m.header?.get(PackHeader.Last));
            if (!Number.isInteger(last) || last > upTo) {
              keepFrom = m.seq;
              break;
            }
            below++;
            keepFrom = m.seq + 1;
          }
          if (keepFrom === undefined || below === 0) continue;
          const r = await jsm.streams.purge(names.changesStream, { filter: subject, seq: keepFrom });
          deleted += r.purged;
        }
        return { deleted };
      }),

    async close() {
      if (closed) return;
      closed = true;
      if (opened && !options.connection) {
        const { nc } = await opened.catch(() => ({ nc: undefined }));
        await nc?.drain().catch(() => undefined);
      }
    },
  };
}
