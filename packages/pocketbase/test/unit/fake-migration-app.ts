/**
 * A recording PocketBase app for JS migrations' up(): collections as plain JSON, no server. It
 * gives a migration what PocketBase's JS VM does and nxs-sync's migrations use: `migrate`,
 * `Collection`, `Field`, `unmarshal`, `app.findCollectionByNameOrId` (throws when missing), the
 * collection's `fields.getByName`/`fields.add`, `indexes`, `authToken`, `app.save` and
 * `app.settings()`.
 */

/** A collection or field as JSON. */
export type Json = Record<string, unknown>;

/**
 * Creates the app.
 * @param existing - Collections the server holds before.
 * @returns `run(source)` (runs one migration file's up()), the collections by name, the names created, the settings.
 */
export function fakeMigrationApp(existing: Json[] = []) {
  const collections = new Map(existing.map((c) => [String(c.name), structuredClone(c)]));
  const created: string[] = [];
  const settings = { batch: { enabled: false, maxRequests: 50, timeout: 3 } };
  const wrap = (c: Json) => ({
    raw: c,
    fields: {
      getByName: (n: string) => (c.fields as Json[]).find((f) => f.name === n),
      add: (f: { data: Json }) => (c.fields as Json[]).push(f.data),
    },
    get indexes() {
      return c.indexes as string[];
    },
    get authToken() {
      return (c.authToken ?? {}) as Json;
    },
  });
  const app = {
    findCollectionByNameOrId(name: string) {
      const c = collections.get(name);
      if (c === undefined) throw new Error("not found");
      return wrap(c);
    },
    save(model: unknown) {
      if (model === settings) return;
      if (model instanceof Collection) {
        collections.set(String(model.data.name), structuredClone(model.data));
        created.push(String(model.data.name));
      }
    },
    settings: () => settings,
  };
  class Collection {
    constructor(readonly data: Json) {}
  }
  class Field {
    constructor(readonly data: Json) {}
  }
  const unmarshal = (patch: Json, c: { raw: Json }) => {
    for (const [k, v] of Object.entries(patch))
      c.raw[k] =
        typeof v === "object" && v !== null && !Array.isArray(v) ? { ...(c.raw[k] as Json), ...v } : v;
  };
  const run = (source: string) => {
    let up: ((a: unknown) => void) | undefined;
    new Function("migrate", "Collection", "Field", "unmarshal", source)(
      (u: (a: unknown) => void) => {
        up = u;
      },
      Collection,
      Field,
      unmarshal,
    );
    up?.(app);
  };
  return { run, collections, created, settings };
}
