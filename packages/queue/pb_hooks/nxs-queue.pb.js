/// <reference path="../pb_data/types.d.ts" />
// nxs-sync job queue: the server side of @nxs-sync/queue/pocketbase (the hook piece `queue`).
// Install: put this file in every server's --hooksDir beside the core bundle (nxs.pb.js) and
// restart it; clients check GET /nxs/hooks/queue. Every handler is serialized and run in its own
// VM (PocketBase JSVM): it can read nothing declared outside itself, so the one route handler
// below carries its helpers inside.
//
// POST /nxs/queue/{op}, op one of enqueue | claim | unpark | heartbeat | settle | settle-and-claim | cancel |
// redrive | clean | takeover | counts | schedule-put | schedule-remove | schedule-list | schedule-fire. Gateway accounts (nxs_nodes) only. Each op runs inside ONE
// $app.runInTransaction and uses only the transaction's app (SQLite has one writer: the read and
// the write of a claim cannot interleave with another claim; tested atomic, see
// docs/adr/0006-queue-claims.md). Time is the server's clock (runAt, leases, retry delays); a
// lease token is a fresh random string per attempt; every write bumps `rev` and recomputes
// `version` (the encoding of packages/queue/src/job-version.ts; a unit test runs the block
// between the `version:` markers against encodeJobVersion). Errors answer 400
// { message, data: { code, field, index } } with code `queue/invalid-payload` or `queue/too-large`;
// nothing of a refused batch is stored.

routerAdd("GET", "/nxs/hooks/queue", (e) => e.json(200, { name: "queue", version: 6 }));

