/**
 * The example gateway: what one node of a deployment runs next to its PocketBase server. It uses
 * the three parts of nxs-sync against the servers in `NXS_ENDPOINTS` (own node's first, then the
 * other node's, for failover):
 * - a replicated document `notes` (a map of strings) with the PocketBase transport, or with the
 *   NATS JetStream one when `NXS_NATS_SERVERS` is set (compose.nats.yml: the transport is the only
 *   difference), its outbox and replica state in files under `NXS_STATE_DIR` (a named volume: a
 *   restart resends what was not acknowledged yet);
 * - a queue `echo`: the gateway enqueues jobs and also works them (a worker per gateway, so a job
 *   enqueued on one node may run on either);
 * - the config store, environment `NXS_CONFIG_ENV`, key `greeting`, with its last-known-good cache
 *   file under `NXS_STATE_DIR` (a restart without any server boots from it).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type ConfigStore, createConfigStore, keyringFromEnv } from "@nxs-sync/config";
import { createPocketBaseConfigBackend, type PocketBaseConfigBackend } from "@nxs-sync/config/pocketbase";
import { createDoc, type Doc, type Logger, openReplica, type Replica } from "@nxs-sync/core";
import { createFileStorage, createTimerScheduler } from "@nxs-sync/core/node";
import {
  absenceCheck,
  createCollector,
  createMetrics,
  hardwareCapCheck,
  queueDepthProbe,
  replicaProbe,
} from "@nxs-sync/metrics";
import { createPocketBaseMetricsClient } from "@nxs-sync/metrics/pocketbase";
import type { NatsTransport } from "@nxs-sync/nats";
import { collectionOfRole, createPocketBaseTransport, type PocketBaseTransport } from "@nxs-sync/pocketbase";
import { createQueue, createWorker, type JobId, type Queue, type Worker } from "@nxs-sync/queue";
import { createPocketBaseQueueBackend, type PocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";
import PocketBase from "pocketbase";
import { z } from "zod";
import type { GatewaySettings } from "./settings.js";

/** The replicated document's schema: notes by key. */
export const notesSchema = z.object({ entries: z.record(z.string(), z.string()) });
/** The queue's payload. */
export const echoSchema = z.object({ text: z.string().max(1000) });
/** The config store's keys. */
export const configSchemas = { greeting: z.object({ text: z.string().max(200) }) };

/** The doc id of the notes. */
export const NOTES_DOC = "notes";
/** The queue's name. */
export const ECHO_QUEUE = "echo";

type NotesDoc = Doc<z.output<typeof notesSchema>>;

/** A started gateway. */
export interface Gateway {
  readonly settings: GatewaySettings;
  readonly replica: Replica<NotesDoc>;
  /** The notes doc's transport: PocketBase by default, NATS with `NXS_NATS_SERVERS`. */
  readonly transport: PocketBaseTransport | NatsTransport;
  /** Where the notes doc syncs now: a PocketBase URL or a NATS server. */
  notesEndpoint(): string | undefined;
  /** Over NATS, the server leading the changes stream (what a failover drill kills). */
  notesStreamLeader(): string | undefined;
  readonly queue: Queue<typeof echoSchema>;
  readonly worker: Worker;
  readonly config: ConfigStore<typeof configSchemas>;
  /** Where the config store booted from. */
  readonly configSource: "server" | "cache";
  /** Sets a note and waits until a server acknowledged it. */
  setNote(key: string, value: string): Promise<void>;
  /** Enqueues an echo job. */
  enqueue(text: string): Promise<JobId>;
  /** Stops the worker (letting a running job finish), the queue, the replica and the config store. */
  close(): Promise<void>;
}

/**
 * Waits until the servers accept the gateway account: before `nxs-sync setup` ran, the account
 * does not exist yet and every part would be refused. Starts once at least one server accepts the
 * login and none that answers refuses it (a server that answers with a refusal is not set up yet;
 * one that does not answer at all may be down, and the parts fail over around it).
 * @param settings - Endpoints and account.
 * @param signal - Stops the wait.
 * @param onWait - Told why each round was not enough.
 * @throws the signal's reason when aborted.
 */
export async function waitForAccount(
  settings: GatewaySettings,
  signal: AbortSignal,
  onWait: (reason: string) => void,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const refused: string[] = [];
    const unreachable: string[] = [];
    let accepted = 0;
    for (const url of settings.endpoints) {
      const pb = new PocketBase(url);
      pb.autoCancellation(false);
      try {
        await pb
          .collection(collectionOfRole())
          .authWithPassword(settings.email, settings.password, { signal: AbortSignal.timeout(3000) });
        accepted++;
      } catch (e) {
        const status = (e as { status?: number }).status ?? 0;
        if (status >= 400 && status < 500) refused.push(`${url}: HTTP ${status}`);
        else unreachable.push(`${url}: ${status ? `HTTP ${status}` : (e as Error).message}`);
      }
    }
    if (accepted > 0 && refused.length === 0) return;
    onWait(
      refused.length > 0
        ? `the gateway account is refused by ${refused.join("; ")}; has \`nxs-sync setup\` run on every server?`
        : `no server answers (${unreachable.join("; ")})`,
    );
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }
}

/**
 * Starts the gateway's parts.
 * @param settings - From {@link readSettings}.
 * @param logger - Where the parts report.
 * @returns The started gateway.
 * @throws NxsError from the parts (`storage/io` for an unusable state dir, `config/not-ready` when
 *   no server answers and there is no config cache yet).
 */
