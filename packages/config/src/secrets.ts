/**
 * Secret fields: marked in a key's zod schema with {@link secret}, stored sealed with AES-256-GCM
 * (node:crypto) under a key id from a {@link Keyring}, so a backend, a server, a replicator, a log
 * line or an export never holds a plain secret. The additional authenticated data of each envelope is
 * `${key}:${path}`, so a ciphertext moved to another key or field does not open. Redacted forms show
 * that a secret changed, never what it is.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { ErrorCode, type Json, NxsError } from "@nxs-sync/core";
import { z } from "zod";
import { ConfigErrorCode } from "./errors.js";

/** A path pattern into a value: object keys, tuple indexes, and `"*"` for any array item or record value. */
export type SecretPath = readonly (string | "*")[];

/**
 * A sealed secret as stored: AES-256-GCM, every binary field base64. (A type rather than an
 * interface, so an envelope is assignable to `Json`.)
 */
export type SealedSecret = {
  /** Marks the envelope (always 1). */
  readonly $secret: 1;
  /** The id of the key it is sealed under (see {@link Keyring}). */
  readonly kid: string;
  /** The 12-byte nonce. */
  readonly iv: string;
  /** The ciphertext. */
  readonly ct: string;
  /** The 16-byte authentication tag. */
  readonly tag: string;
};

/** Holds the encryption keys by id; seals under the active one, opens under any it holds. */
export interface Keyring {
  /** The key id new secrets are sealed under. */
  readonly activeKid: string;
  /** Whether this keyring holds the key `kid`. */
  has(kid: string): boolean;
  /**
   * Seals a plain string under the active key.
   * @param plain - The secret.
   * @param aad - Additional authenticated data (the envelope opens only with the same).
   */
  seal(plain: string, aad: string): SealedSecret;
  /**
   * Opens an envelope.
   * @throws NxsError `config/secret-key-missing` when the key id is not held; `config/secret-corrupt`
   *   when the envelope is malformed, altered, or sealed with another `aad`.
   */
  open(sealed: SealedSecret, aad: string): string;
}

