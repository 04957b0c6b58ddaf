/**
 * Plumbing of `npm run bench -- config`: real PocketBase servers with the config collections and
 * hook piece, a raw collection shaped like `nxs_config_versions` (same fields and head index, a
 * plain create rule) for the raw SDK subjects, node accounts, the schemas and stores the cases use.
 */

import {
  type ConfigSchemas,
  type ConfigStore,
  createConfigStore,
  createKeyring,
  secret,
} from "@nxs-sync/config";
import {
  configCollections,
  configHookPiece,
  createPocketBaseConfigBackend,
  type PocketBaseConfigBackend,
  versionsCollection,
} from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";
import {
  AuthRules,
  createNxsCollectionRegistry,
  ensureNode,
  ensureSchema,
  type HookPiece,
} from "@nxs-sync/pocketbase";
import {
  applyCollections,
  type CollectionDefinition,
  type ProcessPocketBase,
  startPocketBase,
} from "@nxs-sync/testing";
import { z } from "zod";
import type { BenchNode } from "../suites/pocketbase-env.js";

/** The collection the raw SDK subjects write to and read from. */
export const RAW_CONFIG = "bench_config_raw";

/** The registry of the config collections (what the servers and the replicator carry). */
export const configRegistry = () => createNxsCollectionRegistry().register(...configCollections());

/** `nxs_config_versions`'s fields and head index under another name; any gateway may create (no route). */
function rawConfigCollection(): CollectionDefinition {
  const { id: _id, fields } = versionsCollection();
  return {
    name: RAW_CONFIG,
    type: "base",
    fields: [...fields],
    indexes: [`CREATE INDEX idx_${RAW_CONFIG}_head ON ${RAW_CONFIG} (env, key, version, hlc)`],
    listRule: AuthRules.gateway,
    viewRule: AuthRules.gateway,
    createRule: AuthRules.gateway,
    updateRule: null,
    deleteRule: null,
  };
}

/**
 * Starts a server with the config collections and hook piece (or `hooks`: a variant of the piece,
 * to see where a route's time goes), the raw collection and the nodes.
 */
export async function startConfigBenchServer(
  name: string,
  nodes: readonly BenchNode[],
  hooks: readonly HookPiece[] = [configHookPiece()],
): Promise<ProcessPocketBase> {
  const server = await startPocketBase({ name, hookFiles: hooks });
  try {
    // The fleet's /nxs/ rate limit is meant for a gateway's normal load, not a bench's flood: off.
    await ensureSchema(server.client(), { collections: configRegistry(), rateLimits: false });
    await applyCollections(server, [rawConfigCollection()], { deleteMissing: false });
    for (const n of nodes) {
      await ensureNode(server.client(), {
        id: n.id,
        email: n.email,
        password: n.password,
        name: n.name,
        role: n.role,
      });
    }
  } catch (e) {
    await server.destroy().catch(() => undefined);
    throw e;
  }
  return server;
}

/** A gateway's provider config: one secret field, a list of routes (about 1 KB of JSON sealed). */
export const gatewaySchema = z.object({
  provider: z.enum(["openai", "anthropic", "local"]),
  baseUrl: z.url(),
  apiKey: secret(z.string().min(1)),
  timeoutMs: z.number().int().positive(),
  routes: z.array(z.object({ path: z.string(), upstream: z.string(), rps: z.number().int().nonnegative() })),
});
export type GatewayConfig = z.output<typeof gatewaySchema>;

/** The schemas of the stores that measure put, get and watch. */
export const benchSchemas = { gateway: gatewaySchema } as const;

/** `count` keys of the gateway schema (`k0` ...), for the boot cases. */
export function bootSchemas(count: number): ConfigSchemas {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, gatewaySchema]));
}

/** The `i`-th value written (differs by `i`; the same size every time). */
export function gatewayValue(i: number): GatewayConfig {
  return {
    provider: "openai",
    baseUrl: "https://api.example.com/v1",
    apiKey: `sk-bench-${String(i).padStart(10, "0")}`,
    timeoutMs: 30_000 + (i % 1000),
    routes: Array.from({ length: 10 }, (_, r) => ({
      path: `/v1/route-${r}`,
      upstream: `upstream-${r}.internal:8080`,
      rps: 100 + ((i + r) % 50),
    })),
  };
}

/** One keyring for every store of the run (a fixed, bench-only key). */
export const benchKeyring = createKeyring({ keys: { bench1: Buffer.alloc(32, 7) } });

/** A PocketBase backend as `node` on `endpoints` (warnings silenced). */
export function benchBackend(endpoints: readonly string[], node: BenchNode): PocketBaseConfigBackend {
  return createPocketBaseConfigBackend({ endpoints, auth: node.auth, logger: silentLogger });
}

/** A config store over `backend` (real timers; the default boot timeout unless told). */
export function benchStore<S extends ConfigSchemas>(
  backend: PocketBaseConfigBackend,
  o: {
    readonly env: string;
    readonly node: string;
    readonly schemas: S;
    readonly cacheFile?: string;
    readonly bootTimeoutMs?: number;
    readonly cacheWriteDelayMs?: number;
  },
): ConfigStore<S> {
  return createConfigStore({
    backend,
    env: o.env,
    node: o.node,
    schemas: o.schemas,
    keyring: benchKeyring,
    logger: silentLogger,
    ...(o.cacheFile === undefined ? {} : { cacheFile: o.cacheFile }),
    ...(o.bootTimeoutMs === undefined ? {} : { bootTimeoutMs: o.bootTimeoutMs }),
    ...(o.cacheWriteDelayMs === undefined ? {} : { cacheWriteDelayMs: o.cacheWriteDelayMs }),
  });
}
