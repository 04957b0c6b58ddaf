// Shared set-up of the config store's PocketBase integration tests: real servers with the config
// collections and hook piece, gateway and replicator accounts, and backends.
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import type { NewVersion } from "@nxs-sync/config";
import {
  configCollections,
  configHookPiece,
  createPocketBaseConfigBackend,
  type PocketBaseConfigBackend,
  type PocketBaseConfigBackendOptions,
} from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";
import { createNxsCollectionRegistry, ensureNode, ensureSchema, NodeRole } from "@nxs-sync/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import type { ServerTracker } from "@nxs-sync/testing/vitest";

export const registry = () => createNxsCollectionRegistry().register(...configCollections());

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
/** A random record id (15 chars of [a-z0-9]). */
export const newId = (): string => [...randomBytes(15)].map((x) => ALPHABET[x % 36]).join("");

export interface Account {
  readonly id: string;
  readonly email: string;
  readonly password: string;
  readonly role: NodeRole;
}
export const account = (role: NodeRole = NodeRole.Gateway): Account => {
  const n = newId();
  return { id: n, email: `${n}@config.test`, password: `pw-${n}-secret`, role };
};
export const authOf = (a: Account) => ({ email: a.email, password: a.password });

export const gateway = account(NodeRole.Gateway);
export const replicatorAccount = account(NodeRole.Replicator);

/** Starts a server with the config collections, hook piece and the shared accounts. */
export async function startConfigServer(servers: ServerTracker, name: string): Promise<ProcessPocketBase> {
  const s = await servers.start({ name, hookFiles: [configHookPiece()] });
  await ensureSchema(s.client(), { collections: registry(), rateLimits: false });
  for (const a of [gateway, replicatorAccount]) await ensureNode(s.client(), a);
  return s;
}

/** Fast failover for tests. */
export const FAST_FAILOVER = {
  failureThreshold: 1,
  downAfterMs: 300,
  healthIntervalMs: 200,
  healthTimeoutMs: 300,
};

const backends: PocketBaseConfigBackend[] = [];
/** A backend as the gateway account (closed by {@link closeBackends}). */
export function backendOf(
  endpoints: readonly string[],
  options: Partial<PocketBaseConfigBackendOptions> = {},
): PocketBaseConfigBackend {
  const b = createPocketBaseConfigBackend({
    endpoints,
    auth: authOf(gateway),
    failover: FAST_FAILOVER,
    logger: silentLogger,
    ...options,
  });
  backends.push(b);
  return b;
}
export async function closeBackends(): Promise<void> {
  await Promise.all(backends.splice(0).map((b) => b.close()));
}

let hlcCounter = 0;
/** A sortable HLC-like stamp (the server only orders it as a string). */
export const nextHlc = (): string =>
  `${String(Date.now()).padStart(15, "0")}-${String(++hlcCounter).padStart(6, "0")}-test`;

/** A new version of `key` in `env` on top of `expectedVersion`. */
export const newVersion = (
  env: string,
  key: string,
  expectedVersion: number,
  extra: Partial<NewVersion> = {},
): NewVersion => ({
  id: newId(),
  env,
  key,
  expectedVersion,
  hlc: nextHlc(),
  node: "gw-1",
  author: "alice",
  message: `v${expectedVersion + 1}`,
  value: { n: expectedVersion + 1 },
  ...extra,
});

/** A fresh environment name per test. */
export const newEnv = (prefix = "env"): string => `${prefix}-${newId()}`;

/** The path of a file beside this one. */
export const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/**
 * A port nothing listens on (bound, then released): connections to it are refused.
 * @returns The port.
 */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const address = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