/** Options of {@link createKeyring}. */
export interface KeyringOptions {
  /** The key id to seal under (default: the first of `keys`). */
  readonly active?: string;
  /** Key id to 32-byte key (bytes, or base64 text). Key ids: 1-64 of `[A-Za-z0-9_.-]`, the first a letter or digit. */
  readonly keys: Readonly<Record<string, Uint8Array | string>>;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAKE_KEY = "make one with `openssl rand -base64 32`";

const secretRegistry = z.registry<{ readonly secret: true }>();
const holdsString = z.refine((v: unknown) => v === undefined || v === null || typeof v === "string", {
  message: "a secret field holds a string",
});

/**
 * Marks a schema as a secret field: its values (strings) are stored sealed and shown redacted. The
 * mark survives `.optional()`, `.describe()`, `.min()` and the like (they wrap or clone the marked
 * schema); the returned schema also refuses a value that is not a string.
 * @param schema - The field's schema (a string schema).
 * @returns The same kind of schema, marked.
 * @example
 * ```ts
 * import { z } from "zod";
 * const providers = z.object({ name: z.string(), apiKey: secret(z.string().min(1)) });
 * secretPaths(providers); // [["apiKey"]]
 * ```
 */
export function secret<T extends z.ZodType>(schema: T): T {
  const marked = schema.check(holdsString) as T;
  secretRegistry.add(marked, { secret: true });
  return marked;
}

/**
 * Whether `schema` itself carries the {@link secret} mark (not looking inside it).
 * @param schema - Any zod schema.
 * @returns True for a schema returned by {@link secret}, or a clone of one (`.describe()`, `.min()`).
 */
export function isSecretSchema(schema: z.ZodType): boolean {
  return secretRegistry.get(schema)?.secret === true;
}

/** The parts of a zod 4 definition the walk reads. */
interface WalkDef {
  readonly type: string;
  readonly shape?: Readonly<Record<string, z.ZodType>>;
  readonly innerType?: z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly items?: readonly z.ZodType[];
  readonly rest?: z.ZodType | null;
  readonly options?: readonly z.ZodType[];
  readonly left?: z.ZodType;
  readonly right?: z.ZodType;
  readonly getter?: () => z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
}

const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch", "nonoptional"]);
const pathCache = new WeakMap<z.ZodType, readonly SecretPath[]>();

/**
 * Lists the paths of the secret fields of a schema. It walks zod 4 `object` (declared keys),
 * `optional`, `nullable`, `default`, `prefault`, `readonly`, `catch`, `nonoptional`, `array` and
 * `record` (`"*"` for any item or value), `tuple` (its indexes, `"*"` for the rest), `union` and
 * discriminated union (every option), `intersection` (both sides), `pipe` (both ends) and `lazy`.
 * It does not walk: an object's `catchall`, map, set, promise and custom schemas, and a `lazy`
 * schema inside itself (a recursive schema's secrets below its first recursion are not found: mark
 * such a field at a fixed depth instead). Results are cached per schema.
 * @param schema - A key's schema.
 * @returns The secret paths, each once, in schema order.
 * @example
 * ```ts
 * import { z } from "zod";
 * secretPaths(z.object({ providers: z.array(z.object({ key: secret(z.string()) })) }));
 * // [["providers", "*", "key"]]
 * ```
 */
export function secretPaths(schema: z.ZodType): readonly SecretPath[] {
  const cached = pathCache.get(schema);
  if (cached !== undefined) return cached;
  const out = new Map<string, SecretPath>();
  walkSchema(schema, [], out, new Set());
  const paths = Object.freeze([...out.values()]);
  pathCache.set(schema, paths);
  return paths;
}

function walkSchema(schema: z.ZodType, at: SecretPath, out: Map<string, SecretPath>, lazies: Set<z.ZodType>) {
  if (isSecretSchema(schema)) {
    out.set(JSON.stringify(at), Object.freeze([...at]));
    return;
  }
  const def = schema._zod.def as unknown as WalkDef;
  const walk = (s: z.ZodType | null | undefined, path: SecretPath) => {
    if (s) walkSchema(s, path, out, lazies);
  };
  if (WRAPPERS.has(def.type)) return walk(def.innerType, at);
  switch (def.type) {
    case "object":
      for (const [name, field] of Object.entries(def.shape ?? {})) walk(field, [...at, name]);
      return;
    case "array":
      return walk(def.element, [...at, "*"]);
    case "record":
      return walk(def.valueType, [...at, "*"]);
    case "tuple":
      for (const [i, item] of (def.items ?? []).entries()) walk(item, [...at, String(i)]);
      return walk(def.rest, [...at, "*"]);
    case "union":
      for (const option of def.options ?? []) walk(option, at);
      return;
    case "intersection":
      walk(def.left, at);
      return walk(def.right, at);
    case "pipe":
      walk(def.in, at);
      return walk(def.out, at);
    case "lazy":
      if (lazies.has(schema) || def.getter === undefined) return;
      lazies.add(schema);
      walk(def.getter(), at);
      lazies.delete(schema);
      return;
    default:
      return;
  }
}

/**
 * Whether a value is a sealed secret envelope: exactly the fields of {@link SealedSecret}.
 * @param v - Anything.
 * @returns True for an envelope (its fields' base64 is checked only when it is opened).
 */
export function isSealed(v: unknown): v is SealedSecret {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return (
    Object.keys(o).length === 5 &&
    o.$secret === 1 &&
    typeof o.kid === "string" &&
    typeof o.iv === "string" &&
    typeof o.ct === "string" &&
    typeof o.tag === "string"
  );
}

function keyError(message: string): NxsError {
  return new NxsError(ErrorCode.ConfigInvalid, message);
}

function keyBytes(kid: string, key: Uint8Array | string, where: string): Buffer {
  if (!KID_PATTERN.test(kid)) {
    throw keyError(
      `${where}: key id ${JSON.stringify(kid)} must be 1-64 of [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  }
  let bytes: Buffer;
  if (typeof key === "string") {
    if (!BASE64.test(key)) {
      throw keyError(`${where}: key "${kid}" is not base64 (${MAKE_KEY})`);
    }
    bytes = Buffer.from(key, "base64");
  } else bytes = Buffer.from(key);
  if (bytes.length !== KEY_BYTES) {
    throw keyError(`${where}: key "${kid}" is ${bytes.length} bytes; it must be ${KEY_BYTES} (${MAKE_KEY})`);
  }
  return bytes;
}

function decode(b64: string, bytes?: number): Buffer | undefined {
  if (!BASE64.test(b64)) return undefined;
  const buf = Buffer.from(b64, "base64");
  return bytes === undefined || buf.length === bytes ? buf : undefined;
}

/**
 * Creates a keyring from 32-byte keys. The key material stays in a closure (never a property, so a
 * logged keyring shows none of it); no error message ever contains it.
 * @param options - The keys by id and the active id.
 * @returns The keyring.
 * @throws NxsError `config/invalid` for no keys, a malformed key id, a key that is not 32 bytes (or
 *   not base64), or an `active` id that is not among the keys.
 * @example
 * ```ts
 * import { randomBytes } from "node:crypto";
 * const keyring = createKeyring({ keys: { k1: randomBytes(32) } });
 * keyring.open(keyring.seal("hunter2", "providers:apiKey"), "providers:apiKey"); // "hunter2"
 * ```
 */
export function createKeyring(options: KeyringOptions): Keyring {
  const keys = new Map<string, Buffer>();
  for (const [kid, key] of Object.entries(options.keys)) keys.set(kid, keyBytes(kid, key, "keyring"));
  const first = keys.keys().next();
  if (first.done) throw keyError(`keyring: no keys given (${MAKE_KEY})`);
  const activeKid = options.active ?? first.value;
  const activeKey = keys.get(activeKid);
  if (activeKey === undefined) {
    throw keyError(
      `keyring: the active key id ${JSON.stringify(activeKid)} is not among the keys (${[...keys.keys()].join(", ")})`,
    );
  }
  return Object.freeze({
    activeKid,
    has: (kid: string) => keys.has(kid),
    seal(plain: string, aad: string): SealedSecret {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", activeKey, iv);
      cipher.setAAD(Buffer.from(aad, "utf8"));
      const ct = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return Object.freeze({
        $secret: 1 as const,
        kid: activeKid,
        iv: iv.toString("base64"),
        ct: ct.toString("base64"),
        tag: cipher.getAuthTag().toString("base64"),
      });
    },
    open(sealed: SealedSecret, aad: string): string {
      const key = keys.get(sealed.kid);
      if (key === undefined) {
        throw new NxsError(
          ConfigErrorCode.SecretKeyMissing,
          `secret at ${aad} is sealed under key id "${sealed.kid}", which this keyring does not hold: add it to NXS_CONFIG_KEYS`,
        );
      }
      const iv = decode(sealed.iv, IV_BYTES);
      const tag = decode(sealed.tag, TAG_BYTES);
      const ct = decode(sealed.ct);
      if (iv === undefined || tag === undefined || ct === undefined) {
        throw new NxsError(ConfigErrorCode.SecretCorrupt, `secret at ${aad} is not a well-formed envelope`);
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, iv);
        decipher.setAAD(Buffer.from(aad, "utf8"));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ct), decipher.final()]).toString("utf8");
      } catch (cause) {
        throw new NxsError(
          ConfigErrorCode.SecretCorrupt,
          `secret at ${aad} does not open under key id "${sealed.kid}": the ciphertext was altered, moved from another field or key, or sealed with another key of that id`,
          { cause },
        );
      }
    },
  });
}

/**
 * Reads a keyring from the environment: `NXS_CONFIG_KEYS="kid1:base64,kid2:base64"` (32-byte keys)
 * and `NXS_CONFIG_ACTIVE_KEY` (default: the first listed).
 * @param env - The environment (default `process.env`).
 * @returns The keyring, or undefined when `NXS_CONFIG_KEYS` is unset or empty.
 * @throws NxsError `config/invalid` when a variable is malformed (the message names the entry and
 *   the fix, never the key material).
 * @example
 * ```ts
 * const keyring = keyringFromEnv(); // NXS_CONFIG_KEYS=k1:$(openssl rand -base64 32)
 * ```
 */
export function keyringFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Keyring | undefined {
  const list = env.NXS_CONFIG_KEYS?.trim() ?? "";
  const active = env.NXS_CONFIG_ACTIVE_KEY?.trim() || undefined;
  if (list === "") {
    if (active !== undefined) {
      throw keyError(
        `NXS_CONFIG_ACTIVE_KEY is set but NXS_CONFIG_KEYS is empty: set NXS_CONFIG_KEYS="kid:base64,..."`,
      );
    }
    return undefined;
  }
  const keys = new Map<string, Buffer>();
  list.split(",").forEach((raw, i) => {
    const entry = raw.trim();
    if (entry === "") return; // a trailing or doubled comma
    const where = `NXS_CONFIG_KEYS entry ${i + 1}`;
    const colon = entry.indexOf(":");
    if (colon <= 0) {
      throw keyError(`${where} is not "kid:base64" (expected NXS_CONFIG_KEYS="kid1:base64,kid2:base64")`);
    }
    const kid = entry.slice(0, colon);
    if (keys.has(kid)) throw keyError(`${where}: key id "${kid}" is listed twice`);
    keys.set(kid, keyBytes(kid, entry.slice(colon + 1), where));
  });
  if (keys.size === 0) throw keyError(`NXS_CONFIG_KEYS lists no key (expected "kid1:base64,kid2:base64")`);
  if (active !== undefined && !keys.has(active)) {
    throw keyError(
      `NXS_CONFIG_ACTIVE_KEY "${active}" is not among NXS_CONFIG_KEYS (${[...keys.keys()].join(", ")})`,
    );
  }
  return createKeyring({ keys: Object.fromEntries(keys), ...(active === undefined ? {} : { active }) });
}

// ---------------------------------------------------------------------------------------------
// Values

type Obj = { readonly [key: string]: Json };

function isObj(v: Json | undefined): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A path segment in an AAD: `.` and `%` are escaped, so `a.b` as one key differs from `a` then `b`. */
function aadOf(key: string, path: readonly string[]): string {
  return `${key}:${path.map((s) => s.replaceAll("%", "%25").replaceAll(".", "%2E")).join(".")}`;
}

function child(v: Json, seg: string): Json | undefined {
  if (Array.isArray(v)) return /^(0|[1-9]\d*)$/.test(seg) ? (v as readonly Json[])[Number(seg)] : undefined;
  if (isObj(v)) return Object.hasOwn(v, seg) ? v[seg] : undefined;
  return undefined;
}

function children(v: Json): [string, Json][] {
  if (Array.isArray(v)) return (v as readonly Json[]).map((item, i) => [String(i), item]);
  if (isObj(v)) return Object.entries(v);
  return [];
}

/** The concrete paths in `value` that a pattern matches. */
function matchPaths(value: Json, pattern: SecretPath, i: number, at: string[], out: string[][]) {
  if (i === pattern.length) {
    out.push([...at]);
    return;
  }
  const seg = pattern[i] as string;
  if (seg === "*") {
    for (const [name, item] of children(value)) matchPaths(item, pattern, i + 1, [...at, name], out);
    return;
  }
  const next = child(value, seg);
  if (next !== undefined) matchPaths(next, pattern, i + 1, [...at, seg], out);
}

/** Copies `value` with the node at `path` replaced by `fn(node)` (other subtrees shared). */
function updateAt(value: Json, path: readonly string[], i: number, fn: (v: Json) => Json): Json {
  if (i === path.length) return fn(value);
  const seg = path[i] as string;
  if (Array.isArray(value)) {
    const n = Number(seg);
    return (value as readonly Json[]).map((item, j) => (j === n ? updateAt(item, path, i + 1, fn) : item));
  }
  if (isObj(value)) {
    // fromEntries defines own properties: a "__proto__" key stays a key.
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k === seg ? updateAt(v, path, i + 1, fn) : v]),
    );
  }
  return value;
}

function collectSealed(v: Json, at: string[], out: string[][]) {
  if (isSealed(v)) {
    out.push([...at]);
    return;
  }
  for (const [name, item] of children(v)) collectSealed(item, [...at, name], out);
}

/**
 * Lists where sealed envelopes are in a stored value (concrete paths, array indexes as strings).
 * @param stored - A value in stored form.
 * @returns The paths, in document order.
 */
export function sealedPaths(stored: Json): readonly (readonly string[])[] {
  const out: string[][] = [];
  collectSealed(stored, [], out);
  return out;
}

function secretLeaves(value: Json, schema: z.ZodType): string[][] {
  const seen = new Set<string>();
  const out: string[][] = [];
  for (const pattern of secretPaths(schema)) {
    const found: string[][] = [];
    matchPaths(value, pattern, 0, [], found);
    for (const p of found) {
      const id = JSON.stringify(p);
      if (!seen.has(id)) {
        seen.add(id);
        out.push(p);
      }
    }
  }
  return out;
}

function missingKeyring(key: string, path: readonly string[]): NxsError {
  return new NxsError(
    ConfigErrorCode.SecretKeyMissing,
    `secret ${aadOf(key, path)} needs a keyring: set NXS_CONFIG_KEYS="kid:base64" (${MAKE_KEY})`,
  );
}

/**
 * Seals the secret fields of a value for storage: every plain string at a secret path of `schema`
 * becomes a {@link SealedSecret} under the keyring's active key, with AAD `${key}:${path}` (path
 * dotted with concrete indexes). An envelope already there passes through unchanged (it is checked
 * first when the keyring holds its key id, so a ciphertext moved from another field is refused
 * here rather than on read). `null` and non-string values are left as they are (validation refuses
 * a non-string secret).
 * @param key - The config key (part of the AAD).
 * @param value - The validated plain value.
 * @param schema - The key's schema (see {@link secret}).
 * @param keyring - The keyring, or undefined when none is configured.
 * @returns A copy in stored form.
 * @throws NxsError `config/secret-key-missing` when a plain secret is present and there is no keyring;
 *   `config/secret-corrupt` when an envelope already there does not open at its place.
 * @example
 * ```ts
 * import { randomBytes } from "node:crypto";
 * import { z } from "zod";
 * const keyring = createKeyring({ keys: { k1: randomBytes(32) } });
 * const providers = z.object({ apiKey: secret(z.string()) });
 * const stored = sealValue("providers", { apiKey: "hunter2" }, providers, keyring);
 * // { apiKey: { $secret: 1, kid: "k1", iv: "…", ct: "…", tag: "…" } }
 * ```
 */
export function sealValue(key: string, value: Json, schema: z.ZodType, keyring: Keyring | undefined): Json {
  let out = value;
  for (const path of secretLeaves(value, schema)) {
    out = updateAt(out, path, 0, (leaf) => {
      if (isSealed(leaf)) {
        if (keyring?.has(leaf.kid)) keyring.open(leaf, aadOf(key, path));
        return leaf;
      }
      if (typeof leaf !== "string") return leaf;
      if (keyring === undefined) throw missingKeyring(key, path);
      return keyring.seal(leaf, aadOf(key, path));
    });
  }
  return out;
}

/**
 * Opens every sealed envelope of a stored value, wherever it is (a field that was secret when it was
 * written and no longer is still reads). `schema` is not needed to find envelopes; it is taken for
 * symmetry with {@link sealValue}.
 * @param key - The config key (part of the AAD).
 * @param stored - The stored form.
 * @param _schema - The key's schema.
 * @param keyring - The keyring, or undefined.
 * @returns The plain copy.
 * @throws NxsError `config/secret-key-missing` (no keyring, or the envelope's key id is not held);
 *   `config/secret-corrupt` (the envelope is altered, or moved from another field or key).
 * @example
 * ```ts
 * import { randomBytes } from "node:crypto";
 * import { z } from "zod";
 * const keyring = createKeyring({ keys: { k1: randomBytes(32) } });
 * const providers = z.object({ apiKey: secret(z.string()) });
 * const stored = sealValue("providers", { apiKey: "hunter2" }, providers, keyring);
 * openValue("providers", stored, providers, keyring); // { apiKey: "hunter2" }
 * ```
 */
export function openValue(key: string, stored: Json, _schema: z.ZodType, keyring: Keyring | undefined): Json {
  let out = stored;
  for (const path of sealedPaths(stored)) {
    out = updateAt(out, path, 0, (leaf) => {
      if (keyring === undefined) throw missingKeyring(key, path);
      return keyring.open(leaf as unknown as SealedSecret, aadOf(key, path));
    });
  }
  return out;
}

/**
 * Re-seals a stored value under the keyring's active key (key rotation): every envelope under
 * another key id that this keyring holds is opened and sealed again; envelopes already under the
 * active key, and those under a key id this keyring lacks, are kept as they are. A plain string at
 * a secret path of `schema` (a field newly marked secret) is sealed.
 * @param key - The config key.
 * @param stored - The stored form.
 * @param schema - The key's schema.
 * @param keyring - The keyring, or undefined (then only a value with nothing to do passes).
 * @returns A copy in stored form (deeply equal to `stored` when nothing needed re-sealing).
 * @throws NxsError `config/secret-corrupt` when an envelope under a held key does not open;
 *   `config/secret-key-missing` when there is a plain secret and no keyring.
 */
export function resealValue(
  key: string,
  stored: Json,
  schema: z.ZodType,
  keyring: Keyring | undefined,
): Json {
  let out = stored;
  for (const path of sealedPaths(stored)) {
    out = updateAt(out, path, 0, (leaf) => {
      const env = leaf as unknown as SealedSecret;
      if (keyring === undefined || env.kid === keyring.activeKid || !keyring.has(env.kid)) return leaf;
      const aad = aadOf(key, path);
      return keyring.seal(keyring.open(env, aad), aad);
    });
  }
  return sealValue(key, out, schema, keyring);
}

/**
 * Redacts a stored value for display (history, diffs, logs): every envelope becomes the string
 * `"[secret <kid> <first 8 hex of sha256(ct)>]"` (`ct` as its base64 text), which shows that a
 * secret changed (a new seal gives a new ciphertext) and never what it is.
 * @param stored - The stored form.
 * @returns The redacted copy.
 * @example
 * ```ts
 * import { randomBytes } from "node:crypto";
 * const keyring = createKeyring({ keys: { k1: randomBytes(32) } });
 * redactValue({ apiKey: keyring.seal("hunter2", "providers:apiKey") }); // { apiKey: "[secret k1 3f9a0c12]" }
 * ```
 */
export function redactValue(stored: Json): Json {
  let out = stored;
  for (const path of sealedPaths(stored)) {
    out = updateAt(out, path, 0, (leaf) => {
      const env = leaf as unknown as SealedSecret;
      const hash = createHash("sha256").update(env.ct, "utf8").digest("hex").slice(0, 8);
      return `[secret ${env.kid} ${hash}]`;
    });
  }
  return out;
}
