/**
 * Names on the wire: subject tokens for doc ids and origins, the subjects and message ids of
 * packs, and the KV keys of acks and leases. A subject token cannot hold `.`, `*`, `>` or
 * whitespace, and a KV key only `[-/_=.A-Za-z0-9]`, so ids are encoded: every UTF-8 byte outside
 * `[A-Za-z0-9_-]` becomes `=` and two lowercase hex digits (`gw.1` is `gw=2e1`). The encoding is
 * injective and reversible, and an encoded id is a valid token and KV key.
 */
import { ErrorCode, NxsError } from "@nxs-sync/core";

const PLAIN = /^[A-Za-z0-9_-]$/;
const ENCODED = /^(?:[A-Za-z0-9_-]|=[0-9a-f]{2})+$/;

/**
 * Encodes an id (a doc id, a replica id) as one subject token.
 * @param id - Any non-empty string.
 * @returns The token: `[A-Za-z0-9_-]` kept, every other UTF-8 byte as `=xx`.
 * @throws NxsError `config/invalid` for an empty id.
 * @example
 * ```ts
 * encodeSubjectToken("routes.eu:1"); // "routes=2eeu=3a1"
 * ```
 */
export function encodeSubjectToken(id: string): string {
  if (id.length === 0) throw new NxsError(ErrorCode.ConfigInvalid, "an empty id cannot name a subject token");
  let out = "";
  for (const ch of id) {
    if (PLAIN.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, "utf8")) out += `=${b.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/**
 * Decodes a token made by {@link encodeSubjectToken}.
 * @param token - An encoded token.
 * @returns The id.
 * @throws NxsError `op/invalid` for a token no encoding makes.
 */
export function decodeSubjectToken(token: string): string {
  if (!ENCODED.test(token)) throw new NxsError(ErrorCode.OpInvalid, `not an encoded subject token: ${token}`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "=") {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  const id = Buffer.from(bytes).toString("utf8");
  if (encodeSubjectToken(id) !== token)
    throw new NxsError(ErrorCode.OpInvalid, `not an encoded subject token: ${token}`);
  return id;
}

/** The names of the streams and buckets of one deployment (see {@link natsNames}). */
export interface NatsNames {
  /** Stream of change packs: subjects `<prefix>.changes.<doc>.<origin>`. */
  readonly changesStream: string;
  /** Stream of snapshots: subjects `<prefix>.snapshots.<doc>`, the newest few kept per doc. */
  readonly snapshotsStream: string;
  /** KV bucket of acks (key `ack.<doc>.<replica>`) and compaction leases (key `lease.<doc>`). */
  readonly acksBucket: string;
  /** The subject prefix. */
  readonly prefix: string;
}

/**
 * The stream and bucket names for a subject prefix: a few fixed streams for every doc (each R3
 * stream is its own Raft group, so never a stream per doc).
 * @param prefix - Subject prefix, one token of `[a-z0-9_-]` (default `nxs`).
 * @returns The names.
 * @throws NxsError `config/invalid` for a prefix that is not one such token.
 */
export function natsNames(prefix = "nxs"): NatsNames {
  if (!/^[a-z0-9_-]{1,32}$/.test(prefix)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `subject prefix ${JSON.stringify(prefix)} must be 1-32 of [a-z0-9_-]`,
    );
  }
  const up = prefix.toUpperCase().replace(/-/g, "_");
  return {
    prefix,
    changesStream: `${up}_CHANGES`,
    snapshotsStream: `${up}_SNAPSHOTS`,
    acksBucket: `${up}_ACKS`,
  };
}

/**
 * The subject of one origin's packs in one doc.
 * @param names - The deployment's names.
 * @param doc - The doc id (encoded here).
 * @param origin - The origin (encoded here).
 * @returns `<prefix>.changes.<doc>.<origin>`.
 */
export function changeSubject(names: NatsNames, doc: string, origin: string): string {
  return `${names.prefix}.changes.${encodeSubjectToken(doc)}.${encodeSubjectToken(origin)}`;
}

/**
 * The subject filter of every pack of a doc: one wildcard, so a doc is one subject space.
 * @param names - The deployment's names.
 * @param doc - The doc id.
 * @returns `<prefix>.changes.<doc>.*`.
 */
export function docChangesFilter(names: NatsNames, doc: string): string {
  return `${names.prefix}.changes.${encodeSubjectToken(doc)}.*`;
}

/**
 * The subject of a doc's snapshots.
 * @param names - The deployment's names.
 * @param doc - The doc id.
 * @returns `<prefix>.snapshots.<doc>`.
 */
export function snapshotSubject(names: NatsNames, doc: string): string {
  return `${names.prefix}.snapshots.${encodeSubjectToken(doc)}`;
}

/**
 * The origin of a pack from its subject (the last token), undefined for another shape.
 * @param subject - A change subject.
 * @returns The decoded origin.
 */
export function originOfSubject(subject: string): string | undefined {
  const token = subject.slice(subject.lastIndexOf(".") + 1);
  try {
    return decodeSubjectToken(token);
  } catch {
    return undefined;
  }
}

/**
 * The `Nats-Msg-Id` of a pack: doc, origin and its first and last seq. The server drops a second
 * message with the same id within the stream's duplicate window, so a retried pack (same cut, same
 * id) is stored once; a pack cut differently overlaps, which readers tolerate (ADR 0005).
 * @param doc - The doc id.
 * @param origin - The pack's origin.
 * @param first - Its first seq.
 * @param last - Its last seq.
 * @returns `<doc>.<origin>.<first>-<last>`, ids encoded.
 */
export function packMessageId(doc: string, origin: string, first: number, last: number): string {
  return `${encodeSubjectToken(doc)}.${encodeSubjectToken(origin)}.${first}-${last}`;
}

/**
 * The KV key of a replica's ack of a doc.
 * @param doc - The doc id.
 * @param replica - The replica id.
 * @returns `ack.<doc>.<replica>`, encoded.
 */
export function ackKey(doc: string, replica: string): string {
  return `ack.${encodeSubjectToken(doc)}.${encodeSubjectToken(replica)}`;
}

/**
 * The KV key of a doc's compaction lease.
 * @param doc - The doc id.
 * @returns `lease.<doc>` (acks are under `ack.`: no key of one kind is a key of the other).
 */
export function leaseKey(doc: string): string {
  return `lease.${encodeSubjectToken(doc)}`;
}
