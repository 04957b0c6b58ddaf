import {
  type CollectionDefinition,
  type CollectionRegistry,
  checkRecordCollections,
  createNxsCollectionRegistry,
  DEFAULT_RECORD_COLLECTIONS,
  type HookPiece,
  recordsCollections,
  recordsHookPiece,
} from "@nxs-sync/pocketbase";

/** What the CLI knows of the project: its collections and hook pieces, and which packages it found. */
export interface ProjectRegistry {
  readonly registry: CollectionRegistry;
  /** `pocketbase`, and `queue` / `config` / `metrics` when those packages are installed and load. */
  readonly packages: readonly string[];
  /** Optional packages that are installed but failed to load, with why. */
  readonly skipped: readonly string[];
}

/** The shape read from an optional package's `/pocketbase` entry (checked at run time). */
interface OptionalPackage {
  readonly collections?: () => CollectionDefinition[];
  readonly hooks?: () => HookPiece;
}

async function loadQueue(): Promise<OptionalPackage> {
  const m = (await import("@nxs-sync/queue/pocketbase")) as unknown as Record<string, unknown>;
  return {
    collections: m.queueCollections as OptionalPackage["collections"],
    hooks: m.queueHookPiece as OptionalPackage["hooks"],
  };
}

async function loadConfig(): Promise<OptionalPackage> {
  const m = (await import("@nxs-sync/config/pocketbase")) as unknown as Record<string, unknown>;
  return {
    collections: m.configCollections as OptionalPackage["collections"],
    hooks: m.configHookPiece as OptionalPackage["hooks"],
  };
}

async function loadMetrics(): Promise<OptionalPackage> {
  const m = (await import("@nxs-sync/metrics/pocketbase")) as unknown as Record<string, unknown>;
  return {
    collections: m.metricsCollections as OptionalPackage["collections"],
    hooks: m.metricsHookPiece as OptionalPackage["hooks"],
  };
}

const OPTIONAL: readonly (readonly [string, () => Promise<OptionalPackage>])[] = [
  ["queue", loadQueue],
  ["config", loadConfig],
  ["metrics", loadMetrics],
];

/**
 * The project's registry: the nxs-sync collections and bundle, plus the queue's, the config
 * store's and the metrics' collections and hook pieces, when `@nxs-sync/queue` /
 * `@nxs-sync/config` / `@nxs-sync/metrics` are installed
 * (loaded with a dynamic import, so the CLI works without them), and the `records` piece with
 * `nxs_tombstones` for the collections replicated through it (`records`, default `users`; none
 * when empty).
 * @param options - `records`: the collections replicated through the records piece.
 * @returns The registry and the packages it covers.
 */
export async function loadProjectRegistry(
  options: { readonly records?: readonly string[] } = {},
): Promise<ProjectRegistry> {
  const registry = createNxsCollectionRegistry();
  const records = options.records ?? DEFAULT_RECORD_COLLECTIONS;
  // Collections nxs-sync does not own (accounts, app data): the records piece and its tombstones.
  if (records.length > 0)
    registry.register(...recordsCollections()).registerHooks(recordsHookPiece({ collections: records }));
  const packages = ["pocketbase"];
  const skipped: string[] = [];
  for (const [name, load] of OPTIONAL) {
    let pkg: OptionalPackage;
    try {
      pkg = await load();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") {
        skipped.push(`${name}: ${(e as Error).message}`);
      }
      continue;
    }
    if (
      typeof pkg.collections !== "function" ||
      (pkg.hooks !== undefined && typeof pkg.hooks !== "function")
    ) {
      skipped.push(
        `${name}: its /pocketbase entry exports no collections, or a hook piece that is not a function`,
      );
      continue;
    }
    registry.register(...pkg.collections());
    if (pkg.hooks !== undefined) registry.registerHooks(pkg.hooks());
    packages.push(name);
  }
  return { registry, packages, skipped };
}

/**
 * The collections replicated through the records piece: `--records a,b` (or `none`), else
 * `NXS_RECORDS`, else `users`.
 * @param option - The `--records` value.
 * @param env - The environment.
 * @returns The names (empty: none).
 * @throws NxsError `config/invalid` for a malformed name or an nxs-sync collection.
 */
export function recordsOption(
  option: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): readonly string[] {
  const text = option ?? env.NXS_RECORDS;
  if (text === undefined) return DEFAULT_RECORD_COLLECTIONS;
  if (text.trim() === "none") return [];
  return checkRecordCollections(
    text
      .split(",")
      .map((n) => n.trim())
      .filter((n) => n !== ""),
  );
}
