/// <reference path="../pb_data/types.d.ts" />
// nxs-sync record replication: the hook piece `records` of @nxs-sync/pocketbase (GET /nxs/hooks/records).
// It lets the replicator copy collections that nxs-sync does not own (the web frontend's `users`
// and its own data): PocketBase's record API never shows an account's password hash or token key,
// and a plain collection leaves no trace of a delete, so both go through this piece.
//
// `recordsHookPiece({ collections })` writes this file with the replicated collections in place of
// each `/*<collections>*/…/*</collections>*/` list (as written here: `users`, the default), so the
// hooks fire for those only and other collections pay nothing.
//
// Routes, for replicator accounts (nxs_replicators) and superusers only; any other caller gets 401
// or 403 from PocketBase itself. {col} must be one of the replicated collections.
//   POST /nxs/records/{col}/export  { after?: [updated, id], limit?, tombstonesAfter? } or { ids }
//        -> { records: [{ id, updated, data, digest }], tombstones: [{ record, at }], next }
//        every field, hidden ones included (password hash, token key), linked OAuth2 identities;
//        ordered by (updated, id); `digest` the sha256 of the record's canonical content.
//   POST /nxs/records/{col}/import  { records?: [...as exported], tombstones?: [{ record, at }] }
//        -> { results: [{ id, outcome, conflict? }] }: last writer wins by `updated` (then by
//        digest); a tombstone wins over a record updated at or before it; emails compared
//        lower-cased: of two accounts with one email, the one created first keeps it. Each record
//        carries its sender's base (nxs_record_bases): two writes neither of which was made on top
//        of the other are a conflict, reported where the older one loses.
//   GET  /nxs/records/{col}/digest  -> { count, digest, tombstones }
//   POST /nxs/records/{col}/purge   { before } -> { purged }: tombstones older than `before` go.
//   GET  /nxs/records/{col}/secrets -> { digest, secrets? } (?full=1 for the values)
//   POST /nxs/records/{col}/secrets { secrets }: sets them (auth, file, verification, password
//        reset and email change token secrets, OAuth2 providers, and the app's mail settings:
//        SMTP and sender, so reset and verification mails work from either server).
// Realtime: after each write of a replicated record the server sends the custom topic
// `nxs/records` ({ collectionName, id, kind }) to subscribed replicator clients only.
// Deletes leave a tombstone in nxs_tombstones (coll, record, at), written in the delete's transaction.
//
// Every handler is serialized and run in its own VM (PocketBase JSVM): it sees nothing declared
// outside itself, and a piece is one file, so each handler carries what it needs.

routerAdd("GET", "/nxs/hooks/records", (e) =>
  e.json(200, { name: "records", version: 1, collections: [/*<collections>*/ "users" /*</collections>*/] }),
);

