import type { PocketBaseClient } from "./client.js";

/**
 * Collections that nxs-sync does not own (an app's `users` and its own data), copied between
 * servers through the `records` hook piece (`pb_hooks/nxs-records.pb.js`): whole records, an
 * account's password hash, token key and OAuth2 links included, tombstones of deletes, and a
 * realtime topic. The servers decide each import themselves, in one transaction per record: last
 * writer wins by `updated` (then by the content digest), a tombstone wins over writes at or before
 * it, and of two accounts with one email (compared lower-cased) the one created first keeps it.
 * The replicator only carries records between servers; docs/accounts.md has the rules.
 */

/** A record as the piece exports it. */
export interface ExportedRecord {
  readonly id: string;
  /** PocketBase's `updated` of the last write (`YYYY-MM-DD HH:MM:SS.sssZ`), kept by every copy. */
  readonly updated: string;
  /** Every field, hidden ones included (`password`: the hash; `tokenKey`; `externalAuths`). */
  readonly data: Readonly<Record<string, unknown>>;
  /** sha256 of the record's canonical content: equal on two servers when the records are. */
  readonly digest: string;
  /**
   * The `updated` of the last version the exporting server received from a peer or found equal to
   * a peer's ("" when none): a write on top of it descends from the peer's; two writes on one
   * base are concurrent (a conflict).
   */
  readonly base?: string;
}

/** A deleted record's trace (`nxs_tombstones`). */
export interface RecordTombstone {
  readonly record: string;
  /** When it was deleted, as PocketBase writes `updated`. */
  readonly at: string;
}

/** What an import did with one record or tombstone. */
export interface RecordImportResult {
  readonly id: string;
  /**
   * `created`, `updated`: written; `same`: already equal; `older`: the server's copy is newer (the
   * import lost); `deleted`: a tombstone removed it or kept it out; `tombstone`: a tombstone was
   * recorded; `invalid`: refused (see `message`).
   */
  readonly outcome: "created" | "updated" | "same" | "older" | "deleted" | "tombstone" | "invalid";
  /**
   * A conflict resolved on the way: two writes of one record while the servers were apart (`kept`
   * and `lost` are their `updated`), or two accounts with one email (`kept` keeps it, `moved` was
   * given the address `to`).
   */
  readonly conflict?: Readonly<Record<string, string>>;
  readonly message?: string;
}

/** A page of an export. */
export interface RecordExport {
  readonly records: readonly ExportedRecord[];
  readonly tombstones: readonly RecordTombstone[];
  /** Where the next page starts (`[updated, id]`), or null after the last. */
  readonly next: readonly [string, string] | null;
}

/** A server's summary of one collection: equal on two servers when they hold the same records. */
export interface RecordDigest {
  readonly count: number;
  readonly digest: string;
  readonly tombstones: number;
  readonly tombstoneDigest: string;
}

const route = (col: string, op: string) => `/nxs/records/${encodeURIComponent(col)}/${op}`;

/**
 * Exports records of a replicated collection: a page after `after` (ordered by `updated`, then
 * `id`) with the tombstones after `tombstonesAfter`, or the records and tombstones of `ids`.
 * @param client - A replicator's (or a superuser's) client of the server.
 * @param col - The collection.
 * @param options - A page (`after`, `limit`, `tombstonesAfter`) or `ids`.
 * @returns The page.
 * @throws TransportError (see `toTransportError`): 404 when the piece does not replicate `col`.
 */
export function exportRecords(
  client: PocketBaseClient,
  col: string,
  options: {
    readonly after?: readonly [string, string] | null;
    readonly limit?: number;
    readonly tombstonesAfter?: string;
    readonly ids?: readonly string[];
  } = {},
): Promise<RecordExport> {
  return client.call(`export ${col} from ${client.url}`, (pb) =>
    pb.send<RecordExport>(route(col, "export"), { method: "POST", body: options, requestKey: null }),
  );
}

/**
 * Imports records and tombstones into a server, which decides each one (see the module's rules).
 * @param client - A replicator's (or a superuser's) client of the server.
 * @param col - The collection.
 * @param batch - Records (as exported) and tombstones.
 * @returns One result per tombstone, then per record.
 * @throws TransportError (see `toTransportError`).
 */
export async function importRecords(
  client: PocketBaseClient,
  col: string,
  batch: { readonly records?: readonly ExportedRecord[]; readonly tombstones?: readonly RecordTombstone[] },
): Promise<readonly RecordImportResult[]> {
  const answer = await client.call(`import ${col} into ${client.url}`, (pb) =>
    pb.send<{ results: RecordImportResult[] }>(route(col, "import"), {
      method: "POST",
      body: batch,
      requestKey: null,
    }),
  );
  return answer.results;
}

