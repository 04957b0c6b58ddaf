import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import type PocketBase from "pocketbase";
import {
  GenericContainer,
  getContainerRuntimeClient,
  ImageName,
  Network,
  type StartedNetwork,
  type StartedTestContainer,
  Wait,
} from "testcontainers";
import {
  checkHookFileName,
  findNxsHooksDir,
  nxsHooksDirFor,
  prepareServer,
  randomPassword,
  SUPERUSER_MIGRATION_FILE,
  type SuperuserSession,
  sessionClient,
  shortId,
  superuserMigration,
  superuserMigrationOutcome,
  waitForHealth,
} from "./admin.js";
import { HarnessError } from "./errors.js";
import { DEFAULT_POCKETBASE_VERSION, ensurePocketBaseBinary } from "./pocketbase-binary.js";
import { findFreePort } from "./pocketbase-process.js";
import type { CommonPocketBaseOptions, PocketBaseServer, Superuser } from "./types.js";

/** The port PocketBase listens on inside its container. */
export const CONTAINER_PORT = 8090;

/**
 * The Dockerfile used when `docker/pocketbase/Dockerfile` cannot be found (e.g. from the published package).
 * A unit test keeps it equal to the file in the repository.
 */
export const POCKETBASE_DOCKERFILE = `# PocketBase in a container with no base image (no registry pull is needed or possible).
# Built by @nxs-sync/testing (ensurePocketBaseImage): the build context is a temp dir holding this file,
# the static PocketBase binary resolved by ensurePocketBaseBinary() as ./pocketbase, ./rootfs with
# empty, writable /pb_data, /pb_hooks, /pb_migrations and /tmp (mode 1777), and ./pb_hooks holding the
# nxs-sync hooks bundle (packages/pocketbase/pb_hooks: origin binding and GET /nxs/version), baked in.
FROM scratch
COPY rootfs/ /
COPY pb_hooks/ /pb_hooks/
COPY pocketbase /pocketbase
ENV TMPDIR=/tmp
WORKDIR /pb_data
EXPOSE 8090
ENTRYPOINT ["/pocketbase"]
CMD ["serve", "--http=0.0.0.0:8090", "--dir=/pb_data", "--automigrate=false", "--dev=false", "--hooksDir=/pb_hooks", "--hooksWatch=false", "--migrationsDir=/pb_migrations"]
`;

/** Where a container gets the one-shot superuser migration (not the server's `--migrationsDir`). */
const HARNESS_MIGRATIONS_DIR = "/nxs_harness_migrations";

/** A hook installed in every harness container: `GET /api/nxs/probe?url=…` (superuser only) fetches `url`. */
/** How many times the container's superuser migration is run when SQLite reports the database busy. */
const SUPERUSER_MIGRATION_ATTEMPTS = 8;

const PROBE_HOOK = `/// nxs-sync test harness: lets a test check what this container can reach.
routerAdd("GET", "/api/nxs/probe", (e) => {
  const url = e.request.url.query().get("url");
  try {
    const res = $http.send({ url: url, method: "GET", timeout: 2 });
    return e.json(200, { ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, error: "" });
  } catch (err) {
    return e.json(200, { ok: false, status: 0, error: String(err) });
  }
}, $apis.requireSuperuserAuth());
`;

/** Whether a Docker engine answers, and why not. */
export interface DockerStatus {
  available: boolean;
  /** Why it is unavailable (empty when available). */
  reason: string;
  /** Server version when available. */
  version?: string;
}

let dockerStatus: Promise<DockerStatus> | undefined;

/**
 * Defaults for testcontainers on engines that cannot pull images: no Ryuk reaper (the harness removes its own
 * containers) and `localhost` as the host. Explicit settings in the environment win.
 */
function applyTestcontainersDefaults(): void {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";
}

/**
 * Checks (once per process) whether testcontainers can reach a Docker engine. `NXS_HARNESS_DOCKER=off` makes it
 * report unavailable (container suites then skip, or fail under `CI`).
 *
 * @returns `{ available, reason, version }`; never throws
 * @example
 * ```ts
 * const docker = await dockerAvailable();
 * describe.skipIf(!docker.available)(`containers${docker.available ? "" : ` (skipped: ${docker.reason})`}`, () => {
 *   it("starts a container", async () => (await startPocketBaseContainer()).destroy());
 * });
 * ```
 */
