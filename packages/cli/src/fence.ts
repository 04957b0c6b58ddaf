import { Collections, closeSdkClient, liftFence, readFence, setFence } from "@nxs-sync/pocketbase";
import { ClientResponseError, type default as PocketBase } from "pocketbase";
import { timeOf } from "./status.js";

/** A replicator's heartbeat row as the fence's waits read it (`nxs_replicator_status`). */
interface BeatRow {
  readonly id: string;
  readonly rounds: number;
  readonly lastError: string;
  readonly servers: unknown;
  readonly updated: string;
}

/** How a wait for the replicator ended. */
export type ReplicatorRoundOutcome =
  /** A replicator finished a whole round that began after the given time, every server reached. */
  | { readonly kind: "round"; readonly replicator: string }
  /** No replicator has ever written its row on this server: nothing copies its records anywhere. */
  | { readonly kind: "none" }
  /** Rows exist, but no such round finished in time; `last` says what the rows showed last. */
  | { readonly kind: "timeout"; readonly last: string };

/** Options of {@link waitReplicatorRound}. */
export interface ReplicatorRoundOptions {
  /** The server's ms after which the round must begin (its clock: a fence's `now`). */
  readonly sinceServerMs: number;
  /** How long to wait, in ms. */
  readonly timeoutMs: number;
  /** Poll interval, in ms. Default 500. */
  readonly pollMs?: number;
  /**
   * Whether a server with no heartbeat row at all answers `none` at once (default true). False
   * after a restore: the rows came back from the backup, and the replicator is known to run.
   */
  readonly noneIfNoRows?: boolean;
  /** Gives up early (returns a timeout) when aborted. */
  readonly signal?: AbortSignal;
}

/** A round that reached every server it knows and copied everything it tried to. */
function clean(row: BeatRow): boolean {
  const servers = Array.isArray(row.servers) ? (row.servers as { state?: unknown }[]) : [];
  return (
    servers.length >= 2 && servers.every((s) => s.state === "ok") && !/failed to copy/.test(row.lastError)
  );
}

/**
 * Waits until a replicator has run a whole anti-entropy round on this server that began after
 * `sinceServerMs`, reaching every server with no failed copy: after it, every record this server
 * held at that time is on its peers too (the replicator compares the servers' records and copies
 * what a server lacks), and this server has every record its peers held then.
 *
 * It reads the replicators' heartbeat rows (`nxs_replicator_status`, written after a round, at
 * most every `heartbeatMs`): the first row written after `sinceServerMs` may close a round that
 * began before; a later row of the same replicator with more rounds closes one that began after.
 * So it takes one to two rounds of the replicator's interval (30 s by default).
 * @param pb - A superuser client of the server.
 * @param options - Since when, how long.
 * @returns How the wait ended.
 */
