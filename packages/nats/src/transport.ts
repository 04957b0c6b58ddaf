/**
 * Core's `Transport` over NATS JetStream. Push: packs, one message each, `Nats-Msg-Id` naming the
 * doc, origin and first and last seq, retried with the same cut and id until `pushTimeoutMs`.
 * Pull: the doc's newest snapshot (when the caller lacks part of it), then the tail of the doc's
 * packs filtered by the caller's version vector, each origin in seq order. Realtime: one ordered
 * consumer per transport on the doc's subjects; the client recreates it from its last stream
 * sequence after a gap or missed heartbeats, and every reconnect, gap or missed heartbeat fires
 * `onResync` (pull is the truth). Version vectors stay the truth; stream sequences are only
 * resume points.
 */
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import {
  connect,
  type NatsConnection,
  type NodeConnectionOptions,
  headers as natsHeaders,
  type Subscription,
} from "@nats-io/transport-node";
import {
  type Change,
  createEmitter,
  createTransportListeners,
  type DocId,
  defaultLogger,
  dominatesVersionVector,
  ErrorCode,
  type HighWater,
  isNxsError,
  type Logger,
  mergeVersionVectors,
  NxsError,
  type PullPage,
  type Snapshot,
  type Transport,
  TransportError,
  TransportState,
  type VersionVector,
} from "@nxs-sync/core";
import { readLatestSnapshot, scanSubject } from "./direct-read.js";
import { toNatsTransportError } from "./errors.js";
import { createPackOutbox, decodePackBody, encodePackBody, PackHeader } from "./packs.js";
import { createNatsStabilityStore } from "./stability.js";
import { ensureStreams } from "./streams.js";
import {
  changeSubject,
  docChangesFilter,
  type NatsNames,
  natsNames,
  originOfSubject,
  packMessageId,
} from "./subjects.js";

/** How healthy the JetStream side looks (see {@link NatsTransportStatus}). */
export const NatsHealth = {
  /** The changes stream has a leader and answers. */
  Ok: "ok",
  /** The changes stream is electing a leader (answers without one, or a leader-elected advisory just came). */
  LeaderElection: "leader-election",
  /** The stream or the JetStream meta group lost its quorum: nothing can be acknowledged. */
  NoQuorum: "no-quorum",
  /** No server is connected. */
  Unreachable: "unreachable",
} as const;
/** The union of {@link NatsHealth} values. */
export type NatsHealth = (typeof NatsHealth)[keyof typeof NatsHealth];

/** Options of {@link createNatsTransport}. */
export interface NatsTransportOptions {
  /** Server URLs (`nats://host:4222`), every core node of the cluster. Ignored with `connection`. */
  readonly servers?: string | readonly string[];
  /**
   * A connection to use instead of opening one (shared by several transports of one process); the
   * transport then neither drains nor closes it.
   */
  readonly connection?: NatsConnection;
  /** Extra options of the connection it opens (credentials: `user`/`pass`, `token`, `authenticator`). */
  readonly connectOptions?: Partial<NodeConnectionOptions>;
  /** The document this transport carries. */
  readonly docId: DocId | string;
  /**
   * The origin (replica id) this transport pushes for, when it serves one replica: realtime drops
   * that origin's own packs, and after every reconnect its recent packs the stream lacks are sent
   * again.
   */
  readonly origin?: string;
  /** Subject prefix and stream names (see `natsNames`). Default `nxs`. */
  readonly prefix?: string;
  /** Replicas of the streams it creates when missing: 1 on one server, 3 on a cluster. Default 1. */
  readonly replicas?: number;
  /** The changes stream's duplicate window, when it creates it. Default 120 000 ms. */
  readonly duplicateWindowMs?: number;
  /** Most changes per pack. Default 1000. */
  readonly packSize?: number;
  /** Largest estimated JSON size of one pack. Default 256 KiB (the server's max_payload is 1 MiB). */
  readonly packMaxBytes?: number;
  /** Most changes per pull page. Default 5000. */
  readonly pageSize?: number;
  /** Timeout of one JetStream request (publish ack, direct get). Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * How long a push retries its packs (same cut, same message id) before it fails with
   * `transport/unavailable` and the caller (a replica's backoff) takes over. Default 10 000 ms.
   */
  readonly pushTimeoutMs?: number;
  /** Interval of the health probe behind `status()`. Default 2000 ms. */
  readonly statusIntervalMs?: number;
  /** Recently acknowledged changes re-pushed (idempotently) after a reconnect when the stream lacks them. Default 1000. */
  readonly rePushWindow?: number;
  /** Wait between reconnect attempts. Default 250 ms. */
  readonly reconnectWaitMs?: number;
  readonly logger?: Logger;
  /** Errors of background work (a malformed pack, a failed probe), already typed. */
  readonly onError?: (error: Error) => void;
}

