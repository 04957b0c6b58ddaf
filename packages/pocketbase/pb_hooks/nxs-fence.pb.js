/// <reference path="../pb_data/types.d.ts" />
// nxs-sync write fence: the hook piece `fence` of @nxs-sync/pocketbase (GET /nxs/hooks/fence).
// Install: put this file in every server's --hooksDir beside nxs.pb.js (nxs-sync hooks write does).
//
// While a server is fenced, it refuses every record write of a gateway or any other account, and
// the project's write routes, with 503 { message, data: { fence: { code: "nxs_fenced", message } } }: clients read a 503 as "server
// unavailable" and go to the other server, so nothing is acknowledged here that a restore would
// discard. Reads, realtime subscriptions and logins still work; superusers (the operator, the CLI)
// and replicator accounts (nxs_replicators: they copy the peer's records in) are let through.
// `nxs-sync restore` fences the server it restores, waits for the replicator to copy what it holds
// to the peer, restores, waits for the replicator to bring it up to date, and lifts the fence.
//
// The fence outlives the restore's in-place restart (execve): it is kept in a file in the OS temp
// dir named after the data dir (a restore replaces pb_data, and a file in pb_hooks would restart
// the server), and read back at bootstrap. It lapses by itself at `until`, so a CLI that dies
// midway leaves no server fenced for good.
//
//   GET    /nxs/fence  -> 200 { fenced, reason, until, since, now }        (superusers)
//   POST   /nxs/fence  { reason, ttlMs }  -> 200 the same, fenced          (superusers)
//   DELETE /nxs/fence  -> 200 the same, not fenced                        (superusers)
// Times are the server's ms. ttlMs is clamped to 1 s .. 24 h (default 10 min).
//
// Every handler is serialized and run in its own VM (PocketBase JSVM): each one carries what it needs.

routerAdd("GET", "/nxs/hooks/fence", (e) => e.json(200, { name: "fence", version: 1 }));

// Loads a fence left by the process before a restore's restart (or a crash) into the app store.
onBootstrap((e) => {
  e.next();
  const file = `${$os.tempDir()}/nxs-fence-${$security.sha256($app.dataDir()).slice(0, 16)}.json`;
  try {
    const text = toString($os.readFile(file));
    const fence = JSON.parse(text);
    if (fence && typeof fence.until === "number" && fence.until > Date.now()) {
      $app.store().set("nxs.fence", text);
    } else {
      $os.remove(file);
    }
  } catch (_) {
    // no fence file: not fenced
  }
});

routerAdd(
  "GET",
  "/nxs/fence",
  (e) => {
    const now = Date.now();
    let fence = null;
    try {
      fence = JSON.parse(String($app.store().get("nxs.fence") || "null"));
    } catch (_) {
      fence = null;
    }
    const on = !!fence && fence.until > now;
    return e.json(200, {
      fenced: on,
      reason: on ? fence.reason : "",
      until: on ? fence.until : 0,
      since: on ? fence.since : 0,
      now: now,
    });
  },
  $apis.requireSuperuserAuth(),
);

routerAdd(
  "POST",
  "/nxs/fence",
  (e) => {
    const body = e.requestInfo().body || {};
    const now = Date.now();
    const ttl = Math.min(Math.max(Math.floor(Number(body.ttlMs) || 600000), 1000), 86400000);
    const reason = String(body.reason || "maintenance").slice(0, 200);
    let since = now;
    try {
      const old = JSON.parse(String($app.store().get("nxs.fence") || "null"));
      if (old && old.until > now) since = old.since;
    } catch (_) {
      since = now;
    }
    const fence = { reason: reason, until: now + ttl, since: since };
    const text = JSON.stringify(fence);
    const file = `${$os.tempDir()}/nxs-fence-${$security.sha256($app.dataDir()).slice(0, 16)}.json`;
    $os.writeFile(file, text, 384);
    $app.store().set("nxs.fence", text);
    return e.json(200, { fenced: true, reason: reason, until: fence.until, since: since, now: now });
  },
  $apis.requireSuperuserAuth(),
);

routerAdd(
  "DELETE",
  "/nxs/fence",
  (e) => {
    const file = `${$os.tempDir()}/nxs-fence-${$security.sha256($app.dataDir()).slice(0, 16)}.json`;
    $app.store().remove("nxs.fence");
    try {
      $os.remove(file);
    } catch (_) {
      // not there
    }
    return e.json(200, { fenced: false, reason: "", until: 0, since: 0, now: Date.now() });
  },
  $apis.requireSuperuserAuth(),
);

// The fence itself, on every record write through the API (creates, updates and deletes, each
// request of POST /api/batch included): one store read when not fenced. A global router middleware
// would cost a JS call on every request, reads and health checks too (measured: ~70 us of server
// CPU per request, against ~20-50 us per write for these hooks); the project's own routes that
// write (/nxs/lease, /nxs/queue/*, /nxs/config/*) check the same store key inline instead.
// A refusal is thrown as a 503 ApiError (its data in PocketBase's validation shape, the only data an
// ApiError keeps): inside a batch, PocketBase answers 400 with this answer as the failed request's,
// which clients read the same way. Returning a response instead of throwing would let a batch
// commit with the item unwritten.
const nxsFenceRecordWrite = (e) => {
  const text = $app.store().get("nxs.fence");
  if (!text) return e.next();
  const auth = e.auth;
  if (auth && (auth.isSuperuser() || auth.collection().name === "nxs_replicators")) return e.next();
  let fence = null;
  try {
    fence = JSON.parse(String(text));
  } catch (_) {
    fence = null;
  }
  if (!fence || !(fence.until > Date.now())) return e.next();
  throw new ApiError(
    503,
    `this server is fenced (${fence.reason}): it takes no writes until ${new Date(fence.until).toISOString()} or until the operator lifts the fence (nxs-sync fence --lift); use another server`,
    { fence: new ValidationError("nxs_fenced", `${fence.reason}; until ${fence.until}`) },
  );
};

onRecordCreateRequest(nxsFenceRecordWrite);
onRecordUpdateRequest(nxsFenceRecordWrite);
onRecordDeleteRequest(nxsFenceRecordWrite);
