import { callGuarded, type Logger, type Random, type Scheduler } from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import type { EndpointPool } from "./failover.js";
import { compareVersions, keyOf, type MergeSpec, Order, type RecordFields } from "./merge-plan.js";
import { createRealtimeSession, type RealtimeLink, type RealtimeSession } from "./realtime-session.js";

/** Where a watched record came from: the realtime stream, or the catch-up after a (re)connect. */
export type RecordWatchSource = "realtime" | "catch-up";

/** Options of {@link createRecordWatch}. */
export interface RecordWatchOptions {
  /** The servers. A watch owns its pool's realtime connections: give it a pool of its own. */
  readonly pool: EndpointPool;
  /** The collection watched. */
  readonly collection: string;
  /** Its key, merge rule and delete policy: a record is delivered only when newer than the last one of its key. */
  readonly spec: MergeSpec;
  /** A newer version of a record (or a record first seen). */
  readonly onChange: (record: RecordFields, source: RecordWatchSource) => void;
  /**
   * Whether the first catch-up delivers the records that exist already. Default false: it only
   * records them, and changes after it are delivered.
   */
  readonly replayExisting?: boolean;
  /** The server-side filter of the realtime events (built with `pb.filter`). Default: every record. */
  readonly filter?: (pb: PocketBase) => string;
  /**
   * A field the server sets on every write, sortable as a string (an `updated` autodate:
   * `{ name: "updated", type: "autodate", onCreate: true, onUpdate: true }`): a catch-up then lists
   * only the records at or after the greatest value seen on that server. Default: none, every
   * catch-up lists the whole collection.
   */
  readonly cursor?: string;
  /** Page size of the catch-up listing. Default 500. */
  readonly pageSize?: number;
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly logger: Logger;
  /** The SDK seam of the realtime session (tests). */
  readonly link?: RealtimeLink;
}

/** A watch of one collection's records: see {@link createRecordWatch}. */
export interface RecordWatch {
  /**
   * Opens the realtime session (retrying until it works); resolves once it is open.
   * @throws TransportError as `RealtimeSession.connect`.
   */
  connect(): Promise<void>;
  /** Closes the session. */
  stop(): void;
}

/**
 * Watches a collection's records over a {@link RealtimeSession}: realtime events are a hint, and
 * after every (re)connect a catch-up lists what changed on that server since its **cursor** (the
 * greatest `cursor` field seen there, e.g. an `updated` autodate; a server met for the first time
 * is listed whole, as an autodate is each server's own clock; without `cursor`, every catch-up
 * lists the whole collection). Each record goes to `onChange` once per newer version of its key
 * (by `compareVersions` of `spec`), whichever path brings it first; a catch-up that fails restarts
 * the session (and so runs again). The piece a key-value store's watch, a queue's wake-up or a
 * config store's watch use instead of their own catch-up.
 * @param options - Pool, collection, spec, listener, scheduler, random, logger.
 * @returns The watch (not connected yet).
 */
export function createRecordWatch(options: RecordWatchOptions): RecordWatch {
  const { spec, logger, cursor } = options;
  const newest = new Map<string, RecordFields>();
  const cursors = new Map<string, string>();
  let primed = options.replayExisting === true;
  let stopped = false;

  function deliver(record: unknown, source: RecordWatchSource, url: string): void {
    if (typeof record !== "object" || record === null) return;
    const r = record as RecordFields;
    const at = cursor === undefined ? undefined : r[cursor];
    if (typeof at === "string" && at > (cursors.get(url) ?? "")) cursors.set(url, at);
    const key = keyOf(spec, r);
    const have = newest.get(key);
    if (have !== undefined && compareVersions(spec, r, have) !== Order.Greater) return;
    newest.set(key, r);
    if (!primed && source === "catch-up") return;
    callGuarded("record watch", options.onChange, [r, source], (f) => logger.error(f.message, f.cause));
  }

  const session: RealtimeSession = createRealtimeSession({
    pool: options.pool,
    collection: options.collection,
    filter: options.filter ?? (() => 'id != ""'),
    onEvent: (ev, ep) => deliver(ev.record, "realtime", ep.url),
    // Realtime is a hint: after every (re)connect, a query brings what the stream missed.
    onCatchUp: (ep) => {
      const since = cursors.get(ep.url);
      ep.client
        .call(`catch up ${options.collection}`, (pb) =>
          pb.collection(options.collection).getFullList({
            batch: options.pageSize ?? 500,
            ...(cursor === undefined ? {} : { sort: cursor }),
            // `>=`: records written in the same millisecond as the last one seen are not missed.
            ...(since === undefined ? {} : { filter: pb.filter(`${cursor} >= {:since}`, { since }) }),
          }),
        )
        .then(
          (all) => {
            for (const r of all) deliver(r, "catch-up", ep.url);
            primed = true;
          },
          (e: unknown) => {
            logger.warn(`[record-watch] catch-up of ${options.collection} failed: ${(e as Error).message}`);
            if (!stopped) session.resync("catch-up failed");
          },
        );
    },
    scheduler: options.scheduler,
    random: options.random,
    logger,
    ...(options.link === undefined ? {} : { link: options.link }),
  });

  return {
    connect: () => session.connect(),
    stop() {
      stopped = true;
      session.stop();
    },
  };
}