export function dockerAvailable(): Promise<DockerStatus> {
  dockerStatus ??= (async (): Promise<DockerStatus> => {
    applyTestcontainersDefaults();
    if (process.env.NXS_HARNESS_DOCKER === "off") {
      return { available: false, reason: "container mode disabled by NXS_HARNESS_DOCKER=off" };
    }
    try {
      const client = await Promise.race([
        getContainerRuntimeClient(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 15 s")), 15_000).unref(),
        ),
      ]);
      return { available: true, reason: "", version: String(client.info.containerRuntime.serverVersion) };
    } catch (error) {
      return {
        available: false,
        reason: `no Docker engine answers (${(error as Error).message}); start one with \`bash scripts/ensure-docker.sh\``,
      };
    }
  })();
  return dockerStatus;
}

/**
 * Synchronous variant of {@link dockerAvailable} for test collection: `docker info` through the CLI.
 *
 * @returns the status; `reason` names what failed
 */
export function dockerAvailableSync(): DockerStatus {
  if (process.env.NXS_HARNESS_DOCKER === "off") {
    return { available: false, reason: "container mode disabled by NXS_HARNESS_DOCKER=off" };
  }
  const res = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], {
    encoding: "utf8",
    timeout: 15_000,
  });
  if (res.error) return { available: false, reason: `docker CLI not usable (${res.error.message})` };
  if (res.status !== 0) {
    return {
      available: false,
      reason: `no Docker engine answers (${(res.stderr || res.stdout).trim().split("\n")[0]}); start one with \`bash scripts/ensure-docker.sh\``,
    };
  }
  return { available: true, reason: "", version: res.stdout.trim() };
}

