import type PocketBase from "pocketbase";
import type { CollectionModel } from "pocketbase";
import { HarnessError } from "./errors.js";
import type { PocketBaseServer } from "./types.js";

/**
 * A collection to create: the shape of PocketBase's collection import (`name`, `type`, `fields`, `indexes`,
 * rules…). Only `name` is required; `type` defaults to `base`.
 */
export type CollectionDefinition = { name: string; type?: "base" | "auth" | "view" } & Record<
  string,
  unknown
>;

/** Something to apply collections to: a harness server, several, or an SDK client. */
export type CollectionTarget = PocketBaseServer | PocketBase | readonly (PocketBaseServer | PocketBase)[];

const toClients = (target: CollectionTarget): PocketBase[] =>
  (Array.isArray(target) ? target : [target]).map((t: PocketBaseServer | PocketBase) =>
    "mode" in t && typeof t.client === "function" ? t.client() : (t as PocketBase),
  );

/**
 * The `created` and `updated` autodate fields PocketBase's UI adds but its API does not.
 *
 * @returns two field definitions to spread into `fields`
 */
export function timestampFields(): Record<string, unknown>[] {
  return [
    { name: "created", type: "autodate", onCreate: true, onUpdate: false },
    { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
  ];
}

/**
 * Creates or updates collections on one or more servers with `PUT /api/collections/import`
 * (collections not listed are left alone unless `deleteMissing`). The per-package hook for a fresh schema.
 *
 * @param target - a server, several servers (e.g. `cluster.nodes`), or a superuser SDK client
 * @param collections - definitions, in dependency order
 * @param options - `deleteMissing: true` also drops every other non-system collection
 * @returns the collections as stored on the first target
 * @throws HarnessError `harness/request-failed` with PocketBase's validation data
 * @example
 * ```ts
 * await applyCollections(cluster.nodes, [{ name: ns.name("notes"), fields: [{ name: "text", type: "text" }, ...timestampFields()] }]);
 * ```
 */
export async function applyCollections(
  target: CollectionTarget,
  collections: readonly CollectionDefinition[],
  options: { deleteMissing?: boolean } = {},
): Promise<CollectionModel[]> {
  const clients = toClients(target);
  const defs = collections.map((c) => ({ type: "base", ...c })) as unknown as CollectionModel[];
  for (const pb of clients) {
    try {
      await pb.collections.import(defs, options.deleteMissing ?? false);
    } catch (error) {
      const data = (error as { response?: unknown }).response;
      throw new HarnessError(
        "harness/request-failed",
        `collection import on ${pb.baseURL} failed: ${(error as Error).message} ${JSON.stringify(data ?? {})}`,
        { cause: error },
      );
    }
  }
  const first = clients[0];
  if (!first) return [];
  return Promise.all(collections.map((c) => first.collections.getOne(c.name)));
}

/**
 * Deletes non-system collections (all of them, or those whose name starts with `prefix`) so a test starts clean.
 * Retries in passes so collections referenced by relations go last.
 *
 * @param target - server(s) or client(s)
 * @param options - `prefix` limits the deletion to one namespace
 * @returns the names deleted on the first target
 * @throws HarnessError `harness/request-failed` when some cannot be deleted
 */
export async function clearCollections(
  target: CollectionTarget,
  options: { prefix?: string } = {},
): Promise<string[]> {
  const clients = toClients(target);
  const deletedOnFirst: string[] = [];
  for (const [i, pb] of clients.entries()) {
    let remaining = (await pb.collections.getFullList({ batch: 1000 }))
      .filter((c) => !c.system && (options.prefix === undefined || c.name.startsWith(options.prefix)))
      .map((c) => c.name);
    for (let pass = 0; remaining.length > 0; pass++) {
      const failed: string[] = [];
      let lastError: unknown;
      for (const name of remaining) {
        try {
          await pb.collections.delete(name);
          if (i === 0) deletedOnFirst.push(name);
        } catch (error) {
          failed.push(name);
          lastError = error;
        }
      }
      if (failed.length === remaining.length || pass > 10) {
        throw new HarnessError(
          "harness/request-failed",
          `could not delete collections ${failed.join(", ")} on ${pb.baseURL}`,
          {
            cause: lastError,
          },
        );
      }
      remaining = failed;
    }
  }
  return deletedOnFirst;
}
