import { expectTypeOf, test } from "vitest";
import { z } from "zod";
import { createDoc, type Doc } from "../../../src/doc/doc.js";

test("a Doc of a concrete type is usable where a Doc<unknown> is expected", () => {
  const doc = createDoc({
    schema: z.object({ items: z.record(z.string(), z.number()) }),
    docId: "d",
    replicaId: "a",
    initial: { items: {} },
  });
  const hash = (d: Doc<unknown>) => JSON.stringify(d.get());
  expectTypeOf(hash(doc)).toEqualTypeOf<string>();
  expectTypeOf(doc.get().items).toEqualTypeOf<{ readonly [x: string]: number }>();
});
