/// <reference path="../pb_data/types.d.ts" />
// nxs-sync config store: the server side of @nxs-sync/config/pocketbase (the hook piece `config`).
// Install: put this file in every server's --hooksDir beside the core bundle (nxs.pb.js) and
// restart it; clients check GET /nxs/hooks/config. Every handler is serialized and run in its own
// VM (PocketBase JSVM): it can read nothing declared outside itself, so the one route handler
// below carries its helpers inside.
//
// POST /nxs/config/{op}, op one of put | heads | compact | rollout | origin. Gateway accounts
// (nxs_nodes) only. put, compact and rollout each run inside ONE $app.runInTransaction and use only
// the transaction's app (SQLite has one writer: the head read and the insert of a put cannot
// interleave with another put: the compare-and-swap is exact on one server). Time is the server's
// clock (createdAt, compactedAt, updatedAt). Answers: 200 with the result; 400
// { message, data: { code: "config/invalid-value", field, message } } for a malformed request (nothing
// stored); 409 { message, data: { code: "config/conflict", current } } when the head moved.
//
// Records written straight into nxs_config_versions (by a superuser, a script) that do not have a
// version's shape are skipped by the routes (never a head, never compacted); the clients quarantine
// them on read.

routerAdd("GET", "/nxs/hooks/config", (e) => e.json(200, { name: "config", version: 4 }));

