/**
 * The replicator's merge rules and copy planning, as pure functions (no I/O): given what each
 * server lists for one collection, {@link planCopies} returns the copies to make, and
 * {@link mergeRecords} what a target holds after receiving one. The replicator only moves the
 * records; property tests (test/unit/merge-plan.test.ts) check convergence, idempotence and that
 * deleted records never come back, for every rule.
 */

import { ErrorCode, NxsError } from "@nxs-sync/core";

/** A record (or the listed fields of one) as PocketBase answers it. */
export type RecordFields = Readonly<Record<string, unknown>>;

/**
 * One field of a {@link MergeRules.monotonic} rule: it only moves forward. Values compare by their
 * position in `rank` when given (a state machine's states, first to last; a value not in it ranks
 * below all), else as numbers (or as strings when either is not a number).
 */
export interface MonotonicField {
  readonly field: string;
  readonly rank?: readonly string[];
}

/**
 * How two copies of one record (same key) on different servers reconcile.
 * - `immutable`: records never change once written (append-only logs): copy what is missing.
 * - `lww`: the copy with the greater `field` (a number or a sortable string, e.g. a revision or an
 *   HLC) wins and overwrites the other (the collection's update rule must allow replicators).
 * - `monotonic`: each of `fields` only moves forward (a state's rank, an attempt or epoch number):
 *   two copies merge field by field into the greatest value of each, so two servers that each
 *   advanced another field both end with both advances. The other fields come from the copy with
 *   the greater `body` field (a revision or HLC every write of them bumps; a tie keeps the
 *   target's), or, without `body`, are written once and never change (a job's payload).
 * - `log`: immutable records that each hold a range `first..last` of a log; the key is the log's
 *   identity plus `first` (the change packs of `nxs_changes`: doc, origin, seq). Two servers may
 *   hold differently cut ranges; a record whose range the target already covers is not copied, at
 *   one key the longer range wins, and the shorter side receives the missing tail as a new record
 *   made by `slice(record, from)` (undefined when nothing is left). Records are never updated.
 */
export type MergeRule =
  | { readonly kind: "immutable" }
  | { readonly kind: "lww"; readonly field: string }
  | {
      readonly kind: "monotonic";
      readonly fields: readonly MonotonicField[];
      readonly body?: string;
    }
  | {
      readonly kind: "log";
      readonly first: string;
      readonly last: string;
      readonly slice: (record: RecordFields, from: number) => Record<string, unknown> | undefined;
    };

/** Built-in merge rules. */
export const MergeRules = {
  immutable: { kind: "immutable" } as MergeRule,
  /** Last writer wins by `field`. */
  lww: (field: string): MergeRule => ({ kind: "lww", field }),
  /**
   * Each field only moves forward; merged field by field; the other fields follow `body` (see
   * {@link MergeRule}).
   * @example
   * ```ts
   * // A job's state (by rank) and attempt only move forward; its other fields follow `rev`.
   * const rule = MergeRules.monotonic([{ field: "state", rank: ["queued", "leased", "done"] }, "attempt"], "rev");
   * ```
   */
  monotonic: (fields: readonly (string | MonotonicField)[], body?: string): MergeRule => ({
    kind: "monotonic",
    fields: fields.map((f) => (typeof f === "string" ? { field: f } : f)),
    ...(body === undefined ? {} : { body }),
  }),
  /** Ranges `first..last` of a log; `slice` cuts a record's tail from a position on. */
  log: (
    first: string,
    last: string,
    slice: (record: RecordFields, from: number) => Record<string, unknown> | undefined,
  ): MergeRule => ({ kind: "log", first, last, slice }),
} as const;

/**
 * What happens to a record deleted on one server, so that anti-entropy does not bring it back from
 * another.
 * - `none`: deletes are not replicated (append-only collections, or deletes that must not spread):
 *   a record deleted on one server is copied back from any other that holds it.
 * - `tombstone`: a delete is an update that sets `field` (to `true`, or any truthy value), which
 *   then wins over every live copy whatever its version: a key deleted anywhere ends deleted
 *   everywhere and stays so. With `revive` (under `lww` only), a tombstone is a write like any
 *   other instead: the greater `lww` field wins (the tombstone on a tie), so a later write sets a
 *   deleted key again. With `purgeAfterMs`, deletes finish: see {@link TombstoneOptions}.
 * - `purge`: records are deleted below a frontier that every server has passed (compaction);
 *   the replicator never copies a record to a server whose frontier covers it. `skipAt`, called
 *   once per anti-entropy round and target, returns that predicate (see
 *   `ReplicatedCollection.skipAt`, which it sets).
 */
