/**
 * The model of a chaos run: every write the gateways reported and which of them were acknowledged,
 * and the check of a final state against it. An acknowledged write must survive whatever happens
 * after its ack; an unacknowledged write of a killed gateway may or may not survive.
 * @module
 */
import { compareHlc } from "@nxs-sync/core";
import { type ChaosDocState, type ChaosOp, ChaosOpKind } from "./workload.js";

/** A write as the model knows it. */
export interface ChaosWrite {
  readonly gateway: string;
  /** Storage lineage: +1 at every restart on empty storage (seqs of two lineages may clash). */
  readonly lineage: number;
  readonly seq: number;
  readonly hlc: string;
  readonly op: ChaosOp;
  acked: boolean;
}

/** An acknowledged write missing from a final state, with why. */
export interface LostWrite {
  readonly write: ChaosWrite;
  readonly why: string;
}

/** What {@link ChaosModel.check} found in one final state. */
export interface ModelCheck {
  /** Acknowledged writes not in the state (counter increments: the deficit, one per missing +1). */
  readonly lost: readonly LostWrite[];
  /** Counter deficits per gateway: acknowledged increments minus the counter's value, when > 0. */
  readonly counterDeficits: Readonly<Record<string, number>>;
  /** Values in the state that no reported write made, or counters above every write made. */
  readonly phantoms: readonly string[];
}

/** The sink of the gateways' reports (see {@link createChaosModel}). */
export interface ChaosObserver {
  /** A gateway applied `op` as its local change (`lineage`, `seq`) stamped `hlc`. */
  wrote(gateway: string, lineage: number, op: ChaosOp, seq: number, hlc: string): void;
  /** A gateway's replica reported these seqs of `lineage` acknowledged. */
  acked(gateway: string, lineage: number, seqs: readonly number[]): void;
}

/** The model: an {@link ChaosObserver} that also checks final states. */
export interface ChaosModel extends ChaosObserver {
  /** Writes reported, and how many of them are acknowledged. */
  counts(): { readonly written: number; readonly acked: number; readonly unknownAcks: number };
  /**
   * Checks a final state: every acknowledged set add present, every counter at least its
   * acknowledged increments, every LWW key holding a write at least as new (HLC) as its newest
   * acknowledged one.
   */
  check(state: ChaosDocState): ModelCheck;
}

/**
 * Creates an empty model.
 * @param gateways - The names of the run's gateways (their counters).
 * @returns The model.
 */
export function createChaosModel(gateways: readonly string[]): ChaosModel {
  const bySeq = new Map<string, ChaosWrite>();
  const byOp = new Map<string, ChaosWrite>();
  let acked = 0;
  let unknownAcks = 0;
  const key = (gateway: string, lineage: number, seq: number) => `${gateway}/${lineage}/${seq}`;
  return {
    wrote(gateway, lineage, op, seq, hlc) {
      const write: ChaosWrite = { gateway, lineage, seq, hlc, op, acked: false };
      bySeq.set(key(gateway, lineage, seq), write);
      byOp.set(op.id, write);
    },
    acked(gateway, lineage, seqs) {
      for (const seq of seqs) {
        const write = bySeq.get(key(gateway, lineage, seq));
        if (!write) unknownAcks++;
        else if (!write.acked) {
          write.acked = true;
          acked++;
        }
      }
    },
    counts: () => ({ written: byOp.size, acked, unknownAcks }),
    check(state) {
      const lost: LostWrite[] = [];
      const phantoms: string[] = [];
      const counterDeficits: Record<string, number> = {};
      const tags = new Set(state.tags);
      const newestAcked = new Map<string, ChaosWrite>();
      const increments = new Map<string, { acked: ChaosWrite[]; all: number }>(
        gateways.map((g) => [g, { acked: [], all: 0 }]),
      );
      for (const write of byOp.values()) {
        const { op } = write;
        if (op.kind === ChaosOpKind.Add) {
          if (write.acked && !tags.has(op.id)) lost.push({ write, why: `set element ${op.id} missing` });
        } else if (op.kind === ChaosOpKind.Increment) {
          const c = increments.get(op.counter) ?? { acked: [], all: 0 };
          increments.set(op.counter, c);
          c.all++;
          if (write.acked) c.acked.push(write);
        } else if (write.acked) {
          const newest = newestAcked.get(op.key);
          if (!newest || compareHlc(write.hlc, newest.hlc) > 0) newestAcked.set(op.key, write);
        }
      }
      for (const tag of tags) if (!byOp.has(tag)) phantoms.push(`set element ${tag} was never written`);
      for (const [counter, c] of increments) {
        const value = state.counters[counter] ?? 0;
        const deficit = c.acked.length - value;
        if (deficit > 0) {
          counterDeficits[counter] = deficit;
          for (const write of c.acked.slice(-deficit)) {
            lost.push({
              write,
              why: `counter ${counter} is ${value} < ${c.acked.length} acknowledged increments`,
            });
          }
        }
        if (value > c.all) phantoms.push(`counter ${counter} is ${value} > ${c.all} increments ever written`);
      }
      for (const [k, newest] of newestAcked) {
        const value = state.kv[k];
        const winner = value === undefined ? undefined : byOp.get(value);
        if (value !== undefined && !winner) phantoms.push(`kv.${k} = ${value} was never written`);
        else if (!winner || compareHlc(winner.hlc, newest.hlc) < 0) {
          // Every acknowledged write to k newer than what the state holds is lost.
          for (const write of byOp.values()) {
            if (write.acked && write.op.kind === ChaosOpKind.Set && write.op.key === k) {
              if (!winner || compareHlc(write.hlc, winner.hlc) > 0) {
                lost.push({
                  write,
                  why: `kv.${k} holds ${value ?? "nothing"}, older than acknowledged ${write.op.id}`,
                });
              }
            }
          }
        }
      }
      return { lost, counterDeficits, phantoms };
    },
  };
}