/**
 * A server's digest of one replicated collection (ids and `updated`, tombstones).
 * @param client - A replicator's (or a superuser's) client of the server.
 * @param col - The collection.
 * @returns The digest.
 * @throws TransportError (see `toTransportError`).
 */
export function readRecordDigest(client: PocketBaseClient, col: string): Promise<RecordDigest> {
  return client.call(`digest ${col} at ${client.url}`, (pb) =>
    pb.send<RecordDigest>(route(col, "digest"), { method: "GET", requestKey: null }),
  );
}

/** Options of {@link createRecordSync}. */
export interface RecordSyncOptions {
  /** The collections replicated through the `records` piece. */
  readonly collections: readonly string[];
  /** The servers usable now, each with a replicator's client. */
  readonly servers: () => readonly { readonly url: string; readonly client: PocketBaseClient }[];
  /**
   * How many servers the fleet has (usable or not): tombstones are purged only when that many
   * answered with the same ones, so a server that is down keeps its chance to learn of a delete.
   */
  readonly configuredServers: number;
  /** A conflict that a server resolved (reported: the rule decided, nothing was silently lost). */
  readonly onConflict: (event: RecordConflict) => void;
  /** A record a server refused (`invalid`), with why. */
  readonly onInvalid: (event: {
    collection: string;
    from: string;
    to: string;
    id: string;
    message: string;
  }) => void;
  /** A server that failed a call of a round (it is left out of that round's exchange). */
  readonly onError: (error: unknown, op: string, url: string) => void;
  /**
   * How long a tombstone is kept after every server holds it (ms): a restore from a backup younger
   * than this cannot bring a deleted record back. Default 7 days; undefined keeps them for good.
   */
  readonly tombstoneRetentionMs?: number;
  /** The clock of the retention (ms since the epoch). Default `Date.now`. */
  readonly now?: () => number;
  /** Page size of a full exchange. Default 500. */
  readonly pageSize?: number;
}

/** A conflict resolved by a server during an import. */
export interface RecordConflict {
  readonly collection: string;
  readonly id: string;
  /** Where the record came from and the server that resolved it. */
  readonly from: string;
  readonly to: string;
  readonly conflict: Readonly<Record<string, string>>;
}

/** Records and tombstones a round or an event moved. */
export interface RecordSyncStats {
  /** Records and tombstones written somewhere. */
  copied: number;
  /** Conflicts reported. */
  conflicts: number;
  /** Records refused. */
  invalid: number;
}

/** The record replication of a replicator: a round (anti-entropy) and realtime events. */
export interface RecordSync {
  /**
   * Compares each collection's digest on every server; where they differ, every server's records
   * and tombstones go to every other server (the import keeps what is newer). A server that fails
   * a call is reported (`onError`) and left out of that collection's exchange.
   */
  round(): Promise<RecordSyncStats>;
  /**
   * A record written or deleted on `from` (the piece's realtime topic): copied to every other
   * server, from the message when it carries the record or the tombstone, else read from `from`.
   */
  onEvent(from: string, event: { collectionName?: unknown; id?: unknown }): Promise<RecordSyncStats>;
}

/**
 * The record replication: anti-entropy rounds and realtime events over the `records` piece.
 * @param options - Collections, servers, reporting.
 * @returns The record sync.
 */
