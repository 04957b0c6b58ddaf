/**
 * A config store's reads of single versions from its backend: a version by number or id (for diff
 * and rollback), a key's head, and per key the greatest version every node runs (what promote and
 * export carry).
 */
import { ConfigErrorCode } from "./errors.js";
import { fail, type StoreContext } from "./store-context.js";
import type { VersionRef } from "./store-types.js";
import type { StoredVersion } from "./version.js";

/** The reads of one store. */
export interface VersionReads {
  /**
   * A version of a key by number (the head of that number, after a cut) or by record id.
   * @throws NxsError `config/not-found`, `config/compacted`.
   */
  resolve(key: string, ref: VersionRef): Promise<StoredVersion>;
  /** The key's head (compacted or not), or undefined. */
  headOf(key: string): Promise<StoredVersion | undefined>;
  /**
   * Per key of an environment, the greatest version every node runs: the head, or below a staged or
   * rolled-back head the greatest version with no rollout or a promoted one (compacted: none). What
   * export and promote carry: a canary or a rolled-back value never becomes everyone's that way.
   */
  releasedOf(inEnv: string): Promise<Map<string, StoredVersion>>;
}

/**
 * Makes the reads of one store.
 * @param ctx - The store's shared part.
 * @returns The reads.
 */
export function createVersionReads(ctx: StoreContext): VersionReads {
  const { backend, env, schemas } = ctx;
  return {
    async resolve(key, ref) {
      let found: StoredVersion | undefined;
      if (typeof ref === "string") {
        const v = await backend.get(ref);
        if (v !== undefined && v.env === env && v.key === key) found = v;
      } else {
        const same = await backend.list({
          env,
          key,
          afterVersion: ref - 1,
          beforeVersion: ref + 1,
          includeCompacted: true,
          order: "desc",
          limit: 1,
        });
        found = same[0];
      }
      if (found === undefined) {
        throw fail(ConfigErrorCode.NotFound, `config "${env}/${key}" has no version ${String(ref)}`);
      }
      if (found.compacted || found.value === null) {
        throw fail(
          ConfigErrorCode.Compacted,
          `config "${env}/${key}" version ${found.version} was compacted`,
        );
      }
      return found;
    },
    async headOf(key) {
      return (await backend.list({ env, key, order: "desc", limit: 1, includeCompacted: true }))[0];
    },
    async releasedOf(inEnv) {
      const [heads, records] = await Promise.all([backend.heads(inEnv), backend.rollouts(inEnv)]);
      const byId = new Map(records.map((r) => [r.id, r]));
      const released = (v: StoredVersion): boolean =>
        v.rollout === undefined || byId.get(v.id)?.state === "promoted";
      const out = new Map<string, StoredVersion>();
      for (const head of heads) {
        if (!Object.hasOwn(schemas, head.key)) continue;
        const v = released(head)
          ? head
          : (
              await backend.list({
                env: inEnv,
                key: head.key,
                order: "desc",
                limit: 50,
                includeCompacted: true,
              })
            ).find(released);
        if (v !== undefined && !v.compacted) out.set(head.key, v);
      }
      return out;
    },
  };
}
