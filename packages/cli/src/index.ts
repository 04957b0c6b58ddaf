/**
 * The public API of @nxs-sync/cli: the `nxs-sync` command line as a function (for tests and for
 * embedding), named re-exports only.
 * @packageDocumentation
 */
export type { CliContext, CliOutput } from "./context.js";
export { CliExitCode, exitCodeOf } from "./exit-codes.js";
export { runCli } from "./run-cli.js";