export async function startGateway(settings: GatewaySettings, logger: Logger): Promise<Gateway> {
  const scheduler = createTimerScheduler();
  const auth = { email: settings.email, password: settings.password };
  const replicaId = `${settings.nodeId}.main`;
  await mkdir(settings.stateDir, { recursive: true });
  // What was started so far, closed in reverse when a later part fails: a retry must not leave a
  // second replica or worker of this node running.
  const started: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of started.reverse()) await close().catch(() => undefined);
  };
  try {
    // The config store first: it is the part that may refuse to start (no server, no cache file).
    const configBackend: PocketBaseConfigBackend = createPocketBaseConfigBackend({
      endpoints: settings.endpoints,
      auth,
      logger,
    });
    started.push(() => configBackend.close());
    const keyring = keyringFromEnv();
    const config = createConfigStore({
      backend: configBackend,
      env: settings.configEnv,
      node: settings.nodeId,
      schemas: configSchemas,
      cacheFile: join(settings.stateDir, "config-cache.json"),
      logger,
      ...(keyring === undefined ? {} : { keyring }),
    });
    started.push(() => config.close());
    const { source } = await config.start();

    const transport = await notesTransport(settings, replicaId, logger);
    const replica = await openReplica({
      storage: createFileStorage({ dir: join(settings.stateDir, "replica-notes") }),
      transport,
      scheduler,
      logger,
      refusedRetryMs: 5000,
      pollMs: 10_000,
      createDoc: ({ snapshot, last }) =>
        createDoc({
          schema: notesSchema,
          docId: NOTES_DOC,
          replicaId,
          clock: Date.now,
          initial: { entries: {} },
          ...(snapshot === undefined ? {} : { snapshot }),
          ...(last === undefined ? {} : { last }),
        }),
    });
    started.push(() => replica.stop());

    const queueBackend: PocketBaseQueueBackend = createPocketBaseQueueBackend({
      endpoints: settings.endpoints,
      auth,
      logger,
    });
    started.push(() => queueBackend.close());
    const queue = createQueue({ name: ECHO_QUEUE, schema: echoSchema, backend: queueBackend, logger });
    started.push(() => queue.close());
    const worker = createWorker(
      queue,
      async ({ payload }) => ({ echo: payload.text.toUpperCase(), worker: settings.name }),
      { scheduler, concurrency: 2, leaseMs: 15_000, logger },
    );
    started.push(() => worker.close({ timeoutMs: 5000 }));

    if (settings.metrics) {
      // The Doctor's figures of this node: the collector's gauges (CPU, memory and disk against the
      // container's limits, RSS, each server's health), one record every 10 s; the maintenance
      // (rollups, retention) under a lease, so one gateway of the fleet does it at a time.
      const metricsClient = createPocketBaseMetricsClient({ endpoints: settings.endpoints, auth, logger });
      started.push(async () => metricsClient.close());
      // The built-in checks: the 75% rule held for 5 minutes, and a node silent for two flushes
      // (evaluated by one gateway at a time, alerts on every server's dashboard).
      const metrics = createMetrics({
        client: metricsClient,
        node: settings.nodeId,
        logger,
        alerts: { checks: [hardwareCapCheck(), absenceCheck(10_000)] },
      });
      started.push(() => metrics.close());
      const collector = createCollector({
        metrics,
        healthUrls: settings.endpoints,
        diskPath: settings.stateDir,
        // The notes replica's outbox (its lag) and the echo queue's depth, for the dashboard.
        probes: [replicaProbe(NOTES_DOC, replica), queueDepthProbe(queue)],
        onError: (e) => logger.warn("metrics probe failed", { error: e }),
      });
      started.push(async () => collector.stop());
      metrics.start();
      collector.start();
    }

    return {
      settings,
      replica,
      transport,
      notesEndpoint: () => {
        const status = transport.status();
        return "endpoint" in status ? status.endpoint : status.server;
      },
      notesStreamLeader: () => {
        const status = transport.status();
        return "streamLeader" in status ? status.streamLeader : undefined;
      },
      queue,
      worker,
      config,
      configSource: source,
      async setNote(key, value) {
        replica.doc.set(["entries", key], value);
        await replica.flush();
      },
      enqueue: (text) => queue.add({ text }),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * The notes doc's transport: the only part that changes when the doc moves to NATS. The NATS
 * client is imported only then (a gateway on PocketBase does not load it: the secondary's gateway
 * has 80 MB).
 */
async function notesTransport(
  settings: GatewaySettings,
  replicaId: string,
  logger: Logger,
): Promise<PocketBaseTransport | NatsTransport> {
  const { nats } = settings;
  if (nats !== undefined) {
    const { createNatsTransport } = await import("@nxs-sync/nats");
    const transport = createNatsTransport({
      servers: nats.servers,
      docId: NOTES_DOC,
      origin: replicaId,
      replicas: nats.replicas,
      logger,
      ...(nats.user === undefined ? {} : { connectOptions: { user: nats.user, pass: nats.password } }),
    });
    transport.on("health", (h) => logger.info(`notes: NATS health ${h}`));
    return transport;
  }
  const transport = createPocketBaseTransport({
    endpoints: settings.endpoints,
    auth: { email: settings.email, password: settings.password },
    docId: NOTES_DOC,
    origin: replicaId,
    logger,
  });
  transport.on("failover", (e) => logger.warn(`notes: failover ${e.from} -> ${e.to}`));
  transport.on("failback", (e) => logger.info(`notes: failback ${e.from} -> ${e.to}`));
  return transport;
}
