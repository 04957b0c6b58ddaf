import { isNxsError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { InvalidConfigError } from "../../src/errors.js";
import { checkValue, validateValue } from "../../src/validate.js";

const schema = z.object({
  rps: z.number().int().min(1),
  providers: z.array(z.object({ name: z.string(), url: z.url() })),
  mode: z.enum(["a", "b"]).default("a"),
  limits: z.record(z.string(), z.number()),
});

describe("validateValue", () => {
  it("returns the parsed value (defaults applied)", () => {
    const value = validateValue("gw", schema, { rps: 5, providers: [], limits: {} });
    expect(value).toEqual({ rps: 5, providers: [], mode: "a", limits: {} });
  });

  it("throws config/invalid-value naming every failing field with a dotted path", () => {
    let caught: unknown;
    try {
      validateValue("gw", schema, {
        rps: 1.5,
        providers: [
          { name: "ok", url: "https://x.example" },
          { name: 3, url: "not a url" },
        ],
        limits: { eu: "many" },
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidConfigError);
    const error = caught as InvalidConfigError;
    expect(isNxsError(error)).toBe(true);
    expect(error.code).toBe("config/invalid-value");
    expect(error.key).toBe("gw");
    expect(error.issues.map((i) => i.path)).toEqual([
      "rps",
      "providers.1.name",
      "providers.1.url",
      "limits.eu",
    ]);
    expect(error.message).toMatch(/config "gw" is invalid: rps: .*providers\.1\.url/);
    expect(error.cause).toBeInstanceOf(z.ZodError);
  });

  it("names the value itself with an empty path", () => {
    const r = checkValue("gw", schema, "nope");
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error.issues).toEqual([{ path: "", message: expect.stringMatching(/expected object/) }]);
  });

  it("in a union no option matches, names the fields of the closest option", () => {
    const u = z.object({
      target: z.union([
        z.object({ kind: z.literal("http"), url: z.url() }),
        z.object({ kind: z.literal("file"), path: z.string(), mode: z.number() }),
      ]),
    });
    const r = checkValue("t", u, { target: { kind: "http", url: "nope" } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.issues.map((i) => i.path)).toEqual(["target.url"]);
    const d = z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("x") }),
      z.object({ kind: z.literal("y") }),
    ]);
    const rd = checkValue("d", d, { kind: "z" });
    expect(rd.ok).toBe(false);
    if (!rd.ok) expect(rd.error.issues[0]?.path).toBe("kind");
  });
});

describe("checkValue", () => {
  it("never throws; gives the value or the error", () => {
    expect(checkValue("gw", z.number(), 3)).toEqual({ ok: true, value: 3 });
    const r = checkValue("gw", z.number(), "3");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(InvalidConfigError);
      expect(r.error.issues).toHaveLength(1);
    }
  });
});
