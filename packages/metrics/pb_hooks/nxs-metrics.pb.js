/// <reference path="../pb_data/types.d.ts" />
// nxs-sync metrics: the server side of @nxs-sync/metrics/pocketbase (the hook piece `metrics`).
// Install: put this file in every server's --hooksDir beside the core bundle (nxs.pb.js) and
// restart it (`nxs-sync hooks write DIR` writes it when @nxs-sync/metrics is installed). Every
// handler is serialized and run in its own VM (PocketBase JSVM): it can read nothing declared
// outside itself.
//
// POST /nxs/metrics/alert-mail { id, change }: mails one change ("fired" | "resolved") of the alert
// record `id` of nxs_metrics_alerts through this server's mailer (its SMTP settings), to
// $NXS_ALERT_MAIL_TO (comma-separated) or else every superuser. Gateway accounts (nxs_nodes) and
// superusers. Once per server: a marker record of nxs_metrics_mails (id from alert and change,
// unique) is created before the send and deleted when the send fails, so a repeat is answered
// "duplicate" and a failed send can be retried. Answers 200 { outcome, message }, outcome one of
//   sent        the mail left through the mailer
//   duplicate   this change was mailed (or is being mailed) already by this server
//   not-yet     the alert is not on this server yet, or not in that state yet (retry later)
//   failed      the mailer failed (retry later)
//   unconfigured  SMTP is off on this server, or there is nobody to mail (final)
// and 400 for a malformed request. The mail's content is built here from the stored alert: a
// caller chooses neither the recipients nor the text.
//
// GET /nxs/metrics/dashboard: the fleet dashboard (one page, its script inline; it logs in as a
// superuser through the normal API and reads the metrics collections, live over realtime).

routerAdd("GET", "/nxs/hooks/metrics", (e) => e.json(200, { name: "metrics", version: 1 }));

routerAdd(
  "POST",
  "/nxs/metrics/alert-mail",
  (e) => {
    const ALERTS = "nxs_metrics_alerts";
    const MAILS = "nxs_metrics_mails";
    const body = e.requestInfo().body || {};
    const id = typeof body.id === "string" ? body.id : "";
    const change = body.change;
    if (!/^[a-z0-9]{15}$/.test(id) || (change !== "fired" && change !== "resolved")) {
      return e.json(400, {
        status: 400,
        message: 'the body must be { id: <15 of [a-z0-9]>, change: "fired" | "resolved" }',
        data: {},
      });
    }
    const answer = (outcome, message) => e.json(200, { outcome: outcome, message: message });
    let alert = null;
    try {
      alert = $app.findRecordById(ALERTS, id);
    } catch (_) {
      return answer("not-yet", `alert ${id} is not on this server (yet)`);
    }
    const state = alert.getString("state");
    if (change === "resolved" && state !== "resolved") {
      return answer("not-yet", `alert ${id} is not resolved on this server (yet)`);
    }
    const settings = $app.settings();
    if (!settings.smtp.enabled) {
      return answer("unconfigured", "SMTP is off on this server (Settings > Mail settings)");
    }
    let to = String($os.getenv("NXS_ALERT_MAIL_TO") || "")
      .split(",")
      .map((a) => a.trim())
      .filter((a) => a !== "");
    if (to.length === 0) {
      to = $app
        .findAllRecords("_superusers")
        .map((r) => r.email())
        .filter((a) => a !== "");
    }
    if (to.length === 0) return answer("unconfigured", "nobody to mail: set NXS_ALERT_MAIL_TO");

    const markId = $security.sha256(`${id}|${change}`).slice(0, 15);
    const mark = new Record($app.findCollectionByNameOrId(MAILS));
    mark.set("id", markId);
    mark.set("alert", id);
    mark.set("change", change);
    try {
      $app.save(mark);
    } catch (_) {
      return answer("duplicate", `the ${change} mail of alert ${id} was sent by this server already`);
    }

    const check = alert.getString("check");
    const node = alert.getString("node");
    const series = alert.getString("series");
    const severity = alert.getString("severity") || "warning";
    const iso = (ms) => (ms > 0 ? new Date(ms).toISOString() : "-");
    const startedAt = alert.getFloat("startedAt");
    const endedAt = change === "resolved" ? alert.getFloat("endedAt") : 0;
    const word = change === "fired" ? "FIRING" : "RESOLVED";
    const lines = [
      `Alert ${check} on node ${node} is ${word} (${severity}).`,
      "",
      `Check:    ${check}`,
      `Node:     ${node}`,
      `Series:   ${series === "" ? "(absence: the node stopped reporting)" : series}`,
      `Value:    ${change === "fired" ? alert.getFloat("value") : "-"}`,
      `Started:  ${iso(startedAt)}`,
      `Ended:    ${iso(endedAt)}`,
      `Message:  ${alert.getString("message")}`,
      `Alert id: ${id}`,
      "",
      `Sent by ${settings.meta.appName || "PocketBase"} (${settings.meta.appURL || "no app URL set"}) for @nxs-sync/metrics.`,
    ];
    const text = lines.join("\n");
    const esc = (s) =>
      String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
    try {
      $app.newMailClient().send(
        new MailerMessage({
          from: { address: settings.meta.senderAddress, name: settings.meta.senderName },
          to: to.map((a) => ({ address: a })),
          subject: `[nxs-sync] ${word}: ${check} on ${node}`,
          text: text,
          html: `<pre>${esc(text)}</pre>`,
        }),
      );
    } catch (err) {
      try {
        $app.delete(mark);
      } catch (_) {
        // the marker stays: a retry answers duplicate (better than two mails)
      }
      return answer("failed", `the mailer failed: ${err}`);
    }
    return answer("sent", `mailed to ${to.length} recipient(s)`);
  },
  $apis.requireAuth("nxs_nodes", "_superusers"),
);