export type DeletePolicy<Target = unknown, Report = unknown> =
  | { readonly kind: "none" }
  | ({ readonly kind: "tombstone"; readonly field: string } & TombstoneOptions)
  | {
      readonly kind: "purge";
      readonly skipAt: (target: Target, report: Report) => Promise<(record: RecordFields) => boolean>;
    };

/** Options of a {@link DeletePolicies.tombstone} policy. */
export interface TombstoneOptions {
  /**
   * Under `lww`: a later write over a tombstone wins (a deleted key can be set again), compared by
   * the `lww` field like any two writes (the tombstone wins a tie). Default false: deletes are final
   * (until purged). Ignored under other merge rules (their tombstone always wins).
   */
  readonly revive?: boolean;
  /**
   * Deletes finish: the replicator purges (really deletes, on every server) a key whose every
   * server is listed and holds either nothing or a tombstone older than this (by `at`), and never
   * copies a record older than this (live or tombstone) to a server that lacks its key, so a purged
   * record does not come back from a server that still holds an old copy (restored from a backup,
   * or whose purge failed). The frontier is `now - purgeAfterMs`; a server that joins the fleet
   * later gets records newer than it only. The collection's delete rule must let replicators delete
   * tombstones, e.g. `@request.auth.collectionName = "nxs_replicators" && deleted = true` (the
   * guard keeps a key set again meanwhile from being purged). Default: tombstones are kept.
   */
  readonly purgeAfterMs?: number;
  /**
   * The record's time for `purgeAfterMs` (ms since the epoch, or a PocketBase date): a field its
   * writers set (the same on every server), or `updated` (each server's own, set when the record
   * reached it). Default `updated`.
   *
   * Unset is "no time": `0` (what PocketBase stores in a number field nobody set), `""` (an empty
   * date field), null or missing. A live record with no time is never below the frontier (it is
   * copied to every server, like a new one; writers may set `at` on deletes only). A tombstone with
   * no time goes by its `updated` instead (the listing carries it), so a delete that did not set
   * `at` is still purged; without an `updated` field either, it has no time and is kept.
   */
  readonly at?: string;
}

/** Built-in delete policies. */
export const DeletePolicies = {
  none: { kind: "none" } as const,
  /**
   * Deletes are updates setting `field`; a tombstone wins over any live copy (unless `revive`),
   * and is purged once older than `purgeAfterMs` everywhere (see {@link TombstoneOptions}).
   * @throws NxsError `config/invalid` for a `purgeAfterMs` that is not a positive number.
   */
  tombstone: (field = "deleted", options: TombstoneOptions = {}) => {
    const { purgeAfterMs } = options;
    if (purgeAfterMs !== undefined && !(Number.isFinite(purgeAfterMs) && purgeAfterMs > 0)) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `DeletePolicies.tombstone: purgeAfterMs must be a positive number of ms, got ${String(purgeAfterMs)}`,
      );
    }
    return {
      kind: "tombstone",
      field,
      ...(options.revive === true ? { revive: true } : {}),
      ...(purgeAfterMs === undefined ? {} : { purgeAfterMs, at: options.at ?? "updated" }),
    } as const;
  },
  /** Records are purged below a frontier every server has passed; never copied back under it. */
  purge: <Target, Report>(
    skipAt: (target: Target, report: Report) => Promise<(record: RecordFields) => boolean>,
  ) => ({ kind: "purge", skipAt }) as const,
  /**
   * Retention: every server deletes records older than `maxAgeMs` (by `field`, ms since the epoch
   * or a PocketBase date), so the frontier every server has passed is `now() - maxAgeMs`; a record
   * below it is never copied (a queue's done jobs, old metrics). Give every server's own purge the
   * same `maxAgeMs` or a shorter one.
   * @param field - The record's time (`at` in ms, or an autodate such as `updated`).
   * @param maxAgeMs - How long records are kept.
   * @param now - The clock (ms since the epoch), e.g. the replicator's `scheduler.now`.
   */
  retention: (field: string, maxAgeMs: number, now: () => number) =>
    ({
      kind: "purge",
      skipAt: async () => {
        const frontier = now() - maxAgeMs;
        return (record: RecordFields) => {
          const at = timeOf(record[field]);
          return at !== undefined && at < frontier;
        };
      },
    }) as const,
} as const;

