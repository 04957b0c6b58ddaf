/**
 * A config store's cache of its environment: per key, the versions it knows (a window below the one
 * in use), each one's check (opened and validated once), conflicts already told, and the effective
 * version for this node (visible to it, valid) that `get` serves; the rollout records. Versions and
 * rollouts come in from every source (the server's reads, realtime, the store's own writes, the
 * cache file) through `ingestVersion` and `ingestRollout`; `recompute` picks a key's effective
 * version again and tells a `change`.
 */
import type { Json, NxsError } from "@nxs-sync/core";
import { effectiveVersion } from "./rollout-target.js";
import { openValue } from "./secrets.js";
import { asNxs, type StoreContext } from "./store-context.js";
import { checkValue } from "./validate.js";
import { compareVersions, ROLLOUT_RANK, type RolloutRecord, type StoredVersion } from "./version.js";
import { toVersionMeta } from "./version-meta.js";

/** How many version numbers below the one in use the cache keeps (for conflicts and watches). */
const KEEP_BELOW = 32;
const rank = (state: RolloutRecord["state"]): number => ROLLOUT_RANK.indexOf(state);

const deepFreeze = <T>(value: T): T => {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
};

/** A version's check: its opened, validated and frozen value, or why it is not usable. */
export type Checked =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: NxsError };

/** What the cache holds for one key. */
export interface KeyState {
  readonly versions: Map<string, StoredVersion>;
  readonly checked: Map<string, Checked>;
  current?: { readonly stored: StoredVersion; readonly value: unknown };
  readonly conflicts: Set<string>;
  /** The last history read brought nothing new (reset by the next new version). */
  exhausted: boolean;
}

/** The cache (see the module's summary). */
export interface KeyCache {
  readonly keys: ReadonlyMap<string, KeyState>;
  readonly rollouts: ReadonlyMap<string, RolloutRecord>;
  /** The state of a key (made empty on first use). */
  stateOf(key: string): KeyState;
  /** A version's check, made once per version (an unusable one is logged and told once). */
  check(st: KeyState, v: StoredVersion): Checked;
  /** Picks a key's effective version again (after a version, a rollout move, a boot). */
  recompute(key: string): void;
  /**
   * Takes a version into the cache.
   * @returns Whether it was new (or newly a tombstone).
   */
  ingestVersion(v: StoredVersion): boolean;
  /** Takes a rollout record (a state only moves up), then recomputes its key. */
  ingestRollout(r: RolloutRecord): void;
  /** Reads a key's recent history when what the cache holds gives no good version. */
  loadMore(key: string): Promise<void>;
}

/**
 * Makes the cache of one store.
 * @param ctx - The store's shared part.
 * @param onChanged - Called after a key's effective version changed (the cache file is due).
 * @returns The cache, empty.
 */