routerAdd(
  "POST",
  "/nxs/queue/{op}",
  (e) => {
    const JOBS = "nxs_jobs";
    const EPOCHS = "nxs_queue_epochs";
    const EPOCH_ID = "nxsqueueepoch00";
    // Scheduling (issue 22): the key table (local, unique on queue + key) and the schedules.
    const KEYS = "nxs_job_keys";
    const SCHEDULES = "nxs_queue_schedules";
    // Flow control (issue 22 items 4-6): limits and pauses (replicated), rate windows (local).
    const FLOW = "nxs_queue_flow";
    const RATES = "nxs_queue_rates";
    const EACH = "*";
    const MAX_RATE_INTERVAL_MS = 86400000;
    const PRIORITY_STEP_MS = 1000;
    const MAX_PRIORITY = 1000;
    const MODES = ["simple", "throttle", "debounce", "singleton"];
    const MAX_BATCH = 500;
    const MAX_PAYLOAD_BYTES = 262144;
    const MAX_FAILURES_KEPT = 20;
    const ID = /^[a-z0-9]{15}$/;
    const STATES = ["waiting", "active", "completed", "failed", "cancelled"];
    const TERMINAL = ["completed", "failed", "cancelled"];
    const op = e.request.pathValue("op");
    const body = e.requestInfo().body || {};
    // The write fence (pb_hooks/nxs-fence.pb.js of @nxs-sync/pocketbase): a server being restored
    // takes no writes (503: clients go to the other server). One store read when not fenced.
    const fenceText = $app.store().get("nxs.fence");
    if (fenceText && op !== "counts" && op !== "flow-list") {
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

    // version: the fixed-width, sortable version of a job (job-version.ts encodeJobVersion).
    const encodeVersion = (generation, attempt, epoch, phase, rev) => {
      const widths = [4, 6, 8, 1, 9];
      return [generation, attempt, epoch, phase, rev]
        .map((v, i) => {
          const max = 10 ** widths[i] - 1;
          const n = Math.min(max, Math.max(0, Math.trunc(Number(v) || 0)));
          return String(n).padStart(widths[i], "0");
        })
        .join(".");
    };
    const phaseOf = (state, attempt) =>
      state === "active" ? 1 : state === "cancelled" ? 3 : state === "waiting" && attempt === 0 ? 0 : 2;
    // end version

    // A refusal is kept here and thrown as a plain error (it crosses runInTransaction, a Go call).
    let refusal = null;
    const refuse = (code, message, field, index) => {
      refusal = { code: code, message: message, field: field, index: index };
      throw new Error(message);
    };
    const int = (v, field, min, index) => {
      const n = Number(v);
      if (!Number.isFinite(n) || Math.trunc(n) !== n || n < min)
        refuse("queue/invalid-payload", `${field} must be an integer >= ${min}`, field, index);
      return n;
    };
    const items = (name) => {
      const list = body[name];
      if (!Array.isArray(list)) refuse("queue/invalid-payload", `${name} must be an array`, name);
      if (list.length > MAX_BATCH)
        refuse("queue/invalid-payload", `at most ${MAX_BATCH} ${name} per request`, name);
      list.forEach((x, i) => {
        if (x === null || typeof x !== "object" || Array.isArray(x))
          refuse("queue/invalid-payload", `each of ${name} must be an object`, name, i);
      });
      return list;
    };
    // A payload or result within the inline limit (larger ones go by reference: a blob).
    const bounded = (value, field, index) => {
      const size = JSON.stringify(value).length;
      if (size > MAX_PAYLOAD_BYTES)
        refuse(
          "queue/too-large",
          `${field} is ${size} characters of JSON, over ${MAX_PAYLOAD_BYTES}: store it as a blob`,
          field,
          index,
        );
      return value;
    };
    const jsonOf = (rec, field) => {
      const s = rec.getString(field);
      if (s === "" || s === "null") return null;
      try {
        return JSON.parse(s);
      } catch (_) {
        return undefined;
      }
    };
    // A job record as plain JSON (the client validates it with zod; the token is stripped there).
    const raw = (rec) => ({
      id: rec.id,
      queue: rec.getString("queue"),
      state: rec.getString("state"),
      payload: jsonOf(rec, "payload"),
      runAt: rec.getFloat("runAt"),
      attempt: rec.getFloat("attempt"),
      attemptsMade: rec.getFloat("attemptsMade"),
      maxAttempts: rec.getFloat("maxAttempts"),
      backoff: jsonOf(rec, "backoff"),
      timeoutMs: rec.getFloat("timeoutMs"),
      generation: rec.getFloat("generation"),
      epoch: rec.getFloat("epoch"),
      worker: rec.getString("worker"),
      leaseUntil: rec.getFloat("leaseUntil"),
      token: rec.getString("token"),
      cancelRequested: rec.getBool("cancelRequested"),
      progress: jsonOf(rec, "progress"),
      result: jsonOf(rec, "result"),
      reason: rec.getString("reason"),
      failures: jsonOf(rec, "failures"),
      rev: rec.getFloat("rev"),
      version: rec.getString("version"),
      createdAt: rec.getFloat("createdAt"),
      updatedAt: rec.getFloat("updatedAt"),
      finishedAt: rec.getFloat("finishedAt"),
      deleted: rec.getBool("deleted"),
      priority: rec.getFloat("priority"),
      jobKey: rec.getString("jobKey"),
      keyMode: rec.getString("keyMode"),
      groupKey: rec.getString("groupKey"),
      weight: rec.getFloat("weight"),
    });
    // Saves a job: bumps rev, stamps updatedAt, recomputes the version.
    const write = (tx, rec, now) => {
      // The claim order of a waiting job: runAt minus its priority's head start (aging).
      rec.set("rank", rec.getFloat("runAt") - rec.getFloat("priority") * PRIORITY_STEP_MS);
      const rev = rec.getFloat("rev") + 1;
      rec.set("rev", rev);
      rec.set("updatedAt", now);
      rec.set(
        "version",
        encodeVersion(
          rec.getFloat("generation"),
          rec.getFloat("attempt"),
          rec.getFloat("epoch"),
          phaseOf(rec.getString("state"), rec.getFloat("attempt")),
          rev,
        ),
      );
      tx.save(rec);
    };
    const failuresOf = (rec) => {
      const f = jsonOf(rec, "failures");
      return Array.isArray(f) ? f : [];
    };
    const pushFailure = (rec, code, message, now) => {
      const f = failuresOf(rec);
      f.push({
        attempt: rec.getFloat("attempt"),
        code: code,
        message: String(message).slice(0, 2000),
        at: now,
      });
      rec.set("failures", f.slice(-MAX_FAILURES_KEPT));
    };
    // The attempt's lease ends: its token is spent (a late heartbeat or settlement is lease-lost).
    const endLease = (rec) => {
      rec.set("token", "");
      rec.set("worker", "");
      rec.set("leaseUntil", 0);
      rec.set("cancelRequested", false);
    };
    const finish = (rec, state, now) => {
      endLease(rec);
      rec.set("state", state);
      rec.set("finishedAt", now);
    };
    // Whether `token` holds the job's lease now.
    const holds = (rec, token, now) =>
      rec !== null &&
      rec.getString("state") === "active" &&
      rec.getString("token") !== "" &&
      rec.getString("token") === String(token) &&
      rec.getFloat("leaseUntil") > now;
    // Why a stored job cannot run (written straight into the collection), or "".
    const malformed = (rec) => {
      const n = (f, min) => {
        const v = rec.getFloat(f);
        return Number.isFinite(v) && Math.trunc(v) === v && v >= min;
      };
      if (!n("maxAttempts", 1)) return "maxAttempts must be an integer >= 1";
      for (const f of ["attempt", "attemptsMade", "generation", "epoch", "rev", "timeoutMs", "runAt"]) {
        if (!n(f, 0)) return `${f} must be an integer >= 0`;
      }
      if (rec.getFloat("attemptsMade") > rec.getFloat("attempt")) return "attemptsMade is above attempt";
      const b = jsonOf(rec, "backoff");
      if (b !== null && (typeof b !== "object" || Array.isArray(b))) return "backoff must be an object";
      const f = jsonOf(rec, "failures");
      if (f !== null && !Array.isArray(f)) return "failures must be an array";
      if (jsonOf(rec, "payload") === undefined) return "payload is not JSON";
      return "";
    };
    const find = (tx, id) => {
      if (typeof id !== "string" || !ID.test(id)) return null;
      try {
        const rec = tx.findRecordById(JOBS, id);
        return rec.getBool("deleted") ? null : rec;
      } catch (_) {
        return null;
      }
    };
    // The jobs of a batch, read by one query: a look-up by id (null when unknown or deleted). A
    // batch naming one job twice gets the same record twice, so the second item sees the first's change.
    const idOf = (item) => item.id;
    const findAll = (tx, ids) => {
      const wanted = ids.filter((id, i) => typeof id === "string" && ID.test(id) && ids.indexOf(id) === i);
      const byId = {};
      if (wanted.length > 0) {
        for (const rec of tx.findRecordsByIds(JOBS, wanted)) {
          if (!rec.getBool("deleted")) byId[rec.id] = rec;
        }
      }
      return (id) => (typeof id === "string" && byId[id] !== undefined ? byId[id] : null);
    };
    const localEpoch = (tx) => {
      try {
        return tx.findRecordById(EPOCHS, EPOCH_ID);
      } catch (_) {
        return null;
      }
    };
    // Hot-path look-ups as plain SQL on the indexed columns (~0.1 ms a call, against ~0.25 ms for
    // the same look-up through the record filter parser): each answers one number.
    const sqlNumber = (tx, sql, params) => {
      const m = new DynamicModel({ n: 0 });
      tx.db().newQuery(sql).bind(params).one(m);
      return Number(m.n) || 0;
    };
    // This server's claim epoch, or 0 when it has none yet (read without loading its record).
    const epochHere = (tx) =>
      sqlNumber(tx, "SELECT COALESCE(MAX(epoch), 0) AS n FROM nxs_queue_epochs WHERE id = {:id}", {
        id: EPOCH_ID,
      });
    // The highest epoch of another authority in this server's job copies (claims made here under
    // this server's own epoch do not count: a takeover is idempotent).
    const seenEpoch = (tx, own) => {
      const m = new DynamicModel({ m: 0 });
      tx.db()
        .newQuery("SELECT COALESCE(MAX(epoch), 0) AS m FROM nxs_jobs WHERE epoch <> {:own}")
        .bind({ own: own })
        .one(m);
      return Number(m.m) || 0;
    };
    // Makes this server the claim authority: its epoch goes above every other epoch it has seen,
    // and to at least `floor`: 1 for a server's first claim (the home server), 2 for a takeover
    // asked for by a client that moved here (above a home that claimed before any copy arrived).
    const takeover = (tx, now, floor) => {
      let rec = localEpoch(tx);
      const previous = rec === null ? 0 : rec.getFloat("epoch");
      const seen = seenEpoch(tx, previous);
      const epoch = Math.max(previous, seen + 1, floor);
      if (rec === null) {
        rec = new Record(tx.findCollectionByNameOrId(EPOCHS));
        rec.set("id", EPOCH_ID);
      }
      if (epoch !== previous) {
        rec.set("epoch", epoch);
        rec.set("takenAt", now);
        tx.save(rec);
      }
      return { epoch: epoch, previous: previous, seen: seen };
    };
    // The epoch claims carry: this server's (a server's first claim takes over implicitly).
    const claimEpoch = (tx, now) => {
      const epoch = epochHere(tx);
      return epoch > 0 ? epoch : takeover(tx, now, 1).epoch;
    };

    // A job's dedupe key ({ key, mode, ttlMs }), checked, or null.
    const keyOf = (k, i) => {
      if (k === undefined || k === null) return null;
      if (typeof k !== "object" || Array.isArray(k))
        refuse("queue/invalid-payload", "key must be an object", "key", i);
      if (typeof k.key !== "string" || k.key === "" || k.key.length > 200)
        refuse("queue/invalid-payload", "key.key must be a string of 1-200 characters", "key.key", i);
      if (MODES.indexOf(k.mode) < 0)
        refuse("queue/invalid-payload", `key.mode must be one of ${MODES.join(", ")}`, "key.mode", i);
      const timed = k.mode === "throttle" || k.mode === "debounce";
      const ttlMs = timed ? Number(k.ttlMs) : 0;
      if (timed && !(Number.isFinite(ttlMs) && ttlMs >= 1))
        refuse("queue/invalid-payload", `key.ttlMs must be a number >= 1 for ${k.mode}`, "key.ttlMs", i);
      return { key: k.key, mode: k.mode, ttlMs: Math.trunc(ttlMs) };
    };
    // The job that holds a key: the key table's row (unique on queue + key) names it; a server
    // without the row (the other one, after a failover) finds the newest job of the key instead
    // (jobs replicate with their key). `until`: the end of its throttle window.
    const holder = (tx, queue, key) => {
      let row = null;
      try {
        row = tx.findFirstRecordByFilter(KEYS, "queue = {:q} && key = {:k}", { q: queue, k: key });
      } catch (_) {
        row = null;
      }
      let job = row === null ? null : find(tx, row.getString("job"));
      if (job === null) {
        const recs = tx.findRecordsByFilter(
          JOBS,
          "queue = {:q} && jobKey = {:k} && deleted = false",
          "-createdAt,-@rowid",
          1,
          0,
          { q: queue, k: key },
        );
        job = recs.length > 0 ? recs[0] : null;
      }
      const until = Math.max(
        row === null ? 0 : row.getFloat("until"),
        job === null ? 0 : job.getFloat("keyUntil"),
      );
      return {
        row: row,
        job: job,
        jobId: job !== null ? job.id : row !== null ? row.getString("job") : "",
        until: until,
      };
    };
    const saveKey = (tx, queue, key, jobId, now) => {
      let row = null;
      try {
        row = tx.findFirstRecordByFilter(KEYS, "queue = {:q} && key = {:k}", { q: queue, k: key.key });
      } catch (_) {
        row = new Record(tx.findCollectionByNameOrId(KEYS));
        row.set("queue", queue);
        row.set("key", key.key);
      }
      row.set("job", jobId);
      row.set("mode", key.mode);
      row.set("until", now + key.ttlMs);
      tx.save(row);
    };
    // Stores one job (idempotent by id; deduped by its key): the enqueue of one item.
    const enqueueOne = (tx, col, j, i, now) => {
      if (j === null || typeof j !== "object")
        refuse("queue/invalid-payload", "a job must be an object", "jobs", i);
      if (typeof j.id !== "string" || !ID.test(j.id))
        refuse("queue/invalid-payload", "id must be 15 characters of [a-z0-9]", "id", i);
      if (typeof j.queue !== "string" || j.queue === "" || j.queue.length > 200)
        refuse("queue/invalid-payload", "queue must be a name of 1-200 characters", "queue", i);
      const maxAttempts = int(j.maxAttempts, "maxAttempts", 1, i);
      const timeoutMs = int(j.timeoutMs === undefined ? 0 : j.timeoutMs, "timeoutMs", 0, i);
      const delayMs = int(j.delayMs === undefined ? 0 : j.delayMs, "delayMs", 0, i);
      let runAt = j.runAt === undefined || j.runAt === null ? now + delayMs : int(j.runAt, "runAt", 0, i);
      const priority = int(
        j.priority === undefined || j.priority === null ? 0 : j.priority,
        "priority",
        0,
        i,
      );
      if (priority > MAX_PRIORITY)
        refuse("queue/invalid-payload", `priority must be at most ${MAX_PRIORITY}`, "priority", i);
      const key = keyOf(j.key, i);
      const group = j.group === undefined || j.group === null ? "" : j.group;
      if (group !== "" && (typeof group !== "string" || group.length > 200 || group === EACH))
        refuse(
          "queue/invalid-payload",
          `group must be a string of 1-200 characters other than "${EACH}"`,
          "group",
          i,
        );
      const weight = j.weight === undefined || j.weight === null ? 1 : Number(j.weight);
      if (!(Number.isFinite(weight) && weight > 0))
        refuse("queue/invalid-payload", "weight must be a finite number > 0", "weight", i);
      const backoff = j.backoff === undefined || j.backoff === null ? {} : j.backoff;
      if (typeof backoff !== "object" || Array.isArray(backoff))
        refuse("queue/invalid-payload", "backoff must be an object", "backoff", i);
      if (j.payload === undefined) refuse("queue/invalid-payload", "payload is missing", "payload", i);
      bounded(j.payload, "payload", i);
      if (sqlNumber(tx, "SELECT COUNT(*) AS n FROM nxs_jobs WHERE id = {:id}", { id: j.id }) > 0)
        return { id: j.id, created: false };
      if (key !== null) {
        const held = holder(tx, j.queue, key.key);
        const h = held.job;
        if (key.mode === "simple" && h !== null && TERMINAL.indexOf(h.getString("state")) < 0)
          return { id: h.id, created: false, deduped: "ignored" };
        if (key.mode === "throttle" && held.until > now)
          return { id: held.jobId, created: false, deduped: "ignored" };
        if (key.mode === "debounce") {
          runAt = Math.max(runAt, now + key.ttlMs);
          if (h !== null && h.getString("state") === "waiting" && h.getFloat("attempt") === 0) {
            h.set("payload", j.payload);
            h.set("runAt", runAt);
            h.set("keyUntil", now + key.ttlMs);
            write(tx, h, now);
            saveKey(tx, j.queue, key, h.id, now);
            return { id: h.id, created: false, deduped: "replaced" };
          }
        }
      }
      const rec = new Record(col);
      rec.set("id", j.id);
      rec.set("queue", j.queue);
      rec.set("state", "waiting");
      rec.set("payload", j.payload);
      rec.set("runAt", runAt);
      rec.set("attempt", 0);
      rec.set("attemptsMade", 0);
      rec.set("maxAttempts", maxAttempts);
      rec.set("backoff", backoff);
      rec.set("timeoutMs", timeoutMs);
      rec.set("generation", 0);
      rec.set("epoch", 0);
      rec.set("priority", priority);
      if (group !== "") rec.set("groupKey", group);
      if (weight !== 1) rec.set("weight", weight);
      if (key !== null) {
        rec.set("jobKey", key.key);
        rec.set("keyMode", key.mode);
        rec.set("keyUntil", now + key.ttlMs);
      }
      rec.set("failures", []);
      rec.set("rev", 0);
      rec.set("createdAt", now);
      // Ready now, and no singleton key (the claim checks those): a parked worker takes it at once.
      const park =
        runAt <= now && (key === null || key.mode !== "singleton") ? takePark(tx, j.queue, now) : null;
      if (park !== null) {
        rec.set("state", "active");
        rec.set("attempt", 1);
        rec.set("attemptsMade", 1);
        rec.set("epoch", claimEpoch(tx, now));
        rec.set("worker", park.worker);
        rec.set("token", $security.randomString(24));
        rec.set("claimId", park.id);
        rec.set("leaseUntil", now + park.leaseMs);
      }
      write(tx, rec, now);
      if (key !== null) saveKey(tx, j.queue, key, j.id, now);
      return park === null ? { id: j.id, created: true } : { id: j.id, created: true, handedOff: true };
    };

    const pad = (v, w) =>
      String(Math.min(10 ** w - 1, Math.max(0, Math.trunc(Number(v) || 0)))).padStart(w, "0");
    const writeSchedule = (tx, rec, now) => {
      const rev = rec.getFloat("rev") + 1;
      rec.set("rev", rev);
      rec.set("updatedAt", now);
      rec.set(
        "version",
        `${pad(rec.getFloat("defRev"), 9)}.${pad(rec.getFloat("lastTick"), 15)}.${pad(rev, 9)}`,
      );
      tx.save(rec);
    };
    const rawSchedule = (rec) => ({
      queue: rec.getString("queue"),
      id: rec.getString("sid"),
      cron: rec.getString("cron"),
      tz: rec.getString("tz"),
      payload: jsonOf(rec, "payload"),
      limit: rec.getFloat("limit"),
      endDate: rec.getFloat("endDate"),
      job: jsonOf(rec, "job"),
      runs: rec.getFloat("runs"),
      lastTick: rec.getFloat("lastTick"),
      createdAt: rec.getFloat("createdAt"),
      updatedAt: rec.getFloat("updatedAt"),
    });

    // Flow control (src/flow.ts of @nxs-sync/queue holds the same rules; the conformance suite runs
    // both). A record per queue ("") and group ("*": each group without its own), its id a hash of
    // queue and group (the same on every server, as the client's ids of schedules).
    const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
    const hashId = (text) => {
      const hex = $security.sha256(text);
      let id = "";
      for (let i = 0; i < 15; i++) id += ALPHABET[parseInt(hex.substr(4 * i, 4), 16) % 36];
      return id;
    };
    const flowGroup = (g, each) => {
      const group = g === undefined || g === null ? "" : g;
      if (group === "" || (each && group === EACH)) return group;
      if (typeof group !== "string" || group.length > 200 || group === EACH)
        refuse(
          "queue/invalid-payload",
          each
            ? `group must be "", "${EACH}" or 1-200 characters`
            : `group must be "" or 1-200 characters other than "${EACH}" (pause the queue instead)`,
          "group",
        );
      return group;
    };
    const rawFlow = (rec) => {
      const out = {
        queue: rec.getString("queue"),
        group: rec.getString("groupKey"),
        paused: rec.getBool("paused"),
        pausedUntil: rec.getFloat("pausedUntil"),
        reason: rec.getString("reason"),
        updatedAt: rec.getFloat("updatedAt"),
      };
      if (rec.getFloat("concurrency") > 0) out.concurrency = rec.getFloat("concurrency");
      if (rec.getFloat("rateMax") > 0 && rec.getFloat("rateIntervalMs") > 0)
        out.rate = { max: rec.getFloat("rateMax"), intervalMs: rec.getFloat("rateIntervalMs") };
      return out;
    };
    const flowRecord = (tx, queue, group, now) => {
      const id = hashId(`nxs-flow\n${queue}\n${group}`);
      try {
        return tx.findRecordById(FLOW, id);
      } catch (_) {
        const rec = new Record(tx.findCollectionByNameOrId(FLOW));
        rec.set("id", id);
        rec.set("queue", queue);
        rec.set("groupKey", group);
        rec.set("createdAt", now);
        return rec;
      }
    };
    // version = updatedAt.rev (fixed width): of two servers' copies, the later write wins.
    const writeFlow = (tx, rec, now) => {
      const rev = rec.getFloat("rev") + 1;
      rec.set("rev", rev);
      rec.set("updatedAt", now);
      rec.set("version", `${pad(now, 15)}.${pad(rev, 9)}`);
      tx.save(rec);
    };
    // A timed pause of a queue or group until `until` at least (it never shortens a longer one).
    const pauseFor = (tx, queue, group, until, reason, now) => {
      const rec = flowRecord(tx, queue, group, now);
      rec.set("pausedUntil", Math.max(rec.getFloat("pausedUntil"), until));
      rec.set("reason", String(reason).slice(0, 2000));
      writeFlow(tx, rec, now);
      return rec;
    };
    // Whether a queue has flow records (limits, pauses): one indexed SQL count per queue and request.
    const flowCounts = {};
    const hasFlow = (tx, queue) => {
      if (flowCounts[queue] === undefined)
        flowCounts[queue] = sqlNumber(tx, "SELECT COUNT(*) AS n FROM nxs_queue_flow WHERE queue = {:q}", {
          q: queue,
        });
      return flowCounts[queue] > 0;
    };
    const RATE_BUCKETS = 200;
    // The gate of one claim: null when the queue has no flow records (nothing more is read).
    const flowGate = (tx, queue, now) => {
      if (!hasFlow(tx, queue)) return null;
      const recs = tx.findRecordsByFilter(FLOW, "queue = {:q}", "", 1000, 0, { q: queue });
      if (recs.length === 0) return null;
      const byGroup = {};
      let counts = false;
      let rates = false;
      for (const r of recs) {
        const f = rawFlow(r);
        byGroup[f.group] = f;
        if (f.concurrency !== undefined) counts = true;
        if (f.rate !== undefined) rates = true;
      }
      const queueRecord = byGroup[""];
      const each = byGroup[EACH];
      const recordOf = (g) => (byGroup[g] !== undefined ? byGroup[g] : each);
      const active = {};
      let total = 0;
      if (counts) {
        const rows = arrayOf(new DynamicModel({ g: "", n: 0 }));
        tx.db()
          .newQuery(
            "SELECT groupKey AS g, COUNT(*) AS n FROM nxs_jobs WHERE queue = {:q} AND state = 'active' AND leaseUntil > {:now} AND deleted = FALSE GROUP BY groupKey",
          )
          .bind({ q: queue, now: now })
          .all(rows);
        for (const r of rows) {
          total += Number(r.n);
          if (String(r.g) !== "") active[String(r.g)] = Number(r.n);
        }
      }
      const windows = {};
      const rateRecs = {};
      if (rates) {
        for (const r of tx.findRecordsByFilter(RATES, "queue = {:q}", "", 10000, 0, { q: queue })) {
          const log = jsonOf(r, "log");
          windows[r.getString("groupKey")] = Array.isArray(log) ? log : [];
          rateRecs[r.getString("groupKey")] = r;
        }
      }
      const touched = {};
      let wait = null;
      const waitFor = (ms) => {
        const m = Math.max(1, Math.ceil(ms));
        if (wait === null || m < wait) wait = m;
      };
      const windowOf = (key, intervalMs) => {
        const w = windows[key] || [];
        let drop = 0;
        while (drop < w.length && w[drop][0] <= now - intervalMs) drop++;
        if (drop > 0) {
          w.splice(0, drop);
          touched[key] = true;
        }
        windows[key] = w;
        return w;
      };
      const check = (r, key, weight) => {
        if (r === undefined) return "ok";
        if (r.paused) return "held";
        if (r.pausedUntil > now) {
          waitFor(r.pausedUntil - now);
          return "held";
        }
        if (r.concurrency !== undefined && (key === "" ? total : active[key] || 0) >= r.concurrency)
          return "held";
        const rate = r.rate;
        if (rate === undefined) return "ok";
        if (weight > rate.max) return "over-limit";
        const w = windowOf(key, rate.intervalMs);
        let sum = 0;
        for (const e of w) sum += e[1];
        if (sum + weight <= rate.max) return "ok";
        let freed = 0;
        for (const e of w) {
          freed += e[1];
          if (sum - freed + weight <= rate.max) {
            waitFor(e[0] + rate.intervalMs - now);
            break;
          }
        }
        return "held";
      };
      const admit = (group, weight) => {
        const q = check(queueRecord, "", weight);
        if (q !== "ok" || group === "") return q;
        return check(recordOf(group), group, weight);
      };
      const append = (key, intervalMs, weight) => {
        const w = windowOf(key, intervalMs);
        const last = w.length > 0 ? w[w.length - 1] : null;
        if (last !== null && last[0] >= now - intervalMs / RATE_BUCKETS)
          w[w.length - 1] = [now, last[1] + weight];
        else w.push([now, weight]);
        touched[key] = true;
      };
      return {
        closed: () => admit("", Number.MIN_VALUE) === "held",
        heldGroups: () => {
          const groups = {};
          for (const g in byGroup) if (g !== "" && g !== EACH) groups[g] = true;
          if (each !== undefined) {
            for (const g in active) groups[g] = true;
            for (const g in windows) if (g !== "") groups[g] = true;
          }
          return Object.keys(groups).filter((g) => check(recordOf(g), g, Number.MIN_VALUE) !== "ok");
        },
        admit: admit,
        take: (group, weight) => {
          total++;
          if (queueRecord !== undefined && queueRecord.rate !== undefined)
            append("", queueRecord.rate.intervalMs, weight);
          if (group === "") return;
          active[group] = (active[group] || 0) + 1;
          const r = recordOf(group);
          if (r !== undefined && r.rate !== undefined) append(group, r.rate.intervalMs, weight);
        },
        waitMs: () => wait,
        // Stores the windows this claim changed (a local table: each server counts its own claims).
        save: () => {
          for (const key in touched) {
            let rec = rateRecs[key];
            if (rec === undefined) {
              rec = new Record(tx.findCollectionByNameOrId(RATES));
              rec.set("id", hashId(`nxs-rate\n${queue}\n${key}`));
              rec.set("queue", queue);
              rec.set("groupKey", key);
            }
            rec.set("log", windows[key]);
            tx.save(rec);
          }
        },
      };
    };

    // Hand-off (hook piece 6): a worker whose claim left it free slots is parked on this server
    // until its park's ttl passes or it claims again; a ready job added meanwhile is claimed for it
    // in the add's own transaction (claimId = the park's id), and reaches it as that job's
    // realtime event: one request and one SSE hop from add to start instead of two requests. A
    // job handed to a worker that never saw it is answered by the worker's next claim (or its
    // unpark), like the jobs of a claim whose answer was lost. Parks live in this process's memory
    // ($app.store()): a restart forgets them. Read and written inside transactions only, which
    // SQLite's one writer runs one at a time.
    const PARK_ID = /^park\.[A-Za-z0-9_-]{1,58}$/;
    const MAX_PARK_TTL_MS = 600000;
    const parksKey = (queue) => `nxs.queue.parks\n${queue}`;
    const parksOf = (queue, now) => {
      const text = $app.store().get(parksKey(queue));
      if (!text) return [];
      let list = null;
      try {
        list = JSON.parse(String(text));
      } catch (_) {
        list = null;
      }
      return Array.isArray(list) ? list.filter((p) => p && p.until > now && p.slots > 0) : [];
    };
    const saveParks = (queue, list) => {
      if (list.length === 0) $app.store().remove(parksKey(queue));
      else $app.store().set(parksKey(queue), JSON.stringify(list));
    };
    // A claim's `park` ({ id, ttlMs, holding }), checked, or null.
    const parkOf = (v) => {
      if (v === undefined || v === null) return null;
      if (typeof v !== "object" || Array.isArray(v))
        refuse("queue/invalid-payload", "park must be an object", "park");
      if (typeof v.id !== "string" || !PARK_ID.test(v.id))
        refuse(
          "queue/invalid-payload",
          "park.id must be park. and 1-58 characters of [A-Za-z0-9_-]",
          "park.id",
        );
      const ttlMs = int(v.ttlMs, "park.ttlMs", 1);
      const holding = v.holding === undefined ? [] : v.holding;
      if (!Array.isArray(holding) || holding.length > 1000 || holding.some((h) => typeof h !== "string"))
        refuse(
          "queue/invalid-payload",
          "park.holding must be an array of at most 1000 job ids",
          "park.holding",
        );
      return { id: v.id, ttlMs: Math.min(ttlMs, MAX_PARK_TTL_MS), holding: holding };
    };
    // The jobs handed to a park that its worker does not hold (by its list), still under their lease.
    const handedTo = (tx, queue, worker, park, now) => {
      const rows = arrayOf(new DynamicModel({ id: "" }));
      tx.db()
        .newQuery(
          "SELECT id FROM nxs_jobs WHERE queue = {:q} AND state = 'active' AND claimId = {:c} AND worker = {:w} AND leaseUntil > {:now} ORDER BY runAt, rowid LIMIT 1000",
        )
        .bind({ q: queue, c: park.id, w: worker, now: now })
        .all(rows);
      const ids = [];
      for (const r of rows) if (park.holding.indexOf(String(r.id)) < 0) ids.push(String(r.id));
      if (ids.length === 0) return [];
      const byId = {};
      for (const rec of tx.findRecordsByIds(JOBS, ids)) if (!rec.getBool("deleted")) byId[rec.id] = rec;
      return ids.filter((id) => byId[id] !== undefined).map((id) => byId[id]);
    };
    // Whether a queue has flow records (limits, pauses): its jobs are never handed off (the claim's
    // flow gate decides). One read per queue and request.
    const hasNoFlow = (tx, queue) => !hasFlow(tx, queue);
    // The park a new ready job of `queue` goes to (a slot taken), or null. Parked workers take
    // turns: the one served moves to the end.
    const takePark = (tx, queue, now) => {
      const parks = parksOf(queue, now);
      if (parks.length === 0 || !hasNoFlow(tx, queue)) return null;
      const p = parks.shift();
      p.slots -= 1;
      if (p.slots > 0) parks.push(p);
      saveParks(queue, parks);
      return p;
    };

    const ops = {
      enqueue: (tx, now) => {
        const jobs = items("jobs");
        const col = tx.findCollectionByNameOrId(JOBS);
        const results = [];
        jobs.forEach((j, i) => {
          results.push(enqueueOne(tx, col, j, i, now));
        });
        return { results: results };
      },

      claim: (tx, now) => {
        const queue = String(body.queue || "");
        const worker = String(body.worker || "").slice(0, 200);
        const park = parkOf(body.park);
        const out = claimJobs(tx, now);
        if (park !== null) {
          // This worker's park: replaced by this claim's free slots (none: it is not parked).
          const max = Math.min(int(body.max, "max", 1), MAX_BATCH);
          const free = max - out.jobs.length;
          const parks = parksOf(queue, now).filter((p) => p.worker !== worker);
          if (free > 0 && out.waitMs === undefined && hasNoFlow(tx, queue)) {
            const leaseMs = int(body.leaseMs, "leaseMs", 1);
            parks.push({
              id: park.id,
              worker: worker,
              slots: free,
              until: now + park.ttlMs,
              leaseMs: leaseMs,
            });
          }
          saveParks(queue, parks);
        }
        return out;
      },

      // A worker leaves its park (it closes): no job is handed to it any more; the jobs handed to it
      // that it does not hold are answered (its close releases them).
      unpark: (tx, now) => {
        const queue = String(body.queue || "");
        const worker = String(body.worker || "").slice(0, 200);
        if (queue === "") refuse("queue/invalid-payload", "queue is missing", "queue");
        const park = parkOf(body.park);
        if (park === null) refuse("queue/invalid-payload", "park is missing", "park");
        saveParks(
          queue,
          parksOf(queue, now).filter((p) => p.worker !== worker || p.id !== park.id),
        );
        const jobs = handedTo(tx, queue, worker, park, now).map((rec) => ({
          job: raw(rec),
          token: rec.getString("token"),
          stalled: false,
        }));
        const local = localEpoch(tx);
        return { jobs: jobs, dead: [], epoch: local === null ? 0 : local.getFloat("epoch") };
      },

      "claim-jobs": (tx, now) => {
        const queue = String(body.queue || "");
        const worker = String(body.worker || "").slice(0, 200);
        if (queue === "") refuse("queue/invalid-payload", "queue is missing", "queue");
        const leaseMs = int(body.leaseMs, "leaseMs", 1);
        const max = Math.min(int(body.max, "max", 1), MAX_BATCH);
        const epoch = claimEpoch(tx, now);
        const jobs = [];
        const dead = [];
        // The jobs handed to this worker's park that it has not seen (their events were lost).
        const park = parkOf(body.park);
        if (park !== null) {
          for (const rec of handedTo(tx, queue, worker, park, now))
            jobs.push({ job: raw(rec), token: rec.getString("token"), stalled: false });
        }
        // A claim sent again (its answer was lost) gets the jobs its first sending claimed, still
        // held under their tokens, before new ones: no job sits claimed by nobody until its lease lapses.
        // A first sending (`firstSend`, a fresh claimId) has none: the look-up is skipped.
        const claimId = String(body.claimId || "").slice(0, 64);
        if (claimId !== "" && body.firstSend !== true) {
          const again = tx.findRecordsByFilter(
            JOBS,
            "queue = {:q} && state = 'active' && claimId = {:c} && worker = {:w} && leaseUntil > {:now}",
            "runAt,@rowid",
            max,
            0,
            { q: queue, c: claimId, w: worker, now: now },
          );
          for (const rec of again)
            jobs.push({ job: raw(rec), token: rec.getString("token"), stalled: false });
        }
        // Flow control: a paused queue, or one at its concurrency, claims nothing new.
        const gate = flowGate(tx, queue, now);
        if (gate !== null && gate.closed()) {
          const out = { jobs: jobs, dead: dead, epoch: epoch };
          if (gate.waitMs() !== null) out.waitMs = gate.waitMs();
          return out;
        }
        let flowHeld = false;
        // singleton: keys with a live attempt (a job of one is skipped: it stays waiting). Skipped
        // rows stay first in their range: the next round reads past them (offsets).
        const liveKeys = {};
        const keyIsLive = (rec) => {
          const k = rec.getString("jobKey");
          if (rec.getString("keyMode") !== "singleton" || k === "") return false;
          if (liveKeys[k] === undefined) {
            liveKeys[k] =
              tx.findRecordsByFilter(
                JOBS,
                "queue = {:q} && jobKey = {:k} && state = 'active' && leaseUntil > {:now} && id != {:id}",
                "",
                1,
                0,
                { q: queue, k: k, now: now, id: rec.id },
              ).length > 0;
          }
          return liveKeys[k];
        };
        let skipStalled = 0;
        let skipWaiting = 0;
        // What is due at all, by one SQL probe of the two indexes: a claim finds out it has
        // nothing to take without the record queries below (most claims of an idle queue).
        const due = new DynamicModel({ s: 0, w: 0 });
        tx.db()
          .newQuery(
            "SELECT EXISTS(SELECT 1 FROM nxs_jobs WHERE queue = {:q} AND state = 'active' AND leaseUntil <= {:now}) AS s, EXISTS(SELECT 1 FROM nxs_jobs WHERE queue = {:q} AND state = 'waiting' AND runAt <= {:now}) AS w",
          )
          .bind({ q: queue, now: now })
          .one(due);
        const anyStalled = Number(due.s) > 0;
        const anyWaiting = Number(due.w) > 0;
        // The waiting query leaves out the jobs of keys already held (up to 100 keys; past that,
        // and for keys taken by this call, the rows are skipped one by one): a backlog of one
        // singleton key never hides the ready jobs behind it.
        const heldRows = arrayOf(new DynamicModel({ k: "" }));
        if (anyWaiting) {
          tx.db()
            .newQuery(
              "SELECT DISTINCT jobKey AS k FROM nxs_jobs WHERE queue = {:q} AND state = 'active' AND keyMode = 'singleton' AND jobKey != '' AND leaseUntil > {:now} LIMIT 100",
            )
            .bind({ q: queue, now: now })
            .all(heldRows);
        }
        const waitingParams = { q: queue, now: now };
        let notHeld = "";
        heldRows.forEach((r, i) => {
          waitingParams[`h${i}`] = String(r.k);
          notHeld += ` && (keyMode != 'singleton' || jobKey != {:h${i}})`;
        });
        // Groups held by a pause or a limit are left out of both queries (up to 100; past that,
        // and for groups this call fills, rows are skipped one by one).
        const stalledParams = { q: queue, now: now };
        let notFlowHeld = "";
        if (gate !== null) {
          gate
            .heldGroups()
            .slice(0, 100)
            .forEach((g, i) => {
              waitingParams[`g${i}`] = g;
              stalledParams[`g${i}`] = g;
              notFlowHeld += ` && groupKey != {:g${i}}`;
              flowHeld = true;
            });
        }
        // Bounded: a batch of malformed or spent stalled jobs is handled, then the next call goes on.
        for (let round = 0; round < 8 && jobs.length < max; round++) {
          // Two queries, each an ordered range of one index ((queue, state, leaseUntil), then
          // (queue, state, runAt)), reading only the rows it returns: one query with an OR of the
          // two read every due job of the queue to sort them, a cost that grew with the backlog.
          const want = max - jobs.length;
          const stalledRecs = !anyStalled
            ? []
            : tx.findRecordsByFilter(
                JOBS,
                `queue = {:q} && state = 'active' && leaseUntil <= {:now}${notFlowHeld}`,
                "leaseUntil,@rowid",
                want,
                skipStalled,
                stalledParams,
              );
          const waitingRecs =
            !anyWaiting || stalledRecs.length >= want
              ? []
              : tx.findRecordsByFilter(
                  JOBS,
                  `queue = {:q} && state = 'waiting' && runAt <= {:now}${notHeld}${notFlowHeld}`,
                  "rank,@rowid",
                  want - stalledRecs.length,
                  skipWaiting,
                  waitingParams,
                );
          const found = stalledRecs.length + waitingRecs.length;
          const recs = stalledRecs.concat(waitingRecs).filter((r) => !r.getBool("deleted"));
          if (recs.length === 0) break;
          for (const rec of recs) {
            if (keyIsLive(rec)) {
              if (rec.getString("state") === "active") skipStalled++;
              else skipWaiting++;
              continue;
            }
            const group = rec.getString("groupKey");
            const weight = rec.getFloat("weight") > 0 ? rec.getFloat("weight") : 1;
            const verdict = gate === null ? "ok" : gate.admit(group, weight);
            if (verdict === "held") {
              flowHeld = true;
              if (rec.getString("state") === "active") skipStalled++;
              else skipWaiting++;
              continue;
            }
            if (verdict === "over-limit") {
              const message = `job ${rec.id} weighs ${weight}, more than its rate limit allows in a whole window: it could never run`;
              pushFailure(rec, "queue/over-limit", message, now);
              rec.set("reason", "queue/over-limit");
              finish(rec, "failed", now);
              write(tx, rec, now);
              dead.push({ id: rec.id, reason: "queue/over-limit" });
              continue;
            }
            const bad = malformed(rec);
            if (bad !== "") {
              if (!Array.isArray(jsonOf(rec, "failures"))) rec.set("failures", []);
              for (const f of ["attempt", "attemptsMade", "generation", "epoch", "rev"]) {
                const v = rec.getFloat(f);
                if (!(Number.isFinite(v) && v >= 0)) rec.set(f, 0);
              }
              pushFailure(rec, "queue/invalid-payload", `malformed job record: ${bad}`, now);
              rec.set("reason", `queue/invalid-payload: malformed job record: ${bad}`);
              finish(rec, "failed", now);
              write(tx, rec, now);
              dead.push({ id: rec.id, reason: rec.getString("reason") });
              continue;
            }
            const stalled = rec.getString("state") === "active";
            if (stalled && rec.getBool("cancelRequested")) {
              // Cancelled while its worker was gone: it ends cancelled (the reason was set by cancel).
              finish(rec, "cancelled", now);
              write(tx, rec, now);
              continue;
            }
            if (stalled) {
              pushFailure(
                rec,
                "queue/stalled",
                `worker ${rec.getString("worker") || "?"} lost its lease on attempt ${rec.getFloat("attempt")}`,
                now,
              );
              if (rec.getFloat("attemptsMade") >= rec.getFloat("maxAttempts")) {
                rec.set("reason", "queue/stalled");
                finish(rec, "failed", now);
                write(tx, rec, now);
                dead.push({ id: rec.id, reason: rec.getString("reason") });
                continue;
              }
            }
            const token = $security.randomString(24);
            rec.set("state", "active");
            rec.set("attempt", rec.getFloat("attempt") + 1);
            rec.set("attemptsMade", rec.getFloat("attemptsMade") + 1);
            rec.set("epoch", epoch);
            rec.set("worker", worker);
            rec.set("token", token);
            rec.set("claimId", claimId);
            rec.set("leaseUntil", now + leaseMs);
            rec.set("cancelRequested", false);
            rec.set("progress", null);
            write(tx, rec, now);
            if (rec.getString("keyMode") === "singleton" && rec.getString("jobKey") !== "")
              liveKeys[rec.getString("jobKey")] = true;
            if (gate !== null) gate.take(group, weight);
            jobs.push({ job: raw(rec), token: token, stalled: stalled });
          }
          // Fewer than asked for: every ready job was seen, another round would find none.
          if (found < want) break;
        }
        const out = { jobs: jobs, dead: dead, epoch: epoch };
        if (gate !== null) {
          gate.save();
          if (flowHeld && jobs.length < max && gate.waitMs() !== null) out.waitMs = gate.waitMs();
        }
        return out;
      },

      heartbeat: (tx, now) => {
        const beats = items("beats");
        const job = findAll(tx, beats.map(idOf));
        return {
          results: beats.map((b, i) => {
            const rec = job(b.id);
            const leaseMs = int(b.leaseMs, "leaseMs", 1, i);
            if (!holds(rec, b.token, now)) return { ok: false, code: "queue/lease-lost" };
            rec.set("leaseUntil", now + leaseMs);
            if (b.progress !== undefined) rec.set("progress", b.progress);
            write(tx, rec, now);
            return { ok: true, leaseUntil: now + leaseMs, cancelRequested: rec.getBool("cancelRequested") };
          }),
        };
      },

      settle: (tx, now) => {
        const list = items("settlements");
        const job = findAll(tx, list.map(idOf));
        return {
          results: list.map((s, i) => {
            const rec = job(s.id);
            if (!holds(rec, s.token, now)) return { ok: false, code: "queue/lease-lost" };
            switch (s.kind) {
              case "complete":
                if (s.result !== undefined) rec.set("result", bounded(s.result, "result", i));
                finish(rec, "completed", now);
                break;
              case "fail": {
                const code = String(s.code || "error").slice(0, 200);
                const message = String(s.message || "").slice(0, 2000);
                pushFailure(rec, code, message, now);
                const retry =
                  s.retryDelayMs !== undefined &&
                  s.retryDelayMs !== null &&
                  rec.getFloat("attemptsMade") < rec.getFloat("maxAttempts");
                if (retry) {
                  endLease(rec);
                  rec.set("state", "waiting");
                  rec.set("runAt", now + int(s.retryDelayMs, "retryDelayMs", 0, i));
                } else {
                  rec.set("reason", code);
                  finish(rec, "failed", now);
                }
                break;
              }
              case "retry-later":
              case "release":
                if (s.kind === "retry-later" && s.pauseGroup === true && Number(s.delayMs) > 0)
                  pauseFor(
                    tx,
                    rec.getString("queue"),
                    rec.getString("groupKey"),
                    now + int(s.delayMs, "delayMs", 0, i),
                    `job ${rec.id}: retry later (${s.delayMs} ms)`,
                    now,
                  );
                endLease(rec);
                rec.set("state", "waiting");
                rec.set("runAt", s.kind === "release" ? now : now + int(s.delayMs, "delayMs", 0, i));
                rec.set("attemptsMade", Math.max(0, rec.getFloat("attemptsMade") - 1));
                break;
              case "cancelled":
                if (rec.getString("reason") === "") rec.set("reason", "cancelled");
                finish(rec, "cancelled", now);
                break;
              default:
                refuse(
                  "queue/invalid-payload",
                  `unknown settlement kind ${JSON.stringify(s.kind)}`,
                  "kind",
                  i,
                );
            }
            write(tx, rec, now);
            return { ok: true, state: rec.getString("state") };
          }),
        };
      },

      // A worker's round trip between jobs: its settlements, then its claim, in one transaction.
      "settle-and-claim": (tx, now) => {
        const settled = ops.settle(tx, now).results;
        const claimed = ops.claim(tx, now);
        return { settled: settled, jobs: claimed.jobs, dead: claimed.dead, epoch: claimed.epoch };
      },

      cancel: (tx, now) => {
        const rec = find(tx, body.id);
        if (rec === null) return { state: null };
        const state = rec.getString("state");
        if (state === "waiting") {
          rec.set("reason", String(body.reason || "cancelled").slice(0, 2000));
          finish(rec, "cancelled", now);
          write(tx, rec, now);
        } else if (state === "active" && !rec.getBool("cancelRequested")) {
          rec.set("cancelRequested", true);
          rec.set("reason", String(body.reason || "cancelled").slice(0, 2000));
          write(tx, rec, now);
        }
        return { state: rec.getString("state") };
      },

      redrive: (tx, now) => {
        const queue = String(body.queue || "");
        const limit = Math.min(body.limit === undefined ? MAX_BATCH : int(body.limit, "limit", 0), MAX_BATCH);
        let recs;
        if (Array.isArray(body.ids)) {
          recs = body.ids
            .slice(0, limit)
            .map((id) => find(tx, id))
            .filter((r) => r !== null && r.getString("queue") === queue && r.getString("state") === "failed");
        } else {
          recs = tx.findRecordsByFilter(
            JOBS,
            "queue = {:q} && state = 'failed' && deleted = false",
            "id",
            limit,
            0,
            { q: queue },
          );
        }
        for (const rec of recs) {
          rec.set("state", "waiting");
          rec.set("generation", rec.getFloat("generation") + 1);
          rec.set("attempt", 0);
          rec.set("attemptsMade", 0);
          rec.set("runAt", now);
          rec.set("reason", "");
          rec.set("finishedAt", 0);
          rec.set("token", "");
          rec.set("result", null);
          rec.set("progress", null);
          if (rec.getFloat("maxAttempts") < 1) rec.set("maxAttempts", 1);
          write(tx, rec, now);
        }
        return { moved: recs.length };
      },

      clean: (tx, now) => {
        const queue = String(body.queue || "");
        const states = Array.isArray(body.states) ? body.states.filter((s) => TERMINAL.indexOf(s) >= 0) : [];
        const before = int(body.before, "before", 0);
        const limit = Math.min(body.limit === undefined ? MAX_BATCH : int(body.limit, "limit", 0), MAX_BATCH);
        if (states.length === 0 || limit === 0) return { deleted: 0 };
        const params = { q: queue, before: before };
        const ors = states.map((s, i) => {
          params[`s${i}`] = s;
          return `state = {:s${i}}`;
        });
        const recs = tx.findRecordsByFilter(
          JOBS,
          `queue = {:q} && deleted = false && finishedAt > 0 && finishedAt < {:before} && (${ors.join(" || ")})`,
          "finishedAt,id",
          limit,
          0,
          params,
        );
        // A delete is a tombstone (it replicates and wins over any live copy); the bulk goes.
        for (const rec of recs) {
          rec.set("deleted", true);
          rec.set("payload", null);
          rec.set("result", null);
          rec.set("progress", null);
          write(tx, rec, now);
        }
        return { deleted: recs.length };
      },

      takeover: (tx, now) => takeover(tx, now, 2),

      // Schedules: one record per (queue, id), its record id chosen by the client (a hash of both,
      // the same on every server). `version` = defRev.lastTick.rev, fixed width: a put or remove
      // outranks every fire before it, and a later fire outranks an earlier one.
      "schedule-put": (tx, now) => {
        const spec = body.spec;
        if (spec === null || typeof spec !== "object" || Array.isArray(spec))
          refuse("queue/invalid-payload", "spec must be an object", "spec");
        if (typeof body.id !== "string" || !ID.test(body.id))
          refuse("queue/invalid-payload", "id must be 15 characters of [a-z0-9]", "id");
        if (typeof spec.queue !== "string" || spec.queue === "")
          refuse("queue/invalid-payload", "spec.queue is missing", "queue");
        if (typeof spec.id !== "string" || spec.id === "" || spec.id.length > 100)
          refuse("queue/invalid-payload", "spec.id must be 1-100 characters", "id");
        if (typeof spec.cron !== "string" || spec.cron === "" || spec.cron.length > 200)
          refuse("queue/invalid-payload", "spec.cron must be 1-200 characters", "cron");
        if (spec.job === null || typeof spec.job !== "object")
          refuse("queue/invalid-payload", "spec.job is missing", "job");
        int(spec.job.maxAttempts, "job.maxAttempts", 1);
        bounded(spec.payload === undefined ? null : spec.payload, "payload");
        let rec = null;
        try {
          rec = tx.findRecordById(SCHEDULES, body.id);
        } catch (_) {
          rec = null;
        }
        if (rec === null) {
          rec = new Record(tx.findCollectionByNameOrId(SCHEDULES));
          rec.set("id", body.id);
          rec.set("createdAt", now);
        } else if (rec.getString("queue") !== spec.queue || rec.getString("sid") !== spec.id) {
          refuse("queue/invalid-payload", "the record id belongs to another schedule", "id");
        }
        if (rec.getBool("removed")) {
          // Scheduled again after a removal: a new schedule (count, cursor and start reset).
          rec.set("runs", 0);
          rec.set("lastTick", 0);
          rec.set("createdAt", now);
        }
        rec.set("queue", spec.queue);
        rec.set("sid", spec.id);
        rec.set("cron", spec.cron);
        rec.set("tz", typeof spec.tz === "string" ? spec.tz : "");
        rec.set("payload", spec.payload === undefined ? null : spec.payload);
        rec.set("limit", spec.limit === undefined || spec.limit === null ? 0 : int(spec.limit, "limit", 1));
        rec.set(
          "endDate",
          spec.endDate === undefined || spec.endDate === null ? 0 : int(spec.endDate, "endDate", 0),
        );
        rec.set("job", spec.job);
        rec.set("removed", false);
        rec.set("defRev", rec.getFloat("defRev") + 1);
        writeSchedule(tx, rec, now);
        return { schedule: rawSchedule(rec) };
      },

      "schedule-remove": (tx, now) => {
        const recs = tx.findRecordsByFilter(
          SCHEDULES,
          "queue = {:q} && sid = {:s} && removed = false",
          "",
          1,
          0,
          { q: String(body.queue || ""), s: String(body.sid || "") },
        );
        if (recs.length === 0) return { removed: false };
        const rec = recs[0];
        rec.set("removed", true);
        rec.set("defRev", rec.getFloat("defRev") + 1);
        writeSchedule(tx, rec, now);
        return { removed: true };
      },

      "schedule-list": (tx) => {
        const recs = tx.findRecordsByFilter(SCHEDULES, "queue = {:q} && removed = false", "sid", 1000, 0, {
          q: String(body.queue || ""),
        });
        return { schedules: recs.map(rawSchedule) };
      },

      // One tick of one schedule, atomically: the job (id given: the same on every process and
      // server for one tick) is stored unless it exists, and the cursor moves to the tick.
      "schedule-fire": (tx, now) => {
        const tick = int(body.tick, "tick", 1);
        const recs = tx.findRecordsByFilter(
          SCHEDULES,
          "queue = {:q} && sid = {:s} && removed = false",
          "",
          1,
          0,
          { q: String(body.queue || ""), s: String(body.sid || "") },
        );
        if (recs.length === 0) return { fired: false, reason: "gone" };
        const rec = recs[0];
        if (tick <= rec.getFloat("lastTick")) return { fired: false, reason: "past" };
        const limit = rec.getFloat("limit");
        if (limit > 0 && rec.getFloat("runs") >= limit) return { fired: false, reason: "limit" };
        const job = jsonOf(rec, "job") || {};
        const r = enqueueOne(
          tx,
          tx.findCollectionByNameOrId(JOBS),
          {
            id: body.jobId,
            queue: rec.getString("queue"),
            payload: jsonOf(rec, "payload"),
            runAt: tick,
            maxAttempts: job.maxAttempts,
            backoff: job.backoff,
            timeoutMs: job.timeoutMs,
            priority: job.priority,
          },
          0,
          now,
        );
        rec.set("lastTick", tick);
        // A tick's job found stored (replicated from the other server) is a run of it too.
        rec.set("runs", rec.getFloat("runs") + 1);
        writeSchedule(tx, rec, now);
        return r.created ? { fired: true } : { fired: false, reason: "exists" };
      },

      "flow-set": (tx, now) => {
        const queue = String(body.queue || "");
        if (queue === "") refuse("queue/invalid-payload", "queue is missing", "queue");
        const group = flowGroup(body.group, true);
        const limits = body.limits;
        if (limits === null || typeof limits !== "object" || Array.isArray(limits))
          refuse("queue/invalid-payload", "limits must be an object", "limits");
        const concurrency =
          limits.concurrency === undefined || limits.concurrency === null
            ? 0
            : int(limits.concurrency, "concurrency", 1);
        let rateMax = 0;
        let rateIntervalMs = 0;
        if (limits.rate !== undefined && limits.rate !== null) {
          rateMax = Number(limits.rate.max);
          if (!(Number.isFinite(rateMax) && rateMax > 0))
            refuse("queue/invalid-payload", "rate.max must be a finite number > 0", "rate.max");
          rateIntervalMs = int(limits.rate.intervalMs, "rate.intervalMs", 1);
          if (rateIntervalMs > MAX_RATE_INTERVAL_MS)
            refuse(
              "queue/invalid-payload",
              `rate.intervalMs must be at most ${MAX_RATE_INTERVAL_MS}`,
              "rate.intervalMs",
            );
        }
        const rec = flowRecord(tx, queue, group, now);
        rec.set("concurrency", concurrency);
        rec.set("rateMax", rateMax);
        rec.set("rateIntervalMs", rateIntervalMs);
        writeFlow(tx, rec, now);
        return { flow: rawFlow(rec) };
      },

      "flow-pause": (tx, now) => {
        const queue = String(body.queue || "");
        if (queue === "") refuse("queue/invalid-payload", "queue is missing", "queue");
        const group = flowGroup(body.group, false);
        const reason = body.reason === undefined || body.reason === null ? "paused" : String(body.reason);
        if (body.forMs !== undefined && body.forMs !== null) {
          const forMs = Number(body.forMs);
          if (!(Number.isFinite(forMs) && forMs >= 1))
            refuse("queue/invalid-payload", "forMs must be a number >= 1", "forMs");
          return { flow: rawFlow(pauseFor(tx, queue, group, now + forMs, reason, now)) };
        }
        const rec = flowRecord(tx, queue, group, now);
        rec.set("paused", true);
        rec.set("reason", reason.slice(0, 2000));
        writeFlow(tx, rec, now);
        return { flow: rawFlow(rec) };
      },

      "flow-resume": (tx, now) => {
        const queue = String(body.queue || "");
        if (queue === "") refuse("queue/invalid-payload", "queue is missing", "queue");
        const rec = flowRecord(tx, queue, flowGroup(body.group, false), now);
        rec.set("paused", false);
        rec.set("pausedUntil", 0);
        rec.set("reason", "");
        writeFlow(tx, rec, now);
        return { flow: rawFlow(rec) };
      },

      "flow-list": (tx) => {
        const recs = tx.findRecordsByFilter(FLOW, "queue = {:q}", "groupKey", 1000, 0, {
          q: String(body.queue || ""),
        });
        return { flows: recs.map(rawFlow) };
      },

      counts: (tx, now) => {
        const queue = String(body.queue || "");
        const out = { waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 0, delayed: 0 };
        const rows = arrayOf(new DynamicModel({ state: "", delayed: 0, n: 0 }));
        tx.db()
          .newQuery(
            "SELECT state, (state = 'waiting' AND runAt > {:now}) AS delayed, COUNT(*) AS n FROM nxs_jobs WHERE queue = {:q} AND deleted = FALSE GROUP BY 1, 2",
          )
          .bind({ q: queue, now: now })
          .all(rows);
        for (const r of rows) {
          if (STATES.indexOf(r.state) < 0) continue;
          if (Number(r.delayed) === 1) out.delayed += Number(r.n);
          else out[r.state] += Number(r.n);
        }
        return out;
      },
    };

    // The claim proper (the `claim` op wraps it with the worker's park): not an op of its own.
    const claimJobs = ops["claim-jobs"];
    delete ops["claim-jobs"];
    const fn = ops[op];
    if (fn === undefined) return e.json(404, { status: 404, message: `no queue operation ${op}`, data: {} });
    let answer = null;
    try {
      $app.runInTransaction((tx) => {
        answer = fn(tx, Date.now());
      });
    } catch (err) {
      if (refusal !== null) return e.json(400, { status: 400, message: refusal.message, data: refusal });
      throw err;
    }
    return e.json(200, answer);
  },
  $apis.requireAuth("nxs_nodes"),
);

// Every replicator's copy of a job, checked against the row as it is now, right before it is
// stored (the routes' own writes always raise the version and are not checked here):
// - A stale copy is dropped: the replicator reads a server's copy, merges, then writes the winner
//   with a plain update; a claim committed here meanwhile would be overwritten by an older copy
//   (the claim and its token erased). A copy whose version is below the stored one is not written
//   (no error: the replicator's next round compares again and copies the newer one the other way).
//   A tombstone is always written, and a tombstoned row is never revived.
// - A duplicate across servers is recorded: when the incoming copy supersedes an attempt that ran
//   (or was running) here under another authority epoch (the other server took over during a
//   failover or a cut), a `queue/duplicate` failure names that attempt and epoch, with `rev` bumped
//   so that the noted copy wins and reaches every server (where it is not noted again).
onRecordUpdateRequest((e) => {
  const author = e.auth ? e.auth.collection().name : "";
  if (author !== "nxs_replicators") return e.next();
  const incoming = e.record;
  const VERSION = /^\d{4}\.\d{6}\.\d{8}\.[0-3]\.\d{9}$/;
  let stored = null;
  try {
    stored = $app.findRecordById("nxs_jobs", incoming.id);
  } catch (_) {
    stored = null;
  }
  if (stored === null) return e.next();
  const deleted = incoming.getBool("deleted");
  // Not written: the stored row is what the replicator gets back (it compares again next round).
  if (stored.getBool("deleted") && !deleted) return e.json(200, stored); // a tombstone stays
  const was = stored.getString("version");
  const now = incoming.getString("version");
  if (!deleted && VERSION.test(was) && VERSION.test(now) && now < was) return e.json(200, stored); // stale
  const attempt = stored.getFloat("attempt");
  const epoch = stored.getFloat("epoch");
  const state = stored.getString("state");
  const superseded =
    !deleted &&
    attempt > 0 &&
    stored.getFloat("generation") === incoming.getFloat("generation") &&
    ["active", "completed", "failed"].indexOf(state) >= 0 &&
    ((incoming.getFloat("attempt") === attempt && incoming.getFloat("epoch") > epoch) ||
      (incoming.getFloat("attempt") > attempt && state === "completed"));
  if (!superseded) return e.next();
  let failures = [];
  try {
    const f = JSON.parse(incoming.getString("failures") || "[]");
    if (Array.isArray(f)) failures = f;
  } catch (_) {
    failures = [];
  }
  const message = `attempt ${attempt} also ran under epoch ${epoch} (${state}${stored.getString("worker") ? `, worker ${stored.getString("worker")}` : ""}); the copy of attempt ${incoming.getFloat("attempt")}, epoch ${incoming.getFloat("epoch")} won`;
  failures.push({ attempt: attempt, code: "queue/duplicate", message: message, at: Date.now() });
  incoming.set("failures", failures.slice(-20));
  const rev = incoming.getFloat("rev") + 1;
  incoming.set("rev", rev);
  if (VERSION.test(now))
    incoming.set("version", `${now.slice(0, -9)}${String(Math.min(rev, 999999999)).padStart(9, "0")}`);
  return e.next();
}, "nxs_jobs");

// A replicator's copy of a schedule or a flow record older than the row as it is now (a fire, a
// pause or a limit committed here meanwhile) is not written: the stored row is answered, and the
// next round copies it the other way. Versions: schedules defRev.lastTick.rev, flow updatedAt.rev.
onRecordUpdateRequest(
  (e) => {
    const author = e.auth ? e.auth.collection().name : "";
    if (author !== "nxs_replicators") return e.next();
    const name = e.record.collection().name;
    let stored = null;
    try {
      stored = $app.findRecordById(name, e.record.id);
    } catch (_) {
      stored = null;
    }
    if (stored === null) return e.next();
    const VERSION = name === "nxs_queue_flow" ? /^\d{15}\.\d{9}$/ : /^\d{9}\.\d{15}\.\d{9}$/;
    const was = stored.getString("version");
    const now = e.record.getString("version");
    if (VERSION.test(was) && VERSION.test(now) && now < was) return e.json(200, stored);
    return e.next();
  },
  "nxs_queue_schedules",
  "nxs_queue_flow",
);
