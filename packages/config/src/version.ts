/**
 * A config version as stored and replicated: immutable once written (only compaction turns it into
 * a tombstone), identified by its `id` across servers, ordered by `(version, hlc, id)`.
 */
import type { Json } from "@nxs-sync/core";
import { z } from "zod";

/** A version record's id: 15 characters `[a-z0-9]`, chosen by the writer (a retried put sends the same). */
export const VERSION_ID_PATTERN = /^[a-z0-9]{15}$/;
/** Environment names: `production`, `staging`, ... */
export const ENV_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;
/** Key names: `providers`, `routes.eu`, `flags`, ... */
export const KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/** Who, when, where and why: on every version. */
export interface VersionMeta {
  readonly id: string;
  readonly env: string;
  readonly key: string;
  /** 1 for a key's first version, then the version it was based on + 1. */
  readonly version: number;
  /** The writer's hybrid logical clock stamp (core's HLC): orders two versions of one number. */
  readonly hlc: string;
  /** The server that accepted it (the authority's origin id). */
  readonly origin: string;
  /** The gateway node that wrote it. */
  readonly node: string;
  readonly author: string;
  readonly message: string;
  /** When the server accepted it (ms since the epoch, the server's clock). */
  readonly createdAt: number;
  /** Set when the version was written by `rollback`: the version whose value it restores. */
  readonly rollbackOf?: number;
  /** Set when the version was first rolled out to some nodes only (see {@link RolloutTarget}). */
  readonly rollout?: RolloutTarget;
}

/** A version as a backend stores it: `value` in its stored form (secret fields encrypted). */
export interface StoredVersion extends VersionMeta {
  /** The value, or null once compacted. */
  readonly value: Json | null;
  /** True once compaction removed the value (a tombstone that replicates). */
  readonly compacted: boolean;
}

/** Which nodes see a staged version first. */
export interface RolloutTarget {
  /** Named nodes. */
  readonly nodes?: readonly string[];
  /** A share of nodes, 0-100, chosen by a stable hash of the node id and the version id. */
  readonly percent?: number;
}

/** A staged version's state; `promoted` and `rolled-back` are final (`rolled-back` wins a race). */
export type RolloutState = "staged" | "promoted" | "rolled-back";

/** The mutable state of a staged version (one per staged version, keyed by the version's id). */
export interface RolloutRecord {
  /** The staged version's id. */
  readonly id: string;
  readonly env: string;
  readonly key: string;
  readonly version: number;
  readonly state: RolloutState;
  /** Why it moved (e.g. the failing health check). */
  readonly reason: string;
  readonly updatedAt: number;
}

/** Rank of rollout states: a state only moves up (`staged` < `promoted` < `rolled-back`). */
export const ROLLOUT_RANK: readonly RolloutState[] = ["staged", "promoted", "rolled-back"];

/**
 * Total order of versions of one key: by `version`, then `hlc`, then `id`. The head is the greatest.
 * Every node orders the same records the same way, so two versions created on two servers during a
 * cut resolve identically everywhere once they meet.
 */
export function compareVersions(
  a: Pick<VersionMeta, "version" | "hlc" | "id">,
  b: Pick<VersionMeta, "version" | "hlc" | "id">,
): number {
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const rolloutTargetSchema = z
  .object({
    nodes: z.array(z.string().min(1).max(200)).max(1000).optional(),
    percent: z.number().min(0).max(100).optional(),
  })
  .strict();

/** The shape every stored version must have (a record that fails it is quarantined). */
export const storedVersionSchema = z.object({
  id: z.string().regex(VERSION_ID_PATTERN),
  env: z.string().regex(ENV_PATTERN),
  key: z.string().regex(KEY_PATTERN),
  version: z.number().int().min(1),
  hlc: z.string().min(1).max(64),
  origin: z.string().max(64),
  node: z.string().max(200),
  author: z.string().max(200),
  message: z.string().max(2000),
  createdAt: z.number().int().min(0),
  rollbackOf: z.number().int().min(1).optional(),
  rollout: rolloutTargetSchema.optional(),
  value: z.json().nullable(),
  compacted: z.boolean(),
});

/** The shape of a rollout record. */
export const rolloutRecordSchema = z.object({
  id: z.string().regex(VERSION_ID_PATTERN),
  env: z.string().regex(ENV_PATTERN),
  key: z.string().regex(KEY_PATTERN),
  version: z.number().int().min(1),
  state: z.enum(["staged", "promoted", "rolled-back"]),
  reason: z.string().max(2000),
  updatedAt: z.number().int().min(0),
});