/** Finds docker/pocketbase/Dockerfile walking up from `start`. */
function findRepoDockerfile(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    const candidate = join(dir, "docker", "pocketbase", "Dockerfile");
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

const fileHashes = new Map<string, string>();

/** sha256 of a file, memoized by path, size and mtime (the binary is hashed once per process). */
async function sha256File(path: string): Promise<string> {
  const info = await stat(path);
  const key = `${path}:${info.size}:${info.mtimeMs}`;
  const known = fileHashes.get(key);
  if (known) return known;
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  const digest = hash.digest("hex");
  fileHashes.set(key, digest);
  return digest;
}

/** Options of {@link ensurePocketBaseImage}. */
export interface EnsurePocketBaseImageOptions {
  /** PocketBase tag (default v0.39.11). */
  version?: string;
  /** Binary to put in the image (default {@link ensurePocketBaseBinary}). */
  bin?: string;
  /** Dockerfile path (default `docker/pocketbase/Dockerfile` found above the cwd, else {@link POCKETBASE_DOCKERFILE}). */
  dockerfile?: string;
  /** The nxs-sync hooks bundle baked into `/pb_hooks` (default `findNxsHooksDir()`; none when not found). */
  hooksDir?: string;
}

const imageBuilds = new Map<string, Promise<string>>();

/**
 * Builds (once; cached by tag) the `FROM scratch` PocketBase image and returns its tag,
 * `nxs-sync/pocketbase:<version>-<hash of Dockerfile and binary>`.
 *
 * @param options - version, binary, Dockerfile
 * @returns the image tag
 * @throws HarnessError `harness/docker-unavailable` when the build fails
 */
export async function ensurePocketBaseImage(options: EnsurePocketBaseImageOptions = {}): Promise<string> {
  const version = options.version ?? DEFAULT_POCKETBASE_VERSION;
  const bin = options.bin ?? (await ensurePocketBaseBinary({ version })).path;
  const dockerfilePath = options.dockerfile ?? findRepoDockerfile(process.cwd());
  const dockerfile = dockerfilePath ? readFileSync(dockerfilePath, "utf8") : POCKETBASE_DOCKERFILE;
  const bundleDir = options.hooksDir ?? findNxsHooksDir();
  const bundle = bundleDir
    ? readdirSync(bundleDir)
        .filter((f) => f.endsWith(".js"))
        .sort()
        .map((f) => ({ name: f, text: readFileSync(join(bundleDir, f), "utf8") }))
    : [];
  const digest = createHash("sha256")
    .update(dockerfile)
    .update(await sha256File(bin));
  for (const f of bundle) digest.update(`\0${f.name}\0${f.text}`);
  const hash = digest.digest("hex").slice(0, 12);
  const tag = `nxs-sync/pocketbase:${version}-${hash}`;
  let pending = imageBuilds.get(tag);
  if (!pending) {
    pending = (async () => {
      const client = await getContainerRuntimeClient();
      if (await client.image.exists(ImageName.fromString(tag))) return tag;
      const context = await mkdtemp(join(tmpdir(), "nxs-pb-image-"));
      try {
        await writeFile(join(context, "Dockerfile"), dockerfile);
        await copyFile(bin, join(context, "pocketbase"));
        await chmod(join(context, "pocketbase"), 0o755);
        for (const d of ["pb_data", "pb_hooks", "pb_migrations", "tmp"])
          await mkdir(join(context, "rootfs", d), { recursive: true });
        await mkdir(join(context, "pb_hooks"), { recursive: true });
        for (const f of bundle) await writeFile(join(context, "pb_hooks", f.name), f.text);
        await chmod(join(context, "rootfs", "tmp"), 0o1777);
        await GenericContainer.fromDockerfile(context).build(tag, { deleteOnExit: false });
      } catch (error) {
        throw new HarnessError(
          "harness/docker-unavailable",
          `building ${tag} failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      } finally {
        await rm(context, { recursive: true, force: true });
      }
      return tag;
    })();
    imageBuilds.set(tag, pending);
    pending.catch(() => imageBuilds.delete(tag));
  }
  return pending;
}

/** Binds the mapped port on 127.0.0.1 only (testcontainers binds all interfaces). */
class LoopbackContainer extends GenericContainer {
  bindLoopback(containerPort: number, hostPort: number): this {
    this.hostConfig.PortBindings = {
      ...this.hostConfig.PortBindings,
      [`${containerPort}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(hostPort) }],
    };
    return this;
  }
}

/** Options of {@link startPocketBaseContainer}. */
export interface ContainerPocketBaseOptions extends CommonPocketBaseOptions {
  /** User-defined network to join (default: a new one, removed with the container). */
  network?: StartedNetwork;
  /** Image tag (default {@link ensurePocketBaseImage}). */
  image?: string;
  /** Host port on 127.0.0.1 mapped to 8090 (default: a free one; the same after restart/reconnect). */
  hostPort?: number;
}

/** A PocketBase container (see {@link PocketBaseServer}); it can be cut off its network. */
export interface ContainerPocketBase extends PocketBaseServer {
  readonly mode: "container";
  /** Container name, also its DNS name on the network. */
  readonly containerName: string;
  /** URL other containers on the network use: `http://<name>:8090`. */
  readonly internalUrl: string;
  /** The host port on 127.0.0.1. */
  readonly hostPort: number;
  /** The network it is attached to. */
  readonly network: StartedNetwork;
  /** The testcontainers handle (escape hatch). */
  readonly container: StartedTestContainer;
  /** `docker network disconnect`: the node becomes unreachable from the host and the other containers. */
  disconnect(): Promise<void>;
  /** `docker network connect` with its alias again, then waits until healthy from the host. */
  reconnect(): Promise<void>;
  /**
   * Asks the server inside this container to GET `<baseUrl>/api/health` (through a harness hook, 2 s timeout),
   * e.g. with another node's `internalUrl`.
   * @param baseUrl - a PocketBase base URL as seen from inside the container
   * @returns true when it answered 200
   */
  canReach(baseUrl: string): Promise<boolean>;
  /** Runs a command in the container (`/pocketbase …`; the image has no shell). */
  exec(command: string[]): Promise<{ exitCode: number; output: string }>;
}

/** Splits Docker's multiplexed log stream (8-byte frame headers) into text. */
function demuxDockerLogs(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2 || buf[i] === 0) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  if (i === 0) return buf.toString("utf8");
  return Buffer.concat(out).toString("utf8");
}

/**
 * Starts PocketBase in a Docker container (image from {@link ensurePocketBaseImage}) on a user-defined network,
 * with the port mapped to 127.0.0.1, a superuser (a one-shot migration applied with `migrate up` via exec: the
 * password is on no command line) and the batch API on.
 *
 * @param options - network, image, host port, plus the common options
 * @returns a handle with the process-mode shape plus `disconnect`/`reconnect`/`canReach`/`exec`
 * @throws HarnessError `harness/docker-unavailable` without an engine; `harness/start-failed` with the log
 * @example
 * ```ts
 * const node = await startPocketBaseContainer();
 * await node.disconnect(); // unreachable now
 * await node.reconnect();
 * await node.destroy();
 * ```
 */
export async function startPocketBaseContainer(
  options: ContainerPocketBaseOptions = {},
): Promise<ContainerPocketBase> {
  const status = await dockerAvailable();
  if (!status.available) throw new HarnessError("harness/docker-unavailable", status.reason);
  // The global setup builds the image once and passes its tag on, so workers skip hashing the binary.
  const preset =
    (options.version ?? DEFAULT_POCKETBASE_VERSION) === DEFAULT_POCKETBASE_VERSION
      ? process.env.NXS_PB_IMAGE
      : undefined;
  const image = options.image ?? preset ?? (await ensurePocketBaseImage({ version: options.version }));
  for (let attempt = 1; ; attempt++) {
    try {
      return await startContainerOnce(options, image);
    } catch (error) {
      // Another process took the free host port between the probe and the bind: try another one.
      const clash = /port is already allocated|address already in use/i.test((error as Error).message);
      if (!clash || options.hostPort !== undefined || attempt >= 3) throw error;
    }
  }
}

async function startContainerOnce(
  options: ContainerPocketBaseOptions,
  image: string,
): Promise<ContainerPocketBase> {
  const name = options.name ?? `nxs-pb-${shortId()}`;
  const ownNetwork = options.network === undefined;
  const network = options.network ?? (await createDockerNetwork());
  const hostPort = options.hostPort ?? (await findFreePort());
  const url = `http://127.0.0.1:${hostPort}`;
  const internalUrl = `http://${name}:${CONTAINER_PORT}`;
  const superuser: Superuser = {
    email: options.superuser?.email ?? "admin@nxs-sync.test",
    password: options.superuser?.password ?? randomPassword(),
  };
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  // The image has the nxs-sync bundle baked into /pb_hooks. Without it (nxsHooks: false) the server
  // reads /pb_hooks_plain instead; a bundle directory given as a string replaces the baked one.
  const nxsHooks = options.nxsHooks === false ? undefined : nxsHooksDirFor(options.nxsHooks);
  const hooksTarget = options.nxsHooks === false ? "/pb_hooks_plain" : "/pb_hooks";

  const builder = new LoopbackContainer(image)
    .withName(name)
    // No aliases: with aliases testcontainers also attaches the default bridge, and a disconnect from this
    // network would leave the node reachable. The container name resolves on a user-defined network anyway.
    .withNetwork(network)
    .withExposedPorts({ container: CONTAINER_PORT, host: hostPort })
    .bindLoopback(CONTAINER_PORT, hostPort)
    .withLabels({ "nxs-sync.harness": "pocketbase" })
    .withCommand([
      "serve",
      `--http=0.0.0.0:${CONTAINER_PORT}`,
      "--dir=/pb_data",
      "--automigrate=false",
      "--dev=false",
      `--hooksDir=${hooksTarget}`,
      "--hooksWatch=false",
      "--migrationsDir=/pb_migrations",
      ...(options.extraArgs ?? []),
    ])
    .withCopyContentToContainer([{ content: PROBE_HOOK, target: `${hooksTarget}/nxs_probe.pb.js` }])
    // The read timeout is also the poll interval (default 1 s): poll every 200 ms.
    .withWaitStrategy(Wait.forHttp("/api/health", CONTAINER_PORT).forStatusCode(200).withReadTimeout(200))
    .withStartupTimeout(timeoutMs);
  if (typeof options.nxsHooks === "string" && nxsHooks !== undefined)
    builder.withCopyDirectoriesToContainer([{ source: nxsHooks, target: hooksTarget }]);
  if (options.hooksDir)
    builder.withCopyDirectoriesToContainer([{ source: options.hooksDir, target: hooksTarget }]);
  if (options.hookFiles !== undefined && options.hookFiles.length > 0) {
    builder.withCopyContentToContainer(
      options.hookFiles.map((f) => ({
        content: f.source,
        target: `${hooksTarget}/${checkHookFileName(f.file)}`,
      })),
    );
  }
  if (options.migrationsDir) {
    builder.withCopyDirectoriesToContainer([{ source: options.migrationsDir, target: "/pb_migrations" }]);
  }

  let container: StartedTestContainer;
  try {
    container = await builder.start();
  } catch (error) {
    let log = "";
    try {
      const client = await getContainerRuntimeClient();
      const c = client.container.getById(name);
      log = demuxDockerLogs((await c.logs({ stdout: true, stderr: true })) as unknown as Buffer);
      await c.remove({ force: true, v: true });
    } catch {
      // no container was created
    }
    if (ownNetwork) await network.stop().catch(() => undefined);
    throw new HarnessError(
      "harness/start-failed",
      `PocketBase container "${name}" failed to start: ${(error as Error).message}\n--- server log ---\n${log.slice(-8000)}`,
      { cause: error },
    );
  }

  const client = await getContainerRuntimeClient();
  const docker = client.container.getById(container.getId());
  const dockerNetwork = client.network.getById(network.getId());
  let stopped = false;
  let detached = false;
  let destroyed = false;
  let finalLogs: string | undefined;

  const exec = async (command: string[]) => {
    const res = await container.exec(command);
    return { exitCode: res.exitCode, output: res.output };
  };
  const logs = async (): Promise<string> => {
    if (finalLogs !== undefined) return finalLogs;
    const raw = await docker.logs({ stdout: true, stderr: true, follow: false });
    return demuxDockerLogs(raw as unknown as Buffer);
  };

  let session: SuperuserSession;
  try {
    // The password goes in a one-shot migration file (mode 0600), never on a command line (`ps` in the
    // container shows exec arguments). The image has no shell to delete it: it is emptied after use.
    const target = `${HARNESS_MIGRATIONS_DIR}/${SUPERUSER_MIGRATION_FILE}`;
    await container.copyContentToContainer([{ content: superuserMigration(superuser), target, mode: 0o600 }]);
    try {
      // The server is up, and its installer goroutine writes a placeholder superuser right after it starts
      // serving: the one-shot `migrate up` may meet that write and roll back ("database is locked"). It
      // exits 0 even then, so the output decides; a busy database is tried again (seen 3 in 10 runs of a
      // three-container cluster on a loaded 2-core machine before this loop).
      for (let attempt = 1; ; attempt++) {
        const res = await exec([
          "/pocketbase",
          "migrate",
          "up",
          "--dir=/pb_data",
          `--migrationsDir=${HARNESS_MIGRATIONS_DIR}`,
          `--hooksDir=${hooksTarget}`,
        ]);
        const outcome = res.exitCode === 0 ? superuserMigrationOutcome(res.output) : "failed";
        if (outcome === "applied") break;
        if (outcome === "failed" || attempt >= SUPERUSER_MIGRATION_ATTEMPTS)
          throw new Error(
            `superuser migration did not apply (attempt ${attempt}, exit code ${res.exitCode}): ${res.output}`,
          );
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    } finally {
      await container.copyContentToContainer([{ content: "// applied\n", target, mode: 0o600 }]);
    }
    session = await prepareServer(url, superuser, options.batch);
  } catch (error) {
    const log = await logs().catch(() => "");
    await docker.remove({ force: true, v: true }).catch(() => undefined);
    if (ownNetwork) await network.stop().catch(() => undefined);
    throw new HarnessError(
      "harness/start-failed",
      `PocketBase container "${name}" setup failed: ${(error as Error).message}\n--- server log ---\n${log.slice(-8000)}`,
      { cause: error },
    );
  }

  const waitUntilNotRunning = async () => {
    const deadline = performance.now() + 20_000;
    while ((await docker.inspect()).State.Running) {
      if (performance.now() > deadline)
        throw new HarnessError("harness/timeout", `container ${name} did not stop`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const handle: ContainerPocketBase = {
    mode: "container",
    name,
    containerName: name,
    url,
    internalUrl,
    hostPort,
    network,
    container,
    superuser,
    get stopped() {
      return stopped;
    },
    client(): PocketBase {
      return sessionClient(url, session);
    },
    async stop() {
      if (stopped) return;
      const state = (await docker.inspect()).State;
      if (state.Paused) await docker.unpause();
      await docker.stop({ t: 10 }).catch((e: { statusCode?: number }) => {
        if (e.statusCode !== 304) throw e; // 304: already stopped
      });
      stopped = true;
    },
    async kill() {
      if (stopped) return;
      if ((await docker.inspect()).State.Paused) await docker.unpause();
      await docker.kill({ signal: "SIGKILL" });
      await waitUntilNotRunning();
      stopped = true;
    },
    async restart() {
      if (destroyed)
        throw new HarnessError("harness/start-failed", `PocketBase container "${name}" was destroyed`);
      const state = (await docker.inspect()).State;
      if (state.Paused) await docker.unpause();
      try {
        await container.restart({ timeout: 10 });
        stopped = false;
        if (!detached) await waitForHealth(url, timeoutMs, () => undefined);
      } catch (error) {
        throw new HarnessError(
          "harness/start-failed",
          `PocketBase container "${name}" did not come back after restart: ${(error as Error).message}\n--- server log ---\n${(await logs().catch(() => "")).slice(-8000)}`,
          { cause: error },
        );
      }
    },
    async pause() {
      await docker.pause();
    },
    async resume() {
      await docker.unpause();
    },
    logs,
    async disconnect() {
      if (detached) return;
      await dockerNetwork.disconnect({ Container: container.getId(), Force: true });
      detached = true;
    },
    async reconnect() {
      if (!detached) return;
      await dockerNetwork.connect({ Container: container.getId(), EndpointConfig: { Aliases: [name] } });
      detached = false;
      if (!stopped) await waitForHealth(url, timeoutMs, () => undefined);
    },
    async canReach(target: string) {
      const pb = handle.client();
      const res = await pb.send<{ ok: boolean; error: string }>("/api/nxs/probe", {
        query: { url: `${target.replace(/\/+$/, "")}/api/health` },
      });
      if (process.env.NXS_HARNESS_DEBUG)
        process.stderr.write(`[nxs-harness] ${name} -> ${target}: ${JSON.stringify(res)}\n`);
      return res.ok;
    },
    exec,
    async destroy(opts = {}) {
      if (destroyed) return;
      destroyed = true;
      finalLogs = await logs().catch(() => "");
      if (opts.keepData) {
        try {
          const dir = await mkdtemp(join(process.env.NXS_PB_TEST_DATA_DIR ?? tmpdir(), `nxs-pb-${name}-`));
          const tar = join(dir, "pb_data.tar");
          await pipeline(await container.copyArchiveFromContainer("/pb_data"), createWriteStream(tar));
          await writeFile(join(dir, "pocketbase.log"), finalLogs);
          process.stderr.write(
            `[nxs-harness] kept data of container "${name}" in ${tar} (log: ${dir}/pocketbase.log)\n`,
          );
        } catch (error) {
          process.stderr.write(
            `[nxs-harness] could not keep data of "${name}": ${(error as Error).message}\n`,
          );
        }
      }
      await docker.remove({ force: true, v: true }).catch(() => undefined);
      if (ownNetwork) await network.stop().catch(() => undefined);
    },
    [Symbol.asyncDispose]() {
      return handle.destroy();
    },
  };
  return handle;
}

/**
 * Creates a user-defined Docker network for a group of containers.
 *
 * @returns the started network; call `stop()` after removing its containers
 */
export function createDockerNetwork(): Promise<StartedNetwork> {
  applyTestcontainersDefaults();
  return new Network().start();
}
