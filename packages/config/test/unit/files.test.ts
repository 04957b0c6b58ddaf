import type { Json } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ConfigFileError,
  EXPORT_FORMAT,
  type ExportFile,
  exportFileOf,
  parseExport,
  renderExport,
} from "../../src/files.js";
import { createKeyring, sealValue, secret } from "../../src/secrets.js";
import type { StoredVersion } from "../../src/version.js";

const NOW = Date.UTC(2026, 11, 7, 8, 0, 0);

function version(
  key: string,
  n: number,
  value: Json | null,
  extra: Partial<StoredVersion> = {},
): StoredVersion {
  return {
    id: `${key
      .replace(/[^a-z0-9]/g, "")
      .padEnd(10, "x")
      .slice(0, 10)}${String(n).padStart(5, "0")}`,
    env: "production",
    key,
    version: n,
    hlc: `hlc-${n}`,
    origin: "a",
    node: "n1",
    author: "ann",
    message: "m",
    createdAt: NOW,
    value,
    compacted: value === null,
    ...extra,
  };
}

/** Catches the ConfigFileError `fn` throws. */
function fileError(fn: () => unknown): ConfigFileError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigFileError) return e;
    throw e;
  }
  throw new Error("expected a ConfigFileError");
}

describe("exportFileOf", () => {
  it("exports each key's head in key order, skipping compacted ones", () => {
    const file = exportFileOf(
      "production",
      [
        version("routes", 2, { a: 1 }),
        version("flags", 3, null),
        version("limits", 1, { rps: 5 }),
        version("nothing", 1, null, { compacted: false }),
        version("routes", 1, { a: 0 }),
      ],
      NOW,
    );
    expect(file).toEqual({
      format: "nxs-config/1",
      env: "production",
      exportedAt: "2026-12-07T08:00:00.000Z",
      keys: {
        limits: { version: 1, value: { rps: 5 } },
        nothing: { version: 1, value: null },
        routes: { version: 2, value: { a: 1 } },
      },
    });
    expect(Object.keys(file.keys)).toEqual(["limits", "nothing", "routes"]);
  });

  it("refuses a version of another environment", () => {
    expect(() => exportFileOf("staging", [version("routes", 1, {})], NOW)).toThrow(/belongs to "production"/);
  });
});

describe("renderExport and parseExport", () => {
  const ring = createKeyring({ keys: { k1: Buffer.alloc(32, 3) } });
  const schema = z.object({ name: z.string(), apiKey: secret(z.string()) });
  const sealed = sealValue("providers", { name: "openai", apiKey: "sk-live-1" }, schema, ring);
  const file = exportFileOf(
    "production",
    [version("providers", 4, sealed), version("limits", 2, { rps: 5, note: "1e3", on: "yes", empty: "" })],
    NOW,
  );

  it("round-trips YAML and JSON; secrets stay sealed envelopes with their key id", () => {
    for (const format of ["yaml", "json"] as const) {
      const text = renderExport(file, format);
      expect(text).not.toContain("sk-live-1");
      expect(text).toContain("k1");
      expect(text.endsWith("\n")).toBe(true);
      expect(parseExport(text)).toEqual(file);
    }
    expect(renderExport(file, "yaml")).toMatch(/^format: nxs-config\/1\nenv: production\n/);
  });

  it("property: any export file round-trips through both formats", () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,20}$/);
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as Json);
    const files = fc.record({
      format: fc.constant(EXPORT_FORMAT),
      env: fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/),
      exportedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms).toISOString()),
      keys: fc.dictionary(name, fc.record({ version: fc.integer({ min: 1, max: 1e9 }), value: json })),
    });
    fc.assert(
      fc.property(files, fc.constantFrom("yaml" as const, "json" as const), (f: ExportFile, format) => {
        expect(parseExport(renderExport(f, format))).toEqual(f);
      }),
      { seed: 20261207, numRuns: 300 },
    );
  });

  it("invalid YAML is config/invalid-file with its line", () => {
    const e = fileError(() => parseExport("format: nxs-config/1\nenv: production\nkeys:\n  a: [1, 2\n"));
    expect(e.code).toBe("config/invalid-file");
    expect(e.message).toMatch(/not valid YAML/);
    expect(e.line).toBeGreaterThanOrEqual(4);
    const dup = fileError(() => parseExport("format: nxs-config/1\nenv: a\nenv: b\n"));
    expect(dup.line).toBe(3);
  });

  it("invalid JSON is config/invalid-file with its line", () => {
    const e = fileError(() => parseExport('{\n  "format": "nxs-config/1",\n  "env": }\n'));
    expect(e.code).toBe("config/invalid-file");
    expect(e.message).toMatch(/not valid JSON/);
    expect(e.line).toBe(3);
    expect(e.column).toBe(10);
    const trailing = fileError(() => parseExport('{\n  "format": "nxs-config/1",\n  "keys": {},\n}\n'));
    expect(trailing.line).toBe(4);
    const cut = fileError(() => parseExport('{\n  "format": "nxs-config/1",\n  "env": "prod'));
    expect(cut.line).toBe(3);
  });

  it("a wrong format version or shape names the field and its line", () => {
    const other = fileError(() => parseExport("format: nxs-config/2\nenv: production\n"));
    expect(other.message).toMatch(/format is "nxs-config\/2".*reads "nxs-config\/1"/);
    expect(other.line).toBe(1);
    const text = [
      "format: nxs-config/1",
      "env: production",
      "exportedAt: 2026-12-07T08:00:00.000Z",
      "keys:",
      "  limits:",
      "    version: 0",
      "    value: {}",
    ].join("\n");
    const shape = fileError(() => parseExport(text));
    expect(shape.code).toBe("config/invalid-file");
    expect(shape.message).toMatch(/keys\.limits\.version/);
    expect(shape.line).toBe(6);
    const inf = fileError(() => parseExport(text.replace("version: 0", "version: 1").replace("{}", ".inf")));
    expect(inf.message).toMatch(/keys\.limits\.value/);
    expect(inf.line).toBe(7);
    const json = fileError(() =>
      parseExport(
        JSON.stringify({ format: "nxs-config/1", env: "Bad Env", exportedAt: "x", keys: {} }, null, 2),
      ),
    );
    expect(json.message).toMatch(/env/);
    expect(json.line).toBe(3);
    expect(fileError(() => parseExport("")).code).toBe("config/invalid-file");
    expect(fileError(() => parseExport("- a\n- b\n")).code).toBe("config/invalid-file");
  });
});