/** What {@link NatsTransport.status} reports. */
export interface NatsTransportStatus {
  readonly state: TransportState;
  /** The server the connection is on (`127.0.0.1:4222`), when connected. */
  readonly server: string | undefined;
  /** Health of the changes stream; anything but `ok` is degraded. */
  readonly health: NatsHealth;
  /** `health !== "ok"`. */
  readonly degraded: boolean;
  /** The server leading the changes stream, when known. */
  readonly streamLeader: string | undefined;
  /** The last stream sequence realtime delivered (a resume point only). */
  readonly lastStreamSeq: number;
  /** Packs sent and not yet acknowledged. */
  readonly outbox: number;
}

/** Events of a {@link NatsTransport}. */
export interface NatsTransportEvents {
  state: TransportState;
  /** The health changed (see {@link NatsHealth}). */
  health: NatsHealth;
  /** Recent packs were sent again (and acknowledged) after a reconnect because the stream lacked them. */
  "re-push": { readonly changes: number };
}

/** Core's {@link Transport} over NATS JetStream, with status and events. */
export interface NatsTransport extends Transport {
  /** Registers an event listener; returns the function that removes it. */
  on<E extends keyof NatsTransportEvents>(
    event: E,
    listener: (payload: NatsTransportEvents[E]) => void,
  ): () => void;
  /** State, health (a leader election or a lost quorum shows as degraded), resume point. */
  status(): NatsTransportStatus;
  /** The deployment's stream and bucket names. */
  readonly names: NatsNames;
}

const closedError = () => new TransportError(ErrorCode.Closed, "NATS transport is closed");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Creates the NATS JetStream transport of one document.
 * @param options - Servers (or a connection), document, origin and tuning.
 * @returns A transport; call `connect()` first.
 * @throws NxsError `config/invalid` for a bad prefix or an empty doc id.
 * @example
 * ```ts
 * const transport = createNatsTransport({
 *   servers: ["nats://core-1:4222", "nats://core-2:4222", "nats://core-3:4222"],
 *   docId: "routing",
 *   origin: "gw-1",
 *   replicas: 3,
 * });
 * await transport.connect();
 * ```
 */
