import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { createDoc, type Doc, type Frozen, type TypedDoc, type TypedDocWriter } from "../../src/doc/doc.js";
import type { Change, Json, Path } from "../../src/model/change.js";
import { addWinsSet, counter } from "../../src/model/schema.js";
import type { SetElement, SetValue } from "../../src/model/typed-path.js";

const schema = z.object({
  title: z.string(),
  note: z.string().optional(),
  size: z.number().default(0),
  hits: counter(),
  maybeHits: counter().optional(),
  tags: addWinsSet(z.string()),
  list: z.array(z.string()),
  profile: z.object({
    name: z.string(),
    age: z.number().optional(),
    address: z.object({ city: z.string() }),
  }),
  routes: z.record(z.string(), z.object({ host: z.string(), port: z.number() })),
  perUser: z.record(
    z.string(),
    z.object({
      visits: counter(),
      roles: addWinsSet(z.enum(["admin", "user"])),
      seen: z.boolean().optional(),
    }),
  ),
  byColor: z.record(z.enum(["red", "blue"]), z.number()),
  someColors: z.partialRecord(z.enum(["red", "blue"]), z.number()),
  extra: z.looseObject({ known: z.number() }),
  counters: z.object({ fixed: counter() }).catchall(counter()),
  either: z.union([z.object({ a: z.number() }), z.object({ b: z.string() })]),
});
type Schema = typeof schema;
type State = z.output<Schema>;

const doc = createDoc({ schema, docId: "d", replicaId: "a" });
type Res = Change | undefined;

describe("typed paths: set", () => {
  it("takes keys of the schema, nested objects and any string as a record's key", () => {
    expectTypeOf(doc).toEqualTypeOf<TypedDoc<State, Schema>>();
    expectTypeOf(doc.set(["title"], "t")).toEqualTypeOf<Res>();
    doc.set(["profile", "name"], "n");
    doc.set(["profile", "address", "city"], "Lyon");
    doc.set(["profile", "address"], { city: "Lyon" });
    doc.set(["routes", "any-key"], { host: "h", port: 1 });
    doc.set(["routes", "any-key", "port"], 2);
    const id: string = "dynamic";
    doc.set(["routes", id, "host"], "h");
    doc.set(["byColor", "red"], 1);
    doc.set(["hits"], 3); // a counter may be set (the state holds a number)
    doc.set(["tags"], ["a", "b"]);
    doc.set(["perUser", "u1", "seen"], true);
  });

  it("types the value from the schema at the path", () => {
    expectTypeOf<SetValue<Schema, readonly ["title"]>>().toEqualTypeOf<string>();
    expectTypeOf<SetValue<Schema, readonly ["profile", "age"]>>().toEqualTypeOf<number | undefined>();
    expectTypeOf<SetValue<Schema, readonly ["routes", string, "port"]>>().toEqualTypeOf<number>();
    // A record entry may be absent: undefined deletes it.
    expectTypeOf<SetValue<Schema, readonly ["routes", "r"]>>().toEqualTypeOf<
      { host: string; port: number } | undefined
    >();
    expectTypeOf<SetValue<Schema, readonly ["hits"]>>().toEqualTypeOf<number>();
    expectTypeOf<SetValue<Schema, readonly ["tags"]>>().toEqualTypeOf<readonly string[]>();
  });

  it("refuses a wrong key, a wrong value, a path below a leaf and the root", () => {
    // @ts-expect-error: no such key
    doc.set(["nosuch"], 1);
    // @ts-expect-error: no such nested key
    doc.set(["profile", "nosuch"], 1);
    // @ts-expect-error: no such key below a record entry
    doc.set(["routes", "r", "nosuch"], 1);
    // @ts-expect-error: a string, not a number
    doc.set(["title"], 1);
    // @ts-expect-error: the nested value's type
    doc.set(["profile", "address"], { city: 1 });
    // @ts-expect-error: a record entry's type
    doc.set(["routes", "r"], { host: "h" });
    // @ts-expect-error: a required key is not set to undefined
    doc.set(["title"], undefined);
    // @ts-expect-error: below a string
    doc.set(["title", "x"], 1);
    // @ts-expect-error: below a counter
    doc.set(["hits", "x"], 1);
    // @ts-expect-error: not a key of the enum-keyed record
    doc.set(["byColor", "green"], 1);
    // @ts-expect-error: the root is written with change()
    doc.set([], {});
    const p: Path = ["title"];
    // @ts-expect-error: a path of unknown length cannot be checked
    doc.set(p, "t");
  });
});

describe("typed paths: delete", () => {
  it("deletes optional keys, keys with a default and record entries", () => {
    doc.delete(["note"]);
    doc.delete(["size"]);
    doc.delete(["profile", "age"]);
    doc.delete(["routes", "r"]);
    doc.delete(["perUser", "u1", "seen"]);
    doc.delete(["maybeHits"]);
    doc.delete(["someColors", "red"]);
    doc.set(["note"], undefined);
  });

  it("refuses required keys and unknown keys", () => {
    // @ts-expect-error: required
    doc.delete(["title"]);
    // @ts-expect-error: required (nested)
    doc.delete(["profile", "name"]);
    // @ts-expect-error: required inside a record entry
    doc.delete(["routes", "r", "host"]);
    // @ts-expect-error: no such key
    doc.delete(["nosuch"]);
    // @ts-expect-error: a record keyed by an enum requires every key
    doc.delete(["byColor", "red"]);
    // @ts-expect-error: nor set to undefined
    doc.set(["byColor", "red"], undefined);
  });
});

