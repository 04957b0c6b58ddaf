/** A console-shaped logger; pass `console` or your own. Every method is optional to call with extra args. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

/** A logger that drops everything: pass it to silence nxs-sync. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** Log levels, least to most severe, plus `silent`. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** Options of {@link createLineLogger}. */
export interface LineLoggerOptions {
  /** The least severe level printed. Default `warn`. */
  readonly level?: LogLevel;
  /** Where each line goes. Default: `console.error` (stderr under Node). */
  readonly write?: (line: string) => void;
}

/** One argument as a short single-line text: errors as `code: message`, the rest as JSON. */
function describeArg(arg: unknown): string {
  if (arg instanceof Error) {
    const code = (arg as { code?: unknown }).code;
    const cause = (arg as { cause?: unknown }).cause;
    const own = typeof code === "string" ? `${code}: ${arg.message}` : `${arg.name}: ${arg.message}`;
    return cause instanceof Error && !arg.message.includes(cause.message)
      ? `${own} (cause: ${describeArg(cause)})`
      : own;
  }
  if (typeof arg === "string") return arg;
  try {
    const json = JSON.stringify(arg);
    return json === undefined ? String(arg) : json.length > 500 ? `${json.slice(0, 500)}…` : json;
  } catch {
    return String(arg);
  }
}

/**
 * A logger that prints one line per message, `nxs-sync <LEVEL> <message> [| <arg> …]`, with no
 * stack traces and no line breaks: easy to grep (`grep 'nxs-sync ERROR'`) and to ship from a
 * container's stderr. The default of every nxs-sync component, at level `warn`
 * ({@link defaultLogger}); pass {@link silentLogger} to silence one.
 * @param options - Level and sink.
 * @returns The logger.
 * @example
 * ```ts
 * const logger = createLineLogger({ level: "info" });
 * logger.warn("[nxs-sync replica routes/gw1] push: transport/unavailable: server down");
 * // nxs-sync WARN [nxs-sync replica routes/gw1] push: transport/unavailable: server down
 * ```
 */
export function createLineLogger(options: LineLoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "warn"];
  const write =
    options.write ??
    ((line: string) => {
      console.error(line);
    });
  const at =
    (level: Exclude<LogLevel, "silent">) =>
    (message: string, ...args: unknown[]): void => {
      if (RANK[level] < min) return;
      const parts = [message, ...args.map(describeArg)].join(" | ").replace(/\s*\n\s*/g, " ⏎ ");
      write(`nxs-sync ${level.toUpperCase()} ${parts}`);
    };
  return Object.freeze({ debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") });
}

/**
 * The default logger of every nxs-sync component: warnings and errors, one line each, to stderr
 * ({@link createLineLogger} at level `warn`). Silence a component by passing {@link silentLogger}.
 */
export const defaultLogger: Logger = createLineLogger();
