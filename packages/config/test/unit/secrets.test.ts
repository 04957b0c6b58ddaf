import { randomBytes } from "node:crypto";
import { isNxsError, type Json } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  createKeyring,
  isSealed,
  isSecretSchema,
  keyringFromEnv,
  openValue,
  redactValue,
  resealValue,
  type SealedSecret,
  sealedPaths,
  sealValue,
  secret,
  secretPaths,
} from "../../src/secrets.js";

const K1 = Buffer.alloc(32, 1);
const K2 = Buffer.alloc(32, 2);
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

/** Runs `fn` and returns the NxsError code it throws (fails the test when it does not throw one). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isNxsError(e)) return e.code;
    throw e;
  }
  throw new Error("expected a throw");
}
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a throw");
}

const providers = z.object({
  name: z.string(),
  apiKey: secret(z.string().min(1)),
  backup: secret(z.string()).optional(),
  routes: z.array(z.object({ path: z.string(), token: secret(z.string()).nullable() })),
  headers: z.record(z.string(), secret(z.string())),
});

const plain = {
  name: "openai",
  apiKey: "sk-live-1",
  routes: [
    { path: "/a", token: "tok-a" },
    { path: "/b", token: null },
  ],
  headers: { authorization: "Bearer xyz" },
} as const satisfies Json;

describe("secret and secretPaths", () => {
  it("finds the paths through object, optional, nullable, array and record", () => {
    expect(secretPaths(providers)).toEqual([
      ["apiKey"],
      ["backup"],
      ["routes", "*", "token"],
      ["headers", "*"],
    ]);
  });

  it("walks default, union, intersection, tuple, pipe and lazy, and keeps the mark through clones", () => {
    const s = z.object({
      a: secret(z.string()).default("x"),
      b: z.union([z.object({ u: secret(z.string()) }), z.object({ v: z.number() })]),
      c: z.intersection(z.object({ l: secret(z.string()) }), z.object({ r: secret(z.string()) })),
      d: z.tuple([z.string(), secret(z.string())], secret(z.string())),
      e: z.string().pipe(secret(z.string())),
      f: z.lazy(() => z.object({ g: secret(z.string()) })),
      h: secret(z.string()).describe("described").min(2),
      i: z.number(),
      j: z.map(z.string(), secret(z.string())),
    });
    expect(secretPaths(s)).toEqual([
      ["a"],
      ["b", "u"],
      ["c", "l"],
      ["c", "r"],
      ["d", "1"],
      ["d", "*"],
      ["e"],
      ["f", "g"],
      ["h"],
    ]);
    expect(isSecretSchema(z.string())).toBe(false);
  });

  it("stops at a recursive lazy schema instead of looping", () => {
    type Node = { key?: string; children: Node[] };
    const node: z.ZodType<Node> = z.lazy(() =>
      z.object({ key: secret(z.string()).optional(), children: z.array(node) }),
    );
    expect(secretPaths(node)).toEqual([["key"]]);
  });

  it("a secret field refuses a value that is not a string", () => {
    const s = z.object({ n: secret(z.any()) });
    expect(s.safeParse({ n: "ok" }).success).toBe(true);
    const r = s.safeParse({ n: 5 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/secret field holds a string/);
  });
});

describe("keyring", () => {
  it("seals and opens under the same aad; the active key is the first unless named", () => {
    const ring = createKeyring({ keys: { k1: K1, k2: b64(K2) } });
    expect(ring.activeKid).toBe("k1");
    const sealed = ring.seal("hunter2", "providers:apiKey");
    expect(isSealed(sealed)).toBe(true);
    expect(sealed.kid).toBe("k1");
    expect(JSON.stringify(sealed)).not.toContain("hunter2");
    expect(ring.open(sealed, "providers:apiKey")).toBe("hunter2");
    expect(createKeyring({ active: "k2", keys: { k1: K1, k2: K2 } }).activeKid).toBe("k2");
    // a fresh nonce each time
    expect(ring.seal("hunter2", "a").ct).not.toBe(ring.seal("hunter2", "a").ct);
  });

  it("refuses bad keys with config/invalid, naming the fix and never the material", () => {
    const short = randomBytes(16);
    expect(codeOf(() => createKeyring({ keys: { k1: short } }))).toBe("config/invalid");
    const msg = messageOf(() => createKeyring({ keys: { k1: b64(short) } }));
    expect(msg).toMatch(/16 bytes; it must be 32.*openssl rand -base64 32/);
    expect(msg).not.toContain(b64(short));
    expect(codeOf(() => createKeyring({ keys: { k1: "not base64!!" } }))).toBe("config/invalid");
    expect(codeOf(() => createKeyring({ keys: {} }))).toBe("config/invalid");
    expect(codeOf(() => createKeyring({ keys: { "bad kid": K1 } }))).toBe("config/invalid");
    expect(codeOf(() => createKeyring({ active: "k9", keys: { k1: K1 } }))).toBe("config/invalid");
  });

  it("a wrong key, a tampered ciphertext or tag, a moved aad, or an unknown kid does not open", () => {
    const ring = createKeyring({ keys: { k1: K1 } });
    const sealed = ring.seal("hunter2", "providers:apiKey");
    const other = createKeyring({ keys: { k1: K2 } });
    expect(codeOf(() => other.open(sealed, "providers:apiKey"))).toBe("config/secret-corrupt");
    const flip = (s: string) => {
      const b = Buffer.from(s, "base64");
      b[0] = (b[0] as number) ^ 1;
      return b.toString("base64");
    };
    expect(codeOf(() => ring.open({ ...sealed, ct: flip(sealed.ct) }, "providers:apiKey"))).toBe(
      "config/secret-corrupt",
    );
    expect(codeOf(() => ring.open({ ...sealed, tag: flip(sealed.tag) }, "providers:apiKey"))).toBe(
      "config/secret-corrupt",
    );
    expect(codeOf(() => ring.open({ ...sealed, iv: "AAAA" }, "providers:apiKey"))).toBe(
      "config/secret-corrupt",
    );
    expect(codeOf(() => ring.open({ ...sealed, ct: "%%%" }, "providers:apiKey"))).toBe(
      "config/secret-corrupt",
    );
    expect(codeOf(() => ring.open(sealed, "providers:backup"))).toBe("config/secret-corrupt");
    expect(codeOf(() => ring.open({ ...sealed, kid: "k9" }, "providers:apiKey"))).toBe(
      "config/secret-key-missing",
    );
    expect(messageOf(() => ring.open(sealed, "other:apiKey"))).not.toContain("hunter2");
  });

  it("shows no key material when logged", () => {
    const ring = createKeyring({ keys: { k1: K1 } });
    expect(JSON.stringify(ring)).not.toContain(b64(K1));
    expect(Object.values(ring).some((v) => v instanceof Uint8Array)).toBe(false);
  });
});

describe("keyringFromEnv", () => {
  it("reads NXS_CONFIG_KEYS and NXS_CONFIG_ACTIVE_KEY", () => {
    expect(keyringFromEnv({})).toBeUndefined();
    expect(keyringFromEnv({ NXS_CONFIG_KEYS: "  " })).toBeUndefined();
    const ring = keyringFromEnv({ NXS_CONFIG_KEYS: `old:${b64(K1)}, new:${b64(K2)}` });
    expect(ring?.activeKid).toBe("old");
    expect(ring?.has("new")).toBe(true);
    const active = keyringFromEnv({
      NXS_CONFIG_KEYS: `old:${b64(K1)},new:${b64(K2)}`,
      NXS_CONFIG_ACTIVE_KEY: "new",
    });
    expect(active?.activeKid).toBe("new");
    expect(keyringFromEnv({ NXS_CONFIG_KEYS: `k1:${b64(K1)},` })?.activeKid).toBe("k1");
    // what one keyring seals the other opens (same key id and bytes)
    const sealed = active?.seal("x", "k:") as SealedSecret;
    expect(createKeyring({ keys: { new: K2 } }).open(sealed, "k:")).toBe("x");
  });

  it("a malformed variable throws config/invalid without echoing key material", () => {
    const secretish = b64(randomBytes(20));
    const cases: Record<string, string | undefined>[] = [
      { NXS_CONFIG_KEYS: secretish },
      { NXS_CONFIG_KEYS: `k1:${secretish}` },
      { NXS_CONFIG_KEYS: `k1:${b64(K1)},k1:${b64(K2)}` },
      { NXS_CONFIG_KEYS: `k1:${b64(K1)},:${secretish}` },
      { NXS_CONFIG_KEYS: `k1:${b64(K1)}`, NXS_CONFIG_ACTIVE_KEY: "k2" },
      { NXS_CONFIG_ACTIVE_KEY: "k1" },
      { NXS_CONFIG_KEYS: ",," },
      { NXS_CONFIG_KEYS: `__proto__:${b64(K1)}` },
    ];
    for (const env of cases) {
      expect(codeOf(() => keyringFromEnv(env))).toBe("config/invalid");
      const msg = messageOf(() => keyringFromEnv(env));
      expect(msg).toMatch(/NXS_CONFIG_(KEYS|ACTIVE_KEY)/);
      expect(msg).not.toContain(secretish);
      expect(msg).not.toContain(b64(K1));
    }
    expect(messageOf(() => keyringFromEnv({ NXS_CONFIG_KEYS: `k1:${secretish}` }))).toMatch(
      /entry 1.*"k1".*20 bytes/,
    );
  });
});

describe("sealValue, openValue, resealValue", () => {
  const ring = createKeyring({ keys: { k1: K1 } });

  it("seals every plain secret and opens back to the plain value", () => {
    const stored = sealValue("providers", plain, providers, ring);
    const text = JSON.stringify(stored);
    for (const s of ["sk-live-1", "tok-a", "Bearer xyz"]) expect(text).not.toContain(s);
    expect(sealedPaths(stored)).toEqual([["apiKey"], ["routes", "0", "token"], ["headers", "authorization"]]);
    expect((stored as { name: string }).name).toBe("openai");
    expect((stored as { routes: { token: unknown }[] }).routes[1]?.token).toBeNull();
    expect(openValue("providers", stored, providers, ring)).toEqual(plain);
    // the input is not changed
    expect(plain.apiKey).toBe("sk-live-1");
  });

  it("seals a whole value that is itself secret (path: the value)", () => {
    const s = secret(z.string());
    expect(secretPaths(s)).toEqual([[]]);
    const stored = sealValue("token", "abc", s, ring);
    expect(isSealed(stored)).toBe(true);
    expect(sealedPaths(stored)).toEqual([[]]);
    expect(openValue("token", stored, s, ring)).toBe("abc");
    expect(codeOf(() => openValue("other", stored, s, ring))).toBe("config/secret-corrupt");
  });

  it("passes an already sealed value through unchanged", () => {
    const stored = sealValue("providers", plain, providers, ring);
    expect(sealValue("providers", stored, providers, ring)).toEqual(stored);
    // also without the key (an import of another environment's ciphertext)
    expect(sealValue("providers", stored, providers, undefined)).toEqual(stored);
  });

  it("refuses, with the keyring, an envelope moved to another field or key", () => {
    const stored = sealValue("providers", plain, providers, ring) as { apiKey: Json; backup?: Json };
    const moved = { ...stored, backup: stored.apiKey };
    expect(codeOf(() => sealValue("providers", moved, providers, ring))).toBe("config/secret-corrupt");
    expect(codeOf(() => openValue("providers", moved, providers, ring))).toBe("config/secret-corrupt");
    expect(codeOf(() => openValue("routes", stored, providers, ring))).toBe("config/secret-corrupt");
  });

  it("tells a dotted key name from nested keys in the aad", () => {
    const s = z.object({ "a.b": secret(z.string()), a: z.object({ b: secret(z.string()) }) });
    const stored = sealValue("k", { "a.b": "one", a: { b: "two" } }, s, ring) as {
      "a.b": Json;
      a: { b: Json };
    };
    const swapped = { "a.b": stored.a.b, a: { b: stored["a.b"] } };
    expect(codeOf(() => openValue("k", swapped, s, ring))).toBe("config/secret-corrupt");
  });

  it("without a keyring: a plain secret is config/secret-key-missing; no secret needs none", () => {
    expect(codeOf(() => sealValue("providers", plain, providers, undefined))).toBe(
      "config/secret-key-missing",
    );
    const none = { ...plain, apiKey: "" };
    const withoutSecrets = z.object({ name: z.string() });
    expect(sealValue("x", { name: "n" }, withoutSecrets, undefined)).toEqual({ name: "n" });
    expect(openValue("x", { name: "n" }, withoutSecrets, undefined)).toEqual({ name: "n" });
    const stored = sealValue("providers", none, providers, ring);
    expect(codeOf(() => openValue("providers", stored, providers, undefined))).toBe(
      "config/secret-key-missing",
    );
    expect(codeOf(() => openValue("providers", stored, providers, createKeyring({ keys: { k2: K2 } })))).toBe(
      "config/secret-key-missing",
    );
  });

  it("resealValue moves every secret it can open to the active key and keeps the rest", () => {
    const old = createKeyring({ keys: { k1: K1 } });
    const foreign = createKeyring({ keys: { kx: K2 } });
    const stored = sealValue("providers", plain, providers, old) as Record<string, Json>;
    const withForeign = { ...stored, backup: foreign.seal("zzz", "providers:backup") };
    const rotated = createKeyring({ active: "k2", keys: { k1: K1, k2: K2 } });
    const resealed = resealValue("providers", withForeign, providers, rotated) as Record<
      string,
      SealedSecret
    >;
    expect(resealed.apiKey?.kid).toBe("k2");
    expect(resealed.backup).toEqual(withForeign.backup);
    expect(
      openValue("providers", { ...resealed, backup: "b" }, providers, createKeyring({ keys: { k2: K2 } })),
    ).toEqual({
      ...plain,
      backup: "b",
    });
    // nothing to do: equal output
    expect(resealValue("providers", resealed, providers, rotated)).toEqual(resealed);
    expect(resealValue("providers", stored, providers, undefined)).toEqual(stored);
    // a field newly marked secret is sealed
    const sealedNow = resealValue("providers", { ...stored, backup: "new" }, providers, rotated);
    expect(sealedPaths(sealedNow)).toContainEqual(["backup"]);
  });
});

describe("redactValue", () => {
  const ring = createKeyring({ keys: { k1: K1 } });
  it("shows the key id and a hash of the ciphertext, never the secret", () => {
    const stored = sealValue("providers", plain, providers, ring);
    const redacted = redactValue(stored) as { apiKey: string };
    expect(redacted.apiKey).toMatch(/^\[secret k1 [0-9a-f]{8}\]$/);
    expect(JSON.stringify(redacted)).not.toMatch(/sk-live-1|tok-a|Bearer xyz|"\$secret"/);
    expect(redactValue(stored)).toEqual(redacted);
    const resealed = redactValue(sealValue("providers", plain, providers, ring)) as { apiKey: string };
    expect(resealed.apiKey).not.toBe(redacted.apiKey);
    expect(redactValue({ a: [1, "x"] })).toEqual({ a: [1, "x"] });
  });

  it("keeps a __proto__ key a key when copying", () => {
    const s = z.record(z.string(), secret(z.string()));
    const value = JSON.parse('{"__proto__":"p","x":"y"}') as Json;
    const stored = sealValue("k", value, s, ring);
    expect(Object.getPrototypeOf(stored)).toBe(Object.prototype);
    expect(sealedPaths(stored)).toEqual([["__proto__"], ["x"]]);
    expect(openValue("k", stored, s, ring)).toEqual(value);
  });

  it("property: sealed then opened is the value; no plain secret survives sealing or redaction", () => {
    const schema = z.object({ items: z.array(z.object({ s: secret(z.string()), n: z.json() })) });
    const secretText = fc.string({ minLength: 1, maxLength: 20 }).map((s) => `S3CRET<${s}>`);
    fc.assert(
      fc.property(
        fc.array(fc.record({ s: secretText, n: fc.jsonValue({ maxDepth: 2 }) }), { maxLength: 5 }),
        (items) => {
          const value = JSON.parse(JSON.stringify({ items })) as Json;
          const stored = sealValue("cfg", value, schema, ring);
          expect(openValue("cfg", stored, schema, ring)).toEqual(value);
          const redacted = JSON.stringify(redactValue(stored));
          for (const item of items) expect(redacted).not.toContain(item.s);
        },
      ),
      { seed: 20261207, numRuns: 200 },
    );
  });
});
