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
  for (const name of [
    "nxs_changes",
    "nxs_leases",
    "nxs_change_sizes",
    "nxs_snapshot_versions",
    "nxs_replicator_status",
  ]) {
    try {
      $app.findCollectionByNameOrId(name);
    } catch (_) {
      schemaInstalled = false;
    }
  }
  return e.json(200, { name: "nxs-sync", hooks: 4, schema: 4, schemaInstalled: schemaInstalled });
});

// Snapshot claims, checked at write time. A snapshot's `version` says which changes its state
// covers; readers that lack compacted changes adopt it, and the compactor deletes what it covers.
// A gateway (nxs_nodes) may therefore only publish a snapshot whose every claim is backed on this
// server: for each origin, its seq is at most the highest `last` of that origin's change records
// here (the compactor keeps each origin's newest record, so honest claims stay backed; a stored
// snapshot's claims do not count, or a gateway could repeat an unbacked one's). A forged "huge
// version" is refused (400, field `version`, code `validation_snapshot_unbacked`). Replicators copy
// snapshots between servers (the other server may hold changes this one lacks yet) and are not
// checked here; readers, the compactor and the replicator check every snapshot's claims again.
onRecordCreateRequest((e) => {
  const author = e.auth ? e.auth.collection().name : "";
  if (author !== "nxs_nodes") return e.next();
  const doc = e.record.getString("doc");
  let claims = null;
  try {
    claims = JSON.parse(e.record.getString("version"));
  } catch (_) {
    claims = null;
  }
  const refuse = (why) => {
    throw new BadRequestError(`snapshot of doc ${JSON.stringify(doc)} refused: ${why}`, {
      version: new ValidationError("validation_snapshot_unbacked", why),
    });
  };
  if (claims === null || typeof claims !== "object" || Array.isArray(claims))
    refuse("version is not an object");
  const backed = {};
  const heads = arrayOf(new DynamicModel({ origin: "", head: 0 }));
  $app
    .db()
    .newQuery("SELECT origin, MAX(last) AS head FROM nxs_changes WHERE doc = {:doc} GROUP BY origin")
    .bind({ doc: doc })
    .all(heads);
  for (const h of heads) backed[h.origin] = h.head;
  for (const o of Object.keys(claims)) {
    const seq = claims[o];
    if (typeof seq !== "number" || !(seq >= 0)) refuse(`the claim of ${JSON.stringify(o)} is not a seq`);
    if (seq > (backed[o] || 0)) {
      refuse(
        `it claims ${o} up to seq ${seq}, but this server holds that origin's changes up to ${backed[o] || 0} only`,
      );
    }
  }
  return e.next();
}, "nxs_snapshots");

// POST /nxs/lease {doc, replica, holder, ttlMs, release?}: the lease of a replica id, so that two
// live processes never write as one replica (they would reuse each other's seqs). Atomic: the read
// and the write share one transaction on the single writer. A gateway (nxs_nodes) may only lease a
// replica id bound to itself. Answers 200 {until, now, previous} (server ms; `previous` is the holder
// taken over from, or null) when `holder` holds it now, 409 {holder, until, now} while another
// holder's lease runs; `release: true` gives up the caller's lease.
routerAdd(
  "POST",
  "/nxs/lease",
  (e) => {
    // The write fence (pb_hooks/nxs-fence.pb.js of @nxs-sync/pocketbase): a server being restored
    // takes no writes (503: clients go to the other server). One store read when not fenced.
    const fenceText = $app.store().get("nxs.fence");
    if (fenceText) {
      let fence = null;
      try {
        fence = JSON.parse(String(fenceText));
      } catch (_) {
        fence = null;
      }
      if (fence && fence.until > Date.now()) {
        return e.json(503, {
          status: 503,
          message: `this server is fenced (${fence.reason}): it takes no writes until ${new Date(fence.until).toISOString()}; use another server`,
          data: { fence: { code: "nxs_fenced", message: `${fence.reason}; until ${fence.until}` } },
        });
      }
    }
    const body = e.requestInfo().body || {};
    const doc = String(body.doc || "");
    const replica = String(body.replica || "");
    const holder = String(body.holder || "");
    const node = e.auth.id;
    if (!doc || !holder || holder.length > 64 || !(replica === node || replica.startsWith(`${node}.`))) {
      throw new BadRequestError(
        `lease: replica ${JSON.stringify(replica)} is not bound to the authenticated node ${node}, or doc/holder is missing`,
      );
    }
    const ttl = Math.min(Math.max(Math.floor(Number(body.ttlMs) || 30000), 1000), 3600000);
    let answer = null;
    $app.runInTransaction((tx) => {
      const now = Date.now();
      let lease = null;
      try {
        lease = tx.findFirstRecordByFilter("nxs_leases", "doc = {:doc} && replica = {:replica}", {
          doc: doc,
          replica: replica,
        });
      } catch (_) {
        lease = null;
      }
      if (lease && lease.getString("holder") !== holder && lease.getInt("until") > now) {
        answer = { status: 409, holder: lease.getString("holder"), until: lease.getInt("until"), now: now };
        return;
      }
      if (body.release === true) {
        if (lease && lease.getString("holder") === holder) tx.delete(lease);
        answer = { status: 200, until: 0, now: now };
        return;
      }
      let previous = null;
      if (!lease) {
        lease = new Record(tx.findCollectionByNameOrId("nxs_leases"));
        lease.set("doc", doc);
        lease.set("replica", replica);
      } else if (lease.getString("holder") !== holder) {
        previous = lease.getString("holder");
      }
      lease.set("holder", holder);
      lease.set("until", now + ttl);
      lease.set("node", node);
      tx.save(lease);
      // `previous`: the holder whose lease ran out and was taken over (it died or lost this server).
      answer = { status: 200, until: now + ttl, now: now, previous: previous };
    });
    return e.json(answer.status, answer);
  },
  $apis.requireAuth("nxs_nodes"),
);

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
    const field = e.collection.name === "nxs_acks" ? "replica" : "origin";
    const value = auth ? e.record.getString(field) : "";
    const node = auth ? auth.id : "";
    // A gateway writing as itself (the hot path) is bound: no further lookup. Anything else is
    // refused for nxs_nodes accounts only (replicators copy every node's records).
    if (auth && value !== node && !value.startsWith(`${node}.`)) {
      if (auth.collection().name === "nxs_nodes") {
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
