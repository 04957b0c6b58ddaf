import { ClockError, ErrorCode } from "../errors/errors.js";
import type { WallClock } from "./clock.js";
import { type Hlc, ID_PATTERN, type ReplicaId } from "./ids.js";

/**
 * The parts of a hybrid logical clock timestamp. Ordered by `ms`, then `counter`, then `node`
 * (plain string order), which is also the order of their encodings.
 */
export interface HlcParts {
  /** Physical part: milliseconds since the Unix epoch, 0 to 2^48 - 1. */
  readonly ms: number;
  /** Logical part: orders stamps within one millisecond, 0 to 2^24 - 1. */
  readonly counter: number;
  /** The replica that made the stamp. */
  readonly node: string;
}

/** Hex digits of the `ms` part of an encoded {@link Hlc}. */
export const HLC_MS_DIGITS = 12;
/** Hex digits of the `counter` part of an encoded {@link Hlc}. */
export const HLC_COUNTER_DIGITS = 6;
/** Length of the fixed-width prefix (ms and counter) of an encoded {@link Hlc}; the node id follows. */
export const HLC_PREFIX_LENGTH: number = HLC_MS_DIGITS + HLC_COUNTER_DIGITS;
/** The largest `ms` an {@link Hlc} can carry. */
export const HLC_MAX_MS: number = 2 ** 48 - 1;
/** The largest `counter` an {@link Hlc} can carry. */
export const HLC_MAX_COUNTER: number = 2 ** 24 - 1;
/**
 * The largest `counter` a clock makes or accepts (the lower half of the range). A clock that would
 * count past it moves to the next millisecond instead; a received stamp above it is refused
 * (`hlc/invalid`), so no stamp can exhaust a receiver's counter.
 */
export const HLC_COUNTER_LIMIT: number = 2 ** 23 - 1;

const HEX = /^[0-9a-f]+$/;

/**
 * Encodes HLC parts as a fixed-width string that sorts (as a plain string) in HLC order:
 * 12 lowercase hex digits of `ms`, 6 of `counter`, then the node id.
 * @param parts - The stamp to encode.
 * @returns The encoded, branded stamp.
 * @throws {@link ClockError} `hlc/invalid` when a part is out of range or the node id is malformed.
 * @example
 * ```ts
 * encodeHlc({ ms: 1, counter: 2, node: "a" }) // "000000000001000002a"
 * ```
 */
export function encodeHlc(parts: HlcParts): Hlc {
  const { ms, counter, node } = parts;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > HLC_MAX_MS) {
    throw new ClockError(ErrorCode.HlcInvalid, `hlc ms out of range: ${ms}`);
  }
  if (!Number.isSafeInteger(counter) || counter < 0 || counter > HLC_MAX_COUNTER) {
    throw new ClockError(ErrorCode.HlcInvalid, `hlc counter out of range: ${counter}`);
  }
  if (typeof node !== "string" || !ID_PATTERN.test(node)) {
    throw new ClockError(ErrorCode.HlcInvalid, `hlc node id malformed: ${JSON.stringify(node)}`);
  }
  return (ms.toString(16).padStart(HLC_MS_DIGITS, "0") +
    counter.toString(16).padStart(HLC_COUNTER_DIGITS, "0") +
    node) as Hlc;
}

/**
 * Decodes a string made by {@link encodeHlc}.
 * @param value - The encoded stamp (anything: it is checked).
 * @returns Its parts.
 * @throws {@link ClockError} `hlc/invalid` when `value` is not a well-formed stamp.
 */
export function decodeHlc(value: unknown): HlcParts {
  if (typeof value !== "string" || value.length <= HLC_PREFIX_LENGTH) {
    throw new ClockError(ErrorCode.HlcInvalid, `malformed hlc ${JSON.stringify(value)}`);
  }
  const msHex = value.slice(0, HLC_MS_DIGITS);
  const counterHex = value.slice(HLC_MS_DIGITS, HLC_PREFIX_LENGTH);
  const node = value.slice(HLC_PREFIX_LENGTH);
  if (!HEX.test(msHex) || !HEX.test(counterHex) || !ID_PATTERN.test(node)) {
    throw new ClockError(ErrorCode.HlcInvalid, `malformed hlc ${JSON.stringify(value)}`);
  }
  return { ms: Number.parseInt(msHex, 16), counter: Number.parseInt(counterHex, 16), node };
}

/**
 * The node id (replica) embedded in an encoded stamp, without a full decode.
 * @param hlc - A well-formed stamp.
 * @returns The node id part.
 */
export function hlcNode(hlc: Hlc | string): string {
  return hlc.slice(HLC_PREFIX_LENGTH);
}

/**
 * Compares two encoded stamps (plain string order, which is HLC order).
 * @param a - A stamp.
 * @param b - Another stamp.
 * @returns A negative number, 0 or a positive number as `a` is before, equal to or after `b`.
 */
