import type { z } from "zod";
import { CounterState } from "../crdt/counter.js";
import type { DocNode, DocState } from "../crdt/doc-state.js";
import type { Path } from "../model/change.js";
import { NodeKind, walkSchema } from "../model/schema.js";

/** A node of a loaded state whose kind contradicts what the schema declares at its path. */
export interface KindConflict {
  readonly path: Path;
  /** What the state holds there: a counter or an add-wins set. */
  readonly found: NodeKind;
  /** What the schema declares there. */
  readonly declared: NodeKind;
}

/**
 * Finds the counters and add-wins sets of a state (a loaded snapshot) at paths where the schema
 * declares another kind. Such a node cannot be hidden away: every later write the schema allows
 * there (a `set` of a plain value, an `inc` of a counter) would be refused as the wrong op for the
 * node, silencing that path for good. A change cannot make one (its op is refused); a forged or
 * kind-changing snapshot can. Plain values where the schema declares a counter or set are not
 * conflicts: the first `inc` or `add` there replaces them.
 * @param state - The CRDT state.
 * @param schema - The document schema.
 * @param limit - Stop after this many (default 10).
 * @returns The conflicts found, in depth-first order.
 */
export function findKindConflicts(state: DocState, schema: z.ZodType, limit = 10): KindConflict[] {
  const out: KindConflict[] = [];
  const visit = (n: DocNode, path: Path): void => {
    if (n.x !== undefined) {
      const found = n.x instanceof CounterState ? NodeKind.Counter : NodeKind.Set;
      const declared = walkSchema(schema, path).kind;
      if (declared !== undefined && declared !== found) out.push({ path, found, declared });
    }
    const kids = n.kids;
    if (kids === undefined) return;
    for (let e = 0; e < kids.end && out.length < limit; e++) {
      const key = kids.key[e];
      if (key === undefined || kids.isLeaf(e)) continue;
      visit(kids.val[e] as DocNode, Object.freeze([...path, key]));
    }
  };
  visit(state.root, Object.freeze([]));
  return out.slice(0, limit);
}
