/**
 * Export files: a whole environment's heads as YAML or JSON (the `yaml` package), so config can live
 * in git as well. Values are in stored form: secrets stay sealed envelopes with their key id, never
 * plain text and never a placeholder.
 */
import { ErrorCode, type Json, NxsError, type NxsErrorOptions } from "@nxs-sync/core";
import { LineCounter, parseDocument, stringify } from "yaml";
import { z } from "zod";
import { ConfigErrorCode } from "./errors.js";
import { compareVersions, ENV_PATTERN, KEY_PATTERN, type StoredVersion } from "./version.js";

/** The format tag of an export file. */
export const EXPORT_FORMAT = "nxs-config/1";

/** One key of an export file: its head version number and its value in stored form. */
export interface ExportEntry {
  readonly version: number;
  readonly value: Json;
}

/** A whole environment as exported. */
export interface ExportFile {
  readonly format: typeof EXPORT_FORMAT;
  readonly env: string;
  /** When it was exported (ISO 8601). */
  readonly exportedAt: string;
  /** Each key's head (compacted ones left out), by key name. */
  readonly keys: Readonly<Record<string, ExportEntry>>;
}

/** The shape an export file must have. */
export const exportFileSchema = z
  .object({
    format: z.literal(EXPORT_FORMAT),
    env: z.string().regex(ENV_PATTERN),
    exportedAt: z.iso.datetime({ offset: true }),
    keys: z.record(
      z.string().regex(KEY_PATTERN),
      z.object({ version: z.number().int().min(1), value: z.json() }).strict(),
    ),
  })
  .strict();

/**
 * `config/invalid-file`: an export file that cannot be read (syntax, format version, shape); the
 * message names the field, and `line`/`column` say where when the parser could tell.
 */
export class ConfigFileError extends NxsError {
  /** 1-based line of the problem, when known. */
  readonly line: number | undefined;
  /** 1-based column of the problem, when known. */
  readonly column: number | undefined;
  /**
   * @param message - What is wrong (the position is appended when known).
   * @param where - 1-based line and column, when known.
   * @param options - `cause` (the parser's error or the ZodError).
   */
  constructor(
    message: string,
    where: { readonly line?: number; readonly column?: number } = {},
    options: NxsErrorOptions = {},
  ) {
    const at =
      where.line === undefined
        ? ""
        : ` (line ${where.line}${where.column ? `, column ${where.column}` : ""})`;
    super(ConfigErrorCode.InvalidFile, `${message}${at}`, options);
    this.name = "ConfigFileError";
    this.line = where.line;
    this.column = where.column;
  }
}

/**
 * Builds the export file of an environment from its heads. Compacted versions are left out; when
 * `heads` holds several versions of a key, the greatest (by `compareVersions`) is exported. Keys are
 * sorted by name, so two exports of the same state are the same text.
 * @param env - The environment.
 * @param heads - Its heads (stored form), e.g. `backend.heads(env)`.
 * @param now - The export time (ms since the epoch).
 * @returns The file content.
 * @throws NxsError `config/invalid` when a version belongs to another environment.
 * @example
 * ```ts
 * const backend = createMemoryConfigBackend();
 * const text = renderExport(exportFileOf("production", await backend.heads("production"), Date.now()), "yaml");
 * ```
 */
export function exportFileOf(env: string, heads: readonly StoredVersion[], now: number): ExportFile {
  const best = new Map<string, StoredVersion>();
  for (const v of heads) {
    if (v.env !== env) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `export of "${env}": version ${v.id} belongs to "${v.env}"`,
      );
    }
    const seen = best.get(v.key);
    if (seen === undefined || compareVersions(v, seen) > 0) best.set(v.key, v);
  }
  const keys: Record<string, ExportEntry> = {};
  for (const name of [...best.keys()].sort()) {
    const v = best.get(name) as StoredVersion;
    if (v.compacted) continue;
    keys[name] = { version: v.version, value: v.value };
  }
  return { format: EXPORT_FORMAT, env, exportedAt: new Date(now).toISOString(), keys };
}