export function createRecordSync(options: RecordSyncOptions): RecordSync {
  const pageSize = options.pageSize ?? 500;
  const tombstoneRetentionMs =
    "tombstoneRetentionMs" in options ? options.tombstoneRetentionMs : 7 * 24 * 3_600_000;
  const now = options.now ?? Date.now;
  const collections = new Set(options.collections);
  /** Per record and source server: the end of its messages' chain. */
  const inOrder = new Map<string, Promise<void>>();

  const tally = (
    stats: RecordSyncStats,
    col: string,
    from: string,
    to: string,
    results: readonly RecordImportResult[],
  ): void => {
    for (const r of results) {
      if (
        r.outcome === "created" ||
        r.outcome === "updated" ||
        r.outcome === "deleted" ||
        r.outcome === "tombstone"
      )
        stats.copied++;
      if (r.outcome === "invalid") {
        stats.invalid++;
        options.onInvalid({ collection: col, from, to, id: r.id, message: r.message ?? "refused" });
      }
      if (r.conflict !== undefined) {
        stats.conflicts++;
        options.onConflict({ collection: col, id: r.id, from, to, conflict: r.conflict });
      }
    }
  };

  /** Every record and tombstone of `col` on `from`, page by page, imported into each of `to`. */
  async function exchange(
    col: string,
    from: { url: string; client: PocketBaseClient },
    to: readonly { url: string; client: PocketBaseClient }[],
    stats: RecordSyncStats,
  ): Promise<void> {
    let after: readonly [string, string] | null = null;
    let first = true;
    for (;;) {
      const page: RecordExport = await exportRecords(from.client, col, {
        ...(after === null ? {} : { after }),
        limit: pageSize,
      });
      const tombstones = first ? page.tombstones : [];
      first = false;
      for (const t of to) {
        if (page.records.length === 0 && tombstones.length === 0) continue;
        const results = await importRecords(t.client, col, { records: page.records, tombstones });
        tally(stats, col, from.url, t.url, results);
      }
      if (page.next === null) return;
      after = page.next;
    }
  }

  return {
    async round() {
      const stats: RecordSyncStats = { copied: 0, conflicts: 0, invalid: 0 };
      const servers = options.servers();
      if (servers.length < 2) return stats;
      for (const col of collections) {
        const read = await Promise.all(
          servers.map((s) =>
            readRecordDigest(s.client, col).then(
              (d) => ({ s, d }),
              (e: unknown) => {
                options.onError(e, `digest ${col}`, s.url);
                return undefined;
              },
            ),
          ),
        );
        const up = read.filter((r) => r !== undefined);
        if (up.length < 2) continue;
        const [one] = up;
        if (up.every((r) => r.d.digest === one?.d.digest && r.d.tombstoneDigest === one?.d.tombstoneDigest)) {
          // Every configured server holds the same tombstones: those past the retention can go.
          if (
            up.length === servers.length &&
            (one?.d.tombstones ?? 0) > 0 &&
            tombstoneRetentionMs !== undefined
          ) {
            const before = new Date(now() - tombstoneRetentionMs).toISOString().replace("T", " ");
            for (const r of up) {
              try {
                await r.s.client.call(`purge ${col} tombstones at ${r.s.url}`, (pb) =>
                  pb.send(`/nxs/records/${encodeURIComponent(col)}/purge`, {
                    method: "POST",
                    body: { before },
                    requestKey: null,
                  }),
                );
              } catch (e) {
                options.onError(e, `purge ${col} tombstones`, r.s.url);
              }
            }
          }
          continue;
        }
        const reached = up.map((r) => r.s);
        for (const from of reached) {
          try {
            await exchange(
              col,
              from,
              reached.filter((s) => s !== from),
              stats,
            );
          } catch (e) {
            options.onError(e, `exchange ${col}`, from.url);
          }
        }
      }
      return stats;
    },
    onEvent(fromUrl, event) {
      const col = event.collectionName;
      const id = event.id;
      if (typeof col !== "string" || typeof id !== "string" || !collections.has(col))
        return Promise.resolve({ copied: 0, conflicts: 0, invalid: 0 });
      // One record's messages in the order they came (one stream per server): a later version
      // imported before an earlier one would look like a concurrent write.
      const key = `${fromUrl}|${col}|${id}`;
      const previous = inOrder.get(key) ?? Promise.resolve();
      const next = previous.then(() => copyEvent(fromUrl, col, id, event));
      const tail = next.then(
        () => undefined,
        () => undefined,
      );
      inOrder.set(key, tail);
      void tail.then(() => {
        if (inOrder.get(key) === tail) inOrder.delete(key);
      });
      return next;
    },
  };

  async function copyEvent(
    fromUrl: string,
    col: string,
    id: string,
    event: { collectionName?: unknown; id?: unknown },
  ): Promise<RecordSyncStats> {
    const stats: RecordSyncStats = { copied: 0, conflicts: 0, invalid: 0 };
    const servers = options.servers();
    const from = servers.find((s) => s.url === fromUrl);
    if (from === undefined) return stats;
    // The message carries the record (or its tombstone); ask for it only when it does not.
    const carried = event as { record?: ExportedRecord; tombstone?: RecordTombstone };
    const page: Pick<RecordExport, "records" | "tombstones"> =
      carried.record !== undefined || carried.tombstone !== undefined
        ? {
            records: carried.record === undefined ? [] : [carried.record],
            tombstones: carried.tombstone === undefined ? [] : [carried.tombstone],
          }
        : await exportRecords(from.client, col, { ids: [id] });
    if (page.records.length === 0 && page.tombstones.length === 0) return stats;
    await Promise.all(
      servers
        .filter((s) => s !== from)
        .map(async (to) => {
          const results = await importRecords(to.client, col, {
            records: page.records,
            tombstones: page.tombstones,
          });
          tally(stats, col, from.url, to.url, results);
        }),
    );
    return stats;
  }
}
