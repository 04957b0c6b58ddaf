/**
 * The public API of @nxs-sync/cli: the `nxs-sync` command line as a function (for tests and for
 * embedding), named re-exports only.
 * @packageDocumentation
 */
export {};
