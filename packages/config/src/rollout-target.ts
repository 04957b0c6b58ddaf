/**
 * Staged rollout targets: which nodes see a staged version, and so which version of a key is
 * effective on a node. Pure: the same records give the same answer on every node.
 */
import { createHash } from "node:crypto";
import { compareVersions, type RolloutRecord, type RolloutTarget, type StoredVersion } from "./version.js";

/**
 * The stable bucket of a node for a version: sha256 of `${versionId}:${node}` mapped into
 * [0, 100) in steps of 0.01, so each version picks its own share of nodes and a fractional percent
 * (12.5) means what it says.
 * @param node - The node id.
 * @param versionId - The staged version's id.
 * @returns A number in [0, 100) with two decimals.
 */
export function rolloutBucket(node: string, versionId: string): number {
  const digest = createHash("sha256").update(`${versionId}:${node}`, "utf8").digest();
  return (digest.readUInt32BE(0) % 10_000) / 100;
}

/**
 * Whether a node is among a rollout target's nodes: every node when there is no target; else a
 * node named in `nodes`, or one whose {@link rolloutBucket} is below `percent`. A target with
 * neither (`{}`) targets no node.
 * @param node - The node id.
 * @param versionId - The staged version's id.
 * @param target - The version's target, or undefined.
 * @returns True when the node sees the version before it is promoted.
 * @example
 * ```ts
 * isTargeted("gw-1", "k3x9v0c2m8q1w7z", { nodes: ["gw-1"] }); // true
 * isTargeted("gw-2", "k3x9v0c2m8q1w7z", { percent: 10 }); // true for about one node in ten
 * ```
 */
export function isTargeted(node: string, versionId: string, target: RolloutTarget | undefined): boolean {
  if (target === undefined) return true;
  if (target.nodes?.includes(node)) return true;
  const percent = target.percent ?? 0;
  if (percent <= 0) return false;
  return percent >= 100 || rolloutBucket(node, versionId) < percent;
}

/**
 * Whether a version is hidden from a node: only a version with a `rollout` target can be; it is
 * hidden when its rollout record is `rolled-back`, or when the record is `staged` or missing and the
 * node is not targeted. `promoted` shows it to every node.
 * @param version - The version.
 * @param rollout - Its rollout record (keyed by the version's id), if any.
 * @param node - The node id.
 * @returns True when the node must not use the version.
 */
export function isHiddenFrom(
  version: Pick<StoredVersion, "id" | "rollout">,
  rollout: RolloutRecord | undefined,
  node: string,
): boolean {
  if (version.rollout === undefined) return false;
  if (rollout?.state === "rolled-back") return true;
  if (rollout?.state === "promoted") return false;
  return !isTargeted(node, version.id, version.rollout);
}

/**
 * The version of one key a node uses: the greatest by `compareVersions` that is neither compacted
 * nor hidden from the node ({@link isHiddenFrom}).
 * @param versions - The key's versions, in any order.
 * @param rollouts - Rollout records by version id.
 * @param node - The node id.
 * @returns The effective version, or undefined when none is visible.
 * @example
 * ```ts
 * const backend = createMemoryConfigBackend();
 * const versions = await backend.list({ env: "production", key: "routes" });
 * const rollouts = new Map((await backend.rollouts("production")).map((r) => [r.id, r]));
 * const used = effectiveVersion(versions, rollouts, "gw-1");
 * ```
 */
export function effectiveVersion(
  versions: readonly StoredVersion[],
  rollouts: ReadonlyMap<string, RolloutRecord>,
  node: string,
): StoredVersion | undefined {
  let best: StoredVersion | undefined;
  for (const v of versions) {
    if (v.compacted || isHiddenFrom(v, rollouts.get(v.id), node)) continue;
    if (best === undefined || compareVersions(v, best) > 0) best = v;
  }
  return best;
}