export function createKeyCache(ctx: StoreContext, onChanged: () => void): KeyCache {
  const { backend, env, node, schemas, keyring, logger, hlc, life } = ctx;
  const keys = new Map<string, KeyState>();
  const rollouts = new Map<string, RolloutRecord>();
  const rolledBackTold = new Set<string>();
  const loading = new Set<string>();
  const invalidTold = new Set<string>();

  const stateOf = (key: string): KeyState => {
    let st = keys.get(key);
    if (st === undefined) {
      st = { versions: new Map(), checked: new Map(), conflicts: new Set(), exhausted: false };
      keys.set(key, st);
    }
    return st;
  };

  const check = (st: KeyState, v: StoredVersion): Checked => {
    const known = st.checked.get(v.id);
    if (known !== undefined) return known;
    let result: Checked;
    try {
      const schema = ctx.schemaOf(v.key);
      const r = checkValue(v.key, schema, openValue(v.key, v.value as Json, schema, keyring));
      result = r.ok ? { ok: true, value: deepFreeze(r.value) } : { ok: false, error: r.error };
    } catch (error) {
      result = { ok: false, error: asNxs(error) };
    }
    st.checked.set(v.id, result);
    // Told once per version, even when a watch reads it again after the cache let it go.
    if (!result.ok && !invalidTold.has(v.id)) {
      invalidTold.add(v.id);
      logger.warn(
        `[nxs-sync config] ${env}/${v.key} v${v.version} (${v.id}) is not usable: ${result.error.message}`,
      );
      ctx.emit({ type: "invalid", key: v.key, version: toVersionMeta(v), error: result.error });
    }
    return result;
  };

  const recompute = (key: string): void => {
    const st = keys.get(key);
    if (st === undefined) return;
    let candidates = [...st.versions.values()].filter((v) => !v.compacted);
    let picked: { stored: StoredVersion; value: unknown } | undefined;
    for (;;) {
      const eff = effectiveVersion(candidates, rollouts, node);
      if (eff === undefined) break;
      const r = check(st, eff);
      if (r.ok) {
        picked = { stored: eff, value: r.value };
        break;
      }
      candidates = candidates.filter((v) => v.id !== eff.id);
    }
    if (picked === undefined) {
      // Nothing known is usable here (hidden, invalid): older versions may be; read them once.
      if (!st.exhausted && !loading.has(key) && life.synced) void loadMore(key);
      return;
    }
    // Versions far below the one in use matter to nobody here: the cache stays small.
    for (const [id, v] of st.versions) {
      if (v.version < picked.stored.version - KEEP_BELOW) {
        st.versions.delete(id);
        st.checked.delete(id);
      }
    }
    const previous = st.current?.stored;
    if (previous?.id === picked.stored.id) return;
    st.current = picked;
    ctx.emit({
      type: "change",
      key,
      version: toVersionMeta(picked.stored),
      ...(previous === undefined ? {} : { previous: toVersionMeta(previous) }),
    });
    onChanged();
  };

  const ingestVersion = (v: StoredVersion): boolean => {
    if (v.env !== env || !Object.hasOwn(schemas, v.key)) return false;
    try {
      hlc.receive(v.hlc);
    } catch {
      // A stamp from a drifting clock still orders the version; this clock just does not follow it.
    }
    const st = stateOf(v.key);
    const known = st.versions.get(v.id);
    if (known !== undefined && (known.compacted || !v.compacted)) return false;
    st.versions.set(v.id, v);
    st.exhausted = false;
    if (!v.compacted) {
      for (const other of st.versions.values()) {
        if (other.id === v.id || other.version !== v.version || other.compacted) continue;
        const [winner, loser] = compareVersions(v, other) > 0 ? [v, other] : [other, v];
        if (st.conflicts.has(loser.id)) continue;
        st.conflicts.add(loser.id);
        ctx.emit({
          type: "conflict",
          key: v.key,
          winner: toVersionMeta(winner),
          loser: toVersionMeta(loser),
        });
      }
    }
    return true;
  };

  const ingestRollout = (r: RolloutRecord): void => {
    if (r.env !== env) return;
    const known = rollouts.get(r.id);
    if (known !== undefined && rank(r.state) <= rank(known.state)) return;
    rollouts.set(r.id, r);
    // Told once per version, and only as news: a boot reads past rollbacks without telling them.
    if (r.state === "rolled-back" && (life.synced || life.degraded) && !rolledBackTold.has(r.id)) {
      rolledBackTold.add(r.id);
      ctx.emit({ type: "rolled-back", key: r.key, id: r.id, version: r.version, reason: r.reason });
    }
    if (keys.has(r.key)) recompute(r.key);
  };

  const loadMore = async (key: string): Promise<void> => {
    if (loading.has(key)) return;
    loading.add(key);
    try {
      let fresh = 0;
      for (const v of await backend.list({ env, key, order: "desc", limit: 50 }))
        if (ingestVersion(v)) fresh++;
      // Nothing new: asking again would read the same; a version that arrives later asks again.
      stateOf(key).exhausted = fresh === 0;
    } catch (error) {
      logger.warn(`[nxs-sync config] cannot read the history of ${env}/${key}: ${asNxs(error).message}`);
    } finally {
      loading.delete(key);
    }
    if (!life.closed) recompute(key);
  };

  return { keys, rollouts, stateOf, check, recompute, ingestVersion, ingestRollout, loadMore };
}