routerAdd(
  "POST",
  "/nxs/records/{col}/{op}",
  (e) => {
    const COLLECTIONS = [/*<collections>*/ "users" /*</collections>*/];
    const TOMBSTONES = "nxs_tombstones";
    const col = e.request.pathValue("col");
    const op = e.request.pathValue("op");
    if (COLLECTIONS.indexOf(col) < 0) {
      throw new NotFoundError(
        `collection ${col} is not replicated here (the hook piece records lists ${COLLECTIONS.join(", ")})`,
      );
    }
    const collection = $app.findCollectionByNameOrId(col);
    const isAuth = collection.type === "auth";
    const body = e.requestInfo().body || {};
    const HIDDEN_AUTH = ["password", "tokenKey"];
    const BASES = "nxs_record_bases";

    // The base of a record on this server: the `updated` of the last version it received from a
    // peer or found equal to a peer's (an import that created, updated or matched it). A write on
    // top of the base descends from what the peer had; two writes on one base are concurrent.
    const baseOf = (app, id) => {
      try {
        return app
          .findFirstRecordByFilter(BASES, "coll = {:c} && record = {:r}", { c: col, r: id })
          .getString("base");
      } catch (_) {
        return "";
      }
    };
    const setBase = (app, id, base) => {
      let row = null;
      try {
        row = app.findFirstRecordByFilter(BASES, "coll = {:c} && record = {:r}", { c: col, r: id });
      } catch (_) {
        row = new Record(app.findCollectionByNameOrId(BASES));
        row.set("coll", col);
        row.set("record", id);
      }
      if (row.getString("base") === base) return;
      row.set("base", base);
      app.save(row);
    };

    // What a record is, as both servers compare it: every field (hidden ones too), sorted keys.
    const exportRecord = (app, r) => {
      const data = {};
      for (const f of collection.fields) {
        const name = f.getName();
        const type = f.type();
        if (name === "id") continue;
        if (isAuth && name === "password") data.password = r.getString("password:hash");
        else if (type === "json") {
          const text = r.getString(name);
          data[name] = text === "" ? null : JSON.parse(text);
        } else if (type === "bool") data[name] = r.getBool(name);
        else if (type === "number") data[name] = r.getFloat(name);
        else if (Array.isArray(r.get(name)) || (f.maxSelect && f.maxSelect > 1))
          data[name] = r.getStringSlice(name);
        else data[name] = r.getString(name);
      }
      if (isAuth) {
        const links = arrayOf(new DynamicModel({ provider: "", providerId: "" }));
        app
          .db()
          .newQuery(
            "SELECT provider, providerId FROM _externalAuths WHERE collectionRef = {:c} AND recordRef = {:r} ORDER BY provider, providerId",
          )
          .bind({ c: collection.id, r: r.id })
          .all(links);
        data.externalAuths = links.map((l) => ({ provider: l.provider, providerId: l.providerId }));
      }
      const canonical = (v) => {
        if (v === null || v === undefined) return "null";
        if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
        if (typeof v === "object") {
          return `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
            .join(",")}}`;
        }
        return JSON.stringify(v);
      };
      const plain = JSON.parse(JSON.stringify(data));
      return {
        id: r.id,
        updated: r.getString("updated"),
        data: plain,
        digest: $security.sha256(canonical(plain)),
        base: baseOf(app, r.id),
      };
    };

    if (op === "export" && Array.isArray(body.ids)) {
      // Given records (a realtime event's): each live one, and the tombstone of each deleted one.
      const ids = body.ids.slice(0, 2000).map(String);
      const records = $app.findRecordsByIds(col, ids).map((r) => exportRecord($app, r));
      const tombstones = [];
      for (const id of ids) {
        try {
          const t = $app.findFirstRecordByFilter(TOMBSTONES, "coll = {:c} && record = {:r}", {
            c: col,
            r: id,
          });
          tombstones.push({ record: id, at: t.getString("at") });
        } catch (_) {
          // not deleted
        }
      }
      return e.json(200, { records: records, tombstones: tombstones, next: null });
    }

    if (op === "export") {
      const limit = Math.min(Math.max(Math.floor(Number(body.limit) || 500), 1), 2000);
      const after = Array.isArray(body.after) ? body.after : ["", ""];
      const rows = $app.findRecordsByFilter(
        col,
        "updated > {:u} || (updated = {:u} && id > {:id})",
        "updated,id",
        limit,
        0,
        { u: String(after[0] || ""), id: String(after[1] || "") },
      );
      const records = rows.map((r) => exportRecord($app, r));
      const tombs = $app.findRecordsByFilter(TOMBSTONES, "coll = {:c} && at > {:t}", "at,record", 5000, 0, {
        c: col,
        t: String(body.tombstonesAfter || ""),
      });
      const last = records.length === limit ? records[records.length - 1] : null;
      return e.json(200, {
        records: records,
        tombstones: tombs.map((t) => ({ record: t.getString("record"), at: t.getString("at") })),
        next: last ? [last.updated, last.id] : null,
      });
    }

    if (op === "import") {
      const results = [];
      for (const t of Array.isArray(body.tombstones) ? body.tombstones : []) {
        const id = String(t.record || "");
        const at = String(t.at || "");
        if (!id || !at) continue;
        let outcome = "same";
        $app.runInTransaction((tx) => {
          let tomb = null;
          try {
            tomb = tx.findFirstRecordByFilter(TOMBSTONES, "coll = {:c} && record = {:r}", { c: col, r: id });
          } catch (_) {
            tomb = null;
          }
          if (!tomb) {
            tomb = new Record(tx.findCollectionByNameOrId(TOMBSTONES));
            tomb.set("coll", col);
            tomb.set("record", id);
            tomb.set("at", at);
            tx.save(tomb);
            outcome = "tombstone";
          } else if (tomb.getString("at") < at) {
            tomb.set("at", at);
            tx.save(tomb);
            outcome = "tombstone";
          }
          let live = null;
          try {
            live = tx.findRecordById(col, id);
          } catch (_) {
            live = null;
          }
          // A delete wins over every write it saw; a write after it (a later update) stays.
          if (live && live.getString("updated") <= tomb.getString("at")) {
            tx.delete(live);
            outcome = "deleted";
          }
        });
        results.push({ id: id, outcome: outcome });
      }
      for (const item of Array.isArray(body.records) ? body.records : []) {
        const id = String(item.id || "");
        const data = item.data || {};
        const updated = String(data.updated || "");
        if (!/^[a-z0-9]{15}$/.test(id) || !updated) {
          results.push({ id: id, outcome: "invalid", message: "id or updated missing" });
          continue;
        }
        let result = null;
        try {
          $app.runInTransaction((tx) => {
            let tomb = null;
            try {
              tomb = tx.findFirstRecordByFilter(TOMBSTONES, "coll = {:c} && record = {:r}", {
                c: col,
                r: id,
              });
            } catch (_) {
              tomb = null;
            }
            if (tomb && tomb.getString("at") >= updated) {
              result = { id: id, outcome: "deleted" };
              return;
            }
            let local = null;
            try {
              local = tx.findRecordById(col, id);
            } catch (_) {
              local = null;
            }
            if (local) {
              const mine = exportRecord(tx, local);
              const theirs = String(item.digest || "");
              if (mine.digest === theirs) {
                setBase(tx, id, updated);
                result = { id: id, outcome: "same" };
                return;
              }
              const newer = updated > mine.updated || (updated === mine.updated && theirs > mine.digest);
              if (!newer) {
                // Ours wins. A conflict when neither write saw the other: the sender wrote it (its
                // base is not this very version: a version it only received and passes on, an echo
                // of ours, is no write of its own), the sender had not received our version (its
                // base is older than it) and we had not received its version or a later one (our
                // base is older than it: a late message of a superseded version is no conflict).
                // Reported here, where the other write loses.
                const theirBase = String(item.base || "");
                const concurrent =
                  theirBase !== updated && !(theirBase >= mine.updated) && !(mine.base >= updated);
                result = concurrent
                  ? { id: id, outcome: "older", conflict: { kept: mine.updated, lost: updated } }
                  : { id: id, outcome: "older" };
                return;
              }
            }
            const r = local || new Record(collection);
            if (!local) r.set("id", id);
            for (const f of collection.fields) {
              const name = f.getName();
              if (name === "id" || name === "created" || name === "updated") continue;
              if (isAuth && HIDDEN_AUTH.indexOf(name) >= 0) continue;
              if (!(name in data)) continue;
              r.set(name, data[name]);
            }
            if (isAuth) {
              r.setRaw("password", String(data.password || ""));
              r.set("tokenKey", String(data.tokenKey || ""));
            }
            r.setRaw("created", String(data.created || updated));
            r.setRaw("updated", updated);
            // Emails are one per account, compared lower-cased: the account created first keeps it.
            let conflict = null;
            if (isAuth && data.email) {
              const others = arrayOf(new DynamicModel({ id: "", created: "", email: "" }));
              tx.db()
                .newQuery(
                  `SELECT id, created, email FROM ${col} WHERE lower(email) = lower({:e}) AND id != {:id}`,
                )
                .bind({ e: String(data.email), id: id })
                .all(others);
              for (const o of others) {
                const mineFirst =
                  String(data.created) < o.created || (String(data.created) === o.created && id < o.id);
                const loserId = mineFirst ? o.id : id;
                // The loser's own address, tagged with its id: the same on every server.
                const address = mineFirst ? o.email : String(data.email);
                const at = address.lastIndexOf("@");
                const moved = `${address.slice(0, at)}+nxs-dup-${loserId}${address.slice(at)}`;
                conflict = { email: address, kept: mineFirst ? id : o.id, moved: loserId, to: moved };
                if (mineFirst) {
                  // The other account moves aside; its `updated` stays, so both servers agree.
                  tx.db()
                    .newQuery(`UPDATE ${col} SET email = {:m} WHERE id = {:id}`)
                    .bind({ m: moved, id: o.id })
                    .execute();
                } else {
                  r.set("email", moved);
                }
              }
            }
            tx.saveNoValidate(r);
            if (isAuth) {
              // Linked OAuth2 identities: the exported set, exactly.
              const want = Array.isArray(data.externalAuths) ? data.externalAuths : [];
              const have = tx.findRecordsByFilter(
                "_externalAuths",
                "collectionRef = {:c} && recordRef = {:r}",
                "",
                0,
                0,
                { c: collection.id, r: id },
              );
              const key = (p, pid) => `${p}\u0000${pid}`;
              const wanted = {};
              for (const w of want) wanted[key(w.provider, w.providerId)] = true;
              const held = {};
              for (const h of have) {
                const k = key(h.getString("provider"), h.getString("providerId"));
                if (!wanted[k]) tx.delete(h);
                else held[k] = true;
              }
              const links = tx.findCollectionByNameOrId("_externalAuths");
              for (const w of want) {
                if (held[key(w.provider, w.providerId)]) continue;
                const l = new Record(links);
                l.set("collectionRef", collection.id);
                l.set("recordRef", id);
                l.set("provider", w.provider);
                l.set("providerId", w.providerId);
                tx.saveNoValidate(l);
              }
            }
            setBase(tx, id, updated);
            result = { id: id, outcome: local ? "updated" : "created" };
            if (conflict) result.conflict = conflict;
          });
        } catch (err) {
          result = { id: id, outcome: "invalid", message: String(err) };
        }
        results.push(result);
      }
      return e.json(200, { results: results });
    }

    if (op === "secrets") {
      const c = $app.findCollectionByNameOrId(col);
      if (!isAuth) throw new BadRequestError(`${col} is not an auth collection: it has no token secrets`);
      const s = body.secrets || {};
      const names = ["authToken", "fileToken", "verificationToken", "passwordResetToken", "emailChangeToken"];
      try {
        if (s.oauth2 && typeof s.oauth2 === "object") unmarshal({ oauth2: s.oauth2 }, c);
        if (s.mail && typeof s.mail === "object") {
          // The app's mail settings (SMTP and sender): reset and verification mails from either server.
          const settings = $app.settings();
          unmarshal(
            {
              smtp: s.mail.smtp,
              meta: { senderName: s.mail.senderName, senderAddress: s.mail.senderAddress },
            },
            settings,
          );
          $app.save(settings);
        }
        for (const n of names) if (typeof s[n] === "string" && s[n].length >= 30) c[n].secret = s[n];
        $app.save(c);
      } catch (err) {
        throw new BadRequestError(`cannot set the secrets of ${col}: ${String(err)}`);
      }
      return e.json(200, { ok: true });
    }
    if (op === "purge") {
      // Tombstones older than `before` (as PocketBase writes `updated`): the replicator asks once
      // every server holds the same ones, after a retention that covers restores from backups.
      const before = String(body.before || "");
      if (!before) throw new BadRequestError("purge: before is required");
      const n = $app
        .db()
        .newQuery(`DELETE FROM ${TOMBSTONES} WHERE coll = {:c} AND at < {:b}`)
        .bind({ c: col, b: before })
        .execute()
        .rowsAffected();
      return e.json(200, { purged: n });
    }
    throw new BadRequestError(`unknown operation ${op}: export, import, secrets or purge`);
  },
  $apis.requireAuth("nxs_replicators", "_superusers"),
);

