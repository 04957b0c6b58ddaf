/**
 * The writes of a chaos run: each gateway writes a seeded stream of single-op changes to one
 * document with three kinds of leaves, each with its own merge rule (LWW keys shared by every
 * gateway, one counter per gateway, one add-wins set). Every value is the id of the op that wrote
 * it, so the final state tells which writes survived.
 * @module
 */
import { createSeededRandom, seedFromString } from "@nxs-sync/core";

/** The kinds of chaos ops, as a const object plus a derived union. */
export const ChaosOpKind = {
  /** A last-writer-wins write of `kv[key]` (keys shared by all gateways). */
  Set: "set",
  /** +1 on the writer's own counter `counters[gateway]`. */
  Increment: "inc",
  /** An add of a unique element to the add-wins set `tags`. */
  Add: "add",
} as const;
/** The union of chaos op kinds. */
export type ChaosOpKind = (typeof ChaosOpKind)[keyof typeof ChaosOpKind];

/** One write of a gateway: one op, one change. `id` is unique in a run (`<gateway>-<n>`). */
export type ChaosOp =
  | { readonly kind: typeof ChaosOpKind.Set; readonly id: string; readonly key: string }
  | { readonly kind: typeof ChaosOpKind.Increment; readonly id: string; readonly counter: string }
  | { readonly kind: typeof ChaosOpKind.Add; readonly id: string };

/**
 * The state of the chaos document: `kv` (LWW strings; each value is the id of the op that wrote
 * it), `counters` (one counter per gateway, +1 per op), `tags` (add-wins set of op ids).
 */
export interface ChaosDocState {
  readonly kv: Readonly<Record<string, string>>;
  readonly counters: Readonly<Record<string, number>>;
  readonly tags: readonly string[];
}

/** How many LWW keys the gateways share: few, so that they overwrite each other often. */
export const CHAOS_KV_KEYS = 8;

/**
 * The state every gateway starts from (counters at 0 for every gateway of the run).
 * @param gateways - The names of the run's gateways.
 * @returns The initial state of the chaos document.
 */
export function chaosInitialState(gateways: readonly string[]): ChaosDocState {
  return { kv: {}, counters: Object.fromEntries(gateways.map((g) => [g, 0])), tags: [] };
}

/** A gateway's endless stream of ops (see {@link createChaosWorkload}). */
export interface ChaosWorkload {
  /** The next op of this gateway. */
  next(): ChaosOp;
}

/**
 * Creates the op stream of one gateway: the same seed and gateway give the same ops in the same
 * order, whatever happens to the gateway's processes.
 * @param seed - The run's seed.
 * @param gateway - The gateway's name (also the name of its counter).
 * @returns The stream.
 * @example
 * ```ts
 * const ops = createChaosWorkload(7, "g1");
 * ops.next(); // e.g. { kind: "add", id: "g1-1" }
 * ```
 */
export function createChaosWorkload(seed: number, gateway: string): ChaosWorkload {
  const rnd = createSeededRandom(seedFromString(`${seed}/${gateway}/ops`));
  let n = 0;
  return {
    next() {
      n++;
      const id = `${gateway}-${n}`;
      const roll = rnd.int(3);
      if (roll === 0) return { kind: ChaosOpKind.Set, id, key: `k${rnd.int(CHAOS_KV_KEYS)}` };
      if (roll === 1) return { kind: ChaosOpKind.Increment, id, counter: gateway };
      return { kind: ChaosOpKind.Add, id };
    },
  };
}
