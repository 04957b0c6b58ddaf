import { ErrorCode, NxsError } from "@nxs-sync/core";
import {
  type CollectionDefinition,
  type ReplicatedCollection,
  replicatedCollectionOf,
} from "./collection-definition.js";
import { nxsCollectionDefinitions } from "./collections/nxs.js";
import { fenceHookPiece } from "./fence.js";
import { addHookPieces, type HookPiece, type HookRegistry, nxsHookPiece } from "./hook-pieces.js";
import type { CollectionDef } from "./schema.js";

/**
 * Where a package registers its collections and its server hooks. `ensureSchema(pb, { collections:
 * registry })` creates them, `createReplicator({ collections: registry })` replicates the
 * replicated ones, `renderMigration(registry.collections(), …)` writes the migration that ships
 * them, and `writeHooksBundle(dir, registry)` writes the hook pieces ({@link HookPiece}) into a
 * server's hooks dir.
 */
export interface CollectionRegistry extends HookRegistry {
  /**
   * Adds definitions after those registered (created in that order: a collection after the ones
   * its relations point to).
   * @returns The registry.
   * @throws NxsError `config/invalid` for a name or id registered already.
   */
  register(...definitions: readonly CollectionDefinition[]): CollectionRegistry;
  /** Every definition, in registration order. */
  definitions(): readonly CollectionDefinition[];
  /** The PocketBase definitions, in registration order. */
  collections(): readonly CollectionDef[];
  /** The replicated collections (those with a `replication`), in registration order. */
  replicated(): readonly ReplicatedCollection[];
  /**
   * Adds hook pieces after those registered (written in that order by `writeHooksBundle`).
   * @returns The registry.
   * @throws NxsError `config/invalid` for a malformed piece, or a name or file registered already.
   */
  registerHooks(...pieces: readonly HookPiece[]): CollectionRegistry;
}

/**
 * Creates a registry.
 * @param definitions - Definitions to register first.
 * @param hooks - Hook pieces to register first.
 * @returns The registry.
 * @throws NxsError `config/invalid` for two definitions of one name or id, or a malformed or
 *   repeated hook piece.
 * @example
 * ```ts
 * const kv: CollectionDef = {
 *   id: "pbc_kv_items",
 *   name: "kv_items",
 *   type: "base",
 *   fields: [
 *     { name: "key", type: "text", required: true },
 *     { name: "value", type: "json" },
 *     { name: "rev", type: "number", required: true },
 *     { name: "deleted", type: "bool" },
 *   ],
 *   indexes: ["CREATE UNIQUE INDEX idx_kv_items_key ON kv_items (key)"],
 *   listRule: null,
 *   viewRule: null,
 *   createRule: null,
 *   updateRule: null,
 *   deleteRule: null,
 * };
 * const registry = createNxsCollectionRegistry().register({
 *   schema: kv,
 *   replication: { key: ["key"], merge: MergeRules.lww("rev"), deletes: DeletePolicies.tombstone("deleted") },
 * });
 * await ensureSchema(pb, { collections: registry }); // pb: a superuser client
 * const replicator = createReplicator({
 *   servers: [{ url, auth }, { url: "http://secondary:8090", auth }],
 *   collections: registry,
 * });
 * ```
 */
export function createCollectionRegistry(
  definitions: readonly CollectionDefinition[] = [],
  hooks: readonly HookPiece[] = [],
): CollectionRegistry {
  const all: CollectionDefinition[] = [];
  const pieces: HookPiece[] = [];
  const registry: CollectionRegistry = {
    register(...defs) {
      for (const d of defs) {
        const clash = all.find((o) => o.schema.name === d.schema.name || o.schema.id === d.schema.id);
        if (clash !== undefined) {
          throw new NxsError(
            ErrorCode.ConfigInvalid,
            `collection registry: ${d.schema.name} (${d.schema.id}) is registered already as ${clash.schema.name} (${clash.schema.id}): give each collection one definition, with its own name and id`,
          );
        }
        all.push(d);
      }
      return registry;
    },
    registerHooks(...more) {
      addHookPieces(pieces, more);
      return registry;
    },
    hooks: () => [...pieces],
    definitions: () => [...all],
    collections: () => all.map((d) => d.schema),
    replicated: () => all.flatMap((d) => replicatedCollectionOf(d) ?? []),
  };
  return registry.register(...definitions).registerHooks(...hooks);
}

/**
 * A registry holding the nxs-sync collections, the core hooks bundle (`pb_hooks/nxs.pb.js`, the
 * piece `nxs`) and the write fence (`pb_hooks/nxs-fence.pb.js`, the piece `fence`): register a package's own collections and hook pieces after them.
 * @returns A new registry (each call its own).
 */
export function createNxsCollectionRegistry(): CollectionRegistry {
  return createCollectionRegistry(nxsCollectionDefinitions(), [nxsHookPiece(), fenceHookPiece()]);
}
