import { type Logger, silentLogger } from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import { toTransportError } from "./client.js";
import { schemaDefinitions } from "./collections/nxs.js";
import {
  type CollectionDef,
  mergeRateLimits,
  normalizeRateLimits,
  type RateLimitRule,
  type RateLimitsSettings,
} from "./schema.js";

/** What {@link ensureSchema} did. */
export interface EnsureSchemaResult {
  /** Collections created. */
  readonly created: readonly string[];
  /** Collections that existed and were updated (missing fields, indexes, rules, a token lifetime). */
  readonly updated: readonly string[];
  /** Whether the rate-limit settings changed (turned on, or rules added). */
  readonly rateLimitsChanged: boolean;
  /**
   * Doors left open that ensureSchema does not close itself, each with its fix (also logged as
   * warnings): an auth collection that lets guests sign up (createRule `""`, e.g. PocketBase's
   * default `users`).
   */
  readonly warnings: readonly string[];
}

/** Options of {@link ensureSchema}. */
export interface EnsureSchemaOptions {
  /** Largest number of requests in one `/api/batch` (the server setting `batch.maxRequests`). Default 200. */
  readonly batchMaxRequests?: number;
  /**
   * `false` leaves the server's rate limits alone. Default: turn them on and add
   * {@link fleetRateLimitRules} (merged by {@link mergeRateLimits}: existing rules stay).
   */
  readonly rateLimits?: false | { readonly rules?: readonly RateLimitRule[] };
  /** Where the warnings go (as `warn`). Default: none (they are in the result). */
  readonly logger?: Logger;
  /**
   * The collections to create or complete, in creation order: definitions, or a registry
   * (`createNxsCollectionRegistry().register(…)`, whose `collections()` is read). Default: the
   * nxs-sync collections ({@link schemaDefinitions}).
   */
  readonly collections?: readonly CollectionDef[] | { collections(): readonly CollectionDef[] };
}

type RawCollection = { id: string; name: string; fields: { name: string }[]; indexes: string[] } & Record<
  string,
  unknown
>;

const RULES = ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] as const;

/**
 * Creates or completes the nxs-sync collections (or those of `options.collections`), turns the batch API and the rate limits on
 * ({@link fleetRateLimitRules}, merged into existing rules by {@link mergeRateLimits}) and warns
 * about auth collections open to guest sign-up (in the result and through `options.logger`; it
 * never changes them). Idempotent: a second call changes nothing. Existing fields are never
 * dropped or retyped; missing fields and indexes are added, rules are reset to the nxs-sync rules,
 * and a node or replicator token lifetime longer than {@link NODE_TOKEN_DURATION_S} is shortened.
 * @param pb - An SDK client authenticated as a **superuser** (set-up only; gateways never use one).
 * @param options - Batch and rate-limit settings, a logger for the warnings.
 * @returns The names of the collections created and updated, whether the rate limits changed, warnings.
 * @throws TransportError `transport/unauthorized` without superuser rights, `transport/unavailable` when unreachable.
 * @example
 * ```ts
 * const admin = createSdkClient(url);
 * await admin.collection("_superusers").authWithPassword(email, password);
 * await ensureSchema(admin);
 * ```
 */
