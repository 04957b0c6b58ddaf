import { createHash, randomBytes } from "node:crypto";

/** A per-test naming scope: every collection or document name a test creates goes through it. */
export interface Namespace {
  /** The prefix, e.g. `writes_rea_k3f9a1_`: letters, digits and `_`, starting with a letter. */
  readonly prefix: string;
  /**
   * Prefixes a base name.
   * @param base - e.g. `notes`
   * @returns e.g. `writes_rea_k3f9a1_notes`
   */
  name(base: string): string;
  /**
   * Whether `name` belongs to this namespace.
   * @param name - a collection or document name
   * @returns true when it starts with {@link prefix}
   */
  owns(name: string): boolean;
}

let counter = 0;

/**
 * Derives a short, unique name prefix from a test name, so tests sharing a server never see each other's
 * collections or documents (pass `expect.getState().currentTestName` or the test context's `task.name`).
 *
 * @param testName - the test's name (any text)
 * @returns a {@link Namespace}; a new one on every call, even for the same test name
 * @example
 * ```ts
 * it("writes are read back", async ({ task }) => {
 *   const ns = withNamespace(task.name);
 *   await applyCollections(pb, [{ name: ns.name("notes"), fields: [{ name: "text", type: "text" }] }]);
 * });
 * ```
 */
export function withNamespace(testName: string): Namespace {
  let slug = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 10)
    .replace(/_+$/, "");
  if (!/^[a-z]/.test(slug)) slug = `t${slug}`;
  counter += 1;
  const hash = createHash("sha256")
    .update(`${testName}\0${process.pid}\0${counter}\0`)
    .update(randomBytes(4))
    .digest("hex")
    .slice(0, 6);
  const prefix = `${slug}_${hash}_`;
  return {
    prefix,
    name: (base) => `${prefix}${base}`,
    owns: (name) => name.startsWith(prefix),
  };
}
