/**
 * Packs on NATS: a pack is consecutive changes `first..last` of one origin of one doc, one message
 * (ADR 0005's rule, carried over). The cut of a pack that was sent and not acknowledged is kept, so
 * that a retry sends the same cut under the same `Nats-Msg-Id` and the server's duplicate window
 * drops the copy.
 */
import { type Change, decodeChanges, ErrorCode, encodeChanges, ValidationError } from "@nxs-sync/core";

/** Limits of one pack. */
export interface PackLimits {
  /** Most changes per pack. */
  readonly packSize: number;
  /** Largest estimated JSON size of one pack, in bytes. */
  readonly packMaxBytes: number;
}

/** The headers nxs-sync sets on a pack message (besides `Nats-Msg-Id`). */
export const PackHeader = {
  /** The pack's first seq. */
  First: "Nxs-First",
  /** The pack's last seq. */
  Last: "Nxs-Last",
} as const;

const key = (origin: string, seq: number) => `${origin}\u0000${seq}`;

/**
 * The cuts of packs sent and not yet acknowledged, by origin and first seq: a later cut of the same
 * changes starts and ends a pack at the same seqs, so it carries the same message id.
 */
export interface PackOutbox {
  /** Cuts `changes` into packs, reusing every pending cut that fits. */
  cut(changes: readonly Change[]): Change[][];
  /** Remembers a pack as sent (its cut is reused until {@link PackOutbox.settle}). */
  sent(pack: readonly Change[]): void;
  /** Forgets a pack's cut (acknowledged). */
  settle(pack: readonly Change[]): void;
  /** Pending cuts. */
  readonly size: number;
}

/**
 * Estimates a change's JSON size in bytes (its ops' values dominate).
 * @param change - A change.
 * @returns The estimate.
 */
export function estimateChangeBytes(change: Change): number {
  return JSON.stringify(change.ops).length + change.hlc.length + 32;
}

/**
 * Creates an empty outbox of pack cuts.
 * @param limits - Pack limits for the cuts made fresh.
 * @returns The outbox.
 * @example
 * ```ts
 * const outbox = createPackOutbox({ packSize: 1000, packMaxBytes: 256 * 1024 });
 * const packs = outbox.cut([change]);
 * for (const p of packs) outbox.sent(p);
 * ```
 */
export function createPackOutbox(limits: PackLimits): PackOutbox {
  /** (origin, first) → last of a pack sent and not acknowledged. */
  const pending = new Map<string, number>();
  return {
    cut(changes) {
      const packs: Change[][] = [];
      let current: Change[] = [];
      let bytes = 0;
      let fixedLast: number | undefined;
      const close = () => {
        if (current.length > 0) packs.push(current);
        current = [];
        bytes = 0;
        fixedLast = undefined;
      };
      for (const c of changes) {
        const pendingLast = pending.get(key(c.origin, c.seq));
        const prev = current.at(-1);
        const size = estimateChangeBytes(c);
        if (prev !== undefined) {
          const joins = prev.doc === c.doc && prev.origin === c.origin && prev.seq + 1 === c.seq;
          if (fixedLast !== undefined) {
            // Inside a pending cut: it closes at its last seq; a run that ends first cuts it short.
            if (!joins) close();
          } else if (
            !joins ||
            pendingLast !== undefined ||
            current.length >= limits.packSize ||
            bytes + size > limits.packMaxBytes
          ) {
            close();
          }
        }
        if (current.length === 0 && pendingLast !== undefined) fixedLast = pendingLast;
        current.push(c);
        bytes += size;
        if (fixedLast !== undefined && c.seq === fixedLast) close();
      }
      close();
      return packs;
    },
    sent(pack) {
      const first = pack[0];
      const last = pack.at(-1);
      if (first && last) pending.set(key(first.origin, first.seq), last.seq);
    },
    settle(pack) {
      const first = pack[0];
      if (first) pending.delete(key(first.origin, first.seq));
    },
    get size() {
      return pending.size;
    },
  };
}

/**
 * The body of a pack message: core's compact change-batch form as JSON.
 * @param pack - One pack.
 * @returns UTF-8 JSON bytes.
 */
export function encodePackBody(pack: readonly Change[]): Uint8Array {
  return Buffer.from(JSON.stringify(encodeChanges(pack)), "utf8");
}

/**
 * Decodes and checks a pack message: every change valid (core's decoder), of `doc`, and of the
 * origin its subject names.
 * @param data - The message body.
 * @param doc - The doc the subject names.
 * @param origin - The origin the subject names.
 * @returns The changes.
 * @throws ValidationError `op/invalid` for a malformed body or a change of another doc or origin.
 */
export function decodePackBody(data: Uint8Array, doc: string, origin: string): Change[] {
  // A view of the message's bytes, not a copy.
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
  const changes = decodeChanges(JSON.parse(text));
  for (const c of changes) {
    if (c.doc !== doc || c.origin !== origin) {
      // decodeChanges threw for malformed input already; a valid change on the wrong subject is
      // refused as well (a writer must not place changes under another origin's subject).
      throw new ValidationError(`pack on ${doc}/${origin} holds ${c.doc}/${c.origin}:${c.seq}`, {
        code: ErrorCode.OpInvalid,
      });
    }
  }
  return changes;
}
