import {
  callGuarded,
  checkNumberOption,
  ErrorCode,
  isNxsError,
  type Logger,
  NxsError,
  TransportError,
} from "@nxs-sync/core";
import {
  checkHookPieces,
  createRealtimeSession,
  type Endpoint,
  type EndpointPool,
  openRoutePool,
  type RealtimeSession,
  type RoutePoolOptions,
} from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import type { ClientResponseError } from "pocketbase";
import type { z } from "zod";
import type { CompactOptions, ConfigBackend, ConfigWatcher, NewVersion, VersionQuery } from "../backend.js";
import { ConfigConflictError, ConfigErrorCode, InvalidConfigError } from "../errors.js";
import type { RolloutRecord, RolloutState, StoredVersion, VersionMeta } from "../version.js";
import { CONFIG_HOOKS, configHookPiece, ROLLOUTS_COLLECTION, VERSIONS_COLLECTION } from "./collections.js";
import {
  compactAnswer,
  type Decoded,
  decodeRolloutRecord,
  decodeVersionRecord,
  headsAnswer,
  originAnswer,
  putAnswer,
  refusalSchema,
  rolloutAnswer,
} from "./records.js";

/** Options of {@link createPocketBaseConfigBackend}. */
export interface PocketBaseConfigBackendOptions extends RoutePoolOptions {
  /**
   * Server base URLs, the home server first: it is the authority of the compare-and-swap (every
   * gateway writes there while it is up); the others take the writes only while the pool has
   * failed over to them. Or pass `pool`.
   */
  readonly endpoints?: readonly string[];
  /** Bound of one operation, failovers included (ms). Default 15 000: outlasts a backup's write stall. */
  readonly timeoutMs?: number;
  /**
   * A record met on a read (`list`, `heads`, `rollouts`, a watch) that is not a valid version or
   * rollout: quarantined (never returned as one), reported here and to the watchers of its
   * environment (`onInvalid`), once per record write.
   */
  readonly onInvalid?: (raw: unknown, reason: string) => void;
  /** Warnings (quarantined records, watch errors). Default core's `defaultLogger` (stderr). */
  readonly logger?: Logger;
}

/** The PocketBase backend: the port, plus the home server's origin id. */
export interface PocketBaseConfigBackend extends ConfigBackend {
  /**
   * The origin id of the server the backend writes to now (made at random by that server on first
   * use; every version it accepts carries it).
   * @throws TransportError when no server answers.
   */
  origin(): Promise<string>;
  close(): Promise<void>;
}

/** Page size of the records API (PocketBase's maximum). */
const MAX_PAGE = 1000;
/** Clock skew allowed between this process and a server met for the first time by a watch (ms). */
const CATCH_UP_MARGIN_MS = 2000;
/** Record writes a backend remembers having reported invalid (the oldest are forgotten first). */
const MAX_REPORTED = 10_000;

/**
 * Creates the PocketBase backend of the config store: writes go through the hook routes of
 * `pb_hooks/nxs-config.pb.js` (`put` is one transaction: the compare-and-swap is exact on a
 * server), over an endpoint pool (one retry layer, failover; a put sent again is safe, it is
 * idempotent by id); reads through the records API; `watch` follows both collections of one
 * environment with a realtime session and a catch-up after every (re)connect (`onResync`). The
 * servers need the config collections ({@link configCollections}) and the hook piece.
 * @param options - Servers or a pool, a gateway account, bounds.
 * @returns The backend (call `close()` when done).
 * @throws NxsError `config/invalid` for bad options.
 * @example
 * ```ts
 * const backend = createPocketBaseConfigBackend({
 *   endpoints: ["http://home:8090", "http://other:8090"],
 *   auth: { email: "gateway-1@fleet", password },
 * });
 * const heads = await backend.heads("production");
 * ```
 */