/** A record's time in ms since the epoch: a number as is, a PocketBase date parsed; else undefined. */
function timeOf(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string" || value === "") return undefined;
  const ms = Date.parse(value.replace(" ", "T"));
  return Number.isFinite(ms) ? ms : undefined;
}

/** What the planner needs of a collection: its key, merge rule and delete policy. */
export interface MergeSpec {
  readonly key: readonly string[];
  readonly merge?: MergeRule;
  readonly deletes?: { readonly kind: string; readonly field?: string } & TombstoneOptions;
}

/** How two versions of one key compare. */
export const Order = { Less: -1, Equal: 0, Greater: 1, Concurrent: 2 } as const;
/** The union of {@link Order} values. */
export type Order = (typeof Order)[keyof typeof Order];

const ruleOf = (spec: MergeSpec): MergeRule => spec.merge ?? MergeRules.immutable;

/** The tombstone field of a spec, if its delete policy is `tombstone`. */
export function tombstoneField(spec: MergeSpec): string | undefined {
  return spec.deletes?.kind === "tombstone" ? spec.deletes.field : undefined;
}

/** A tombstone policy's purge: its time field and retention, if it purges. */
function purgeOf(spec: MergeSpec): { readonly at: string; readonly afterMs: number } | undefined {
  const d = spec.deletes;
  return d?.kind === "tombstone" && d.purgeAfterMs !== undefined
    ? { at: d.at ?? "updated", afterMs: d.purgeAfterMs }
    : undefined;
}

/** A purge time: unset (0, "", null, missing) or unreadable is undefined (see {@link TombstoneOptions.at}). */
function purgeTimeOf(value: unknown): number | undefined {
  const at = timeOf(value);
  return at === 0 ? undefined : at;
}

/**
 * Whether a record is below a tombstone policy's purge frontier (`now - purgeAfterMs`, by its `at`
 * field): never copied to a server lacking its key, and purged where it is a tombstone. A record
 * with no time (`at` unset: 0, empty or missing; see {@link TombstoneOptions.at}) is not, unless it
 * is a tombstone: that one goes by its `updated`.
 * @param spec - The collection.
 * @param record - A record (or its listed fields, {@link versionFields} among them).
 * @param now - The time (ms since the epoch).
 * @returns False too when the policy does not purge.
 */
export function isBelowPurgeFrontier(spec: MergeSpec, record: RecordFields, now: number): boolean {
  const purge = purgeOf(spec);
  if (purge === undefined) return false;
  const t = tombstoneField(spec);
  const at =
    purgeTimeOf(record[purge.at]) ??
    (t !== undefined && record[t] && purge.at !== "updated" ? purgeTimeOf(record.updated) : undefined);
  return at !== undefined && at < now - purge.afterMs;
}

/**
 * The fields a listing must carry for the planner to compare versions (besides `id` and the key):
 * the `lww` field, a `log`'s end, the `monotonic` fields, the tombstone field, and a purging
 * tombstone policy's `at` (with `updated`, the time of a tombstone whose `at` is unset).
 * @param spec - The collection.
 * @returns Field names, possibly none (immutable, no tombstones).
 */
export function versionFields(spec: MergeSpec): readonly string[] {
  const rule = ruleOf(spec);
  const out =
    rule.kind === "lww"
      ? [rule.field]
      : rule.kind === "log"
        ? [rule.last]
        : rule.kind === "monotonic"
          ? monotonicFields(rule).map((f) => f.field)
          : [];
  const t = tombstoneField(spec);
  const purge = purgeOf(spec);
  const times = purge === undefined ? [] : purge.at === "updated" ? ["updated"] : [purge.at, "updated"];
  return [...(t === undefined ? [] : [t]), ...out, ...times];
}