routerAdd(
  "POST",
  "/nxs/config/{op}",
  (e) => {
    const VERSIONS = "nxs_config_versions";
    const ROLLOUTS = "nxs_config_rollouts";
    const ORIGIN = "nxs_config_origin";
    const ORIGIN_ID = "nxsconfigorigin";
    const MAX_VALUE_JSON = 1048576;
    const ID = /^[a-z0-9]{15}$/;
    const ENV = /^[a-z][a-z0-9_-]{0,62}$/;
    const KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
    const STATES = ["staged", "promoted", "rolled-back"];
    const op = e.request.pathValue("op");
    const body = e.requestInfo().body || {};
    // The write fence (pb_hooks/nxs-fence.pb.js of @nxs-sync/pocketbase): a server being restored
    // takes no writes (503: clients go to the other server). One store read when not fenced.
    const fenceText = $app.store().get("nxs.fence");
    if (fenceText && op !== "heads") {
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

    // A refusal is kept here and thrown as a plain error (it crosses runInTransaction, a Go call).
    let refusal = null;
    const refuse = (field, message) => {
      refusal = { status: 400, data: { code: "config/invalid-value", field: field, message: message } };
      throw new Error(message);
    };
    const isInt = (v, min) => typeof v === "number" && Number.isFinite(v) && Math.trunc(v) === v && v >= min;
    const int = (v, field, min) => {
      if (!isInt(v, min)) refuse(field, `${field} must be an integer >= ${min}`);
      return v;
    };
    const str = (v, field, max, pattern) => {
      if (typeof v !== "string" || v.length > max || (pattern !== undefined && !pattern.test(v)))
        refuse(
          field,
          `${field} must be a string of at most ${max} characters${pattern ? ` matching ${pattern}` : ""}`,
        );
      return v;
    };
    // Why a rollout target is malformed, or "" (the shape of version.ts rolloutTargetSchema).
    const badTarget = (t) => {
      if (t === null || typeof t !== "object" || Array.isArray(t)) return "must be an object";
      for (const k of Object.keys(t))
        if (k !== "nodes" && k !== "percent") return `has an unknown field ${k}`;
      if (t.nodes !== undefined) {
        if (!Array.isArray(t.nodes) || t.nodes.length > 1000) return "nodes must be a list of at most 1000";
        for (const n of t.nodes)
          if (typeof n !== "string" || n.length < 1 || n.length > 200)
            return "nodes must be names of 1-200 characters";
      }
      if (t.percent !== undefined && !(typeof t.percent === "number" && t.percent >= 0 && t.percent <= 100))
        return "percent must be a number from 0 to 100";
      return "";
    };
    // A json column's text as a value: null when empty, undefined when it is not JSON.
    const parseJson = (s) => {
      if (s === "" || s === "null") return null;
      try {
        return JSON.parse(s);
      } catch (_) {
        return undefined;
      }
    };
    // A version record as plain JSON (the client decodes it with zod).
    const rawVersion = (rec) => ({
      id: rec.id,
      env: rec.getString("env"),
      key: rec.getString("key"),
      version: rec.getFloat("version"),
      hlc: rec.getString("hlc"),
      origin: rec.getString("origin"),
      node: rec.getString("node"),
      author: rec.getString("author"),
      message: rec.getString("message"),
      createdAt: rec.getFloat("createdAt"),
      rollbackOf: rec.getFloat("rollbackOf"),
      rollout: parseJson(rec.getString("rollout")),
      value: parseJson(rec.getString("value")),
      compacted: rec.getBool("compacted"),
      compactedAt: rec.getString("compactedAt"),
    });
    const rawRollout = (rec) => ({
      id: rec.id,
      env: rec.getString("env"),
      key: rec.getString("key"),
      version: rec.getFloat("version"),
      state: rec.getString("state"),
      reason: rec.getString("reason"),
      updatedAt: rec.getFloat("updatedAt"),
      rev: rec.getFloat("rev"),
    });
    // Whether a stored record has a version's shape (storedVersionSchema, as far as the server can
    // tell): a record written straight into the collection without it is never a head.
    const wellFormed = (v) =>
      ID.test(v.id) &&
      ENV.test(v.env) &&
      KEY.test(v.key) &&
      isInt(v.version, 1) &&
      v.hlc.length >= 1 &&
      isInt(v.createdAt, 0) &&
      (v.rollbackOf === 0 || isInt(v.rollbackOf, 1)) &&
      (v.rollout === null || badTarget(v.rollout) === "") &&
      v.value !== undefined &&
      (!v.compacted || v.value === null);
    const findById = (app, collection, id) => {
      if (typeof id !== "string" || !ID.test(id)) return null;
      try {
        return app.findRecordById(collection, id);
      } catch (_) {
        return null;
      }
    };
    // The head of a key: the greatest well-formed version by (version, hlc, id), as rawVersion gives
    // it, or null. One SQL query (a record query through the filter parser took about 3x as long):
    // the first read takes one row (the common case: the newest is well-formed); pages of 100 follow
    // only past malformed ones. Numbers are read as float64 (-0: a hostile 7.5 must not fail the scan).
    const HEAD_SQL =
      "SELECT [[id]], [[env]], [[key]], [[version]], [[hlc]], [[origin]], [[node]], [[author]], [[message]], " +
      "[[createdAt]], [[rollbackOf]], COALESCE([[rollout]], '') AS [[rollout]], COALESCE([[value]], '') AS [[value]], " +
      "[[compacted]], COALESCE([[compactedAt]], '') AS [[compactedAt]] FROM {{nxs_config_versions}} " +
      "WHERE [[env]] = {:env} AND [[key]] = {:key} ORDER BY [[version]] DESC, [[hlc]] DESC, [[id]] DESC " +
      "LIMIT {:limit} OFFSET {:offset}";
    const head = (app, env, key) => {
      for (let offset = 0, page = 1; ; offset += page, page = 100) {
        const rows = arrayOf(
          new DynamicModel({
            id: "",
            env: "",
            key: "",
            version: -0,
            hlc: "",
            origin: "",
            node: "",
            author: "",
            message: "",
            createdAt: -0,
            rollbackOf: -0,
            rollout: "",
            value: "",
            compacted: false,
            compactedAt: "",
          }),
        );
        app.db().newQuery(HEAD_SQL).bind({ env: env, key: key, limit: page, offset: offset }).all(rows);
        for (const r of rows) {
          const v = {
            id: r.id,
            env: r.env,
            key: r.key,
            version: r.version,
            hlc: r.hlc,
            origin: r.origin,
            node: r.node,
            author: r.author,
            message: r.message,
            createdAt: r.createdAt,
            rollbackOf: r.rollbackOf,
            rollout: parseJson(r.rollout),
            value: parseJson(r.value),
            compacted: r.compacted,
            compactedAt: r.compactedAt,
          };
          if (wellFormed(v)) return v;
        }
        if (rows.length < page) return null;
      }
    };
    const keysOf = (app, env) => {
      const rows = arrayOf(new DynamicModel({ key: "" }));
      app
        .db()
        .newQuery("SELECT DISTINCT [[key]] AS [[key]] FROM {{nxs_config_versions}} WHERE [[env]] = {:env}")
        .bind({ env: env })
        .all(rows);
      return rows.map((r) => r.key).filter((k) => KEY.test(k));
    };
    // This server's origin id (made at random on first use, inside the transaction). Once read from
    // its committed record it is kept in the app's store (one local record that never changes: no
    // read per put); an id made in this transaction is not kept until a later call reads it back.
    const ORIGIN_STORE_KEY = "nxsConfigOrigin";
    const originOf = (tx) => {
      const kept = $app.store().get(ORIGIN_STORE_KEY);
      if (typeof kept === "string" && kept !== "") return kept;
      let rec = findById(tx, ORIGIN, ORIGIN_ID);
      if (rec !== null) {
        const origin = rec.getString("origin");
        $app.store().set(ORIGIN_STORE_KEY, origin);
        return origin;
      }
      rec = new Record(tx.findCachedCollectionByNameOrId(ORIGIN));
      rec.set("id", ORIGIN_ID);
      rec.set("origin", $security.randomStringWithAlphabet(12, "abcdefghijklmnopqrstuvwxyz0123456789"));
      tx.save(rec);
      return rec.getString("origin");
    };

    const ops = {
      put: (tx, now) => {
        const id = str(body.id, "id", 15, ID);
        const env = str(body.env, "env", 63, ENV);
        const key = str(body.key, "key", 128, KEY);
        const expected = int(body.expectedVersion, "expectedVersion", 0);
        const hlc = str(body.hlc, "hlc", 64);
        if (hlc === "") refuse("hlc", "hlc must not be empty");
        const node = str(body.node === undefined ? "" : body.node, "node", 200);
        const author = str(body.author === undefined ? "" : body.author, "author", 200);
        const message = str(body.message === undefined ? "" : body.message, "message", 2000);
        if (body.rollbackOf !== undefined && body.rollbackOf !== null) int(body.rollbackOf, "rollbackOf", 1);
        if (body.rollout !== undefined && body.rollout !== null) {
          const bad = badTarget(body.rollout);
          if (bad !== "") refuse("rollout", `rollout ${bad}`);
        }
        if (body.value === undefined) refuse("value", "value is missing");
        const valueJson = JSON.stringify(body.value);
        if (valueJson.length > MAX_VALUE_JSON)
          refuse(
            "value",
            `value is ${valueJson.length} characters of JSON, over the limit of ${MAX_VALUE_JSON}`,
          );
        // Idempotent by id: a put sent again (its answer lost) gets the stored version back. The id is
        // looked up only when the put cannot go on as asked (the head moved, or the insert refuses an
        // id that exists): a put sent again always meets one of the two, a new put neither.
        const again = () => {
          const existing = findById(tx, VERSIONS, id);
          if (existing === null) return null;
          if (existing.getString("env") !== env || existing.getString("key") !== key)
            refuse(
              "id",
              `id ${id} is the id of another version (${existing.getString("env")}/${existing.getString("key")})`,
            );
          return { version: rawVersion(existing) };
        };
        const current = head(tx, env, key);
        const at = current === null ? 0 : current.version;
        if (at !== expected) {
          const known = again();
          if (known !== null) return known;
          refusal = {
            status: 409,
            data: {
              code: "config/conflict",
              message: `${env}/${key}: the head is version ${at}, not ${expected}`,
              current: current,
            },
          };
          throw new Error(refusal.data.message);
        }
        // The version as rawVersion would read it back from the saved record (the answer is built
        // from it: no read of the record after the save).
        const rollbackOf = body.rollbackOf === undefined || body.rollbackOf === null ? 0 : body.rollbackOf;
        const rollout = body.rollout === undefined || body.rollout === null ? null : body.rollout;
        const version = {
          id: id,
          env: env,
          key: key,
          version: expected + 1,
          hlc: hlc,
          origin: originOf(tx),
          node: node,
          author: author,
          message: message,
          createdAt: now,
          rollbackOf: rollbackOf,
          rollout: rollout,
          value: body.value,
          compacted: false,
          compactedAt: "",
        };
        const rec = new Record(tx.findCachedCollectionByNameOrId(VERSIONS));
        rec.set("id", id);
        rec.set("env", env);
        rec.set("key", key);
        rec.set("version", version.version);
        rec.set("hlc", hlc);
        rec.set("origin", version.origin);
        rec.set("node", node);
        rec.set("author", author);
        rec.set("message", message);
        rec.set("createdAt", now);
        rec.set("rollbackOf", rollbackOf);
        rec.set("rollout", rollout === null ? null : JSON.stringify(rollout));
        // As JSON text: PocketBase reads a plain string set on a json field as JSON when it looks like
        // JSON ("true", "12", "[1]"), so a string value would not come back as the string it was.
        rec.set("value", valueJson);
        rec.set("compacted", false);
        try {
          tx.save(rec);
        } catch (err) {
          // The id exists (the record validator refuses it; nothing was written): a put sent again.
          const known = again();
          if (known !== null) return known;
          throw err;
        }
        version.compactedAt = rec.getString("compactedAt");
        return { version: version };
      },

      heads: (app) => {
        const env = str(body.env, "env", 63, ENV);
        const versions = [];
        for (const key of keysOf(app, env)) {
          const v = head(app, env, key);
          if (v !== null) versions.push(v);
        }
        return { versions: versions };
      },

      // Marks old versions compacted (value removed, compactedAt set: a tombstone the replicator
      // copies). A key's head, its staged versions and its effective version (the greatest one no
      // rollout holds back: not staged, not rolled back) are always kept; another is kept when it
      // is among the `keepLast` newest of its key or created at or after `keepSince` (without
      // either, only those always kept stay).
      compact: (tx, now) => {
        const env = str(body.env, "env", 63, ENV);
        const keys =
          body.key === undefined || body.key === null ? keysOf(tx, env) : [str(body.key, "key", 128, KEY)];
        const keepLast =
          body.keepLast === undefined || body.keepLast === null ? 0 : int(body.keepLast, "keepLast", 0);
        const keepSince =
          body.keepSince === undefined || body.keepSince === null
            ? Infinity
            : int(body.keepSince, "keepSince", 0);
        const states = {};
        for (const r of tx.findRecordsByFilter(ROLLOUTS, "env = {:env}", "", 0, 0, { env: env }))
          states[r.id] = r.getString("state");
        let compacted = 0;
        for (const key of keys) {
          const recs = tx
            .findRecordsByFilter(VERSIONS, "env = {:env} && key = {:key}", "-version,-hlc,-id", 0, 0, {
              env: env,
              key: key,
            })
            .filter((rec) => wellFormed(rawVersion(rec)));
          // The greatest version no rollout holds back: what untargeted nodes run when the head is staged.
          const effective = recs.find((r) => states[r.id] !== "staged" && states[r.id] !== "rolled-back");
          recs.forEach((rec, i) => {
            if (i === 0 || i < keepLast || rec.getBool("compacted")) return;
            if (states[rec.id] === "staged" || rec === effective) return;
            if (rec.getFloat("createdAt") >= keepSince) return;
            rec.set("compacted", true);
            rec.set("value", null);
            rec.set("compactedAt", new Date(now).toISOString().replace("T", " "));
            tx.save(rec);
            compacted++;
          });
        }
        return { compacted: compacted };
      },

      // Creates a staged version's rollout record, or raises its state (staged < promoted <
      // rolled-back); a lower or equal state changes nothing. rev = rank * 1e13 + updatedAt.
      rollout: (tx, now) => {
        const id = str(body.id, "id", 15, ID);
        const env = str(body.env, "env", 63, ENV);
        const key = str(body.key, "key", 128, KEY);
        const version = int(body.version, "version", 1);
        const state = str(body.state, "state", 20);
        const rank = STATES.indexOf(state);
        if (rank < 0) refuse("state", `state must be one of ${STATES.join(", ")}`);
        const reason = str(body.reason === undefined ? "" : body.reason, "reason", 2000);
        let rec = findById(tx, ROLLOUTS, id);
        if (rec !== null) {
          if (
            rec.getString("env") !== env ||
            rec.getString("key") !== key ||
            rec.getFloat("version") !== version
          )
            refuse("id", `rollout ${id} belongs to another version`);
          if (STATES.indexOf(rec.getString("state")) >= rank) return { rollout: rawRollout(rec) };
        } else {
          rec = new Record(tx.findCollectionByNameOrId(ROLLOUTS));
          rec.set("id", id);
          rec.set("env", env);
          rec.set("key", key);
          rec.set("version", version);
        }
        rec.set("state", state);
        rec.set("reason", reason);
        rec.set("updatedAt", now);
        rec.set("rev", rank * 1e13 + now);
        tx.save(rec);
        return { rollout: rawRollout(rec) };
      },

      origin: (tx) => ({ origin: originOf(tx) }),
    };

    const fn = ops[op];
    if (fn === undefined) return e.json(404, { status: 404, message: `no config operation ${op}`, data: {} });
    let answer = null;
    try {
      if (op === "heads") answer = fn($app, Date.now());
      else
        $app.runInTransaction((tx) => {
          answer = fn(tx, Date.now());
        });
    } catch (err) {
      if (refusal !== null)
        return e.json(refusal.status, {
          status: refusal.status,
          message: refusal.data.message,
          data: refusal.data,
        });
      throw err;
    }
    return e.json(200, answer);
  },
  $apis.requireAuth("nxs_nodes"),
);

// Replicators' copies (the replicator sends a string held in a json field as JSON text, which the
// records API stores verbatim, so a copied value keeps its type without help from this piece).
// - Updates are checked against the row as it is now, right before it is stored (the replicator
//   reads, merges, then writes; a route's write committed meanwhile must not be undone by an older
//   copy). Not written, no error: the stored row is what the replicator gets back, and its next
//   round compares again. A version is immutable: its only update is its compaction (the
//   collection's update rule demands compacted = true), and a compacted row is never written
//   again. A rollout's state only moves up: a copy whose rev is below the stored one is dropped.
onRecordUpdateRequest(
  (e) => {
    const author = e.auth ? e.auth.collection().name : "";
    if (author !== "nxs_replicators") return e.next();
    const collection = e.record.collection().name;
    let stored = null;
    try {
      stored = $app.findRecordById(collection, e.record.id);
    } catch (_) {
      stored = null;
    }
    if (stored === null) return e.next();
    const dropped =
      collection === "nxs_config_versions"
        ? stored.getBool("compacted")
        : e.record.getFloat("rev") < stored.getFloat("rev");
    return dropped ? e.json(200, stored) : e.next();
  },
  "nxs_config_versions",
  "nxs_config_rollouts",
);
