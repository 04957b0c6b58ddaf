/**
 * Shared by the deployment tests of examples/compose: what they need on the machine, the image
 * build, and running commands with their output kept for the failure message.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DockerStatus } from "@nxs-sync/testing";
import { dockerStatusForTests } from "@nxs-sync/testing/vitest";

/** The repository root. */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** examples/compose. */
export const composeDir = fileURLToPath(new URL("../", import.meta.url));

/** The result of a finished command. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to its end (never through a shell), with a bound.
 * @param cmd - The program.
 * @param args - Its arguments.
 * @param options - Working dir, extra environment, time bound (default 120 s).
 * @returns Exit code and output.
 */
export function run(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs a command and throws with its output when it does not exit 0.
 * @returns Its stdout.
 * @throws Error naming the command, its exit code and the end of its output.
 */
export async function runOk(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${r.code}:\n${`${r.stdout}\n${r.stderr}`.trim().slice(-4000)}`,
    );
  }
  return r.stdout;
}

/**
 * Docker and Docker Compose v1 (`docker-compose`): both or the reason.
 * @returns A status in the shape `describeWithDocker` takes (it fails under CI=true, skips otherwise).
 */
export function composeStatus(): DockerStatus {
  const docker = dockerStatusForTests();
  if (!docker.available) return docker;
  const r = spawnSync("docker-compose", ["version", "--short"], { encoding: "utf8", timeout: 30_000 });
  if (r.error || r.status !== 0) {
    return {
      available: false,
      reason: `docker-compose does not answer (${r.error?.message ?? r.stderr.trim()}): run \`bash scripts/ensure-compose.sh\``,
    };
  }
  return { available: true, reason: "", version: r.stdout.trim() };
}

/** Tags of the images of one arch, and their sizes in bytes. */
export interface ImageTags {
  readonly pocketbase: string;
  readonly gateway: string;
  readonly cli: string;
  /** With `{ nats: true }` only. */
  readonly nats?: string;
  readonly sizes: Readonly<Record<"pocketbase" | "gateway" | "cli", number>>;
}

/**
 * Builds (or finds, by content hash) the deployment images, removing older hash tags of the arch:
 * `node scripts/build-images.mjs --prune`.
 * @param arch - `amd64` or `arm64`.
 * @param options - `nats`: also the NATS image (`--nats`).
 * @returns Their tags.
 * @throws Error with the build's output when it fails.
 */
export async function buildImages(
  arch: "amd64" | "arm64",
  options: { nats?: boolean } = {},
): Promise<ImageTags> {
  const out = await runOk(
    process.execPath,
    ["scripts/build-images.mjs", "--arch", arch, "--json", "--prune", ...(options.nats ? ["--nats"] : [])],
    {
      timeoutMs: 600_000,
    },
  );
  const tags = (JSON.parse(out) as Record<string, ImageTags>)[arch];
  if (!tags) throw new Error(`scripts/build-images.mjs printed no tags for ${arch}: ${out}`);
  return tags;
}

/**
 * The Compose files' image variables for built images (`NXS_PB_IMAGE`, `NXS_GATEWAY_IMAGE`,
 * `NXS_CLI_IMAGE`, and `NXS_NATS_IMAGE` when the NATS image was built).
 * @param images - From {@link buildImages}.
 * @returns The variables.
 */
export function imageEnv(images: ImageTags): NodeJS.ProcessEnv {
  return {
    NXS_PB_IMAGE: images.pocketbase,
    NXS_GATEWAY_IMAGE: images.gateway,
    NXS_CLI_IMAGE: images.cli,
    ...(images.nats === undefined ? {} : { NXS_NATS_IMAGE: images.nats }),
  };
}

/** A temp copy of Compose files with fresh secrets, as a newcomer makes it. */
export interface ComposeDir {
  readonly dir: string;
  /** The superuser written into `secrets/superuser.env`. */
  readonly superuser: { readonly email: string; readonly password: string };
}

/**
 * Copies `files` of examples/compose unchanged into a new temp dir and writes fresh secrets there
 * (examples/k3s/make-secrets.mjs, with `--nats` when the files include compose.nats.yml, and a
 * `superuser.env` with a random password).
 * @param prefix - The temp dir's name prefix.
 * @param files - Files of examples/compose to copy.
 * @param email - The superuser's email.
 * @returns The dir and the superuser.
 */
export async function prepareComposeDir(
  prefix: string,
  files: readonly string[],
  email: string,
): Promise<ComposeDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  for (const f of files) await copyFile(join(composeDir, f), join(dir, f));
  await mkdir(join(dir, "secrets"));
  const nats = files.includes("compose.nats.yml") ? ["--nats"] : [];
  await runOk(process.execPath, [
    join(repoRoot, "examples", "k3s", "make-secrets.mjs"),
    join(dir, "secrets"),
    ...nats,
  ]);
  const superuser = { email, password: randomBytes(18).toString("base64url") };
  await writeFile(
    join(dir, "secrets", "superuser.env"),
    `NXS_SUPERUSER_EMAIL=${superuser.email}\nNXS_SUPERUSER_PASSWORD=${superuser.password}\n`,
    { mode: 0o600 },
  );
  return { dir, superuser };
}

/**
 * What a Compose project left on the engine: its containers and its volumes (ids, one per line).
 * @param project - The `-p` name.
 * @returns Both listings, trimmed (empty when nothing is left).
 */
export async function projectLeftovers(project: string): Promise<{ containers: string; volumes: string }> {
  const filter = `label=com.docker.compose.project=${project}`;
  const containers = await runOk("docker", ["ps", "-aq", "--filter", filter]);
  const volumes = await runOk("docker", ["volume", "ls", "-q", "--filter", filter]);
  return { containers: containers.trim(), volumes: volumes.trim() };
}