/** The key of a record, as JSON of its key fields' values. */
export function keyOf(spec: MergeSpec, record: RecordFields): string {
  return JSON.stringify(spec.key.map((k) => record[k] ?? null));
}

function compareValues(x: unknown, y: unknown, rank?: readonly string[]): -1 | 0 | 1 {
  let a: unknown = x;
  let b: unknown = y;
  if (rank !== undefined) {
    a = rank.indexOf(String(x));
    b = rank.indexOf(String(y));
  }
  if (typeof a === "number" && typeof b === "number") return a > b ? 1 : a < b ? -1 : 0;
  const s = String(a ?? "");
  const t = String(b ?? "");
  return s > t ? 1 : s < t ? -1 : 0;
}

/** The fields a `monotonic` rule orders by: its fields, and its `body` field (also only moving forward). */
function monotonicFields(rule: Extract<MergeRule, { kind: "monotonic" }>): readonly MonotonicField[] {
  return rule.body === undefined ? rule.fields : [...rule.fields, { field: rule.body }];
}

/**
 * Compares two versions of one key: under `lww` and `log` a total order on one field, under
 * `monotonic` the product order of its fields (`Concurrent` when each is ahead on some field),
 * `Equal` under `immutable`. A tombstone is greater than any live copy (with `revive` under `lww`:
 * greater than a live copy of the same or a smaller `lww` field).
 * @param spec - The collection.
 * @param a - A record (or its listed fields).
 * @param b - Another version of the same key.
 * @returns An {@link Order}.
 */
export function compareVersions(spec: MergeSpec, a: RecordFields, b: RecordFields): Order {
  const t = tombstoneField(spec);
  const rule = ruleOf(spec);
  if (t !== undefined && Boolean(a[t]) !== Boolean(b[t])) {
    const byWrite =
      rule.kind === "lww" && spec.deletes?.revive === true ? compareValues(a[rule.field], b[rule.field]) : 0;
    return byWrite !== 0 ? byWrite : a[t] ? Order.Greater : Order.Less;
  }
  if (rule.kind === "immutable") return Order.Equal;
  if (rule.kind !== "monotonic") {
    const field = rule.kind === "lww" ? rule.field : rule.last;
    return compareValues(a[field], b[field]);
  }
  let ahead = false;
  let behind = false;
  for (const f of monotonicFields(rule)) {
    const c = compareValues(a[f.field], b[f.field], f.rank);
    if (c > 0) ahead = true;
    if (c < 0) behind = true;
  }
  return ahead && behind ? Order.Concurrent : ahead ? Order.Greater : behind ? Order.Less : Order.Equal;
}

/**
 * What `target` holds after receiving `incoming` (same key), or undefined when it keeps what it
 * has: the greater version under `lww` (and under `log`, where the caller sends the tail instead),
 * the field-by-field maximum under `monotonic` (its other fields from the copy with the greater
 * `body` field; a tie, or no `body`, keeps the target's), the tombstone when either is one. Commutative,
 * associative and idempotent on versions (see the property tests).
 * @param spec - The collection.
 * @param target - The record held.
 * @param incoming - The record received.
 * @returns The new record (all fields), or undefined for no change.
 */
export function mergeRecords(
  spec: MergeSpec,
  target: RecordFields,
  incoming: RecordFields,
): Record<string, unknown> | undefined {
  const order = compareVersions(spec, incoming, target);
  if (order === Order.Less || order === Order.Equal) return undefined;
  const rule = ruleOf(spec);
  const t = tombstoneField(spec);
  if (rule.kind !== "monotonic" || (t !== undefined && Boolean(incoming[t]) !== Boolean(target[t]))) {
    return order === Order.Greater ? { ...incoming } : undefined;
  }
  const base =
    rule.body !== undefined && compareValues(incoming[rule.body], target[rule.body]) > 0 ? incoming : target;
  const out: Record<string, unknown> = { ...base };
  for (const f of rule.fields) {
    out[f.field] =
      compareValues(incoming[f.field], target[f.field], f.rank) > 0 ? incoming[f.field] : target[f.field];
  }
  return out;
}

