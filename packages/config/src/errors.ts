/**
 * The config store's error codes (area `config/*`) and the errors that carry data: a conflict
 * carries the current head, an invalid value names each failing field.
 */
import { defineErrorCodes, NxsError, type NxsErrorOptions } from "@nxs-sync/core";
import type { VersionMeta } from "./version.js";

/** Error codes of the config store; each is listed in docs/errors.md. */
export const ConfigErrorCode = defineErrorCodes("config", {
  /** `expectedVersion` is not the key's head: someone wrote first. Re-read, merge, put again. */
  Conflict: { name: "conflict", retryable: false },
  /**
   * A value does not match its key's schema (each failing field is named), or a write the server's
   * route refused as malformed (the field named). An unusable option or argument is core's
   * `config/invalid` instead.
   */
  InvalidValue: { name: "invalid-value", retryable: false },
  /** A stored version record is malformed or fails its schema: quarantined, the last good stays. */
  InvalidRecord: { name: "invalid-record", retryable: false },
  /** The version asked for was compacted away. */
  Compacted: { name: "compacted", retryable: false },
  /** No such key, version or environment. */
  NotFound: { name: "not-found", retryable: false },
  /** A key that has no schema in this store. */
  UnknownKey: { name: "unknown-key", retryable: false },
  /** A secret field is encrypted under a key id this process does not hold. */
  SecretKeyMissing: { name: "secret-key-missing", retryable: false },
  /** A secret could not be decrypted (wrong key, or the ciphertext was altered). */
  SecretCorrupt: { name: "secret-corrupt", retryable: false },
  /** An export file that cannot be read (syntax, format version, shape). */
  InvalidFile: { name: "invalid-file", retryable: false },
  /** The store is not started, or closed. */
  NotReady: { name: "not-ready", retryable: false },
});

declare module "@nxs-sync/core" {
  interface ErrorCodeRegistry {
    config: typeof ConfigErrorCode;
  }
}

/** One failing field of an invalid value. */
export interface FieldIssue {
  /** Dotted path of the field (`providers.0.apiKey`), `""` for the value itself. */
  readonly path: string;
  readonly message: string;
}

/** `config/conflict`: the put's `expectedVersion` is stale. `current` is the head it lost to. */
export class ConfigConflictError extends NxsError {
  /** The key's head when the put was refused (undefined: the key has no version yet). */
  readonly current: VersionMeta | undefined;
  constructor(message: string, current: VersionMeta | undefined, options: NxsErrorOptions = {}) {
    super(ConfigErrorCode.Conflict, message, options);
    this.name = "ConfigConflictError";
    this.current = current;
  }
}

/** `config/invalid-value`: the value fails its schema; `issues` names each failing field. */
export class InvalidConfigError extends NxsError {
  readonly key: string;
  readonly issues: readonly FieldIssue[];
  constructor(key: string, issues: readonly FieldIssue[], options: NxsErrorOptions = {}) {
    super(
      ConfigErrorCode.InvalidValue,
      `config "${key}" is invalid: ${issues.map((i) => `${i.path || "(value)"}: ${i.message}`).join("; ")}`,
      options,
    );
    this.name = "InvalidConfigError";
    this.key = key;
    this.issues = issues;
  }
}
