import type { VersionVector } from "../clock/version-vector.js";
import type { Change, Snapshot } from "../model/change.js";

/**
 * What `push` reports: the first `acked` changes of the pushed list are durably committed
 * (by as many servers as the transport requires). `acked < changes.length` means the rest must be
 * pushed again later. Re-pushing a committed change is a no-op that counts as acknowledged.
 */
export interface PushAck {
  readonly acked: number;
}

/**
 * One page of a pull. A page may start with a snapshot when the server compacted the changes the
 * caller lacks; the changes of a page follow the snapshot (if any).
 */
export interface PullPage {
  readonly snapshot?: Snapshot;
  readonly changes: readonly Change[];
}

/** Connection state a transport reports. */
export const TransportState = {
  Connecting: "connecting",
  Connected: "connected",
  Disconnected: "disconnected",
  Closed: "closed",
} as const;
/** The union of transport states. */
export type TransportState = (typeof TransportState)[keyof typeof TransportState];

/** Callbacks of {@link Transport.subscribe}. */
export interface TransportListener {
  /** Changes seen in real time. A hint: they may be duplicated, reordered or missing. */
  onChanges(changes: readonly Change[]): void;
  /**
   * Fired after every (re)connect, the first included: events may have been lost, so the
   * subscriber must `pull` to catch up. Also fired when the transport switched server.
   */
  onResync(): void;
  /** Connection state changes. */
  onState?(state: TransportState): void;
  /** Errors of background work the transport could not hand to a caller (already typed). */
  onError?(error: Error): void;
}

/** What the servers hold of one origin: see {@link Transport.highWater}. */
export interface HighWater {
  /** The highest seq of the origin any server holds (0: none). */
  readonly seq: number;
  /** The HLC of that change, when a change record carries it. */
  readonly hlc?: string;
}

/**
 * The port between the sync engine and a network. Bound to one document. Realtime is a hint,
 * `pull` is the truth. Implementations: `MemoryTransport` (core, tests), `PocketBaseTransport`.
 */
export interface Transport {
  /**
   * The document this transport carries, when it is bound to one. A replica refuses, at
   * construction, a transport bound to another doc than its own (its pushes would go to one doc
   * and its pulls read another).
   */
  readonly docId?: string;
  /**
   * The origin (replica id) this transport pushes for, when it serves one replica. A replica
   * refuses, at construction, a transport bound to another origin than its own.
   */
  readonly origin?: string;
  /**
   * Optional: the highest seq (and the HLC of that change, when known) that the servers hold of
   * `origin` in this doc, counting change records, snapshots and acknowledgements. A replica that
   * starts on empty storage asks it, and catches up on its own earlier changes before it writes, so
   * that a new incarnation of a replica id never reuses the seqs of an earlier one.
   * @throws TransportError `transport/unavailable` (retryable) when no server answered.
   */
  highWater?(origin: string): Promise<HighWater>;
  /** Opens the connection. Resolves once it is usable; retries the first connect itself. */
  connect(): Promise<void>;
  /** Closes the connection and stops every background task. Idempotent. */
  close(): Promise<void>;
  /**
   * Makes changes durable on the server side. Idempotent per (doc, origin, seq).
   * @throws TransportError `transport/unavailable` (retryable) when nothing could be committed.
   */
  push(changes: readonly Change[]): Promise<PushAck>;
  /**
   * Streams every change the server holds that `since` lacks, in pages.
   * @throws TransportError `transport/unavailable` (retryable).
   */
  pull(since: VersionVector): AsyncIterable<PullPage>;
  /** Registers realtime callbacks. Returns the function that unregisters them. */
  subscribe(listener: TransportListener): () => void;
}