/**
 * For a `log` rule: a predicate telling whether a server's records (its listed rows) already cover
 * every position of a row's range.
 */
function coverage(
  rule: Extract<MergeRule, { kind: "log" }>,
  spec: MergeSpec,
  rows: ReadonlyMap<string, RecordFields>,
): (row: RecordFields) => boolean {
  const groupOf = (r: RecordFields) =>
    JSON.stringify(spec.key.filter((k) => k !== rule.first).map((k) => r[k] ?? null));
  const ranges = new Map<string, [number, number][]>();
  for (const r of rows.values()) {
    const g = groupOf(r);
    const list = ranges.get(g) ?? [];
    list.push([Number(r[rule.first]), Number(r[rule.last])]);
    ranges.set(g, list);
  }
  // Each group's ranges merged into disjoint runs (adjacent ones joined), sorted: a row is covered
  // when the last run starting at or before its first position reaches its end (a binary search).
  const runs = new Map<string, [number, number][]>();
  for (const [g, list] of ranges) {
    list.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const [from, to] of list) {
      const last = merged[merged.length - 1];
      if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], to);
      else merged.push([from, to]);
    }
    runs.set(g, merged);
  }
  return (row) => {
    const first = Number(row[rule.first]);
    const end = Number(row[rule.last]);
    const list = runs.get(groupOf(row));
    if (list === undefined) return false;
    let lo = 0;
    let hi = list.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]![0] <= first) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && list[at]![1] >= end;
  };
}

/** One copy to make: the record `recordId` of server `from` goes to server `to`, under `key`. */
export interface PlannedCopy {
  readonly key: string;
  /** Index of the source server (in the listings). */
  readonly from: number;
  /** Index of the target server. */
  readonly to: number;
  /** The record's id at the source. */
  readonly recordId: string;
}

/** Options of {@link planCopies}. */
export interface PlanOptions {
  /** Records not to read (refused before): `from` is the server index. Default: none. */
  readonly skipSource?: (from: number, row: RecordFields & { id: string }) => boolean;
  /**
   * Records never to copy to server `to` (a `purge` policy's frontier there). Default: none. (The
   * replicator applies its `skipAt` predicates to the whole records it reads instead.)
   */
  readonly skipTarget?: (to: number, row: RecordFields & { id: string }) => boolean;
  /**
   * The time (ms since the epoch), for a tombstone policy's `purgeAfterMs`: a record below its
   * frontier ({@link isBelowPurgeFrontier}) is not copied to a server lacking its key. Default:
   * no frontier.
   */
  readonly now?: number;
}

/**
 * Plans one anti-entropy pass of one collection: for each key, the copies that bring every listed
 * server to the merge of all versions. Sources are the maximal versions (the winner under a total
 * order; under `monotonic`, every version no other exceeds); a target receives each source it is
 * not already at or past (under `log`: whose range it does not cover). Applying the copies with
 * {@link mergeRecords} makes the servers equal in one pass, and planning again then gives nothing.
 * @param spec - The collection.
 * @param listings - Per server, its rows by key ({@link keyOf}); undefined for a server left out.
 * @param options - Sources to skip, records not to copy to a target.
 * @returns The copies, in key order of first appearance.
 */
export function planCopies(
  spec: MergeSpec,
  listings: readonly (ReadonlyMap<string, RecordFields & { id: string }> | undefined)[],
  options: PlanOptions = {},
): PlannedCopy[] {
  const rule = ruleOf(spec);
  // Under a total order (all but `monotonic`) one winner per key: one pass, as before the split.
  const total = rule.kind !== "monotonic";
  const covers =
    rule.kind === "log" ? listings.map((m) => (m === undefined ? undefined : coverage(rule, spec, m))) : [];
  const keys = new Set<string>();
  for (const m of listings) if (m) for (const k of m.keys()) keys.add(k);
  const out: PlannedCopy[] = [];
  for (const key of keys) {
    const sources = total ? [winner(spec, listings, key)] : maximal(spec, listings, key);
    for (const source of sources) {
      if (source === undefined) continue;
      const [from, row] = source;
      if (options.skipSource?.(from, row)) continue;
      listings.forEach((m, to) => {
        if (m === undefined || to === from) return;
        const mine = m.get(key);
        if (mine !== undefined) {
          const o = compareVersions(spec, row, mine);
          if (o !== Order.Greater && o !== Order.Concurrent) return;
        } else if (options.now !== undefined && isBelowPurgeFrontier(spec, row, options.now)) return;
        if (rule.kind === "log" && covers[to]?.(row)) return;
        if (options.skipTarget?.(to, row)) return;
        out.push({ key, from, to, recordId: row.id });
      });
    }
  }
  return out;
}

