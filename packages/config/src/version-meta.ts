/** A stored version's audit fields, without its value: what conflicts, history and events carry. */
import type { StoredVersion, VersionMeta } from "./version.js";

/**
 * The meta of a stored version (every field but `value` and `compacted`).
 * @param v - A stored version.
 * @returns A new object with its meta.
 */
export function toVersionMeta(v: StoredVersion): VersionMeta {
  const { value: _value, compacted: _compacted, ...meta } = v;
  return meta;
}
