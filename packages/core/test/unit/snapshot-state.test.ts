import { describe, expect, it } from "vitest";
import { z } from "zod";
import { toDocId } from "../../src/clock/ids.js";
import { createDoc, type Doc } from "../../src/doc/doc.js";
import type { HiddenSnapshot } from "../../src/doc/replicated-doc.js";
import { ErrorCode, ValidationError } from "../../src/errors/errors.js";
import { silentLogger } from "../../src/errors/logger.js";
import { createMemoryStorage } from "../../src/memory/memory-storage.js";
import { createMemoryHub } from "../../src/memory/memory-transport.js";
import type { Change, Snapshot } from "../../src/model/change.js";
import { addWinsSet, counter } from "../../src/model/schema.js";
import { createReplica } from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import { drive } from "./support/drive.js";

/**
 * A snapshot is untrusted input (issue 13, item 1; SECURITY-AUDIT.md finding 1: a forged state with
 * `routes.api = 12345` where the schema says string was shown by `get()` on every replica). Its
 * state is checked against the doc's schema: what the schema refuses is hidden and reported, and a
 * counter or set where the schema declares a plain value (which would refuse every later write
 * there) makes the snapshot refused.
 */

const docId = toDocId("routing");
const schema = z.object({ routes: z.record(z.string(), z.string()), hits: counter() });
type State = z.output<typeof schema>;
const initial: State = { routes: {}, hits: 0 };

function clock(start = 1_700_000_000_000) {
  let t = start;
  return () => t++;
}

/** A snapshot whose state was written under `loose` by a forger: claims and stamps are its own. */
function forge(loose: z.ZodType, write: (d: Doc<unknown>) => void): Snapshot {
  const evil: Doc<unknown> = createDoc({
    schema: loose,
    docId,
    replicaId: "gw-a.evil",
    clock: clock(),
    initial,
  });
  write(evil);
  return JSON.parse(JSON.stringify(evil.snapshot()));
}

const wrongType = () =>
  forge(
    z.object({ routes: z.record(z.string(), z.union([z.string(), z.number()])), hits: counter() }),
    (d) => {
      d.set(["routes", "web"], "10.0.0.2:80");
      d.set(["routes", "api"], 12345);
    },
  );

describe("a snapshot whose state breaks the schema", () => {
  it("loaded by createDoc: get() never shows the bad value, hidden() lists its path", () => {
    const doc = createDoc({
      schema,
      docId,
      replicaId: "gw-c",
      clock: clock(),
      initial,
      snapshot: wrongType(),
    });
    expect(doc.get()).toEqual({ routes: { web: "10.0.0.2:80" }, hits: 0 });
    expect(schema.strict().parse(doc.get())).toEqual(doc.get());
    expect(doc.hidden().map((h) => [h.path, h.reason])).toEqual([[["routes", "api"], "refused"]]);
  });

  it("applied to a running doc: hidden and reported in snapshotHidden; an honest later write shows", () => {
    const now = clock();
    const doc = createDoc({ schema, docId, replicaId: "gw-c", clock: now, initial });
    const forged = wrongType();
    const r = doc.applySnapshot(forged);
    expect(r.rejected).toEqual([]);
    expect(doc.get().routes).toEqual({ web: "10.0.0.2:80" });
    const hidden = r.snapshotHidden as HiddenSnapshot;
    expect(hidden.paths).toEqual([["routes", "api"]]);
    expect(hidden.version).toEqual(forged.version);
    expect(hidden.error.code).toBe(ErrorCode.SchemaInvalid);
    // The path is not silenced: a later write of an accepted value by anyone shows at once.
    const b = createDoc({ schema, docId, replicaId: "gw-b", clock: clock(1_700_000_001_000), initial });
    const c = b.set(["routes", "api"], "10.0.0.1:8080") as Change;
    expect(doc.applyRemote([JSON.parse(JSON.stringify(c))]).rejected).toEqual([]);
    expect(doc.get().routes.api).toBe("10.0.0.1:8080");
    expect(doc.hidden()).toEqual([]);
  });

  it("a counter or set where the schema declares a plain value is refused (it would refuse every later write there)", () => {
    const counterAtRoute = forge(
      z.object({ routes: z.record(z.string(), counter()), hits: counter() }),
      (d) => d.increment(["routes", "api"], 12345),
    );
    const setAtRoute = forge(
      z.object({ routes: z.record(z.string(), addWinsSet(z.string())), hits: counter() }),
      (d) => d.add(["routes", "api"], "6.6.6.6"),
    );
    for (const forged of [counterAtRoute, setAtRoute]) {
      expect(() =>
        createDoc({ schema, docId, replicaId: "gw-c", clock: clock(), initial, snapshot: forged }),
      ).toThrow(ValidationError);
      const doc = createDoc({ schema, docId, replicaId: "gw-c", clock: clock(), initial });
      const r = doc.applySnapshot(forged);
      expect(r.rejected).toHaveLength(1);
      const error = r.rejected[0]?.error as ValidationError;
      expect(error.code).toBe(ErrorCode.SchemaInvalid);
      expect(error.issues.map((i) => i.path)).toEqual([["routes", "api"]]);
      expect(doc.version()).toEqual({});
      // The honest writer's route still applies.
      const b = createDoc({ schema, docId, replicaId: "gw-b", clock: clock(), initial });
      const c = b.set(["routes", "api"], "10.0.0.1:8080") as Change;
      expect(doc.applyRemote([JSON.parse(JSON.stringify(c))]).rejected).toEqual([]);
      expect(doc.get().routes.api).toBe("10.0.0.1:8080");
    }
  });

  it("a replica that bootstraps from it (the first pull page) never shows the bad value and emits hidden", async () => {
    const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
    const hub = createMemoryHub({ seed: 3 });
    const forged = wrongType();
    // The server compacted to the forged snapshot: a fresh replica's first pull page is it.
    hub.compact(forged);
    const doc = createDoc({ schema, docId, replicaId: "gw-c", clock: () => scheduler.now(), initial });
    const replica = createReplica({
      doc,
      transport: hub.transport(docId, { name: "gw-c" }),
      storage: createMemoryStorage(),
      scheduler,
      logger: silentLogger,
    });
    const events: { paths: readonly (readonly string[])[]; source: string }[] = [];
    const seen: unknown[] = [];
    doc.subscribe(
      (s) => s.routes.api,
      (api) => seen.push(api),
    );
    replica.on("hidden", (e) => {
      if (e.snapshot !== undefined) events.push({ paths: e.snapshot.paths, source: e.source });
    });
    await replica.start();
    await drive({ hub, scheduler }, () => doc.version()["gw-a.evil"] !== undefined);
    expect(doc.get().routes).toEqual({ web: "10.0.0.2:80" });
    expect(seen).toEqual([]);
    expect(events).toEqual([{ paths: [["routes", "api"]], source: "pull" }]);
    expect(doc.hidden().map((h) => h.path)).toEqual([["routes", "api"]]);
    await replica.stop();
  });
});
