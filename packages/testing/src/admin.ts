import { existsSync, readdirSync } from "node:fs";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import PocketBase, { type AuthRecord } from "pocketbase";
import { HarnessError } from "./errors.js";
import { installEventSource } from "./event-source.js";
import { type BatchSettings, DEFAULT_BATCH_SETTINGS, type HookFile, type Superuser } from "./types.js";

/** A superuser session obtained once at start and shared by every `client()`. */
export interface SuperuserSession {
  token: string;
  record: AuthRecord;
}

/**
 * Polls `GET <url>/api/health` until it answers 200.
 * @internal
 */
export async function waitForHealth(
  url: string,
  timeoutMs: number,
  isDead: () => string | undefined,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "no answer";
  for (;;) {
    const dead = isDead();
    if (dead) throw new Error(dead);
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = (error as Error).cause ? String((error as Error).cause) : (error as Error).message;
    }
    if (performance.now() > deadline)
      throw new Error(`${url}/api/health did not answer 200 within ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Authenticates as the superuser and applies the batch settings.
 * @internal
 */
export async function prepareServer(
  url: string,
  superuser: Superuser,
  batch: Partial<BatchSettings> | false | undefined,
): Promise<SuperuserSession> {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  try {
    const auth = await pb.collection("_superusers").authWithPassword(superuser.email, superuser.password);
    if (batch !== false) await pb.settings.update({ batch: { ...DEFAULT_BATCH_SETTINGS, ...batch } });
    return { token: auth.token, record: auth.record };
  } catch (error) {
    throw new HarnessError(
      "harness/request-failed",
      `superuser setup on ${url} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * A new SDK client authenticated with `session`, `autoCancellation(false)`, EventSource polyfilled.
 * @internal
 */
export function sessionClient(url: string, session: SuperuserSession): PocketBase {
  installEventSource();
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  pb.authStore.save(session.token, session.record);
  return pb;
}

/** File name of the one-shot migration that creates the harness superuser (see {@link superuserMigration}). @internal */
export const SUPERUSER_MIGRATION_FILE = "1_nxs_harness_superuser.js";

/**
 * A JS migration that creates (or resets) the superuser: how the harness hands PocketBase the password without
 * a command line (`superuser upsert EMAIL PASS` shows it to `ps`) or an environment variable (`ps e`). The
 * harness writes it to a private file (mode 0600), runs `pocketbase migrate up --migrationsDir=<that dir>` and
 * deletes it.
 * @internal
 */
export function superuserMigration(superuser: Superuser): string {
  return `/// nxs-sync test harness: the superuser (written, applied and deleted by the harness)
migrate((app) => {
  const superusers = app.findCollectionByNameOrId("_superusers");
  let record;
  try {
    record = app.findAuthRecordByEmail(superusers, ${JSON.stringify(superuser.email)});
  } catch (_) {
    record = new Record(superusers);
  }
  record.setEmail(${JSON.stringify(superuser.email)});
  record.setPassword(${JSON.stringify(superuser.password)});
  app.save(record);
});
`;
}

/**
 * What a `pocketbase migrate up` run that carried the superuser migration printed, read off its output.
 *
 * The exit code does not tell: PocketBase v0.39 ignores the error a command returns (`RootCmd.Execute()`),
 * so `migrate up` prints `Error: failed to apply migration ...` and still exits 0. Only the line
 * `Applied 1_nxs_harness_superuser.js` shows that the superuser exists.
 * - `applied`: the migration ran and was committed;
 * - `busy`: SQLite refused the write (`database is locked`, `SQLITE_BUSY_SNAPSHOT` (517)): a running
 *   server wrote at the same time (its installer goroutine creates `__pbinstaller@example.com` right after
 *   it starts serving); the migration rolled back and may be run again;
 * - `failed`: anything else (the output says what).
 * @internal
 */
export function superuserMigrationOutcome(output: string): "applied" | "busy" | "failed" {
  if (output.includes(`Applied ${SUPERUSER_MIGRATION_FILE}`)) return "applied";
  if (/database is locked|SQLITE_BUSY|\(5(17)?\)/.test(output)) return "busy";
  return "failed";
}

/** A random password that satisfies PocketBase's superuser rules (>= 10 chars). @internal */
export function randomPassword(): string {
  return `pw-${crypto.randomUUID()}`;
}

/** A short random id for names. @internal */
export function shortId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/** The file of the nxs-sync hooks bundle in its directory. */
const NXS_HOOKS_FILE = "nxs.pb.js";

/**
 * Finds the nxs-sync `pb_hooks` bundle (`@nxs-sync/pocketbase/pb_hooks`): `$NXS_PB_HOOKS_DIR`,
 * else `packages/pocketbase/pb_hooks` in a repository above the cwd, else the installed
 * `@nxs-sync/pocketbase` package.
 * @returns the directory holding `nxs.pb.js`, or undefined when none is found
 */
export function findNxsHooksDir(): string | undefined {
  const env = process.env.NXS_PB_HOOKS_DIR;
  if (env) return existsSync(join(env, NXS_HOOKS_FILE)) ? resolve(env) : undefined;
  for (let dir = resolve(process.cwd()); ; dir = dirname(dir)) {
    const candidate = join(dir, "packages", "pocketbase", "pb_hooks");
    if (existsSync(join(candidate, NXS_HOOKS_FILE))) return candidate;
    if (dirname(dir) === dir) break;
  }
  try {
    const pkg = createRequire(join(process.cwd(), "noop.js")).resolve("@nxs-sync/pocketbase/package.json");
    const candidate = join(dirname(pkg), "pb_hooks");
    if (existsSync(join(candidate, NXS_HOOKS_FILE))) return candidate;
  } catch {
    // not installed
  }
  return undefined;
}

/**
 * The nxs-sync hooks bundle directory a server gets for the `nxsHooks` option.
 * @internal
 */
export function nxsHooksDirFor(option: boolean | string | undefined): string | undefined {
  if (option === false) return undefined;
  if (typeof option === "string") {
    if (!existsSync(join(option, NXS_HOOKS_FILE))) {
      throw new HarnessError("harness/start-failed", `nxsHooks: no ${NXS_HOOKS_FILE} in ${option}`);
    }
    return option;
  }
  const found = findNxsHooksDir();
  if (found === undefined && option === true) {
    throw new HarnessError(
      "harness/start-failed",
      "nxsHooks: the nxs-sync pb_hooks bundle was not found (set NXS_PB_HOOKS_DIR, or install @nxs-sync/pocketbase)",
    );
  }
  return found;
}

/**
 * A hook file's name, checked: a plain file name (no directory), so a file lands in the hooks dir.
 * @internal
 */
export function checkHookFileName(file: string): string {
  if (!/^[A-Za-z0-9][\w.-]*\.js$/.test(file)) {
    throw new HarnessError(
      "harness/start-failed",
      `hookFiles: ${JSON.stringify(file)} is not a *.js file name`,
    );
  }
  return file;
}

/**
 * Copies the `*.js` files of each directory (in order; later ones win) into `target`, then writes
 * `files` there.
 * @internal
 */
export async function copyHookFiles(
  target: string,
  sources: readonly (string | undefined)[],
  files: readonly HookFile[] = [],
): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const source of sources) {
    if (source === undefined) continue;
    for (const entry of readdirSync(source, { withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(".js")) {
        await copyFile(join(source, entry.name), join(target, entry.name));
      }
    }
  }
  for (const f of files) await writeFile(join(target, checkHookFileName(f.file)), f.source);
}