routerAdd(
  "GET",
  "/nxs/records/{col}/{op}",
  (e) => {
    const COLLECTIONS = [/*<collections>*/ "users" /*</collections>*/];
    const col = e.request.pathValue("col");
    const op = e.request.pathValue("op");
    if (COLLECTIONS.indexOf(col) < 0) {
      throw new NotFoundError(
        `collection ${col} is not replicated here (the hook piece records lists ${COLLECTIONS.join(", ")})`,
      );
    }
    const c = $app.findCollectionByNameOrId(col);
    if (op === "secrets") {
      if (c.type !== "auth")
        throw new BadRequestError(`${col} is not an auth collection: it has no token secrets`);
      const secrets = {
        authToken: c.authToken.secret,
        fileToken: c.fileToken.secret,
        verificationToken: c.verificationToken.secret,
        passwordResetToken: c.passwordResetToken.secret,
        emailChangeToken: c.emailChangeToken.secret,
        oauth2: JSON.parse(JSON.stringify(c.oauth2)),
        mail: {
          smtp: JSON.parse(JSON.stringify($app.settings().smtp)),
          senderName: $app.settings().meta.senderName,
          senderAddress: $app.settings().meta.senderAddress,
        },
      };
      const digest = $security.sha256(JSON.stringify(secrets));
      return e.json(
        200,
        e.request.url.query().get("full") === "1" ? { digest: digest, secrets: secrets } : { digest: digest },
      );
    }
    if (op === "digest") {
      const rows = arrayOf(new DynamicModel({ id: "", updated: "" }));
      $app.db().newQuery(`SELECT id, updated FROM ${col} ORDER BY id`).all(rows);
      const tombs = arrayOf(new DynamicModel({ record: "", at: "" }));
      $app
        .db()
        .newQuery("SELECT record, at FROM nxs_tombstones WHERE coll = {:c} ORDER BY record")
        .bind({ c: col })
        .all(tombs);
      const text = rows.map((r) => `${r.id}|${r.updated}`).join("\n");
      return e.json(200, {
        count: rows.length,
        digest: $security.sha256(text),
        tombstones: tombs.length,
        tombstoneDigest: $security.sha256(tombs.map((t) => `${t.record}|${t.at}`).join("\n")),
      });
    }
    throw new BadRequestError(`unknown operation ${op}: digest or secrets`);
  },
  $apis.requireAuth("nxs_replicators", "_superusers"),
);

