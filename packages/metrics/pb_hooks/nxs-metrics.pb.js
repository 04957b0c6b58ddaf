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
// GET /nxs/metrics/dashboard: the fleet dashboard, one page with its style and script inline (no
// framework, no library). It is public; its data is not: the page logs in as an operator (an
// nxs_operators account, read-only; or a PocketBase superuser) through the normal API, reads nxs_metrics_points and nxs_metrics_alerts
// of this server (every server holds every node's) and follows them over realtime. The page text
// below is a String.raw template: it holds no backtick and no dollar-brace.

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

routerAdd("GET", "/nxs/metrics/dashboard", (e) => {
  const PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>nxs-sync fleet</title>
<style>
:root{--bg:#0f1419;--card:#1a2129;--line:#2c3640;--text:#e6edf3;--dim:#8b98a5;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--cpu:#58a6ff;--mem:#bc8cff;--disk:#3fb950}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--text)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line)}
h1{font-size:1.1rem;margin:0 auto 0 0}
h2{font-size:1rem;margin:1rem 0 .5rem;color:var(--dim);text-transform:uppercase;letter-spacing:.05em}
h3{font-size:1rem;margin:0}
main,form{padding:0 1rem 1rem;max-width:1200px;margin:0 auto}
#live{font-size:.8rem;padding:.1rem .5rem;border-radius:1rem;background:var(--line)}
#live[data-state=on]{background:#1f6f3a}
button{font:inherit;color:var(--text);background:var(--line);border:1px solid #3d4b59;border-radius:.4rem;padding:.35rem .8rem;cursor:pointer}
button[aria-pressed=true]{background:#1f4f7a}
form{display:grid;gap:.6rem;max-width:22rem;margin-top:2rem}
input{font:inherit;padding:.5rem;border-radius:.4rem;border:1px solid var(--line);background:var(--card);color:var(--text)}
.error{color:var(--bad);min-height:1.2em;margin:0}
#nodes,#charts{display:grid;gap:.75rem;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:.75rem}
.card.over{border-color:var(--bad)}
.card.stale{opacity:.6}
.head{display:flex;justify-content:space-between;align-items:baseline;gap:.5rem;margin-bottom:.5rem}
.seen{color:var(--dim);font-size:.8rem}
.res{display:grid;grid-template-columns:4rem 1fr 3.5rem;gap:.4rem;align-items:center;margin:.3rem 0}
.bar{position:relative;height:.7rem;background:var(--line);border-radius:.35rem;overflow:hidden}
.bar span{position:absolute;inset:0 auto 0 0;background:var(--ok)}
.bar.over span{background:var(--bad)}
.bar i{position:absolute;top:0;bottom:0;left:75%;width:2px;background:var(--warn)}
.val{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:auto 1fr;gap:.15rem .75rem;margin:.5rem 0 0;font-size:.85rem}
dt{color:var(--dim)}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
#alerts{list-style:none;padding:0;margin:0;display:grid;gap:.4rem}
#alerts li{background:var(--card);border-left:4px solid var(--bad);border-radius:.4rem;padding:.5rem .75rem}
#alerts li[data-state=resolved]{border-left-color:var(--ok);opacity:.75}
#alerts .meta{color:var(--dim);font-size:.8rem}
svg{width:100%;height:auto;display:block}
svg text{fill:var(--dim);font-size:9px}
.legend{display:flex;gap:.75rem;font-size:.8rem;color:var(--dim)}
.legend b{display:inline-block;width:.7rem;height:.2rem;vertical-align:middle;margin-right:.25rem}
.range{display:flex;gap:.4rem;margin-bottom:.5rem}
footer{color:var(--dim);font-size:.8rem;padding:1rem;text-align:center}
@media (max-width:480px){header{padding:.5rem}main,form{padding:0 .5rem .5rem}.res{grid-template-columns:3.5rem 1fr 3rem}}
</style>
</head>
<body data-ready="false">
<header>
<h1>nxs-sync fleet</h1>
<span id="live" data-state="off">offline</span>
<span id="who"></span>
<button id="logout" hidden>Log out</button>
</header>
<form id="login" hidden>
<p>Log in with an operator account (<code>nxs-sync node add NAME --role operator</code>) or a PocketBase superuser of this server.</p>
<input id="email" type="email" autocomplete="username" placeholder="email" required>
<input id="password" type="password" autocomplete="current-password" placeholder="password" required>
<button id="login-button" type="submit">Log in</button>
<p id="login-error" class="error"></p>
</form>
<main id="app" hidden>
<h2>Nodes</h2>
<div id="nodes"></div>
<h2>Alerts</h2>
<ul id="alerts"></ul>
<h2>History</h2>
<div class="range"><button data-range="hour" aria-pressed="true">Last hour</button><button data-range="day" aria-pressed="false">Last day</button></div>
<div id="charts"></div>
</main>
<footer id="status"></footer>
<script>
(function () {
  "use strict";
  var CAP = 75;
  var AUTH_KEY = "nxs_dashboard_auth";
  var RANGES = { hour: { tier: "1m", span: 3600000, step: 60000 }, day: { tier: "10m", span: 86400000, step: 600000 } };
  var RES = [["cpu", "node_cpu_percent", "--cpu"], ["memory", "node_memory_percent", "--mem"], ["disk", "node_disk_percent", "--disk"]];
  var auth = null;
  var range = "hour";
  var latest = {}; // node -> last raw point
  var history = {}; // tier -> id -> point
  var alerts = {}; // id -> alert
  var es = null;
  var $ = function (id) { return document.getElementById(id); };
  var el = function (tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  var svgEl = function (tag, attrs) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  };
  var status = function (text) { $("status").textContent = text; };

  try { auth = JSON.parse(localStorage.getItem(AUTH_KEY) || "null"); } catch (e) { auth = null; }

  function api(path, options) {
    options = options || {};
    var headers = { "content-type": "application/json" };
    if (auth) headers.Authorization = auth.token;
    return fetch(path, { method: options.method || "GET", headers: headers, body: options.body ? JSON.stringify(options.body) : undefined })
      .then(function (r) {
        return r.text().then(function (t) {
          var body = t ? JSON.parse(t) : {};
          if (r.status === 401 || r.status === 403) { logout("the login expired or is not an operator's: log in again"); throw new Error("unauthorized"); }
          if (!r.ok) throw new Error(body.message || ("HTTP " + r.status));
          return body;
        });
      });
  }
  function listAll(collection, filter, sort) {
    var out = [];
    var page = function (n) {
      var q = "?page=" + n + "&perPage=500&skipTotal=1&filter=" + encodeURIComponent(filter) + "&sort=" + encodeURIComponent(sort);
      return api("/api/collections/" + collection + "/records" + q).then(function (r) {
        out = out.concat(r.items);
        return r.items.length < 500 ? out : page(n + 1);
      });
    };
    return page(1);
  }

  // Series values. A flush holds gauges as ["g", min, max, sum, count, last].
  function gauge(p, name, agg) {
    var s = p && p.data && p.data.s;
    if (!s) return undefined;
    for (var k in s) {
      if (k !== name && k.indexOf(name + "{") !== 0) continue;
      var v = s[k];
      if (v[0] !== "g") return undefined;
      return agg === "mean" ? (v[4] > 0 ? v[3] / v[4] : undefined) : v[5];
    }
    return undefined;
  }
  function sumOf(p, name, agg, only) {
    var s = p && p.data && p.data.s;
    var total;
    for (var k in s || {}) {
      if (k !== name && k.indexOf(name + "{") !== 0) continue;
      if (only && k.indexOf(only) < 0) continue;
      var v = s[k];
      var x = v[0] === "g" ? (agg === "max" ? v[2] : v[5]) : v[0] === "h" ? (v[1] > 0 ? v[2] / v[1] : undefined) : v[2];
      if (x === undefined) continue;
      total = total === undefined ? x : agg === "max" ? Math.max(total, x) : total + x;
    }
    return total;
  }
  function labelOf(key, label) {
    var m = new RegExp(label + '="([^"]*)"').exec(key);
    return m ? m[1] : key;
  }
  function overCap(p) {
    var out = [];
    var s = (p && p.data && p.data.s) || {};
    for (var k in s) if (k.indexOf("node_over_cap{") === 0 && s[k][0] === "g" && s[k][5] >= 1) out.push(labelOf(k, "resource"));
    return out;
  }
  var fmt = function (v, unit, digits) { return v === undefined ? "-" : v.toFixed(digits === undefined ? 1 : digits) + unit; };
  function ago(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 90 ? s + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
  }
  function mib(b) { return b === undefined ? "-" : (b / 1048576).toFixed(1) + " MiB"; }

  function nodesKnown() {
    var set = {};
    for (var n in latest) set[n] = true;
    for (var t in history) for (var id in history[t]) set[history[t][id].node] = true;
    return Object.keys(set).sort();
  }

  function renderNodes() {
    var box = $("nodes");
    box.textContent = "";
    nodesKnown().forEach(function (node) {
      var p = latest[node];
      var over = overCap(p);
      var seen = p ? p.start + p.span : 0;
      var card = el("article", { class: "card node", "data-node": node, "data-seen": String(seen), "data-over": over.join(",") });
      if (over.length) card.classList.add("over");
      if (!p || Date.now() - seen > 3 * p.span + 30000) card.classList.add("stale");
      var head = el("div", { class: "head" });
      head.appendChild(el("h3", {}, node));
      head.appendChild(el("span", { class: "seen", title: seen ? new Date(seen).toISOString() : "" }, seen ? "seen " + ago(seen) : "no recent flush"));
      card.appendChild(head);
      RES.forEach(function (r) {
        var v = gauge(p, r[1]);
        var row = el("div", { class: "res", "data-resource": r[0], "data-value": v === undefined ? "" : v.toFixed(1) });
        row.appendChild(el("span", {}, r[0]));
        var bar = el("div", { class: "bar", title: "cap " + CAP + "%" });
        if ((v !== undefined && v > CAP) || over.indexOf(r[0]) >= 0) bar.classList.add("over");
        var fill = el("span");
        fill.style.width = Math.min(100, Math.max(0, v || 0)) + "%";
        bar.appendChild(fill);
        bar.appendChild(el("i"));
        row.appendChild(bar);
        row.appendChild(el("span", { class: "val" }, fmt(v, "%")));
        card.appendChild(row);
      });
      var dl = el("dl");
      var add = function (k, v, cls) { dl.appendChild(el("dt", {}, k)); dl.appendChild(el("dd", cls ? { class: cls } : {}, v)); };
      add("over 75%", over.length ? over.join(", ") : "none", "over-cap");
      add("RSS", mib(gauge(p, "process_rss_bytes")));
      add("replication round", fmt(gauge(p, "nxs_replication_round_age_seconds"), " s ago", 0), "replication");
      add("replication lag (acks)", fmt(sumOf(p, "nxs_replication_ack_lag_seconds", "max"), " s", 1), "ack-lag");
      add("outbox (replica lag)", fmt(sumOf(p, "nxs_replica_outbox_depth"), " changes", 0), "outbox");
      add("queue waiting", fmt(sumOf(p, "nxs_queue_jobs", "last", 'state="waiting"'), " jobs", 0), "queue-depth");
      add("queue wait (mean)", fmt(sumOf(p, "nxs_queue_wait_ms", "max"), " ms", 0), "queue");
      add("config head age", fmt(sumOf(p, "nxs_config_head_age_seconds", "max"), " s", 0), "config");
      add("last flush", seen ? new Date(seen).toISOString().slice(11, 19) + " UTC" : "-", "last-flush");
      card.appendChild(dl);
      box.appendChild(card);
    });
    if (!box.children.length) box.appendChild(el("p", { class: "seen" }, "No node has reported yet."));
  }

  function renderAlerts() {
    var ul = $("alerts");
    ul.textContent = "";
    var list = Object.keys(alerts).map(function (k) { return alerts[k]; });
    list.sort(function (a, b) { return (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1) || b.startedAt - a.startedAt; });
    list.slice(0, 50).forEach(function (a) {
      var li = el("li", { "data-id": a.id, "data-state": a.state, "data-node": a.node, "data-check": a.check });
      li.appendChild(el("strong", {}, (a.state === "firing" ? "FIRING " : "resolved ") + a.check + " on " + a.node));
      li.appendChild(el("div", { class: "meta" }, (a.message || a.series || "absence") + " · since " + new Date(a.startedAt).toISOString().replace("T", " ").slice(0, 19) +
        (a.endedAt ? " · ended " + new Date(a.endedAt).toISOString().replace("T", " ").slice(0, 19) : "")));
      ul.appendChild(li);
    });
    if (!list.length) ul.appendChild(el("li", { "data-state": "resolved" }, "No alerts in the last day."));
  }

  function renderCharts() {
    var r = RANGES[range];
    var box = $("charts");
    box.textContent = "";
    var now = Date.now();
    var from = Math.floor((now - r.span) / r.step) * r.step;
    var points = history[r.tier] || {};
    nodesKnown().forEach(function (node) {
      var W = 300, H = 120, L = 24, B = 14;
      var card = el("div", { class: "card chart", "data-node": node });
      var head = el("div", { class: "head" });
      head.appendChild(el("h3", {}, node));
      var legend = el("span", { class: "legend" });
      RES.forEach(function (res) {
        var item = el("span", {}, res[0]);
        var sw = el("b");
        sw.style.background = "var(" + res[2] + ")";
        item.insertBefore(sw, item.firstChild);
        legend.appendChild(item);
      });
      head.appendChild(legend);
      card.appendChild(head);
      var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": node + " cpu, memory and disk, " + range });
      var y = function (v) { return (H - B) - (v / 100) * (H - B - 4); };
      var x = function (t) { return L + ((t - from) / (now - from)) * (W - L - 2); };
      [0, 50, 100].forEach(function (v) {
        svg.appendChild(svgEl("line", { x1: L, x2: W, y1: y(v), y2: y(v), stroke: "#2c3640" }));
        var t = svgEl("text", { x: 2, y: y(v) + 3 });
        t.textContent = v + "%";
        svg.appendChild(t);
      });
      svg.appendChild(svgEl("line", { x1: L, x2: W, y1: y(CAP), y2: y(CAP), stroke: "#d29922", "stroke-dasharray": "4 3" }));
      var mine = [];
      for (var id in points) if (points[id].node === node && points[id].start >= from) mine.push(points[id]);
      mine.sort(function (a, b) { return a.start - b.start; });
      var drawn = 0;
      RES.forEach(function (res) {
        var d = "";
        var prev = -Infinity;
        var dots = [];
        mine.forEach(function (p) {
          var v = gauge(p, res[1], "mean");
          if (v === undefined) { prev = -Infinity; return; }
          var px = x(p.start).toFixed(1), py = y(Math.min(100, v)).toFixed(1);
          d += (p.start - prev > r.step ? "M" : "L") + px + " " + py + " ";
          dots.push([px, py]);
          prev = p.start;
          drawn += 1;
        });
        if (d) svg.appendChild(svgEl("path", { d: d, fill: "none", stroke: "var(" + res[2] + ")", "stroke-width": 1.5, "data-series": res[0] }));
        // A line of one or two windows is hard to see: mark them.
        if (dots.length <= 2) dots.forEach(function (q) { svg.appendChild(svgEl("circle", { cx: q[0], cy: q[1], r: 2, fill: "var(" + res[2] + ")" })); });
      });
      var t0 = svgEl("text", { x: L, y: H - 2 });
      t0.textContent = range === "hour" ? "-60 min" : "-24 h";
      svg.appendChild(t0);
      var t1 = svgEl("text", { x: W - 22, y: H - 2 });
      t1.textContent = "now";
      svg.appendChild(t1);
      card.setAttribute("data-points", String(mine.length));
      card.appendChild(svg);
      if (!drawn) card.appendChild(el("p", { class: "seen" }, "No " + r.tier + " rollups in this range yet."));
      box.appendChild(card);
    });
  }

  function render() {
    renderNodes();
    renderAlerts();
    renderCharts();
  }

  function take(p) {
    if (p.expired) {
      if (history[p.tier]) delete history[p.tier][p.id];
      return;
    }
    if (p.tier === "raw") {
      var cur = latest[p.node];
      if (!cur || p.start >= cur.start) latest[p.node] = p;
    } else {
      (history[p.tier] = history[p.tier] || {})[p.id] = p;
    }
  }

  function load() {
    var now = Date.now();
    var r = RANGES[range];
    var tiers = [RANGES.hour, RANGES.day];
    return Promise.all([
      listAll("nxs_metrics_points", 'tier = "raw" && expired = false && start >= ' + (now - 600000), "start,id"),
      Promise.all(tiers.map(function (t) {
        return listAll("nxs_metrics_points", 'tier = "' + t.tier + '" && expired = false && start >= ' + (now - t.span - t.step), "start,id");
      })),
      listAll("nxs_metrics_alerts", 'state = "firing" || startedAt >= ' + (now - 86400000), "startedAt,id"),
    ]).then(function (res) {
      latest = {};
      history = {};
      res[0].forEach(take);
      res[1].forEach(function (list) { list.forEach(take); });
      alerts = {};
      res[2].forEach(function (a) { alerts[a.id] = a; });
      render();
      status("Loaded from " + location.host + " at " + new Date().toISOString().slice(11, 19) + " UTC (" + r.tier + " rollups for the chart).");
    });
  }

  function setLive(on, why) {
    $("live").dataset.state = on ? "on" : "off";
    $("live").textContent = on ? "live" : "offline" + (why ? ": " + why : "");
  }

  function connect() {
    if (es) es.close();
    es = new EventSource("/api/realtime");
    es.addEventListener("PB_CONNECT", function (ev) {
      var clientId = JSON.parse(ev.data).clientId;
      // Every (re)connect: subscribe again, then reload (realtime is a hint; the lists are the truth).
      api("/api/realtime", { method: "POST", body: { clientId: clientId, subscriptions: ["nxs_metrics_points/*", "nxs_metrics_alerts/*"] } })
        .then(function () { setLive(true); return load(); })
        .catch(function (e) { setLive(false, e.message); });
    });
    es.addEventListener("nxs_metrics_points/*", function (ev) {
      var m = JSON.parse(ev.data);
      take(m.action === "delete" ? Object.assign({}, m.record, { expired: true }) : m.record);
      render();
    });
    es.addEventListener("nxs_metrics_alerts/*", function (ev) {
      var m = JSON.parse(ev.data);
      alerts[m.record.id] = m.record;
      renderAlerts();
    });
    es.onerror = function () { setLive(false, "reconnecting"); };
  }

  function show() {
    var logged = !!auth;
    $("login").hidden = logged;
    $("app").hidden = !logged;
    $("logout").hidden = !logged;
    $("who").textContent = logged ? auth.email : "";
    if (logged) connect();
    document.body.dataset.ready = "true";
  }

  function logout(why) {
    auth = null;
    localStorage.removeItem(AUTH_KEY);
    if (es) es.close();
    es = null;
    setLive(false);
    $("login-error").textContent = why || "";
    show();
  }

  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    var credentials = JSON.stringify({ identity: $("email").value, password: $("password").value });
    // An operator account (read-only) first; a superuser's if the email is not an operator's.
    var logIn = function (collection) {
      return fetch("/api/collections/" + collection + "/auth-with-password", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: credentials,
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      });
    };
    logIn("nxs_operators").then(function (a) {
      return a.ok ? a : logIn("_superusers");
    }).then(function (a) {
      if (!a.ok) throw new Error(a.body.message || "refused");
      auth = { token: a.body.token, email: a.body.record.email };
      localStorage.setItem(AUTH_KEY, JSON.stringify(auth));
      $("password").value = "";
      show();
    }).catch(function (e) { $("login-error").textContent = "Login failed: " + e.message; });
  });
  $("logout").addEventListener("click", function () { logout(""); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-range]"), function (b) {
    b.addEventListener("click", function () {
      range = b.getAttribute("data-range");
      Array.prototype.forEach.call(document.querySelectorAll("[data-range]"), function (o) { o.setAttribute("aria-pressed", String(o === b)); });
      renderCharts();
    });
  });
  // The ages move on; a reload every minute catches anything realtime missed.
  setInterval(function () { if (auth) renderNodes(); }, 10000);
  setInterval(function () { if (auth && es) load().catch(function (e) { status("Reload failed: " + e.message); }); }, 60000);
  show();
})();
</script>
</body>
</html>
`;
  e.response.header().set("cache-control", "no-store");
  e.response
    .header()
    .set(
      "content-security-policy",
      "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    );
  return e.html(200, PAGE);
});
