/**
 * @nxs-sync/config/pocketbase: the config store's PocketBase backend, collections and hook piece.
 * @packageDocumentation
 */
export {};
