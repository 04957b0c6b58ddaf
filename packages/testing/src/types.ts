import type PocketBase from "pocketbase";

/** How a PocketBase server runs: a child process on loopback, or a Docker container. */
export type PocketBaseMode = "process" | "container";

/** Superuser credentials, created before the server starts by a one-shot migration (never on a command line). */
export interface Superuser {
  email: string;
  password: string;
}

/** The `settings.batch` block applied after start (PocketBase defaults: off, 50 requests, 3 s). */
export interface BatchSettings {
  enabled: boolean;
  maxRequests: number;
  /** Seconds. */
  timeout: number;
  /** Bytes; 0 means PocketBase's default (128 MiB). */
  maxBodySize: number;
}

/** What the harness enables by default: `{ enabled: true, maxRequests: 1000, timeout: 10, maxBodySize: 0 }`. */
export const DEFAULT_BATCH_SETTINGS: Readonly<BatchSettings> = Object.freeze({
  enabled: true,
  maxRequests: 1000,
  timeout: 10,
  maxBodySize: 0,
});

/** A hook file a server gets in its hooks dir (the shape of a `HookPiece` of `@nxs-sync/pocketbase`). */
export interface HookFile {
  /** File name, e.g. `nxs-queue.pb.js` (PocketBase loads `*.pb.js`). */
  readonly file: string;
  /** Its text. */
  readonly source: string;
}

/** Options shared by process and container mode. */
export interface CommonPocketBaseOptions {
  /** PocketBase tag (default `v0.39.11`). */
  version?: string;
  /** A name for logs and container names (default `pb-<random>`). */
  name?: string;
  /** Superuser to create (default `admin@nxs-sync.test` with a random password). */
  superuser?: Partial<Superuser>;
  /** Batch settings to apply; `false` leaves PocketBase's defaults (batch off). */
  batch?: Partial<BatchSettings> | false;
  /** Directory of JS migrations (`*.js`) applied at start (`--migrationsDir`). */
  migrationsDir?: string;
  /**
   * Directory of JS hooks (`*.pb.js`). Its `*.js` files are copied, next to the nxs-sync bundle, into the
   * server's own hooks dir (process mode: `<rootDir>/pb_hooks`; container mode: `/pb_hooks`) at start.
   */
  hooksDir?: string;
  /**
   * Hook files to install beside the bundle and `hooksDir` (written last; a file of the same name
   * replaces theirs): e.g. a package's hook pieces (`registry.hooks()` of `@nxs-sync/pocketbase`
   * without the core piece `nxs`, which `nxsHooks` already mounts).
   */
  hookFiles?: readonly HookFile[];
  /**
   * The nxs-sync `pb_hooks` bundle (origin binding, `GET /nxs/version`; nxs-sync clients refuse a server
   * without it). Default: mounted when found (`findNxsHooksDir()`); `true`: required; `false`: left out
   * (a server as an operator who forgot it would run); a string: the bundle's directory.
   */
  nxsHooks?: boolean | string;
  /** Extra arguments for `serve`. */
  extraArgs?: readonly string[];
  /** Bound on the start (readiness + setup), default 30 000 ms. */
  startTimeoutMs?: number;
}

/** A running (or stopped) PocketBase server started by the harness. Same shape in both modes. */
export interface PocketBaseServer extends AsyncDisposable {
  /** `process` or `container`. */
  readonly mode: PocketBaseMode;
  /** Human name (log prefix; the container name in container mode). */
  readonly name: string;
  /** Base URL reachable from this (host) process, e.g. `http://127.0.0.1:41234`. Stable across restarts. */
  readonly url: string;
  /** The superuser's credentials. */
  readonly superuser: Superuser;
  /** Whether the server process is currently stopped/killed (not paused). */
  readonly stopped: boolean;
  /**
   * A new SDK client for {@link url}, already authenticated as the superuser, with `autoCancellation(false)`.
   * Installs the EventSource polyfill so `subscribe()` works in Node.
   */
  client(): PocketBase;
  /** Graceful stop: SIGTERM (docker stop) and wait. Data is kept; {@link restart} brings it back. */
  stop(): Promise<void>;
  /** Hard stop: SIGKILL. Data committed before the kill survives. */
  kill(): Promise<void>;
  /** Stops (gracefully) if running, starts again on the same data and port, and waits for health. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP / docker pause): connections hang instead of failing. */
  pause(): Promise<void>;
  /** Unfreezes a paused server (SIGCONT / docker unpause). */
  resume(): Promise<void>;
  /** Everything the server wrote to stdout/stderr so far (all runs). */
  logs(): Promise<string>;
  /**
   * Stops the server and removes its resources (temp dir / container).
   * @param options - `keepData: true` keeps the data dir (e.g. after a failed test) and prints where it is
   */
  destroy(options?: { keepData?: boolean }): Promise<void>;
  /** Cut the node off the network (container mode; process mode throws). */
  disconnect?(): Promise<void>;
  /** Reattach a node cut off with {@link disconnect}. */
  reconnect?(): Promise<void>;
}
