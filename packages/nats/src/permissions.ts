/**
 * Origin binding on NATS: the subject permissions of a gateway's NATS user, so that a stolen
 * gateway account can write packs and acks only under its own origins (the subject names the
 * origin: `<prefix>.changes.<doc>.<origin>`, and readers take a pack's origin from its subject),
 * and cannot publish snapshots, purge, delete or reconfigure the streams. The server enforces
 * them; nxs-sync only writes the lists. Compaction and stream set-up run as another user
 * ({@link natsCompactorPermissions}, or an operator without limits).
 */
import { encodeSubjectToken, type NatsNames, natsNames } from "./subjects.js";

/** A NATS user's `permissions` block, as nats-server's configuration takes it (JSON is valid there). */
export interface NatsPermissions {
  readonly publish: { readonly allow: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[] };
}

/** Options of {@link natsGatewayPermissions}. */
export interface NatsGatewayPermissionsOptions {
  /** The origins (replica ids) the gateway writes as: its packs and its acks. */
  readonly origins: readonly string[];
  /** The deployment's subject prefix (default `nxs`). */
  readonly prefix?: string;
}

/** What every user of the transport reads: stream and consumer reads, direct gets, replies. */
function readSubjects(names: NatsNames): { publish: string[]; subscribe: string[] } {
  const streams = [names.changesStream, names.snapshotsStream, `KV_${names.acksBucket}`];
  const publish = ["$JS.API.INFO"];
  for (const s of streams) {
    publish.push(
      `$JS.API.STREAM.INFO.${s}`,
      `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}.>`,
      `$JS.API.CONSUMER.CREATE.${s}`,
      `$JS.API.CONSUMER.CREATE.${s}.>`,
      `$JS.API.CONSUMER.INFO.${s}.*`,
      `$JS.API.CONSUMER.DELETE.${s}.*`,
      `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
    );
  }
  // Replies (JetStream answers, consumer deliveries) and the streams' advisories (leader, quorum).
  const subscribe = ["_INBOX.>", `$JS.EVENT.ADVISORY.STREAM.*.${names.changesStream}`];
  return { publish, subscribe };
}

/**
 * The permissions of a gateway's NATS user: read everything of the deployment, write packs and
 * acks under its own origins only. A pack published as another origin, a snapshot, a purge, a
 * stream or bucket created, changed or deleted: each is refused by the server (the transport
 * reports `transport/unauthorized`, not retryable). The streams must exist before such a gateway
 * starts (created by a compactor or operator user, or by one transport run with those rights).
 * @param options - The gateway's origins and the deployment's prefix.
 * @returns The `permissions` block for the user in nats-server's configuration.
 * @throws NxsError `config/invalid` for an empty origin or a bad prefix.
 * @example
 * ```ts
 * const permissions = natsGatewayPermissions({ origins: ["n1abc.main"] });
 * // users: [{ user: "gw-n1abc", password: "…", permissions }] in nats.conf (JSON is valid there)
 * console.log(JSON.stringify(permissions.publish.allow[0])); // "nxs.changes.*.n1abc=2emain"
 * ```
 */
export function natsGatewayPermissions(options: NatsGatewayPermissionsOptions): NatsPermissions {
  const names = natsNames(options.prefix);
  const read = readSubjects(names);
  const own: string[] = [];
  for (const origin of options.origins) {
    const token = encodeSubjectToken(origin);
    own.push(`${names.prefix}.changes.*.${token}`, `$KV.${names.acksBucket}.ack.*.${token}`);
  }
  return { publish: { allow: [...own, ...read.publish] }, subscribe: { allow: read.subscribe } };
}

/**
 * The permissions of a compactor's NATS user: what a gateway reads, plus snapshots, acks of any
 * replica, the compaction leases, purges of the changes stream, and creating the streams and the
 * bucket when missing. It publishes no pack.
 * @param prefix - The deployment's subject prefix (default `nxs`).
 * @returns The `permissions` block.
 * @example
 * ```ts
 * const permissions = natsCompactorPermissions();
 * console.log(permissions.publish.allow.includes("$JS.API.STREAM.PURGE.NXS_CHANGES")); // true
 * ```
 */
export function natsCompactorPermissions(prefix?: string): NatsPermissions {
  const names = natsNames(prefix);
  const read = readSubjects(names);
  const publish = [
    `${names.prefix}.snapshots.*`,
    `$KV.${names.acksBucket}.>`,
    `$JS.API.STREAM.PURGE.${names.changesStream}`,
    ...[names.changesStream, names.snapshotsStream, `KV_${names.acksBucket}`].map(
      (s) => `$JS.API.STREAM.CREATE.${s}`,
    ),
    ...read.publish,
  ];
  return { publish: { allow: publish }, subscribe: { allow: read.subscribe } };
}
