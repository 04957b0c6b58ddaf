/**
 * Reads of the streams by direct get (`allow_direct`): a subject's messages in stream order, a
 * doc's newest snapshot. Cheap (no consumer is created) and served by any replica of the stream.
 */
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { decodeSnapshot, ErrorCode, NxsError, type Snapshot } from "@nxs-sync/core";
import { toNatsTransportError } from "./errors.js";
import { type NatsNames, snapshotSubject } from "./subjects.js";

/**
 * Whether a JetStream error is "message not found" (404): an empty subject, not a failure.
 * @param e - What the client threw.
 * @returns True for a 404.
 */
export function isNotFound(e: unknown): boolean {
  const x = e as { status?: unknown; code?: unknown } | undefined;
  return x?.status === 404 || x?.code === 404;
}

/**
 * Every message of `stream` on `subject` (a filter), oldest first, by direct batch gets.
 * @param jsm - A JetStream manager.
 * @param stream - The stream.
 * @param subject - A subject or filter.
 * @param batch - Messages per request (default 256).
 * @param from - The first stream sequence to read (default 1).
 * @returns The messages, one at a time.
 * @throws TransportError `transport/unavailable` when a request fails.
 */
export async function* scanSubject(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  batch = 256,
  from = 1,
): AsyncGenerator<StoredMsg> {
  let seq = from;
  for (;;) {
    let got = 0;
    let pendingAfter = 0;
    let lastSeq = seq;
    try {
      const iter = await jsm.direct.getBatch(stream, { seq, next_by_subj: subject, batch });
      for await (const m of iter) {
        got++;
        lastSeq = m.seq;
        pendingAfter = m.pending;
        yield m;
      }
    } catch (e) {
      if (isNotFound(e)) return;
      throw toNatsTransportError(e, `read ${subject}`);
    }
    if (got === 0 || pendingAfter <= 0) return;
    seq = lastSeq + 1;
  }
}

/**
 * The newest snapshot of a doc, validated (core's decoder, and its doc).
 * @param jsm - A JetStream manager.
 * @param names - The deployment's names.
 * @param doc - The doc id.
 * @returns The snapshot, or undefined when the doc has none.
 * @throws ValidationError for a malformed snapshot; TransportError `transport/unavailable`.
 */
export async function readLatestSnapshot(
  jsm: JetStreamManager,
  names: NatsNames,
  doc: string,
): Promise<Snapshot | undefined> {
  let data: Uint8Array;
  try {
    const m = await jsm.direct.getMessage(names.snapshotsStream, {
      last_by_subj: snapshotSubject(names, doc),
    });
    if (m === null) return undefined;
    data = m.data;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw toNatsTransportError(e, "read snapshot");
  }
  const snapshot = decodeSnapshot(JSON.parse(Buffer.from(data).toString("utf8")));
  if (snapshot.doc !== doc)
    throw new NxsError(ErrorCode.OpInvalid, `snapshot of ${snapshot.doc} stored for ${doc}`);
  return snapshot;
}
