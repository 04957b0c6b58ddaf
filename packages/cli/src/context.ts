/** Where a command writes: a stream's `write` (and whether it is a terminal, for the progress bar). */
export interface CliOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

import type { Logger } from "@nxs-sync/core";

/** What {@link runCli} needs from its process (injectable for tests and for embedding). */
export interface CliContext {
  /** Environment (credentials: `NXS_SUPERUSER_EMAIL`, `NXS_SUPERUSER_PASSWORD`, `NXS_REPLICATOR_*`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Results (tables, JSON). */
  readonly stdout: CliOutput;
  /** Messages, warnings, errors and the progress bar. */
  readonly stderr: CliOutput;
  /** Aborts long commands (`status --watch`, `replicator`): SIGINT/SIGTERM in the binary. */
  readonly signal: AbortSignal;
  /** Where `nxs-sync replicator` logs (default: one line per message to the process's stderr). */
  readonly logger?: Logger;
  /** The clock `status` judges ages by (ms since the epoch). Default `Date.now`; tests inject it. */
  readonly now?: () => number;
}

/** What every subcommand gets: the context and the global options. */
export interface CommandEnv extends CliContext {
  /** `--json`: one JSON document on stdout instead of tables. */
  readonly json: boolean;
  /** Per-request timeout in ms (`--timeout`, default 10 000). */
  readonly timeoutMs: number;
  /** `--progress`: a progress bar even when stderr is not a terminal. */
  readonly progress: boolean;
  /** Writes a line to stderr (not in `--json` documents). */
  note(line: string): void;
  /** Collections replicated through the records piece (`--records`, `NXS_RECORDS`; default `users`). */
  readonly records: readonly string[];
}

/**
 * Waits `ms`, or less when `signal` aborts first (the pause of `--watch` and `--every`).
 * @returns True when the signal aborted (the command should stop).
 */
export function pauseOrStop(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve(true);
      },
      { once: true },
    );
  });
}
