import { ErrorCode, isNxsError } from "@nxs-sync/core";

/**
 * Exit codes of `nxs-sync` (every subcommand; `nxs-sync replicator` keeps the replicator's own,
 * which agree on 0 to 4). Scripts branch on these, never on message text.
 */
export const CliExitCode = {
  /** Done (or `--help`). */
  Ok: 0,
  /** An unexpected failure (a server answered something this command cannot use). */
  Failed: 1,
  /** Bad usage: an unknown option, a missing argument, a malformed URL, no credentials, a bad file. */
  Usage: 2,
  /** A server refused the credentials (wrong email or password, not a superuser). */
  AuthRefused: 3,
  /** A server did not answer (refused connection, unknown host, timeout, 5xx). */
  Unreachable: 4,
  /** A backup failed its verification (not a zip, SQLite integrity, counts or digests differ). */
  VerificationFailed: 5,
  /** A server is not ready for nxs-sync: its hooks bundle or schema is missing or of another version. */
  NotReady: 6,
  /** `status`: the servers disagree (a doc's digest differs, or a server is behind). */
  Diverged: 7,
  /** `status`: a replicator's last round is older than `--stale-after` (its process is gone, stuck or cut off). */
  ReplicatorStale: 8,
  /**
   * `restore`, `reseed`: the replicator did not complete a round in time. Before the restore:
   * nothing was restored and the fence is lifted. After it: the server is restored and stays
   * fenced until its fence lapses or `nxs-sync fence --lift`.
   */
  ReplicationWait: 9,
} as const;
/** One of {@link CliExitCode}. */
export type CliExitCode = (typeof CliExitCode)[keyof typeof CliExitCode];

/**
 * The exit code of an error: by its nxs-sync `code` (core's codes), 1 for anything else.
 * @param error - What a subcommand threw.
 * @returns The exit code.
 */
export function exitCodeOf(error: unknown): CliExitCode {
  if (!isNxsError(error)) return CliExitCode.Failed;
  switch (error.code) {
    case ErrorCode.ConfigInvalid:
    case ErrorCode.SchemaInvalid:
      return CliExitCode.Usage;
    case ErrorCode.TransportUnauthorized:
      return CliExitCode.AuthRefused;
    case ErrorCode.TransportUnavailable:
      return CliExitCode.Unreachable;
    case ErrorCode.StorageCorrupt:
      return CliExitCode.VerificationFailed;
    case ErrorCode.ServerIncompatible:
      return CliExitCode.NotReady;
    default:
      return CliExitCode.Failed;
  }
}