export function createPocketBaseConfigBackend(
  options: PocketBaseConfigBackendOptions,
): PocketBaseConfigBackend {
  const timeoutMs = checkNumberOption("timeoutMs", options.timeoutMs, { min: 0 }) ?? 15_000;
  const {
    pool,
    ownPool,
    home,
    newPool: poolOf,
    scheduler,
    logger,
    random,
  } = openRoutePool("config backend", options);
  let closed = false;

  // Each server is checked once for the hook piece of this release (server/incompatible otherwise),
  // and asked its origin id (the origin of the versions it accepts).
  const piece = configHookPiece();
  const checked = new Map<string, Promise<void>>();
  const origins = new Map<string, string>();
  const checkPiece = (ep: Endpoint): Promise<void> => {
    let p = checked.get(ep.url);
    if (p === undefined) {
      p = checkHookPieces(ep.client, [piece]).then(async () => {
        const a = originAnswer.safeParse(
          await ep.client.call(
            "config origin",
            (pb) => pb.send("/nxs/config/origin", { method: "POST", body: {} }),
            { retry: false },
          ),
        );
        if (a.success) origins.set(ep.url, a.data.origin);
      });
      checked.set(ep.url, p);
      p.catch(() => checked.delete(ep.url));
    }
    return p;
  };

  // Quarantine: each malformed record write is reported once to the option and the log, and once
  // to each watch of its environment.
  interface Watch {
    readonly env: string;
    readonly session: RealtimeSession;
    readonly pool: EndpointPool;
    readonly watchers: Set<ConfigWatcher>;
    readonly reported: Set<string>;
    /** Whether a catch-up has completed (a watcher added later is told to resync at once). */
    ready: boolean;
  }
  const watches = new Map<string, Watch>();
  const reported = new Set<string>();
  const remember = (set: Set<string>, id: string): boolean => {
    if (set.has(id)) return false;
    set.add(id);
    if (set.size > MAX_REPORTED) set.delete(set.values().next().value as string);
    return true;
  };
  const guard = (what: string, fn: () => void) =>
    callGuarded(what, fn, [], (f) => logger.error(f.message, f.cause));
  function quarantine(env: string, raw: unknown, reason: string): void {
    const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const id = `${String(r.collectionName ?? "")}/${String(r.id)}@${String(r.updated ?? "")}`;
    if (remember(reported, id)) {
      logger.warn(`[config] record ${String(r.id)} quarantined: ${reason}`);
      if (options.onInvalid !== undefined) guard("onInvalid", () => options.onInvalid?.(raw, reason));
    }
    const w = watches.get(env);
    if (w !== undefined && remember(w.reported, id)) {
      for (const watcher of w.watchers) guard("watch onInvalid", () => watcher.onInvalid(raw, reason));
    }
  }
  /** The valid records of a listing; the others are quarantined. */
  function decodeAll<T>(env: string, raws: readonly unknown[], decode: (raw: unknown) => Decoded<T>): T[] {
    const out: T[] = [];
    for (const raw of raws) {
      const d = decode(raw);
      if (d.ok) out.push(d.value);
      else quarantine(env, raw, d.reason);
    }
    return out;
  }

  // Every endpoint of the pool down (connections refused, names unresolved, health checks failing):
  // the watchers are told `onUnreachable` (a store still booting uses its cache file at once).
  const allDown = (): boolean => pool.health().every((h) => !h.healthy);
  const unreachableReason = (why: string) => `every server of the pool is down (${why})`;
  const stopHealth = pool.on("health", (e) => {
    if (e.healthy || !allDown()) return;
    const reason = unreachableReason(`${e.url}: ${e.reason ?? "down"}`);
    for (const w of watches.values())
      for (const watcher of w.watchers) guard("watch onUnreachable", () => watcher.onUnreachable?.(reason));
  });

  const metaOf = (v: StoredVersion): VersionMeta => {
    const { value: _value, compacted: _compacted, ...meta } = v;
    return meta;
  };

  /** Maps a route's refusal: 409 `config/conflict` (with the head), 400 `config/invalid-value`. */
  function mapError(e: unknown, op: string, body: Record<string, unknown>): unknown {
    if (!(isNxsError(e) && e instanceof TransportError)) return e;
    const r = refusalSchema.safeParse((e.cause as ClientResponseError | undefined)?.response?.data);
    if (!r.success) return e;
    if (e.status === 409 && r.data.code === ConfigErrorCode.Conflict) {
      const d = r.data.current == null ? undefined : decodeVersionRecord(r.data.current);
      if (d !== undefined && !d.ok) quarantine(String(body.env), r.data.current, d.reason);
      return new ConfigConflictError(`config ${op}: ${r.data.message}`, d?.ok ? metaOf(d.value) : undefined, {
        cause: e,
      });
    }
    if (e.status === 400 && r.data.code === ConfigErrorCode.InvalidValue) {
      return new InvalidConfigError(
        String(body.key ?? ""),
        [{ path: r.data.field ?? "", message: r.data.message }],
        {
          cause: e,
        },
      );
    }
    return e;
  }

  /** One POST to a route on one endpoint (no retry: the pool's call is the retry layer). */
  async function post<S extends z.ZodType>(
    ep: Endpoint,
    op: string,
    body: Record<string, unknown>,
    schema: S,
  ): Promise<z.infer<S>> {
    await checkPiece(ep);
    let raw: unknown;
    try {
      raw = await ep.client.call(
        `config ${op}`,
        (pb) => pb.send(`/nxs/config/${op}`, { method: "POST", body }),
        { retry: false },
      );
    } catch (e) {
      throw mapError(e, op, body);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new TransportError(
        ErrorCode.ServerIncompatible,
        `${ep.url}: POST /nxs/config/${op} answered in another form (${parsed.error.message.slice(0, 300)}): install the ${CONFIG_HOOKS.file} of this release`,
      );
    }
    return parsed.data;
  }

  const call = <T>(op: string, fn: (ep: Endpoint) => Promise<T>): Promise<T> => {
    if (closed)
      return Promise.reject(new NxsError(ConfigErrorCode.NotReady, `config ${op}: the backend is closed`));
    return pool.call(`config ${op}`, fn, { timeoutMs });
  };
  /** A read through the records API of the active endpoint (checked for the hook piece first). */
  const read = <T>(op: string, fn: (pb: PocketBase) => Promise<T>): Promise<T> =>
    call(op, async (ep) => {
      await checkPiece(ep);
      return ep.client.call(`config ${op}`, fn, { retry: false });
    });
  const postCall = <S extends z.ZodType>(op: string, body: Record<string, unknown>, schema: S) =>
    call(op, (ep) => post(ep, op, body, schema));

  /** One version from a route's answer (a route only answers well-formed ones). */
  const versionOf = (env: string, raw: unknown): StoredVersion => {
    const d = decodeVersionRecord(raw);
    if (d.ok) return d.value;
    quarantine(env, raw, d.reason);
    throw new NxsError(
      ConfigErrorCode.InvalidRecord,
      `config: the server answered a malformed version (${d.reason})`,
    );
  };

  function openWatch(env: string): Watch {
    const watchPool = poolOf();
    const watchers = new Set<ConfigWatcher>();
    // Per server, the greatest `updated` seen there (each server's own clock): a catch-up lists
    // what changed since. On a server met for the first time (the first connect, a failover), it
    // lists what changed since the watch last heard anything (this process's clock, less a margin
    // for the skew between clocks): a write made while the subscription was being opened is told.
    const cursors = new Map<string, { versions: string; rollouts: string }>();
    let heardAt = scheduler.now();
    const pbDate = (ms: number) => new Date(ms).toISOString().replace("T", " ");
    const tell = <T>(what: string, fn: (w: ConfigWatcher) => T) => {
      for (const w of watchers) guard(`watch ${what}`, () => fn(w));
    };
    const advance = (url: string, which: "versions" | "rollouts", raw: unknown) => {
      const at = (raw as { updated?: unknown } | null)?.updated;
      const c = cursors.get(url);
      if (c !== undefined && typeof at === "string" && at > c[which]) c[which] = at;
    };
    const deliver = (raw: unknown, url: string) => {
      heardAt = scheduler.now();
      const r = raw as { collectionName?: unknown; env?: unknown } | null;
      if (r?.collectionName === ROLLOUTS_COLLECTION) {
        // Rollouts come unfiltered on the session's connection: only this environment's count.
        if (r.env !== env) return;
        advance(url, "rollouts", raw);
        const d = decodeRolloutRecord(raw);
        if (d.ok) tell("onRollout", (w) => w.onRollout(d.value));
        else quarantine(env, raw, d.reason);
        return;
      }
      advance(url, "versions", raw);
      const d = decodeVersionRecord(raw);
      if (d.ok) tell("onVersion", (w) => w.onVersion(d.value));
      else quarantine(env, raw, d.reason);
    };
    const since = (pb: PocketBase, collection: string, at: string) =>
      pb.collection(collection).getFullList({
        batch: MAX_PAGE,
        // `>=`: records written in the same millisecond as the last one seen are not missed.
        filter: pb.filter("env = {:env} && updated >= {:at}", { env, at }),
        sort: "updated",
      });
    async function catchUp(ep: Endpoint): Promise<void> {
      const from = pbDate(Math.min(heardAt, scheduler.now()) - CATCH_UP_MARGIN_MS);
      let c = cursors.get(ep.url);
      if (c === undefined) {
        c = { versions: from, rollouts: from };
        cursors.set(ep.url, c);
      }
      const started = scheduler.now();
      const [versions, rollouts] = await ep.client.call("config watch catch-up", (pb) =>
        Promise.all([since(pb, VERSIONS_COLLECTION, c.versions), since(pb, ROLLOUTS_COLLECTION, c.rollouts)]),
      );
      for (const raw of versions) deliver(raw, ep.url);
      for (const raw of rollouts) deliver(raw, ep.url);
      heardAt = Math.max(heardAt, started);
    }
    const session: RealtimeSession = createRealtimeSession({
      pool: watchPool,
      collection: VERSIONS_COLLECTION,
      filter: (pb) => pb.filter("env = {:env}", { env }),
      also: [ROLLOUTS_COLLECTION],
      onEvent: (ev, ep) => {
        if (ev.action === "delete") return; // a purged tombstone: nothing to tell
        deliver(ev.record, ep.url);
      },
      // Realtime is a hint: after every (re)connect, what changed on that server meanwhile is
      // delivered, then the watchers are told to re-read (`list`) what matters to them.
      onCatchUp: (ep) => {
        catchUp(ep).then(
          () => {
            watch.ready = true;
            tell("onResync", (w) => w.onResync());
          },
          (e: unknown) => {
            logger.warn(`[config] watch ${env} catch-up failed: ${(e as Error).message}`);
            if (!closed) session.resync("catch-up failed");
          },
        );
      },
      onError: (e: Error) => logger.warn(`[config] watch ${env}: ${e.message}`),
      scheduler,
      random,
      logger,
    });
    watchPool.start();
    const watch: Watch = { env, session, pool: watchPool, watchers, reported: new Set(), ready: false };
    return watch;
  }

  return {
    /** The home server's origin id once a call has reached it (its URL before). */
    get name() {
      return origins.get(home) ?? home;
    },

    origin: () => postCall("origin", {}, originAnswer).then((a) => a.origin),

    async put(version: NewVersion): Promise<StoredVersion> {
      const body: Record<string, unknown> = { ...version };
      const a = await postCall("put", body, putAnswer);
      return versionOf(version.env, a.version);
    },

    async list(query: VersionQuery): Promise<readonly StoredVersion[]> {
      const limit = Math.min(Math.max(Math.floor(query.limit ?? 200), 1), MAX_PAGE);
      const desc = query.order === "desc";
      const out: StoredVersion[] = [];
      // Pages until `limit` valid versions (a quarantined record does not count) or the end.
      for (let page = 1; out.length < limit; page++) {
        const got = await read("list", (pb) => {
          const parts = [pb.filter("env = {:env}", { env: query.env })];
          if (query.key !== undefined) parts.push(pb.filter("key = {:key}", { key: query.key }));
          if (query.afterVersion !== undefined)
            parts.push(pb.filter("version > {:a}", { a: query.afterVersion }));
          if (query.beforeVersion !== undefined)
            parts.push(pb.filter("version < {:b}", { b: query.beforeVersion }));
          if (query.includeCompacted !== true) parts.push("compacted = false");
          return pb.collection(VERSIONS_COLLECTION).getList(page, limit, {
            filter: parts.join(" && "),
            sort: desc ? "-version,-hlc,-id" : "version,hlc,id",
            skipTotal: true,
          });
        });
        out.push(...decodeAll(query.env, got.items, decodeVersionRecord));
        if (got.items.length < limit) break;
      }
      return out.slice(0, limit);
    },

    async heads(env: string): Promise<readonly StoredVersion[]> {
      const a = await postCall("heads", { env }, headsAnswer);
      return decodeAll(env, a.versions, decodeVersionRecord);
    },

    async get(id: string): Promise<StoredVersion | undefined> {
      const raw = await read("get", (pb) =>
        pb
          .collection(VERSIONS_COLLECTION)
          .getOne(id)
          .catch((e: ClientResponseError) => {
            if (e.status === 404) return undefined;
            throw e;
          }),
      );
      if (raw === undefined) return undefined;
      const d = decodeVersionRecord(raw);
      if (d.ok) return d.value;
      quarantine(String(raw.env), raw, d.reason);
      throw new NxsError(
        ConfigErrorCode.InvalidRecord,
        `config: version record ${id} is quarantined: ${d.reason}`,
      );
    },

    async compact(opts: CompactOptions): Promise<number> {
      return (await postCall("compact", { ...opts }, compactAnswer)).compacted;
    },

    async rollouts(env: string): Promise<readonly RolloutRecord[]> {
      const all = await read("rollouts", (pb) =>
        pb
          .collection(ROLLOUTS_COLLECTION)
          .getFullList({ batch: MAX_PAGE, filter: pb.filter("env = {:env}", { env }), sort: "version,id" }),
      );
      return decodeAll(env, all, decodeRolloutRecord);
    },

    async setRollout(version, state: RolloutState, reason: string): Promise<RolloutRecord> {
      const body = {
        id: version.id,
        env: version.env,
        key: version.key,
        version: version.version,
        state,
        reason,
      };
      const a = await postCall("rollout", body, rolloutAnswer);
      const d = decodeRolloutRecord(a.rollout);
      if (d.ok) return d.value;
      throw new NxsError(
        ConfigErrorCode.InvalidRecord,
        `config: the server answered a malformed rollout (${d.reason})`,
      );
    },

    watch(env: string, watcher: ConfigWatcher): () => void {
      if (closed) throw new NxsError(ConfigErrorCode.NotReady, "config watch: the backend is closed");
      let w = watches.get(env);
      if (w === undefined) {
        w = openWatch(env);
        watches.set(env, w);
        w.session.connect().catch((e: unknown) => {
          logger.error(`[config] watch ${env} cannot connect: ${(e as Error).message}`, e);
        });
      }
      const watch = w;
      watch.watchers.add(watcher);
      // A watcher that joins a watch already caught up reads once too, as after a connect.
      if (watch.ready) queueMicrotask(() => guard("watch onResync", () => watcher.onResync()));
      else if (allDown()) {
        const reason = unreachableReason("already");
        queueMicrotask(() => guard("watch onUnreachable", () => watcher.onUnreachable?.(reason)));
      }
      return () => {
        watch.watchers.delete(watcher);
        if (watch.watchers.size === 0 && watches.get(env) === watch) {
          watches.delete(env);
          watch.session.stop();
          watch.pool.stop();
        }
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      stopHealth();
      for (const w of watches.values()) {
        w.session.stop();
        w.pool.stop();
      }
      watches.clear();
      if (ownPool) pool.stop();
    },
  };
}