export async function ensureSchema(
  pb: PocketBase,
  options: EnsureSchemaOptions = {},
): Promise<EnsureSchemaResult> {
  const createdNames: string[] = [];
  const updatedNames: string[] = [];
  const warnings: string[] = [];
  let rateLimitsChanged = false;
  try {
    const defs = options.collections ?? schemaDefinitions();
    for (const def of "collections" in defs ? defs.collections() : defs) {
      let existing: RawCollection | undefined;
      try {
        existing = (await pb.collections.getOne(def.name, { requestKey: null })) as unknown as RawCollection;
      } catch (e) {
        if ((e as { status?: number }).status !== 404) throw e;
      }
      if (existing === undefined) {
        await pb.collections.create({ ...def }, { requestKey: null });
        createdNames.push(def.name);
        continue;
      }
      const patch: Record<string, unknown> = {};
      if (def.type === "view") {
        if (existing.viewQuery !== def.viewQuery) patch.viewQuery = def.viewQuery;
        for (const r of RULES) if (existing[r] !== def[r]) patch[r] = def[r];
        if (Object.keys(patch).length > 0) {
          await pb.collections.update(existing.id, patch, { requestKey: null });
          updatedNames.push(def.name);
        }
        continue;
      }
      const have = new Set(existing.fields.map((f) => f.name));
      const missing = def.fields.filter((f) => !have.has(f.name));
      if (missing.length > 0) patch.fields = [...existing.fields, ...missing];
      const idx = def.indexes.filter((i) => !existing.indexes.includes(i));
      if (idx.length > 0) patch.indexes = [...existing.indexes, ...idx];
      for (const r of RULES) if (existing[r] !== def[r]) patch[r] = def[r];
      const token = def.authToken as { duration: number } | undefined;
      const had = (existing.authToken as { duration?: number } | undefined)?.duration;
      // Only ever shorten a token lifetime (a PATCH without the secret keeps it).
      if (token !== undefined && (had === undefined || had > token.duration)) {
        patch.authToken = { duration: token.duration };
      }
      // A login-alert setting the definition names is applied (machine accounts send none).
      const alert = def.authAlert as { enabled: boolean } | undefined;
      const alerting = (existing.authAlert as { enabled?: boolean } | undefined)?.enabled;
      if (alert !== undefined && alerting !== undefined && alerting !== alert.enabled) {
        patch.authAlert = { enabled: alert.enabled };
      }
      if (Object.keys(patch).length > 0) {
        await pb.collections.update(existing.id, patch, { requestKey: null });
        updatedNames.push(def.name);
      }
    }
    const want = options.batchMaxRequests ?? 200;
    const settings = (await pb.settings.getAll({ requestKey: null })) as {
      batch?: { enabled?: boolean; maxRequests?: number; timeout?: number };
      rateLimits?: RateLimitsSettings;
    };
    const batch = settings.batch ?? {};
    const update: Record<string, unknown> = {};
    if (!batch.enabled || (batch.maxRequests ?? 0) < want) {
      update.batch = {
        ...batch,
        enabled: true,
        maxRequests: Math.max(want, batch.maxRequests ?? 0),
        timeout: Math.max(batch.timeout ?? 3, 10),
      };
    }
    if (options.rateLimits !== false) {
      const merged = mergeRateLimits(settings.rateLimits, options.rateLimits?.rules);
      if (JSON.stringify(merged) !== JSON.stringify(normalizeRateLimits(settings.rateLimits))) {
        update.rateLimits = merged;
        rateLimitsChanged = true;
      }
    }
    if (Object.keys(update).length > 0) await pb.settings.update(update, { requestKey: null });
    const auths = (await pb.collections.getFullList({
      filter: 'type = "auth"',
      requestKey: null,
    })) as unknown as RawCollection[];
    for (const c of auths) {
      if (c.createRule === "") {
        warnings.push(
          `ensureSchema at ${pb.baseURL}: auth collection ${c.name} lets guests sign up (createRule ""): anyone can create an account there; unless your app needs open sign-up, set its createRule to null (Dashboard > Collections > ${c.name} > API rules > Create, or PATCH /api/collections/${c.name} {"createRule": null}). nxs-sync grants such accounts nothing, but a rule that only checks @request.auth.id != "" would let them in.`,
        );
      }
    }
  } catch (e) {
    throw toTransportError(e, "ensureSchema");
  }
  const logger = options.logger ?? silentLogger;
  for (const w of warnings) logger.warn(`[nxs-pocketbase] ${w}`);
  return { created: createdNames, updated: updatedNames, rateLimitsChanged, warnings };
}
