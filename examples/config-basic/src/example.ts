/**
 * The example: a gateway's configuration in `@nxs-sync/config` on a real PocketBase server. Two
 * keys with zod schemas (`limits`, and `provider` with a secret `apiKey`), two gateways (`gw-1`
 * writes, `gw-2` watches), then: a put, an invalid put refused field by field, a watch, a conflict
 * between two writers and its retry, a diff, a rollback, the history with the secret redacted, a
 * YAML export, and a boot from the last-known-good cache file once the server is gone.
 */
import { randomBytes } from "node:crypto";
import {
  type ConfigStore,
  createConfigStore,
  createKeyring,
  isSealed,
  type JsonPatchOperation,
  type Keyring,
  keyringFromEnv,
  secret,
} from "@nxs-sync/config";
import { createPocketBaseConfigBackend, type PocketBaseConfigBackend } from "@nxs-sync/config/pocketbase";
import { isNxsError, silentLogger } from "@nxs-sync/core";
import { z } from "zod";

/** One zod schema per key. `secret()` marks a field stored encrypted and shown redacted. */
export const schemas = {
  limits: z.object({ rps: z.number().int().positive(), burst: z.number().int().positive() }),
  provider: z.object({
    name: z.enum(["openai", "anthropic"]),
    baseUrl: z.url(),
    apiKey: secret(z.string().min(1)),
  }),
};

/** A gateway account on the server (`nxs_nodes`). */
export interface Account {
  readonly email: string;
  readonly password: string;
}

/** What {@link runExample} needs: a server with the config collections and hook piece, two gateways. */
export interface ExampleOptions {
  readonly url: string;
  readonly gw1: Account;
  readonly gw2: Account;
  /** Where gw-1 keeps its last-known-good cache file. */
  readonly cacheFile: string;
  /** Stops the server (for the last step: a boot with no server). */
  readonly stopServer: () => Promise<void>;
  readonly log?: (line: string) => void;
}

/** What the example saw, for its test. */
export interface ExampleSummary {
  readonly invalidFields: readonly string[];
  readonly watched: readonly number[];
  readonly conflict: { readonly expected: number; readonly current: number | undefined };
  readonly diff: readonly JsonPatchOperation[];
  readonly rollback: { readonly version: number; readonly rollbackOf: number | undefined };
  readonly historyApiKey: unknown;
  readonly exportHasPlainSecret: boolean;
  readonly bootSource: "server" | "cache";
  readonly bootLimits: z.output<typeof schemas.limits>;
}

/** The keyring: from `NXS_CONFIG_KEYS` when set, else a key made for this run. */
function keyring(log: (line: string) => void): Keyring {
  const fromEnv = keyringFromEnv();
  if (fromEnv !== undefined) return fromEnv;
  log("NXS_CONFIG_KEYS is not set: sealing secrets under a key made for this run (demo-1)");
  return createKeyring({ keys: { "demo-1": randomBytes(32) } });
}

/** Waits until `check()` is true (the watch is told in the background). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`example: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs the example against a prepared server.
 * @param o - The server, two gateway accounts, the cache file, a way to stop the server, a log.
 * @returns What happened at each step.
 */
