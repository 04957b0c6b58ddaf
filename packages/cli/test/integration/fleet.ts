// Shared set-up of the CLI's integration tests: real PocketBase servers with one superuser, the
// project's hook pieces, and `nxs-sync` run in-process with captured output.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Change, encodeHlc } from "@nxs-sync/core";
import { encodeChangeRecord } from "@nxs-sync/pocketbase";
import type { ProcessPocketBase, ProcessPocketBaseOptions } from "@nxs-sync/testing";
import type { ServerTracker } from "@nxs-sync/testing/vitest";
import PocketBase from "pocketbase";
import { runCli } from "../../src/index.js";
import { loadProjectRegistry } from "../../src/registry.js";

/** One superuser on every server of a test (a random password, checked never to be printed). */
export const SUPERUSER = {
  email: "ops@nxs-sync.test",
  password: `su-${randomBytes(12).toString("hex")}`,
};

/** Environment holding the superuser credentials. */
export const SUPERUSER_ENV = {
  NXS_SUPERUSER_EMAIL: SUPERUSER.email,
  NXS_SUPERUSER_PASSWORD: SUPERUSER.password,
};

/** What one run of the CLI printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** `stdout` parsed (for `--json` runs). */
  json<T = Record<string, unknown>>(): T;
}

/**
 * Runs `nxs-sync` in-process. A `status` without `--stale-after` gets a day: a test that is not
 * about a stale replicator must not depend on how long ago (by the wall clock) its replicator stopped.
 * @param argv - Arguments.
 * @param env - Environment (default: the superuser's).
 * @param signal - Stop signal (default: never).
 * @param now - The clock `status` judges ages by (default: the real one).
 */
export async function cli(
  argv: readonly string[],
  env: Record<string, string | undefined> = SUPERUSER_ENV,
  signal: AbortSignal = new AbortController().signal,
  now?: () => number,
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const args =
    argv[0] === "status" && !argv.includes("--stale-after") ? [...argv, "--stale-after", "86400"] : argv;
  const code = await runCli(args, {
    env,
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    signal,
    ...(now === undefined ? {} : { now }),
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

/** `--server a --server b …`. */
export const serverArgs = (servers: readonly { url: string }[]): string[] =>
  servers.flatMap((s) => ["--server", s.url]);

/** Starts a bare server (no nxs schema) with the superuser and every hook piece of the project. */
export async function startFleetServer(
  servers: ServerTracker,
  name: string,
  options: ProcessPocketBaseOptions = {},
): Promise<ProcessPocketBase> {
  const { registry } = await loadProjectRegistry();
  return servers.start({
    name,
    superuser: SUPERUSER,
    batch: false,
    hookFiles: registry.hooks().filter((p) => p.name !== "nxs"),
    ...options,
  });
}

/** A new temp dir for a test's files (identities, backups). */
export const tempDir = (): Promise<string> => mkdtemp(join(tmpdir(), "nxs-cli-"));

/** Asserts the superuser password appears in none of a run's outputs. */
export function leaksPassword(run: CliRun, password = SUPERUSER.password): boolean {
  return run.stdout.includes(password) || run.stderr.includes(password);
}

/** A gateway of an identities file. */
export interface FileNode {
  readonly id: string;
  readonly email: string;
  readonly password: string;
}

/**
 * Writes changes `from..from+count-1` of origin `<node>.t` to a doc on one server, as the gateway
 * (its own login, as a gateway's transport would push them).
 */
export async function writeChanges(
  url: string,
  node: FileNode,
  doc: string,
  from: number,
  count: number,
): Promise<void> {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  await pb.collection("nxs_nodes").authWithPassword(node.email, node.password);
  const origin = `${node.id}.t`;
  for (let seq = from; seq < from + count; seq++) {
    const change = {
      doc,
      origin,
      seq,
      hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
      ops: [{ kind: "set", path: ["k", String(seq)], value: seq }],
    } as unknown as Change;
    await pb.collection("nxs_changes").create(encodeChangeRecord([change], node.id));
  }
}

/** Reads an identities file. */
export async function readIds(
  path: string,
): Promise<{ replicator: FileNode; nodes: (FileNode & { name: string })[] }> {
  return JSON.parse(await readFile(path, "utf8"));
}

/**
 * Runs `nxs-sync replicator` between servers until `stop` aborts.
 * @returns The run's exit code when it stops.
 */
export function runReplicator(
  urls: readonly string[],
  replicator: FileNode,
  stop: AbortSignal,
): Promise<number> {
  const quiet = () => {};
  return runCli(["replicator", ...urls.flatMap((u) => ["--server", u]), "--interval", "200"], {
    env: { NXS_REPLICATOR_EMAIL: replicator.email, NXS_REPLICATOR_PASSWORD: replicator.password },
    stdout: { write: () => true },
    stderr: { write: () => true },
    signal: stop,
    logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  });
}

/** Two servers set up by `nxs-sync setup`, a temp dir and the identities file in it. */
export interface SetUpFleet {
  readonly a: ProcessPocketBase;
  readonly b: ProcessPocketBase;
  readonly dir: string;
  readonly ids: string;
}

/**
 * Starts two servers (`<prefix>-a`, `<prefix>-b`) and runs `nxs-sync setup` on both.
 * @throws When setup does not exit 0.
 */
export async function startSetUpFleet(servers: ServerTracker, prefix: string): Promise<SetUpFleet> {
  const a = await startFleetServer(servers, `${prefix}-a`);
  const b = await startFleetServer(servers, `${prefix}-b`);
  const dir = await tempDir();
  const ids = join(dir, "ids.json");
  const setup = await cli(["setup", "--server", a.url, "--server", b.url, "--identities", ids]);
  if (setup.code !== 0) throw new Error(`setup exited ${setup.code}: ${setup.stderr}`);
  return { a, b, dir, ids };
}
