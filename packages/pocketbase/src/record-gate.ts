import type { Change, ValidationError } from "@nxs-sync/core";
import type { Endpoint } from "./failover.js";
import { type DecodeChangeOptions, decodeChangeRecord } from "./records.js";

/** Records (ids per server) whose quarantine a gate remembers, to skip them unread. */
const QUARANTINE_MEMORY = 10_000;

/** A quarantined record: never passed to core. */
export interface QuarantineEvent {
  readonly recordId: string | undefined;
  readonly url: string;
  readonly error: ValidationError;
}

/** Options of {@link createRecordGate}. */
export interface RecordGateOptions {
  /** How change records are checked (the docs they may belong to, HLC decoder, size limits). */
  readonly decode: DecodeChangeOptions;
  /** Called once per quarantined record and server. */
  readonly onQuarantine: (event: QuarantineEvent) => void;
}

/**
 * The edge where change records from a server become core's changes: each record is decoded and
 * checked; a bad one is quarantined (reported once per record and server, never passed on), and a
 * quarantined change record is remembered so that readers skip it unread (records never change).
 * Shared by the change reader, the change writer and the realtime handler of one transport.
 */
export interface RecordGate {
  /** Reports `error` of record `recordId` at `ep` (once per record and server). */
  quarantine(ep: Endpoint, recordId: string | undefined, error: ValidationError): void;
  /** Quarantines a change record and remembers it, so that {@link RecordGate.skipped} is true for it. */
  quarantineChanges(ep: Endpoint, recordId: string | undefined, error: ValidationError): void;
  /** Whether the change record `recordId` at `ep` was quarantined before. */
  skipped(ep: Endpoint, recordId: string): boolean;
  /**
   * Decodes raw change records (packs) into their changes, quarantining the bad ones.
   * @returns The changes of the good records, in order.
   */
  decodeAll(ep: Endpoint, raws: readonly unknown[]): Change[];
}

/**
 * Creates the {@link RecordGate} of one transport. Both memories are bounded: forgotten all at once
 * when full.
 * @param options - The decode checks and the quarantine handler.
 * @returns A gate.
 */
export function createRecordGate(options: RecordGateOptions): RecordGate {
  /** Quarantined record ids already reported (a bad record comes back with every pull). */
  const reported = new Set<string>();
  /** Change records quarantined (`url|id`). */
  const skipped = new Set<string>();

  function quarantine(ep: Endpoint, recordId: string | undefined, error: ValidationError): void {
    const tag = `${ep.url}|${recordId ?? error.message}`;
    if (reported.has(tag)) return;
    if (reported.size >= QUARANTINE_MEMORY) reported.clear();
    reported.add(tag);
    options.onQuarantine({ recordId, url: ep.url, error });
  }

  function quarantineChanges(ep: Endpoint, recordId: string | undefined, error: ValidationError): void {
    if (recordId !== undefined) {
      if (skipped.size >= QUARANTINE_MEMORY) skipped.clear();
      skipped.add(`${ep.url}|${recordId}`);
    }
    quarantine(ep, recordId, error);
  }

  return {
    quarantine,
    quarantineChanges,
    skipped: (ep, recordId) => skipped.has(`${ep.url}|${recordId}`),
    decodeAll(ep, raws) {
      const out: Change[] = [];
      for (const raw of raws) {
        const r = decodeChangeRecord(raw, options.decode);
        if (r.ok) for (const c of r.value) out.push(c);
        else quarantineChanges(ep, r.recordId, r.error);
      }
      return out;
    },
  };
}