export function compareHlc(a: Hlc | string, b: Hlc | string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of {@link createHlcClock}. */
export interface HlcClockOptions {
  /** The node id written into every stamp. */
  readonly replicaId: ReplicaId | string;
  /**
   * The wall clock (ms since the epoch). `Date.now` in production, a fake in tests. Without it the
   * clock is purely logical: its `ms` starts at 0 and only moves with received stamps and counter
   * overflows, and the drift limit is measured from the clock's own last stamp instead of a wall clock.
   */
  readonly now?: WallClock;
  /**
   * How far ahead of the wall clock (or, without one, of the clock's last stamp) a received stamp may
   * be. Default 60 000 ms.
   */
  readonly maxDriftMs?: number;
  /** A stamp this clock must stay after (e.g. the last stamp saved before a restart). */
  readonly last?: Hlc | string;
}

/** A hybrid logical clock: monotonic stamps that also follow every stamp received. */
export interface HlcClock {
  /**
   * A new stamp, greater than every stamp this clock made or received before. When the counter would
   * pass {@link HLC_COUNTER_LIMIT} the clock moves to the next millisecond (ahead of the wall clock,
   * as HLCs allow) with counter 0.
   * @throws {@link ClockError} `hlc/overflow` only when `ms` would pass {@link HLC_MAX_MS} (year
   * 10889), `hlc/invalid` when the wall clock is out of range.
   */
  now(): Hlc;
  /**
   * Takes a remote stamp into account: every later {@link HlcClock.now} is greater than it.
   * @param remote - An encoded stamp from another replica, or its parts as {@link decodeHlc}
   * returned them.
   * @throws {@link ClockError} `hlc/invalid` (malformed, or counter above {@link HLC_COUNTER_LIMIT})
   * or `hlc/drift` (more than `maxDriftMs` ahead of the wall clock); the clock is then left unchanged.
   */
  receive(remote: Hlc | string | HlcParts): void;
  /**
   * Checks a remote stamp without changing the clock.
   * @param remote - An encoded stamp, or its parts as {@link decodeHlc} returned them (then the
   * string is not parsed again; the counter limit and drift are still checked).
   * @returns The stamp's parts.
   * @throws {@link ClockError} `hlc/invalid` or `hlc/drift`, as {@link HlcClock.receive}.
   */
  check(remote: Hlc | string | HlcParts): HlcParts;
  /** The greatest stamp made or received so far (the encoded lower bound of the next `now()`). */
  last(): { readonly ms: number; readonly counter: number };
}

/**
 * Creates a hybrid logical clock (Kulkarni et al.) over an injected wall clock. Stamps never go
 * backwards, even when the wall clock does.
 * @param options - Node id, wall clock, drift limit and optional restart stamp.
 * @returns The clock.
 * @throws {@link ClockError} `hlc/invalid` when `replicaId` or `last` is malformed.
 * @example
 * ```ts
 * const clock = createHlcClock({ replicaId: "a", now: () => 1000 });
 * const t1 = clock.now(); // "0000000003e8000000a"
 * const t2 = clock.now(); // "0000000003e8000001a" (same ms, counter + 1)
 * ```
 */
export function createHlcClock(options: HlcClockOptions): HlcClock {
  const node = options.replicaId;
  const wall = options.now;
  const maxDriftMs = options.maxDriftMs ?? 60_000;
  if (!ID_PATTERN.test(node)) {
    throw new ClockError(ErrorCode.HlcInvalid, `hlc node id malformed: ${JSON.stringify(node)}`);
  }
  let ms = 0;
  let counter = 0;
  let started = false;
  if (options.last !== undefined) {
    const p = decodeHlc(options.last);
    ms = p.ms;
    counter = p.counter;
    started = true;
  }

  function check(remote: Hlc | string | HlcParts): HlcParts {
    const p = typeof remote === "object" ? remote : decodeHlc(remote);
    if (p.counter > HLC_COUNTER_LIMIT) {
      throw new ClockError(
        ErrorCode.HlcInvalid,
        `remote hlc ${typeof remote === "object" ? JSON.stringify(remote) : remote} has counter ${p.counter}, above the limit ${HLC_COUNTER_LIMIT}`,
      );
    }
    // Without a wall clock, the reference is the clock itself: each stamp moves it by maxDriftMs at most.
    const reference = wall === undefined ? ms : wall();
    if (p.ms - reference > maxDriftMs) {
      throw new ClockError(
        ErrorCode.HlcDrift,
        `remote hlc ${typeof remote === "object" ? JSON.stringify(remote) : remote} is ${p.ms - reference} ms ahead of the ${wall === undefined ? "clock" : "wall clock"} (max ${maxDriftMs})`,
      );
    }
    return p;
  }

  /** Counts one tick within `ms`, or moves to the next millisecond when the counter is used up. */
  function tick(): void {
    if (counter < HLC_COUNTER_LIMIT) {
      counter++;
      return;
    }
    if (ms >= HLC_MAX_MS) throw new ClockError(ErrorCode.HlcOverflow, `hlc exhausted at ms ${ms}`);
    ms++;
    counter = 0;
  }

  // Encoding cache: the ms part changes only when the wall clock moves or the counter is used up.
  let msHexFor = -1;
  let msHex = "";
  return {
    now(): Hlc {
      const physical = wall === undefined ? 0 : Math.max(0, Math.floor(wall()));
      if (physical > ms) {
        if (physical > HLC_MAX_MS)
          throw new ClockError(ErrorCode.HlcInvalid, `wall clock out of range: ${physical}`);
        ms = physical;
        counter = 0;
      } else if (started) {
        tick();
      }
      started = true;
      if (msHexFor !== ms) {
        msHexFor = ms;
        msHex = ms.toString(16).padStart(HLC_MS_DIGITS, "0");
      }
      return (msHex + counter.toString(16).padStart(HLC_COUNTER_DIGITS, "0") + node) as Hlc;
    },
    receive(remote: Hlc | string | HlcParts): void {
      const p = check(remote);
      if (p.ms > ms || (p.ms === ms && p.counter > counter)) {
        // The next now() increments the counter past the received one (or takes a newer wall ms).
        ms = p.ms;
        counter = p.counter;
        started = true;
      } else if (!started) {
        started = true;
      }
    },
    check,
    last() {
      return { ms, counter };
    },
  };
}
