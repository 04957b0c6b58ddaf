import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  checkHooksVersion,
  NXS_HOOKS_VERSION,
  NXS_SCHEMA_VERSION,
  NXS_VERSION_PATH,
} from "../../src/hooks.js";
import { isOriginOfNode } from "../../src/records.js";

const bundlePath = fileURLToPath(new URL("../../pb_hooks/nxs.pb.js", import.meta.url));

type Handler = (e: Record<string, unknown>) => unknown;

/** Loads the bundle against a recording JSVM: the routes and record hooks it registers. */
function loadBundle(): {
  routes: { method: string; path: string; handler: Handler }[];
  creates: { handler: Handler; tags: string[] }[];
} {
  const routes: { method: string; path: string; handler: Handler }[] = [];
  const creates: { handler: Handler; tags: string[] }[] = [];
  class BadRequestError extends Error {
    constructor(
      message: string,
      readonly data: unknown,
    ) {
      super(message);
    }
  }
  class ValidationError {
    constructor(
      readonly code: string,
      readonly message: string,
    ) {}
  }
  const $app = { findCollectionByNameOrId: () => ({}) };
  const $apis = { requireAuth: (...collections: string[]) => ({ requireAuth: collections }) };
  new Function(
    "routerAdd",
    "onRecordCreateRequest",
    "BadRequestError",
    "ValidationError",
    "$app",
    "$apis",
    readFileSync(bundlePath, "utf8"),
  )(
    (method: string, path: string, handler: Handler) => routes.push({ method, path, handler }),
    (handler: Handler, ...tags: string[]) => creates.push({ handler, tags }),
    BadRequestError,
    ValidationError,
    $app,
    $apis,
  );
  return { routes, creates };
}

describe("the pb_hooks bundle", () => {
  it("reports the version and schema version the client needs (one source of truth, kept equal here)", () => {
    const { routes } = loadBundle();
    const route = routes.find((r) => r.path === NXS_VERSION_PATH);
    expect(route?.method).toBe("GET");
    let answer: unknown;
    route?.handler({ json: (status: number, body: unknown) => (answer = { status, body }) });
    expect(answer).toEqual({
      status: 200,
      body: { name: "nxs-sync", hooks: NXS_HOOKS_VERSION, schema: NXS_SCHEMA_VERSION, schemaInstalled: true },
    });
    expect(checkHooksVersion("http://x", 200, (answer as { body: unknown }).body).hooks).toBe(
      NXS_HOOKS_VERSION,
    );
  });

  it("binds origins of changes and replicas of acks exactly as the readers' isOriginOfNode", () => {
    const { creates } = loadBundle();
    // Two create hooks: the origin binding, and the snapshot claims (tested on real servers).
    expect(creates.map((c) => c.tags.join(",")).sort()).toEqual(["nxs_changes,nxs_acks", "nxs_snapshots"]);
    const hook = creates.find((c) => c.tags.includes("nxs_changes"))!.handler;
    const node = "abcdefghij12345";
    const run = (collection: string, authCollection: string | null, field: string, value: string) => {
      let passed = false;
      try {
        hook({
          auth: authCollection === null ? null : { id: node, collection: () => ({ name: authCollection }) },
          collection: { name: collection },
          record: { getString: (f: string) => (f === field ? value : "other") },
          next: () => {
            passed = true;
          },
        });
      } catch {
        return false;
      }
      return passed;
    };
    const origins = [
      node,
      `${node}.gw1`,
      `${node}.`,
      `x-${node}`,
      `${node}x`,
      "zzzzzzzzzzzzzzz",
      `${node}-1`,
    ];
    for (const origin of origins) {
      expect(run("nxs_changes", "nxs_nodes", "origin", origin), origin).toBe(isOriginOfNode(origin, node));
      expect(run("nxs_acks", "nxs_nodes", "replica", origin), origin).toBe(isOriginOfNode(origin, node));
      // Replicators copy anything; guests and others are left to the create rule.
      expect(run("nxs_changes", "nxs_replicators", "origin", origin)).toBe(true);
      expect(run("nxs_changes", null, "origin", origin)).toBe(true);
    }
  });
});

describe("checkHooksVersion", () => {
  const good = {
    name: "nxs-sync",
    hooks: NXS_HOOKS_VERSION,
    schema: NXS_SCHEMA_VERSION,
    schemaInstalled: true,
  };
  it.each([
    ["a missing bundle (404)", 404, { message: "Not Found." }, /no nxs-sync hooks bundle.*--hooksDir/],
    ["another answer", 200, { hello: 1 }, /did not answer as the nxs-sync hooks bundle/],
    ["another version", 200, { ...good, hooks: NXS_HOOKS_VERSION + 1 }, /is version .* this client needs/],
    ["another schema", 200, { ...good, schema: NXS_SCHEMA_VERSION + 1 }, /this client needs/],
    ["a missing schema", 200, { ...good, schemaInstalled: false }, /ensureSchema/],
  ])("refuses %s with server/incompatible", (_, status, body, message) => {
    expect(() => checkHooksVersion("http://pb:8090", status, body)).toThrow(
      expect.objectContaining({
        code: "server/incompatible",
        retryable: false,
        message: expect.stringMatching(message),
      }),
    );
  });
});
