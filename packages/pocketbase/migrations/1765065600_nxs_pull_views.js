/// <reference path="../pb_data/types.d.ts" />
// nxs-sync schema 3: the views pulls read (the same as `ensureSchema()` of @nxs-sync/pocketbase).
// Copy this file into your server's pb_migrations folder with 1764201600_nxs_sync.js (or start
// PocketBase with --migrationsDir pointing at this folder). `nxs_change_sizes`: every change
// record's envelope with the byte size of its `changes`, and `changes` itself only up to 4096
// bytes, so that a page of records stays small however large they are. `nxs_snapshot_versions`:
// snapshots without their state, so that readers compare claims without loading states.
const IS_MEMBER =
  '(@request.auth.collectionName = "nxs_nodes" || @request.auth.collectionName = "nxs_replicators")';
const VIEWS = [
  {
    id: "pbc_nxs_change_sizes",
    name: "nxs_change_sizes",
    viewQuery:
      "SELECT id, doc, origin, seq, last, hlc, node, CAST(octet_length(changes) AS INTEGER) AS bytes, iif(octet_length(changes) <= 4096, changes, NULL) AS changes FROM nxs_changes",
  },
  {
    id: "pbc_nxs_snapshot_versions",
    name: "nxs_snapshot_versions",
    viewQuery: "SELECT id, doc, version, node, created FROM nxs_snapshots",
  },
];

migrate(
  (app) => {
    for (const view of VIEWS) {
      try {
        app.findCollectionByNameOrId(view.name);
        continue;
      } catch (_) {
        // not there yet
      }
      app.save(
        new Collection({
          id: view.id,
          name: view.name,
          type: "view",
          fields: [],
          indexes: [],
          viewQuery: view.viewQuery,
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: null,
          updateRule: null,
          deleteRule: null,
        }),
      );
    }
  },
  (app) => {
    for (const view of VIEWS) {
      try {
        app.delete(app.findCollectionByNameOrId(view.name));
      } catch (_) {
        // already gone
      }
    }
  },
);