export async function runExample(o: ExampleOptions): Promise<ExampleSummary> {
  const log = o.log ?? (() => {});
  const keys = keyring(log);
  const backends: PocketBaseConfigBackend[] = [];
  const stores: ConfigStore<typeof schemas>[] = [];
  const open = (account: Account, node: string, extra: { cacheFile?: string } = {}) => {
    const backend = createPocketBaseConfigBackend({
      endpoints: [o.url],
      auth: account,
      logger: silentLogger,
    });
    const store = createConfigStore({
      backend,
      env: "production",
      node,
      schemas,
      keyring: keys,
      logger: silentLogger,
      onEvent: (e) => {
        if (e.type === "degraded" || e.type === "conflict") log(`${node} event: ${JSON.stringify(e)}`);
      },
      ...extra,
    });
    backends.push(backend);
    stores.push(store);
    return store;
  };
  const closeAll = async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const b of backends.splice(0)) await b.close();
  };

  try {
    // 1. Two gateways start: each reads the heads of `production` and watches them.
    const gw1 = open(o.gw1, "gw-1", { cacheFile: o.cacheFile });
    const gw2 = open(o.gw2, "gw-2");
    log(`gw-1 started from ${(await gw1.start()).source}; gw-2 from ${(await gw2.start()).source}`);

    // 2. The first versions: validated, the secret sealed before it leaves the process.
    const l1 = await gw1.put(
      "limits",
      { rps: 50, burst: 100 },
      { expectedVersion: 0, author: "ann", message: "initial limits" },
    );
    await gw1.put(
      "provider",
      { name: "openai", baseUrl: "https://api.openai.com/v1", apiKey: "sk-live-123456" },
      { expectedVersion: 0, author: "ann", message: "initial provider" },
    );
    log(`put limits v${l1.version} and provider v1; gw-1 reads rps=${gw1.get("limits").rps}`);

    // 3. An invalid value is refused before anything is stored, each failing field named.
    let invalidFields: string[] = [];
    try {
      await gw1.put(
        "limits",
        { rps: -5, burst: 1.5 },
        { expectedVersion: 1, author: "ann", message: "typo" },
      );
    } catch (e) {
      if (!isNxsError(e) || e.code !== "config/invalid-value") throw e;
      invalidFields = (e as unknown as { issues: { path: string }[] }).issues.map((i) => i.path);
      log(`refused: ${e.message}`);
    }

    // 4. gw-2 watches `limits`: every version after the one it holds, in order.
    const watched: number[] = [];
    const stop = gw2.watch("limits", (event) => {
      if (event.type === "version") {
        watched.push(event.version.version);
        log(`gw-2 watch: limits v${event.version.version} rps=${event.value.rps} by ${event.version.author}`);
      }
    });
    await until(() => gw2.version("limits")?.version === 1, "gw-2 to hold limits v1");

    const l2 = await gw1.put(
      "limits",
      { rps: 80, burst: 100 },
      { expectedVersion: l1.version, author: "ann", message: "more traffic" },
    );
    await until(() => watched.includes(l2.version), "gw-2's watch to see v2");

    // 5. A conflict: bob (on gw-2) edits from v1, which is no longer the head.
    let conflict: ExampleSummary["conflict"] = { expected: 1, current: undefined };
    try {
      await gw2.put(
        "limits",
        { rps: 60, burst: 200 },
        { expectedVersion: 1, author: "bob", message: "burst" },
      );
    } catch (e) {
      if (!isNxsError(e) || e.code !== "config/conflict") throw e;
      const current = (e as unknown as { current?: { version: number } }).current?.version;
      conflict = { expected: 1, current };
      log(`conflict: bob based his edit on v1, the head is v${current}; he merges and puts again`);
    }
    const l3 = await gw2.put(
      "limits",
      { rps: 80, burst: 200 },
      { expectedVersion: conflict.current ?? 2, author: "bob", message: "burst, on top of v2" },
    );
    await until(() => watched.includes(l3.version), "gw-2's watch to see v3");

    // 6. What changed between v1 and v3, as an RFC 6902 JSON Patch.
    const diff = await gw1.diff("limits", 1, l3.version);
    log(`diff limits v1 -> v${l3.version}: ${JSON.stringify(diff)}`);

    // 7. Roll back to v1: a new version (v4) equal to v1, with its audit fields.
    const back = await gw1.rollback("limits", 1, { author: "ann", message: "back to the initial limits" });
    await until(() => watched.includes(back.version), "gw-2's watch to see the rollback");
    log(
      `rollback: limits v${back.version} (rollbackOf v${back.rollbackOf}); diff v1 -> v${back.version}: ${JSON.stringify(await gw1.diff("limits", 1, back.version))}`,
    );
    stop();

    // 8. History shows who, when, why; a secret only as [secret kid hash].
    for (const h of await gw1.history("limits", { limit: 10 })) {
      log(`  limits v${h.version} by ${h.author} on ${h.node}: ${h.message}`);
    }
    const [provider] = await gw1.history("provider", { limit: 1 });
    const historyApiKey = (provider?.value as { apiKey?: unknown } | undefined)?.apiKey;
    log(`provider history shows apiKey as ${JSON.stringify(historyApiKey)}`);

    // 9. Export the environment as YAML (secrets as ciphertext with their key id: safe for git).
    const yaml = await gw1.exportEnv("yaml");
    log(`export (yaml):\n${yaml}`);
    const exportHasPlainSecret = yaml.includes("sk-live-123456");

    // 10. The server goes away; a gateway restarting now boots from gw-1's last-known-good file.
    await closeAll(); // gw-1 writes its cache file on close
    await o.stopServer();
    // The server refuses connections: the store boots from the file as soon as every endpoint is
    // down, without waiting out bootTimeoutMs.
    const restarted = open(o.gw1, "gw-1", { cacheFile: o.cacheFile });
    const boot = await restarted.start();
    const bootLimits = restarted.get("limits");
    log(
      `with no server: gw-1 booted from ${boot.source}, limits rps=${bootLimits.rps} (v${restarted.version("limits")?.version})`,
    );
    const sealedInCache = isSealed(restarted.get("provider").apiKey);
    if (sealedInCache) throw new Error("example: the cache boot did not open the secret");

    return {
      invalidFields,
      watched,
      conflict,
      diff,
      rollback: { version: back.version, rollbackOf: back.rollbackOf },
      historyApiKey,
      exportHasPlainSecret,
      bootSource: boot.source,
      bootLimits,
    };
  } finally {
    await closeAll();
  }
}