export async function waitReplicatorRound(
  pb: PocketBase,
  options: ReplicatorRoundOptions,
): Promise<ReplicatorRoundOutcome> {
  const pollMs = options.pollMs ?? 500;
  const deadline = Date.now() + options.timeoutMs;
  /** Per replicator: the rounds of its first clean row written after `sinceServerMs`. */
  const first = new Map<string, number>();
  let last = "no heartbeat row written since";
  for (;;) {
    let rows: BeatRow[] | undefined;
    try {
      rows = await pb.collection(Collections.ReplicatorStatus).getFullList<BeatRow>({
        fields: "id,rounds,lastError,servers,updated",
        requestKey: null,
      });
    } catch (e) {
      // No such collection: a server without the nxs schema (a new one being reseeded) has no replicator.
      if (e instanceof ClientResponseError && e.status === 404 && options.noneIfNoRows !== false)
        return { kind: "none" };
      // The server restarting (a restore) or briefly away: read again at the next poll.
      last = `reading the heartbeat rows failed: ${(e as Error).message}`;
    }
    if (rows?.length === 0 && options.noneIfNoRows !== false) return { kind: "none" };
    for (const row of rows ?? []) {
      if (!(timeOf(row.updated) > options.sinceServerMs)) continue;
      if (!clean(row)) {
        last = `replicator ${row.id}: round ${row.rounds} did not reach every server or copy everything (${row.lastError || JSON.stringify(row.servers)})`;
        continue;
      }
      const from = first.get(row.id);
      if (from === undefined) {
        first.set(row.id, row.rounds);
        last = `replicator ${row.id}: round ${row.rounds} ended after the fence; waiting for the next one`;
      } else if (row.rounds > from) {
        return { kind: "round", replicator: row.id };
      }
    }
    if (Date.now() >= deadline || options.signal?.aborted === true) return { kind: "timeout", last };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Options of {@link restoreFenced}. */
export interface FencedRestoreOptions {
  /** Shown to refused clients and by `nxs-sync fence`. */
  readonly reason: string;
  /** Longest wait for the replicator before the restore (ms). */
  readonly drainTimeoutMs: number;
  /** Longest wait for the replicator after it (ms). */
  readonly catchUpTimeoutMs: number;
  /**
   * Skip both waits: the fence only covers the restore itself (what the server acknowledged and its
   * peers lack is lost; its clients may come back before the replicator brought it up to date).
   */
  readonly noWait?: boolean;
  /** Poll interval of the waits (ms). Default 500. */
  readonly pollMs?: number;
  /** Progress lines (stderr). */
  readonly note: (line: string) => void;
  /** Gives up the waits when aborted. */
  readonly signal?: AbortSignal;
}

/** How a fenced restore ended. */
export type FencedRestoreOutcome =
  /** Restored; `caughtUp`: a replicator round brought the server up to date before the fence was lifted. */
  | { readonly kind: "restored"; readonly caughtUp: boolean; readonly drained: boolean }
  /** Nothing restored: the replicator did not copy the server's records to its peers in time. */
  | { readonly kind: "not-drained"; readonly last: string }
  /** Restored, but not yet brought up to date: the server stays fenced until `until` (server ms). */
  | { readonly kind: "not-caught-up"; readonly last: string; readonly until: number };

/**
 * A restore that loses no acknowledged write: fences the server (its writers go to the other
 * server), waits for a replicator round that copies what it holds to its peers, runs `restore`,
 * waits for a round that brings the restored server up to date, and lifts the fence. A server no
 * replicator has ever reported on is restored without the waits (there is nothing to copy to).
 * @param pb - A superuser client of the server, before the restore.
 * @param restore - Runs the restore (returns once the server answers again).
 * @param reconnect - A superuser client of the server after the restore (its superusers may be
 *   another server's now).
 * @param options - Reason, bounds, output.
 * @returns How it ended; on `not-drained` the fence is lifted and nothing changed.
 * @throws Whatever `restore` throws (after lifting the fence), and the fence calls' errors
 *   (`server/incompatible` when the server lacks the fence piece).
 */
export async function restoreFenced(
  pb: PocketBase,
  restore: () => Promise<void>,
  reconnect: () => Promise<PocketBase>,
  options: FencedRestoreOptions,
): Promise<FencedRestoreOutcome> {
  const ttlMs = options.drainTimeoutMs + options.catchUpTimeoutMs + 180_000;
  const fence = await setFence(pb, { reason: options.reason, ttlMs });
  options.note(
    `fenced ${pb.baseURL}: it refuses writes (its clients go to the other server) until the restore is done`,
  );
  const wait = (client: PocketBase, since: number, timeoutMs: number, noneIfNoRows: boolean) =>
    waitReplicatorRound(client, {
      sinceServerMs: since,
      timeoutMs,
      noneIfNoRows,
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  let replicated = options.noWait !== true;
  let drained = false;
  if (replicated) {
    options.note("waiting for a replicator round that copies this server's records to its peers");
    const drain = await wait(pb, fence.now, options.drainTimeoutMs, true);
    if (drain.kind === "timeout") {
      await liftFence(pb);
      return { kind: "not-drained", last: drain.last };
    }
    replicated = drain.kind === "round";
    drained = replicated;
    if (!replicated)
      options.note(
        "no replicator has ever reported on this server: what it acknowledged since the backup is on no other server, and the restore discards it",
      );
  }
  try {
    await restore();
  } catch (e) {
    await liftFence(pb).catch(() => undefined);
    throw e;
  }
  const after = await reconnect();
  try {
    const state = await readFence(after);
    if (!replicated) {
      await liftFence(after);
      return { kind: "restored", caughtUp: false, drained };
    }
    options.note(
      "restored; waiting for a replicator round that brings it up to date before lifting the fence",
    );
    const catchUp = await wait(after, state.now, options.catchUpTimeoutMs, false);
    if (catchUp.kind !== "round") {
      return {
        kind: "not-caught-up",
        last: catchUp.kind === "timeout" ? catchUp.last : "no heartbeat",
        until: state.until,
      };
    }
    await liftFence(after);
    return { kind: "restored", caughtUp: true, drained };
  } finally {
    closeSdkClient(after);
  }
}