export function createNatsTransport(options: NatsTransportOptions): NatsTransport {
  const names = natsNames(options.prefix);
  const docId = options.docId;
  const ownOrigin = options.origin;
  const logger = options.logger ?? defaultLogger;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const pushTimeoutMs = options.pushTimeoutMs ?? 10_000;
  const pageSize = Math.max(1, options.pageSize ?? 5000);
  const statusIntervalMs = options.statusIntervalMs ?? 2000;
  const rePushWindow = options.rePushWindow ?? 1000;
  const filter = docChangesFilter(names, docId);
  const outbox = createPackOutbox({
    packSize: Math.max(1, options.packSize ?? 1000),
    packMaxBytes: Math.max(1, options.packMaxBytes ?? 256 * 1024),
  });
  const events = createEmitter<NatsTransportEvents>((error, event) =>
    logger.error(`[nxs-nats] ${String(event)} listener threw`, error),
  );
  const subscribers = createTransportListeners({
    tag: "[nxs-nats]",
    logger,
    isClosed: () => closed,
  });

  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let jsm: JetStreamManager | undefined;
  let state: TransportState = TransportState.Disconnected;
  let health: NatsHealth = NatsHealth.Unreachable;
  let streamLeader: string | undefined;
  let closed = false;
  let connecting: Promise<void> | undefined;
  let messages: ConsumerMessages | undefined;
  let lastStreamSeq = 0;
  let probeTimer: ReturnType<typeof setTimeout> | undefined;
  let advisories: Subscription[] = [];
  const inFlight = new Set<Promise<unknown>>();
  /** Recently acknowledged packs of the own origin (newest last), for the re-push after a reconnect. */
  const recent: Change[][] = [];
  let recentChanges = 0;

  function reportError(error: Error): void {
    if (closed) return;
    const handled = subscribers.error(error);
    if (options.onError) {
      try {
        options.onError(error);
      } catch (e) {
        logger.error("[nxs-nats] onError threw", e);
      }
    } else if (!handled) logger.warn(`[nxs-nats] ${error.message}`);
  }

  function setState(next: TransportState): void {
    if (state === next || (closed && next !== TransportState.Closed)) return;
    state = next;
    events.emit("state", next);
    subscribers.state(next);
  }

  function setHealth(next: NatsHealth): void {
    if (health === next) return;
    const recovered = next === NatsHealth.Ok && health !== NatsHealth.Ok && health !== NatsHealth.Unreachable;
    health = next;
    events.emit("health", next);
    // Back from a leader election or a lost quorum without a reconnect: pushes and pulls may have
    // failed and realtime may have missed packs meanwhile, so subscribers catch up now rather than
    // at their next backoff or poll.
    if (recovered) fireResync();
  }

  function fireResync(): void {
    if (!closed) subscribers.resync();
  }

  const deliver = subscribers.deliver;

  /** Each subject's origin, decoded once (a doc has a few origins, each its own subject). */
  const origins = new Map<string, string | undefined>();
  const originOf = (subject: string): string | undefined => {
    if (origins.has(subject)) return origins.get(subject);
    const origin = originOfSubject(subject);
    if (origins.size >= 4096) origins.clear();
    origins.set(subject, origin);
    return origin;
  };

  /** Decodes a pack message of this doc; a malformed one is reported and skipped. */
  function decodeMessage(subject: string, data: Uint8Array, seq: number): Change[] {
    const origin = originOf(subject);
    try {
      if (origin === undefined) throw new NxsError(ErrorCode.OpInvalid, `subject ${subject} names no origin`);
      return decodePackBody(data, String(docId), origin);
    } catch (e) {
      const error = isNxsError(e)
        ? e
        : new NxsError(ErrorCode.OpInvalid, `malformed pack: ${(e as Error).message}`, { cause: e });
      reportError(
        new NxsError(error.code, `pack at stream seq ${seq} (${subject}) skipped: ${error.message}`, {
          cause: error,
          retryable: false,
        }),
      );
      return [];
    }
  }

  const ownToken = ownOrigin === undefined ? undefined : changeSubject(names, docId, ownOrigin);

  async function startRealtime(): Promise<void> {
    if (!js || closed) return;
    // One ordered consumer for this transport: the client recreates it after a gap or missed
    // heartbeats from the last stream sequence it delivered (opt_start_seq = last + 1).
    const consumer = await js.consumers.get(names.changesStream, {
      filter_subjects: [filter],
      deliver_policy: DeliverPolicy.New,
    });
    const iter = await consumer.consume({
      max_messages: 256,
      idle_heartbeat: 1000,
      expires: 5000,
      callback: (m) => {
        if (closed) return;
        lastStreamSeq = m.seq;
        if (m.subject === ownToken) return;
        const changes = decodeMessage(m.subject, m.data, m.seq);
        if (changes.length > 0) deliver(changes);
      },
    });
    messages = iter;
    void (async () => {
      for await (const s of iter.status()) {
        if (closed) return;
        if (s.type === "ordered_consumer_recreated" || s.type === "heartbeats_missed" || s.type === "reset") {
          // Events may have been missed around the gap: the subscriber pulls.
          fireResync();
        }
      }
    })().catch((e: unknown) => reportError(toNatsTransportError(e, "realtime status")));
  }

  async function probe(): Promise<void> {
    if (!jsm || closed) return;
    if (state !== TransportState.Connected) {
      setHealth(NatsHealth.Unreachable);
      return;
    }
    try {
      const info = await jsm.streams.info(names.changesStream);
      streamLeader = info.cluster?.leader;
      if (info.cluster !== undefined && info.cluster.leader === undefined)
        setHealth(NatsHealth.LeaderElection);
      else setHealth(NatsHealth.Ok);
    } catch (e) {
      const status = (e as { status?: number }).status;
      streamLeader = undefined;
      // 503: JetStream has no quorum (meta or stream); a timeout while connected: the stream's
      // group cannot answer (no leader reachable).
      setHealth(status === 503 || status === undefined ? NatsHealth.NoQuorum : NatsHealth.LeaderElection);
    }
  }

  function scheduleProbe(delayMs = statusIntervalMs): void {
    if (closed) return;
    if (probeTimer !== undefined) clearTimeout(probeTimer);
    probeTimer = setTimeout(() => {
      probeTimer = undefined;
      void probe().finally(() => scheduleProbe());
    }, delayMs);
    probeTimer.unref?.();
  }

  /** The highest `last` the stream holds of `origin` in this doc (0: none), scanning its subject. */
  async function streamHighest(origin: string): Promise<number> {
    if (!jsm) throw closedError();
    let highest = 0;
    for await (const m of scan(changeSubject(names, docId, origin))) {
      const last = Number(m.header?.get(PackHeader.Last));
      if (Number.isInteger(last)) highest = Math.max(highest, last);
      else for (const c of decodeMessage(m.subject, m.data, m.seq)) highest = Math.max(highest, c.seq);
    }
    return highest;
  }

  /** After a reconnect: re-pushes the recent own packs the stream lacks (same ids). */
  async function rePushRecent(): Promise<void> {
    if (ownOrigin === undefined || recent.length === 0) return;
    const highest = await streamHighest(ownOrigin);
    const missing = recent.flat().filter((c) => c.seq > highest);
    if (missing.length === 0) return;
    await pushNow(missing, true);
    events.emit("re-push", { changes: missing.length });
  }

  function watchConnection(conn: NatsConnection): void {
    void (async () => {
      for await (const s of conn.status()) {
        if (closed) return;
        if (s.type === "disconnect") {
          setState(TransportState.Disconnected);
          setHealth(NatsHealth.Unreachable);
        } else if (s.type === "reconnect") {
          setState(TransportState.Connected);
          void probe();
          rePushRecent()
            .catch((e: unknown) => reportError(toNatsTransportError(e, "re-push after reconnect")))
            .finally(() => fireResync());
        }
      }
    })().catch((e: unknown) => reportError(toNatsTransportError(e, "connection status")));
  }

  /**
   * The changes stream's advisories: a lost quorum shows in `status()` at once, a new leader makes
   * the probe run now (it then reads `ok` and fires the catch-up). Without the right to subscribe
   * to `$JS.EVENT.>` the probe alone keeps the health, every `statusIntervalMs`.
   */
  function watchAdvisories(conn: NatsConnection): void {
    const on = (kind: string, handle: () => void) =>
      conn.subscribe(`$JS.EVENT.ADVISORY.STREAM.${kind}.${names.changesStream}`, {
        callback: (error) => {
          if (error === null && !closed) handle();
        },
      });
    advisories = [
      on("QUORUM_LOST", () => {
        setHealth(NatsHealth.NoQuorum);
        scheduleProbe(statusIntervalMs);
      }),
      on("LEADER_ELECTED", () => scheduleProbe(0)),
    ];
  }

  async function openConnection(): Promise<NatsConnection> {
    if (options.connection) return options.connection;
    const servers = options.servers === undefined ? [] : [options.servers].flat();
    if (servers.length === 0) {
      throw new NxsError(ErrorCode.ConfigInvalid, "createNatsTransport needs `servers` or a `connection`");
    }
    // The first connect is retried here (not by the client's waitOnFirstConnect, which never
    // gives up): between attempts a close() ends it, and refused credentials end it at once.
    for (let wait = 100; ; wait = Math.min(2000, wait * 2)) {
      try {
        return await connect({
          servers: [...servers],
          name: `nxs-sync ${String(docId)}${ownOrigin === undefined ? "" : ` ${ownOrigin}`}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: options.reconnectWaitMs ?? 250,
          timeout: requestTimeoutMs,
          pingInterval: 5000,
          maxPingOut: 2,
          ...options.connectOptions,
        });
      } catch (e) {
        const error = toNatsTransportError(e, "connect");
        if (closed) throw closedError();
        if (!error.retryable) throw error;
        await sleep(wait);
        if (closed) throw closedError();
      }
    }
  }

  async function doConnect(): Promise<void> {
    setState(TransportState.Connecting);
    try {
      nc = await openConnection();
      if (closed) {
        if (!options.connection) await nc.close();
        throw closedError();
      }
      jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
      js = jetstream(nc, { timeout: requestTimeoutMs });
      await ensureStreams(nc, jsm, names, {
        replicas: options.replicas ?? 1,
        duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
        maxMessageBytes: 1024 * 1024,
        snapshotsPerDoc: 2,
      });
      watchConnection(nc);
      watchAdvisories(nc);
      await startRealtime();
    } catch (e) {
      if (closed) throw closedError();
      setState(TransportState.Disconnected);
      throw toNatsTransportError(e, "connect");
    }
    setState(TransportState.Connected);
    await probe();
    scheduleProbe();
    fireResync();
  }

  /** Publishes one pack until acknowledged or `deadline`; same cut, same message id every time. */
  async function publishPack(pack: readonly Change[], deadline: number, rePush = false): Promise<void> {
    const first = pack[0] as Change;
    const last = pack.at(-1) as Change;
    const subject = changeSubject(names, first.doc, first.origin);
    const body = encodePackBody(pack);
    const h = natsHeaders();
    h.set(PackHeader.First, String(first.seq));
    h.set(PackHeader.Last, String(last.seq));
    let msgID = packMessageId(first.doc, first.origin, first.seq, last.seq);
    outbox.sent(pack);
    let wait = 50;
    for (;;) {
      if (closed) throw closedError();
      try {
        const ack = await (js as JetStreamClient).publish(subject, body, {
          msgID,
          headers: h,
          timeout: Math.max(1, Math.min(requestTimeoutMs, deadline - Date.now())),
        });
        if (ack.duplicate && rePush && !msgID.endsWith(".re")) {
          // The stream lost this pack but still remembers its id (within the duplicate window):
          // store it once more under a second id (an overlap readers skip).
          msgID = `${msgID}.re`;
          continue;
        }
        outbox.settle(pack);
        return;
      } catch (e) {
        const error = toNatsTransportError(e, `publish ${msgID}`);
        if (!error.retryable || Date.now() + wait >= deadline) throw error;
        if ((e as { status?: number }).status === 503) setHealth(NatsHealth.LeaderElection);
        await sleep(wait);
        wait = Math.min(500, wait * 2);
      }
    }
  }

  async function pushNow(changes: readonly Change[], rePush = false): Promise<number> {
    for (const c of changes) {
      if (c.doc !== docId) {
        throw new TransportError(
          ErrorCode.TransportRejected,
          `change of doc ${c.doc} pushed on the transport of ${docId}`,
        );
      }
    }
    const packs = outbox.cut(changes);
    const deadline = Date.now() + pushTimeoutMs;
    // Every pack in flight at once (the server acks them in order per connection).
    const results = await Promise.allSettled(packs.map((p) => publishPack(p, deadline, rePush)));
    let acked = 0;
    for (let i = 0; i < packs.length; i++) {
      const r = results[i];
      if (r?.status !== "fulfilled") break;
      const pack = packs[i] as Change[];
      acked += pack.length;
      if (!rePush && ownOrigin !== undefined && pack[0]?.origin === ownOrigin && rePushWindow > 0) {
        recent.push(pack);
        recentChanges += pack.length;
        while (recentChanges - (recent[0]?.length ?? 0) >= rePushWindow)
          recentChanges -= recent.shift()?.length ?? 0;
      }
    }
    if (acked === 0 && packs.length > 0) {
      const first = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
      throw first?.reason ?? new TransportError(ErrorCode.TransportUnavailable, "push not acknowledged");
    }
    return acked;
  }

  const scan = (subject: string, from = 1) =>
    scanSubject(jsm as JetStreamManager, names.changesStream, subject, 256, from);

  /**
   * Where the last complete pull of the tail ended: every message up to stream seq `seq` holds
   * changes within `covers` (per origin, the highest seq seen). Messages are only appended or
   * purged, never changed, so a later pull whose floor dominates `covers` starts after `seq`.
   * A resume point only: the version vector decides whether it may be used.
   */
  let tailCursor: { seq: number; covers: VersionVector } | undefined;

  async function latestSnapshot(): Promise<Snapshot | undefined> {
    try {
      return await readLatestSnapshot(jsm as JetStreamManager, names, String(docId));
    } catch (e) {
      if (isNxsError(e) && !e.retryable) {
        // A malformed snapshot is skipped (reported): the changes are still there to pull.
        reportError(e);
        return undefined;
      }
      throw e;
    }
  }

  async function* pullPages(since: VersionVector): AsyncGenerator<PullPage> {
    if (closed) throw closedError();
    await ready();
    let floor: VersionVector = since;
    let snapshot: Snapshot | undefined;
    const snap = await latestSnapshot();
    if (snap !== undefined && !dominatesVersionVector(since, snap.version)) {
      snapshot = snap;
      floor = mergeVersionVectors(since, snap.version);
    }
    /** Per origin, the highest seq emitted with no gap below (starts at the floor). */
    const next = new Map<string, number>(Object.entries(floor));
    /** Changes ahead of a gap, held until the gap fills or the tail ends. */
    const held = new Map<string, Map<number, Change>>();
    let page: Change[] = [];
    let first = true;
    const emit = (c: Change) => {
      page.push(c);
      next.set(c.origin, c.seq);
    };
    const resume =
      tailCursor !== undefined && dominatesVersionVector(floor, tailCursor.covers) ? tailCursor : undefined;
    const covers = new Map<string, number>(Object.entries(resume?.covers ?? {}));
    let scannedTo = resume?.seq ?? 0;
    for await (const m of scan(filter, scannedTo + 1)) {
      scannedTo = m.seq;
      for (const c of decodeMessage(m.subject, m.data, m.seq)) {
        if (c.seq > (covers.get(c.origin) ?? 0)) covers.set(c.origin, c.seq);
        const at = next.get(c.origin) ?? 0;
        if (c.seq <= at) continue;
        if (c.seq === at + 1) {
          emit(c);
          const waiting = held.get(c.origin);
          let n = c.seq + 1;
          while (waiting?.has(n)) {
            emit(waiting.get(n) as Change);
            waiting.delete(n);
            n++;
          }
        } else {
          const waiting = held.get(c.origin) ?? new Map<number, Change>();
          held.set(c.origin, waiting);
          waiting.set(c.seq, c);
        }
      }
      while (page.length >= pageSize) {
        yield { ...(first && snapshot ? { snapshot } : {}), changes: page.slice(0, pageSize) };
        first = false;
        page = page.slice(pageSize);
      }
    }
    tailCursor = { seq: scannedTo, covers: Object.fromEntries(covers) };
    // What stays held is past a gap the stream does not fill: sent in seq order, core holds it.
    for (const waiting of held.values()) {
      for (const seq of [...waiting.keys()].sort((a, b) => a - b)) page.push(waiting.get(seq) as Change);
    }
    while (page.length > pageSize) {
      yield { ...(first && snapshot ? { snapshot } : {}), changes: page.slice(0, pageSize) };
      first = false;
      page = page.slice(pageSize);
    }
    if (page.length > 0 || first) {
      if (page.length > 0 || snapshot) yield { ...(first && snapshot ? { snapshot } : {}), changes: page };
    }
  }

  /**
   * Waits for a connect in progress; a transport that never connected is unavailable. While the
   * client reconnects, requests go on (the client holds them, or they time out: unavailable).
   */
  async function ready(): Promise<void> {
    if (connecting !== undefined) await connecting.catch(() => undefined);
    if (closed) throw closedError();
    if (!jsm || !js)
      throw new TransportError(ErrorCode.TransportUnavailable, "NATS transport is not connected");
  }

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    const done = () => inFlight.delete(p);
    p.then(done, done);
    return p;
  };

  return {
    docId,
    names,
    ...(ownOrigin === undefined ? {} : { origin: ownOrigin }),

    async connect() {
      if (closed) throw closedError();
      connecting ??= doConnect().catch((e: unknown) => {
        connecting = undefined;
        throw e;
      });
      await connecting;
    },

    async close() {
      if (closed) return;
      closed = true;
      if (probeTimer !== undefined) clearTimeout(probeTimer);
      // Drain: pushes in flight finish (or fail) before the connection goes.
      await Promise.allSettled([...inFlight]);
      try {
        messages?.stop();
        for (const sub of advisories) sub.unsubscribe();
      } catch {
        // already stopped
      }
      if (nc && !options.connection) {
        try {
          await nc.drain();
        } catch {
          await nc.close().catch(() => undefined);
        }
      }
      setState(TransportState.Closed);
      subscribers.clear();
    },

    async push(changes) {
      if (closed) throw closedError();
      if (changes.length === 0) return { acked: 0 };
      await ready();
      return { acked: await track(pushNow(changes)) };
    },

    pull: (since) => pullPages(since),

    async highWater(origin: string): Promise<HighWater> {
      if (closed) throw closedError();
      await ready();
      let seq = await streamHighest(origin);
      const snap = await latestSnapshot();
      seq = Math.max(seq, snap?.version[origin] ?? 0);
      // Acknowledgements count too: an ack may name seqs of the origin the stream never got.
      const acks = await createNatsStabilityStore({
        connection: nc as NatsConnection,
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      }).readAcks(String(docId));
      for (const ack of acks) seq = Math.max(seq, ack.version[origin] ?? 0);
      return { seq };
    },

    subscribe(listener) {
      const remove = subscribers.add(listener);
      if (state === TransportState.Connected) {
        // Connected already: the new subscriber missed the resync of this connection.
        queueMicrotask(() => {
          if (subscribers.has(listener) && !closed) listener.onResync();
        });
      }
      return remove;
    },

    on: events.on,

    status() {
      return {
        state,
        server: state === TransportState.Connected ? nc?.getServer() : undefined,
        health,
        degraded: health !== NatsHealth.Ok,
        streamLeader,
        lastStreamSeq,
        outbox: outbox.size,
      };
    },
  };
}