// A delete leaves a tombstone, in the delete's own transaction (a failed tombstone fails the
// delete: a delete the replicator cannot see would come back from the other server). An imported
// delete finds its tombstone already written, with the origin's time, and keeps it.
onRecordDelete((e) => {
  e.next();
  const col = e.record.collection().name;
  let tomb = null;
  try {
    tomb = e.app.findFirstRecordByFilter("nxs_tombstones", "coll = {:c} && record = {:r}", {
      c: col,
      r: e.record.id,
    });
  } catch (_) {
    tomb = null;
  }
  if (tomb) return;
  let tombstones = null;
  try {
    tombstones = e.app.findCollectionByNameOrId("nxs_tombstones");
  } catch (_) {
    // No nxs schema here (nxs-sync setup has not run): nothing replicates this collection yet.
    return;
  }
  const t = new Record(tombstones);
  t.set("coll", col);
  t.set("record", e.record.id);
  t.set("at", new Date().toISOString().replace("T", " "));
  e.app.save(t);
}, /*<collections>*/ "users" /*</collections>*/);

// Realtime for the replicator: each write of a replicated record goes out on the custom topic
// `nxs/records` to replicator clients only (other subscribers of that name get nothing), with the
// record as the export route gives it (or the delete's tombstone), so the replicator imports it
// into the other servers without asking for it first. One handler, registered three times (PocketBase
// compiles a handler from its source, so it carries what it needs, the export's shape included:
// keep it equal to `exportRecord` of the route above).
const nxsRecordsBroadcast = (e) => {
  e.next();
  const clients = $app.subscriptionsBroker().clients();
  const to = [];
  for (const id in clients) {
    const c = clients[id];
    if (!c.hasSubscription("nxs/records")) continue;
    const auth = c.get("auth");
    if (auth && auth.collection().name === "nxs_replicators") to.push(c);
  }
  if (to.length === 0) return;
  const r = e.record;
  const collection = r.collection();
  const col = collection.name;
  const message = { collectionName: col, id: r.id, kind: "write" };
  let deleted = false;
  try {
    $app.findRecordById(col, r.id);
  } catch (_) {
    deleted = true;
  }
  if (deleted) {
    message.kind = "delete";
    try {
      const t = $app.findFirstRecordByFilter("nxs_tombstones", "coll = {:c} && record = {:r}", {
        c: col,
        r: r.id,
      });
      message.tombstone = { record: r.id, at: t.getString("at") };
    } catch (_) {
      // no tombstone (no nxs schema): the replicator reads it when it asks
    }
  } else {
    const isAuth = collection.type === "auth";
    const data = {};
    for (const f of collection.fields) {
      const name = f.getName();
      const type = f.type();
      if (name === "id") continue;
      if (isAuth && name === "password") data.password = r.getString("password:hash");
      else if (type === "json") {
        const text = r.getString(name);
        data[name] = text === "" ? null : JSON.parse(text);
      } else if (type === "bool") data[name] = r.getBool(name);
      else if (type === "number") data[name] = r.getFloat(name);
      else if (Array.isArray(r.get(name)) || (f.maxSelect && f.maxSelect > 1))
        data[name] = r.getStringSlice(name);
      else data[name] = r.getString(name);
    }
    if (isAuth) {
      const links = arrayOf(new DynamicModel({ provider: "", providerId: "" }));
      $app
        .db()
        .newQuery(
          "SELECT provider, providerId FROM _externalAuths WHERE collectionRef = {:c} AND recordRef = {:r} ORDER BY provider, providerId",
        )
        .bind({ c: collection.id, r: r.id })
        .all(links);
      data.externalAuths = links.map((l) => ({ provider: l.provider, providerId: l.providerId }));
    }
    const canonical = (v) => {
      if (v === null || v === undefined) return "null";
      if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
      if (typeof v === "object") {
        return `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
          .join(",")}}`;
      }
      return JSON.stringify(v);
    };
    const plain = JSON.parse(JSON.stringify(data));
    let base = "";
    try {
      base = $app
        .findFirstRecordByFilter("nxs_record_bases", "coll = {:c} && record = {:r}", { c: col, r: r.id })
        .getString("base");
    } catch (_) {
      base = "";
    }
    message.record = {
      base: base,
      id: r.id,
      updated: r.getString("updated"),
      data: plain,
      digest: $security.sha256(canonical(plain)),
    };
  }
  const sent = new SubscriptionMessage({ name: "nxs/records", data: JSON.stringify(message) });
  for (const c of to) c.send(sent);
};

onRecordAfterCreateSuccess(nxsRecordsBroadcast, /*<collections>*/ "users" /*</collections>*/);
onRecordAfterUpdateSuccess(nxsRecordsBroadcast, /*<collections>*/ "users" /*</collections>*/);
onRecordAfterDeleteSuccess(nxsRecordsBroadcast, /*<collections>*/ "users" /*</collections>*/);

// A linked OAuth2 identity added or removed changes its account: its `updated` moves, so the
// replicator's last-writer-wins sees the change.
onRecordAfterCreateSuccess((e) => {
  e.next();
  const COLLECTIONS = [/*<collections>*/ "users" /*</collections>*/];
  try {
    const owner = $app.findRecordById(e.record.getString("collectionRef"), e.record.getString("recordRef"));
    if (COLLECTIONS.indexOf(owner.collection().name) >= 0) $app.saveNoValidate(owner);
  } catch (_) {
    // the owner is gone
  }
}, "_externalAuths");
