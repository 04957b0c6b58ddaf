/**
 * The fixed streams and the bucket of one deployment, created when missing: the changes stream
 * (every doc's packs, a subject per doc and origin), the snapshots stream (the newest few per doc)
 * and the KV bucket of acks and leases. A few fixed streams, never one per doc: every R3 stream is
 * its own Raft group.
 */
import { type JetStreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsError, NatsErrorCode, toNatsTransportError } from "./errors.js";
import type { NatsNames } from "./subjects.js";

/** How the streams are created when missing. */
export interface StreamSettings {
  /** Replicas of each stream and bucket (1 for one server, 3 for a cluster). */
  readonly replicas: number;
  /** The changes stream's duplicate window in ms (`Nats-Msg-Id` dedupe). Default 2 min. */
  readonly duplicateWindowMs: number;
  /** Largest message (pack or snapshot) in bytes. Default 1 MiB (the server's max_payload). */
  readonly maxMessageBytes: number;
  /** Snapshots kept per doc. Default 2. */
  readonly snapshotsPerDoc: number;
}

const ms = (n: number) => n * 1_000_000;

/**
 * Creates the streams and bucket that are missing and checks those that exist.
 * @param nc - A connection.
 * @param jsm - Its JetStream manager.
 * @param names - The deployment's names.
 * @param settings - Replicas, duplicate window, limits.
 * @throws NatsError `nats/stream-mismatch` when a stream exists with other subjects;
 *   TransportError `transport/unavailable` when the servers do not answer.
 */
export async function ensureStreams(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: NatsNames,
  settings: StreamSettings,
): Promise<void> {
  const wanted = [
    {
      name: names.changesStream,
      subjects: [`${names.prefix}.changes.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: settings.replicas,
      duplicate_window: ms(settings.duplicateWindowMs),
      max_msg_size: settings.maxMessageBytes,
      allow_direct: true,
    },
    {
      name: names.snapshotsStream,
      subjects: [`${names.prefix}.snapshots.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: settings.replicas,
      max_msgs_per_subject: settings.snapshotsPerDoc,
      max_msg_size: settings.maxMessageBytes * 8,
      allow_direct: true,
    },
  ];
  for (const config of wanted) {
    try {
      const info = await jsm.streams.info(config.name).catch((e: unknown) => {
        if ((e as { name?: string }).name === "StreamNotFoundError") return undefined;
        throw e;
      });
      if (info === undefined) {
        await jsm.streams.add(config).catch(async (e: unknown) => {
          // Another gateway created it in the meantime: check it below.
          if ((e as { status?: number }).status !== 400) throw e;
        });
        continue;
      }
      const subjects = info.config.subjects ?? [];
      if (subjects.join(",") !== config.subjects.join(",")) {
        throw new NatsError(
          NatsErrorCode.StreamMismatch,
          `stream ${config.name} exists with subjects ${subjects.join(",")}, not ${config.subjects.join(",")}: pick another prefix`,
        );
      }
    } catch (e) {
      if (e instanceof NatsError) throw e;
      throw toNatsTransportError(e, `ensure stream ${config.name}`);
    }
  }
  try {
    await new Kvm(nc).create(names.acksBucket, { replicas: settings.replicas, history: 1 });
  } catch (e) {
    throw toNatsTransportError(e, `ensure bucket ${names.acksBucket}`);
  }
}
