/// <reference path="../pb_data/types.d.ts" />
// nxs-sync server hooks: the one versioned pb_hooks bundle of @nxs-sync/pocketbase.
// Install: put this file in the server's --hooksDir (default: pb_hooks beside pb_data), on every
// server of the fleet. Backups leave pb_hooks out: reinstall it with the binary, not from a backup.
// Clients check GET /nxs/version after login and refuse a server whose bundle is missing or of
// another version (`server/incompatible`). Every handler below is serialized and run in its own
// VM (PocketBase JSVM): it can read nothing declared outside itself, so each one is self-contained.

// GET /nxs/version: this bundle's version and the schema version it was written for. Public (it
// reveals nothing); `hooks` and `schema` must equal NXS_HOOKS_VERSION / NXS_SCHEMA_VERSION of the
// client (packages/pocketbase/src/hooks.ts, kept equal by a unit test).
routerAdd("GET", "/nxs/version", (e) => {
  let schemaInstalled = true;
  try {
    $app.findCollectionByNameOrId("nxs_changes");
  } catch (_) {
    schemaInstalled = false;
  }
  return e.json(200, { name: "nxs-sync", hooks: 1, schema: 1, schemaInstalled: schemaInstalled });
});

// Origin binding, enforced at write time. A gateway (a record of nxs_nodes) may create a change
// pack or an ack only for a replica bound to itself: exactly its node id, or `<nodeId>.<instance>`
// (the check of isOriginOfNode() in records.ts, which readers keep as defence in depth). The create
// rule alone cannot say "starts with": it only requires that the origin contains the id.
// Replicator accounts (nxs_replicators) copy records of every node; superusers bypass everything;
// guests and other accounts are refused by the create rule itself. This hook also runs for the
// creates inside POST /api/batch (one transaction: a refused pack refuses the whole batch).
onRecordCreateRequest(
  (e) => {
    const auth = e.auth;
    if (auth && auth.collection().name === "nxs_nodes") {
      const field = e.collection.name === "nxs_acks" ? "replica" : "origin";
      const value = String(e.record.get(field));
      const node = auth.id;
      if (!(value === node || value.startsWith(`${node}.`))) {
        throw new BadRequestError(
          `${field} ${JSON.stringify(value)} is not bound to the authenticated node ${node}: it must be the node id or "<node id>.<instance>"`,
          {
            [field]: new ValidationError(
              "validation_origin_not_bound",
              `Must be ${node} or ${node}.<instance>.`,
            ),
          },
        );
      }
    }
    return e.next();
  },
  "nxs_changes",
  "nxs_acks",
);
