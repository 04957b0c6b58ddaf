/// <reference path="../pb_data/types.d.ts" />
// nxs-sync schema: the same collections as `ensureSchema()` of @nxs-sync/pocketbase.
// Copy this file into your server's pb_migrations folder (or start PocketBase with
// --migrationsDir pointing at this folder). Collections that already exist are left as they are.
// Gateways are records of nxs_nodes, replicators of nxs_replicators: rules tell them apart by
// collection name, which PocketBase binds as a parameter (no join).
const IS_GATEWAY = '@request.auth.collectionName = "nxs_nodes"';
const IS_REPLICATOR = '@request.auth.collectionName = "nxs_replicators"';
const IS_MEMBER = `(${IS_GATEWAY} || ${IS_REPLICATOR})`;
const ID_PATTERN = "^[A-Za-z0-9_.:-]+$";
// Compaction deletes (changes below the frontier, old snapshots) are maintenance: replicators only.
const MAINTENANCE = IS_REPLICATOR;

migrate(
  (app) => {
    const exists = (name) => {
      try {
        app.findCollectionByNameOrId(name);
        return true;
      } catch (_) {
        return false;
      }
    };
    const created = { name: "created", type: "autodate", onCreate: true, onUpdate: false };
    const nodeRel = {
      name: "node",
      type: "relation",
      required: true,
      collectionId: "pbc_nxs_nodes",
      maxSelect: 1,
      cascadeDelete: false,
    };

    if (!exists("nxs_nodes")) {
      app.save(
        new Collection({
          id: "pbc_nxs_nodes",
          name: "nxs_nodes",
          type: "auth",
          fields: [{ name: "name", type: "text", max: 200 }, created],
          indexes: [],
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: null,
          updateRule: null,
          deleteRule: null,
          passwordAuth: { enabled: true, identityFields: ["email"] },
          // 6 hours (NODE_TOKEN_DURATION_S): clients renew their token before it expires.
          authToken: { duration: 21600 },
        }),
      );
    }

    if (!exists("nxs_replicators")) {
      app.save(
        new Collection({
          id: "pbc_nxs_replicators",
          name: "nxs_replicators",
          type: "auth",
          fields: [{ name: "name", type: "text", max: 200 }, created],
          indexes: [],
          listRule: null,
          viewRule: null,
          createRule: null,
          updateRule: null,
          deleteRule: null,
          passwordAuth: { enabled: true, identityFields: ["email"] },
          // 6 hours (NODE_TOKEN_DURATION_S): clients renew their token before it expires.
          authToken: { duration: 21600 },
        }),
      );
    }

    if (!exists("nxs_changes")) {
      app.save(
        new Collection({
          id: "pbc_nxs_changes",
          name: "nxs_changes",
          type: "base",
          fields: [
            { name: "doc", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "origin", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "seq", type: "number", required: true, onlyInt: true, min: 1 },
            { name: "last", type: "number", required: true, onlyInt: true, min: 1 },
            { name: "hlc", type: "text", required: true, max: 64 },
            { name: "changes", type: "json", maxSize: 8 * 1024 * 1024 },
            nodeRel,
            created,
          ],
          indexes: [
            "CREATE UNIQUE INDEX idx_nxs_changes_doc_origin_seq ON nxs_changes (doc, origin, seq)",
            "CREATE INDEX idx_nxs_changes_doc_origin_last ON nxs_changes (doc, origin, last)",
          ],
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: `@request.body.last >= @request.body.seq && ((${IS_GATEWAY} && @request.body.node = @request.auth.id && @request.body.origin ~ @request.auth.id) || ${IS_REPLICATOR})`,
          updateRule: null,
          deleteRule: MAINTENANCE,
        }),
      );
    }

    if (!exists("nxs_snapshots")) {
      app.save(
        new Collection({
          id: "pbc_nxs_snapshots",
          name: "nxs_snapshots",
          type: "base",
          fields: [
            { name: "doc", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "version", type: "json", maxSize: 1024 * 1024 },
            { name: "state", type: "json", maxSize: 64 * 1024 * 1024 },
            nodeRel,
            created,
          ],
          indexes: ["CREATE INDEX idx_nxs_snapshots_doc ON nxs_snapshots (doc, created)"],
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: `(${IS_GATEWAY} && @request.body.node = @request.auth.id) || ${IS_REPLICATOR}`,
          updateRule: null,
          deleteRule: MAINTENANCE,
        }),
      );
    }

    if (!exists("nxs_acks")) {
      app.save(
        new Collection({
          id: "pbc_nxs_acks",
          name: "nxs_acks",
          type: "base",
          fields: [
            { name: "doc", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "replica", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "version", type: "json", maxSize: 1024 * 1024 },
            { name: "at", type: "number", required: true, onlyInt: true, min: 1 },
            nodeRel,
            created,
            { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
          ],
          indexes: ["CREATE UNIQUE INDEX idx_nxs_acks_doc_replica ON nxs_acks (doc, replica)"],
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: `(${IS_GATEWAY} && @request.body.node = @request.auth.id && @request.body.replica ~ @request.auth.id) || ${IS_REPLICATOR}`,
          updateRule: `(${IS_GATEWAY} && node = @request.auth.id && (@request.body.node:isset = false || @request.body.node = @request.auth.id) && @request.body.doc:isset = false && @request.body.replica:isset = false) || ${IS_REPLICATOR}`,
          deleteRule: MAINTENANCE,
        }),
      );
    }

    if (!exists("nxs_leases")) {
      app.save(
        new Collection({
          id: "pbc_nxs_leases",
          name: "nxs_leases",
          type: "base",
          fields: [
            { name: "doc", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "replica", type: "text", required: true, max: 64, pattern: ID_PATTERN },
            { name: "holder", type: "text", required: true, max: 64 },
            { name: "until", type: "number", required: true, onlyInt: true, min: 1 },
            { name: "node", type: "text", required: true, max: 64 },
            created,
          ],
          indexes: ["CREATE UNIQUE INDEX idx_nxs_leases_doc_replica ON nxs_leases (doc, replica)"],
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: null,
          updateRule: null,
          deleteRule: MAINTENANCE,
        }),
      );
    }

    if (!exists("nxs_heads")) {
      app.save(
        new Collection({
          id: "pbc_nxs_heads",
          name: "nxs_heads",
          type: "view",
          fields: [],
          indexes: [],
          viewQuery:
            "SELECT (doc || ':' || origin) AS id, doc, origin, MAX(last) AS head, COUNT(*) AS n FROM nxs_changes GROUP BY doc, origin",
          listRule: IS_MEMBER,
          viewRule: IS_MEMBER,
          createRule: null,
          updateRule: null,
          deleteRule: null,
        }),
      );
    }

    const settings = app.settings();
    settings.batch.enabled = true;
    if (settings.batch.maxRequests < 200) settings.batch.maxRequests = 200;
    if (settings.batch.timeout < 10) settings.batch.timeout = 10;
    app.save(settings);
  },
  (app) => {
    for (const name of [
      "nxs_heads",
      "nxs_leases",
      "nxs_acks",
      "nxs_snapshots",
      "nxs_changes",
      "nxs_replicators",
      "nxs_nodes",
    ]) {
      try {
        app.delete(app.findCollectionByNameOrId(name));
      } catch (_) {
        // already gone
      }
    }
  },
);