/**
 * Renders an export file as text.
 * @param file - The file content.
 * @param format - `yaml` (block style, no line folding) or `json` (2-space indent).
 * @returns The text, ending with a newline.
 */
export function renderExport(file: ExportFile, format: "yaml" | "json"): string {
  if (format === "json") return `${JSON.stringify(file, null, 2)}\n`;
  return stringify(file, { lineWidth: 0 });
}

function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/** Where a failing field is in the text (the nearest existing node of its path). */
function locate(text: string, path: readonly PropertyKey[]): { line?: number; column?: number } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) return {};
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: readonly number[] } | undefined;
    const start = node?.range?.[0];
    if (start !== undefined) {
      const pos = lines.linePos(start);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

/** Whether `prefix` is the start of some JSON text (its parse fails only for want of more). */
function jsonViable(prefix: string): boolean {
  try {
    JSON.parse(prefix);
    return true;
  } catch (e) {
    const message = (e as Error).message;
    if (/Unexpected end of JSON input|Unterminated string/.test(message)) return true;
    const position = /position (\d+)/.exec(message)?.[1];
    return position !== undefined && Number(position) >= prefix.length;
  }
}

/**
 * Where a JSON text goes wrong: Node's message does not always say (`Unexpected token '}', ...`),
 * so find the longest prefix that could still be JSON; the error is the character after it.
 */
function jsonErrorOffset(text: string): number {
  let lo = 0;
  let hi = text.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (jsonViable(text.slice(0, mid))) lo = mid;
    else hi = mid;
  }
  return lo;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    const message = (cause as Error).message;
    const position = /position (\d+)/.exec(message)?.[1];
    const offset = position === undefined ? jsonErrorOffset(text) : Number(position);
    throw new ConfigFileError(`export file is not valid JSON: ${message}`, lineCol(text, offset), { cause });
  }
}

function parseYaml(text: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const error = doc.errors[0];
  if (error !== undefined) {
    const pos = error.linePos?.[0];
    throw new ConfigFileError(
      `export file is not valid YAML: ${error.message.split("\n")[0]}`,
      pos === undefined ? {} : { line: pos.line, column: pos.col },
      { cause: error },
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new ConfigFileError(`export file cannot be read: ${(cause as Error).message}`, {}, { cause });
  }
}

/**
 * Reads an export file, JSON or YAML (detected: JSON when the first non-blank character is `{`).
 * @param text - The file's text.
 * @returns The file content, checked against {@link exportFileSchema}.
 * @throws ConfigFileError `config/invalid-file` for a syntax error, another format version, or a
 *   wrong shape; it names the field and gives the line and column when it can.
 * @example
 * ```ts
 * import { readFile } from "node:fs/promises";
 * const file = parseExport(await readFile("production.yaml", "utf8"));
 * for (const [key, { value }] of Object.entries(file.keys)) console.log(key, redactValue(value));
 * ```
 */
export function parseExport(text: string): ExportFile {
  const body = text.replace(/^\uFEFF/, "");
  const isJson = body.trimStart().startsWith("{");
  const raw = isJson ? parseJson(body) : parseYaml(body);
  const format = (raw as { format?: unknown } | null)?.format;
  if (typeof raw === "object" && raw !== null && format !== EXPORT_FORMAT) {
    throw new ConfigFileError(
      `export file format is ${JSON.stringify(format ?? null)}; this version reads "${EXPORT_FORMAT}"`,
      locate(body, ["format"]),
    );
  }
  const parsed = exportFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const path = issue.path.map(String).join(".");
    throw new ConfigFileError(
      `export file is malformed: ${path || "(file)"}: ${issue.message}`,
      locate(body, issue.path),
      { cause: parsed.error },
    );
  }
  return parsed.data as ExportFile;
}