/** One purge to make: delete the record `recordId` of server `server`, at `key`. */
export interface PlannedPurge {
  readonly key: string;
  /** Index of the server (in the listings). */
  readonly server: number;
  /** The record's id there. */
  readonly recordId: string;
}

/**
 * Plans the purge of a tombstone policy with `purgeAfterMs`: every key whose every server is
 * listed and holds either nothing or a tombstone below the frontier is deleted where it is held.
 * With a server left out (unreachable), nothing is purged: it may hold a live copy. Nothing live
 * is ever purged, and with {@link PlanOptions.now} the copies skip what is purged (no
 * resurrection; see the property tests).
 * @param spec - The collection.
 * @param listings - Per server, its rows by key ({@link keyOf}); undefined for a server left out.
 * @param now - The time (ms since the epoch).
 * @returns The deletes, in key order of first appearance; none when the policy does not purge.
 */
export function planPurges(spec: MergeSpec, listings: Listings, now: number): PlannedPurge[] {
  const t = tombstoneField(spec);
  if (t === undefined || purgeOf(spec) === undefined || listings.some((m) => m === undefined)) return [];
  const keys = new Set<string>();
  for (const m of listings) if (m) for (const k of m.keys()) keys.add(k);
  const out: PlannedPurge[] = [];
  for (const key of keys) {
    const held: PlannedPurge[] = [];
    let purge = true;
    listings.forEach((m, server) => {
      const row = m?.get(key);
      if (row === undefined) return;
      if (!row[t] || !isBelowPurgeFrontier(spec, row, now)) purge = false;
      held.push({ key, server, recordId: row.id });
    });
    if (purge) out.push(...held);
  }
  return out;
}

type Listings = readonly (ReadonlyMap<string, RecordFields & { id: string }> | undefined)[];
type Held = [number, RecordFields & { id: string }];

/** Under a total order: the first server holding the greatest version of `key`. */
function winner(spec: MergeSpec, listings: Listings, key: string): Held | undefined {
  let best: Held | undefined;
  listings.forEach((m, i) => {
    const row = m?.get(key);
    if (row !== undefined && (best === undefined || compareVersions(spec, row, best[1]) === Order.Greater))
      best = [i, row];
  });
  return best;
}

/** The maximal versions of `key` (none greater), one per distinct version (its first server). */
function maximal(spec: MergeSpec, listings: Listings, key: string): Held[] {
  const held: Held[] = [];
  listings.forEach((m, i) => {
    const row = m?.get(key);
    if (row !== undefined) held.push([i, row]);
  });
  const out: Held[] = [];
  for (const [i, row] of held) {
    if (held.some(([, o]) => compareVersions(spec, o, row) === Order.Greater)) continue;
    if (out.some(([, o]) => compareVersions(spec, o, row) === Order.Equal)) continue;
    out.push([i, row]);
  }
  return out;
}

/**
 * The servers holding a key's newest version: the maximal versions, when they are all one version
 * (else none: concurrent versions are not comparable copies of one content).
 * @param spec - The collection.
 * @param held - The servers' rows at one key, as `[server index, row]`.
 * @returns The holders to compare content across.
 */
export function newestHolders<R extends RecordFields>(
  spec: MergeSpec,
  held: readonly (readonly [number, R])[],
): [number, R][] {
  const max = held.filter(([, r]) => held.every(([, o]) => compareVersions(spec, o, r) !== Order.Greater));
  const first = max[0];
  if (first === undefined) return [];
  const same = max.filter(([, r]) => compareVersions(spec, r, first[1]) === Order.Equal);
  return same.length === max.length ? same.map(([i, r]) => [i, r]) : [];
}