describe("typed paths: increment", () => {
  it("increments counters, also optional ones, inside records and catchalls", () => {
    expectTypeOf(doc.increment(["hits"])).toEqualTypeOf<Res>();
    doc.increment(["hits"], 2);
    doc.increment(["maybeHits"], 2);
    doc.increment(["perUser", "u1", "visits"]);
    doc.increment(["counters", "fixed"]);
    doc.increment(["counters", "other"]);
  });

  it("refuses non-counters and bad amounts", () => {
    // @ts-expect-error: a number but not a counter
    doc.increment(["size"]);
    // @ts-expect-error: a string
    doc.increment(["title"]);
    // @ts-expect-error: a set
    doc.increment(["tags"]);
    // @ts-expect-error: an object
    doc.increment(["profile"]);
    // @ts-expect-error: not a counter inside a record entry
    doc.increment(["routes", "r", "port"]);
    // @ts-expect-error: no such key
    doc.increment(["nosuch"]);
    // @ts-expect-error: the amount is a number
    doc.increment(["hits"], "1");
  });
});

describe("typed paths: add and remove", () => {
  it("adds and removes elements of add-wins sets, also inside records", () => {
    expectTypeOf(doc.add(["tags"], "a")).toEqualTypeOf<Res>();
    expectTypeOf(doc.remove(["tags"], "a")).toEqualTypeOf<Res>();
    doc.add(["perUser", "u1", "roles"], "admin");
    doc.remove(["perUser", "u1", "roles"], "user");
    expectTypeOf<SetElement<Schema, readonly ["perUser", string, "roles"]>>().toEqualTypeOf<
      "admin" | "user"
    >();
  });

  it("refuses non-sets (a plain z.array too) and wrong elements", () => {
    // @ts-expect-error: a counter
    doc.add(["hits"], 1);
    // @ts-expect-error: a plain array is not an add-wins set
    doc.add(["list"], "a");
    // @ts-expect-error: a string
    doc.remove(["title"], "a");
    // @ts-expect-error: the element type
    doc.add(["tags"], 1);
    // @ts-expect-error: not an element of the enum
    doc.add(["perUser", "u1", "roles"], "owner");
  });
});

describe("typed paths: batch", () => {
  it("types the writer as the doc", () => {
    doc.batch((w) => {
      expectTypeOf(w).toEqualTypeOf<TypedDocWriter<Schema>>();
      w.set(["profile", "name"], "n");
      w.delete(["note"]);
      w.increment(["perUser", "u1", "visits"], 3);
      w.add(["tags"], "x");
      w.remove(["tags"], "x");
      // @ts-expect-error: no such key
      w.set(["nosuch"], 1);
      // @ts-expect-error: wrong value
      w.set(["title"], 1);
      // @ts-expect-error: required
      w.delete(["title"]);
      // @ts-expect-error: not a counter
      w.increment(["title"]);
      // @ts-expect-error: not a set
      w.add(["hits"], 1);
      // @ts-expect-error: not a set
      w.remove(["list"], "a");
    });
  });
});

describe("typed paths: get", () => {
  it("reads the schema's type at the path, or undefined; the root as get()", () => {
    expectTypeOf(doc.get(["title"])).toEqualTypeOf<string | undefined>();
    expectTypeOf(doc.get(["routes", "any-key", "port"])).toEqualTypeOf<number | undefined>();
    expectTypeOf(doc.get(["profile", "address"])).toEqualTypeOf<Frozen<{ city: string }> | undefined>();
    expectTypeOf(doc.get(["tags"])).toEqualTypeOf<readonly string[] | undefined>();
    expectTypeOf(doc.get([])).toEqualTypeOf<Frozen<State>>();
    expectTypeOf(doc.get()).toEqualTypeOf<Frozen<State>>();
    expectTypeOf(doc.get(["either", "a"])).toEqualTypeOf<unknown>();
    const untyped: Doc<State> = doc;
    expectTypeOf(untyped.get(["title"] as Path)).toEqualTypeOf<unknown>();
  });

  it("refuses a path the schema does not have", () => {
    // @ts-expect-error: unknown key
    doc.get(["nosuch"]);
    // @ts-expect-error: below a leaf
    doc.get(["title", "x"]);
  });
});

describe("typed paths: what is not checked", () => {
  it("accepts anything below a loose object's extra keys and a union", () => {
    doc.set(["extra", "known"], 1);
    doc.set(["extra", "anything", "below"], { x: 1 });
    doc.set(["either", "a"], 1);
    expectTypeOf<SetValue<Schema, readonly ["either", "a"]>>().toEqualTypeOf<unknown>();
    expectTypeOf<SetValue<Schema, readonly ["extra", "other", "x"]>>().toEqualTypeOf<unknown>();
    // @ts-expect-error: a loose object's declared keys are still typed
    doc.set(["extra", "known"], "1");
  });

  it("keeps untyped docs (Doc<T>, Doc<unknown>) on plain Paths", () => {
    const untyped: Doc<State> = doc;
    const any: Doc<unknown> = doc;
    const p: Path = ["anything"];
    expectTypeOf(untyped.set(p, 1)).toEqualTypeOf<Res>();
    any.delete(p);
    any.increment(p, 1);
    any.add(p, "x" as Json);
    any.remove(p, 1);
    any.batch((w) => w.set(p, { a: 1 }));
  });

  it("keeps untyped docs of an unknown schema type (z.ZodType) permissive", () => {
    const loose = createDoc({ schema: schema as z.ZodType, docId: "d", replicaId: "a" });
    loose.set(["nosuch"], 1);
    loose.increment(["title"]);
  });
});
