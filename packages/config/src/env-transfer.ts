/**
 * What a config store moves between environments and files: promote (another environment's
 * released versions into this one, diff first), export (this environment as a YAML or JSON file, in
 * stored form) and import (a file into this environment: validated whole first, diffed, the changed
 * keys put; a secret this process cannot open is left as stored). And the check of a stored value
 * against today's schema that these and rollback make first.
 */
import { isNxsError, type Json } from "@nxs-sync/core";
import { diffValues, type JsonPatchOperation } from "./diff.js";
import { ConfigErrorCode } from "./errors.js";
import { exportFileOf, parseExport, renderExport } from "./files.js";
import { openValue, redactValue, sealedPaths, sealValue } from "./secrets.js";
import type { StoreContext } from "./store-context.js";
import type { ImportResult, KeyChange, PutOptions } from "./store-types.js";
import { validateValue } from "./validate.js";
import type { StoredVersion } from "./version.js";
import { toVersionMeta } from "./version-meta.js";
import type { VersionReads } from "./version-reads.js";

/** How a store writes a version (its compare-and-swap put of a stored value). */
export type WriteVersion = (
  key: string,
  stored: Json,
  o: PutOptions & { readonly rollbackOf?: number },
) => Promise<StoredVersion>;

/**
 * A stored value's plain form checked against its key's schema today; a secret this process cannot
 * open is checked redacted.
 * @param ctx - The store's shared part.
 * @param key - The key.
 * @param stored - The value in stored form.
 * @returns The `key.path` of each secret this process cannot open.
 * @throws InvalidConfigError `config/invalid-value`; NxsError `config/unknown-key`, `config/secret-corrupt`.
 */
export function checkStored(
  ctx: StoreContext,
  key: string,
  stored: Json,
): { readonly unopened: readonly string[] } {
  const { keyring } = ctx;
  const schema = ctx.schemaOf(key);
  let plain: Json;
  let unopened: string[] = [];
  try {
    plain = openValue(key, stored, schema, keyring);
  } catch (error) {
    if (!isNxsError(error) || error.code !== ConfigErrorCode.SecretKeyMissing) throw error;
    plain = redactValue(stored);
    unopened = sealedPaths(stored)
      .filter((p) => {
        const leaf = p.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], stored) as {
          kid: string;
        };
        return keyring === undefined || !keyring.has(leaf.kid);
      })
      .map((p) => [key, ...p].join("."));
  }
  validateValue(key, schema, plain);
  return { unopened };
}

/** Promote, export and import of one store. */
export interface EnvTransfer {
  /** See `ConfigStore.promote`. */
  promote(o: {
    from: string;
    keys?: readonly string[];
    dryRun?: boolean;
    author: string;
    message: string;
  }): Promise<readonly KeyChange[]>;
  /** See `ConfigStore.exportEnv`. */
  exportEnv(format: "yaml" | "json"): Promise<string>;
  /** See `ConfigStore.importEnv`. */
  importEnv(text: string, o: { dryRun?: boolean; author: string; message: string }): Promise<ImportResult>;
}

/**
 * Makes the promote, export and import of one store.
 * @param ctx - The store's shared part.
 * @param reads - The store's version reads.
 * @param write - The store's write of a stored value.
 * @returns The operations.
 */
export function createEnvTransfer(ctx: StoreContext, reads: VersionReads, write: WriteVersion): EnvTransfer {
  const { env, schemas, keyring } = ctx;
  return {
    async promote(o) {
      const wanted = o.keys ?? Object.keys(schemas);
      for (const key of wanted) ctx.schemaOf(key);
      const sources = await reads.releasedOf(o.from);
      const changes: KeyChange[] = [];
      for (const key of wanted) {
        const src = sources.get(key);
        if (src === undefined) continue;
        checkStored(ctx, key, src.value as Json);
        const dst = await reads.headOf(key);
        const patch = diffValues((dst?.value ?? undefined) as Json | undefined, src.value as Json);
        const change: KeyChange = {
          key,
          ...(dst === undefined ? {} : { before: toVersionMeta(dst) }),
          patch,
        };
        if (patch.length === 0 || o.dryRun === true) {
          changes.push(change);
          continue;
        }
        const v = await write(key, src.value as Json, {
          expectedVersion: dst?.version ?? 0,
          author: o.author,
          message: o.message,
        });
        changes.push({ ...change, written: toVersionMeta(v) });
      }
      return changes;
    },
    async exportEnv(format) {
      return renderExport(
        exportFileOf(env, [...(await reads.releasedOf(env)).values()], ctx.clock()),
        format,
      );
    },
    async importEnv(text, o) {
      const file = parseExport(text);
      const plans: {
        key: string;
        stored: Json;
        head: StoredVersion | undefined;
        patch: JsonPatchOperation[];
      }[] = [];
      const secretsSkipped: string[] = [];
      for (const [key, entry] of Object.entries(file.keys)) {
        const schema = ctx.schemaOf(key);
        const head = await reads.headOf(key);
        const { unopened } = checkStored(ctx, key, entry.value);
        let stored = sealValue(key, entry.value, schema, keyring);
        for (const dotted of unopened) {
          // Left as it is in the store: the head's envelope at that path, when it has one.
          const path = dotted.split(".").slice(1);
          const kept = head?.value == null ? undefined : valueAt(head.value, path);
          if (kept !== undefined) stored = replaceAt(stored, path, kept);
          secretsSkipped.push(dotted);
        }
        const patch = diffValues((head?.value ?? undefined) as Json | undefined, stored);
        plans.push({ key, stored, head, patch });
      }
      const changes: KeyChange[] = [];
      for (const p of plans) {
        const change: KeyChange = {
          key: p.key,
          ...(p.head === undefined ? {} : { before: toVersionMeta(p.head) }),
          patch: p.patch,
        };
        if (p.patch.length === 0 || o.dryRun === true) {
          changes.push(change);
          continue;
        }
        const v = await write(p.key, p.stored, {
          expectedVersion: p.head?.version ?? 0,
          author: o.author,
          message: o.message,
        });
        changes.push({ ...change, written: toVersionMeta(v) });
      }
      return { changes, secretsSkipped };
    },
  };
}

/** The value at a path of a JSON value (object keys, array indexes as strings). */
function valueAt(value: Json, path: readonly string[]): Json | undefined {
  let at: Json | undefined = value;
  for (const k of path) {
    if (typeof at !== "object" || at === null) return undefined;
    at = (at as Record<string, Json>)[k];
  }
  return at;
}

/** A copy of a JSON value with the value at `path` replaced. */
function replaceAt(value: Json, path: readonly string[], leaf: Json): Json {
  if (path.length === 0) return leaf;
  const [head, ...rest] = path as [string, ...string[]];
  if (Array.isArray(value)) {
    const copy = [...value];
    copy[Number(head)] = replaceAt(copy[Number(head)] as Json, rest, leaf);
    return copy;
  }
  const obj = (typeof value === "object" && value !== null ? value : {}) as Record<string, Json>;
  return { ...obj, [head]: replaceAt(obj[head] as Json, rest, leaf) };
}
