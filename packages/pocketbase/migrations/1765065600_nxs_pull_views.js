/// <reference path="../pb_data/types.d.ts" />
// nxs-sync schema 3: the `nxs_change_sizes` view (the same as `ensureSchema()` of
// @nxs-sync/pocketbase). Copy this file into your server's pb_migrations folder with
// 1764201600_nxs_sync.js (or start PocketBase with --migrationsDir pointing at this folder). Pulls
// list it: every change record's envelope with the byte size of its `changes`, and `changes`
// itself only up to 4096 bytes, so that a page of records stays small however large they are.
const IS_MEMBER =
  '(@request.auth.collectionName = "nxs_nodes" || @request.auth.collectionName = "nxs_replicators")';

migrate(
  (app) => {
    try {
      app.findCollectionByNameOrId("nxs_change_sizes");
      return;
    } catch (_) {
      // not there yet
    }
    app.save(
      new Collection({
        id: "pbc_nxs_change_sizes",
        name: "nxs_change_sizes",
        type: "view",
        fields: [],
        indexes: [],
        viewQuery:
          "SELECT id, doc, origin, seq, last, hlc, node, CAST(octet_length(changes) AS INTEGER) AS bytes, iif(octet_length(changes) <= 4096, changes, NULL) AS changes FROM nxs_changes",
        listRule: IS_MEMBER,
        viewRule: IS_MEMBER,
        createRule: null,
        updateRule: null,
        deleteRule: null,
      }),
    );
  },
  (app) => {
    try {
      app.delete(app.findCollectionByNameOrId("nxs_change_sizes"));
    } catch (_) {
      // already gone
    }
  },
);
