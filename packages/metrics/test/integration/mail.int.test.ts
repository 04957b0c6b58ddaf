import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AlertEvent, AlertSink, MetricsError } from "@nxs-sync/metrics";
import { ALERT_MAIL_PATH, MAILS_COLLECTION, pocketBaseAlertMail } from "@nxs-sync/metrics/pocketbase";
import type { Replicator } from "@nxs-sync/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeAll, memHigh, metricsOf, pastStart, runFor, startPair } from "./servers.js";

/**
 * Alerts leave the fleet: mail through PocketBase's mailer (the `metrics` hook piece's route, the
 * server's SMTP settings) to a local SMTP sink on loopback, and a webhook; both retried after a
 * failure. One mail per alert state change.
 */
const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
let replicator: Replicator;
let smtp: SMTPServer;
let hooks: Server;
/** Mails received, raw. */
const mails: string[] = [];
/** How many of the next SMTP transactions to refuse (451: the mailer fails, the route says failed). */
let refuseNext = 0;
let refused = 0;
/** Webhook: statuses to answer, then 204. */
const hookStatuses: number[] = [];
const hookBodies: AlertEvent[] = [];

const RECIPIENT = "oncall@fleet.test";

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (refuseNext > 0) {
          refuseNext -= 1;
          refused += 1;
          const err = Object.assign(new Error("try again later"), { responseCode: 451 });
          callback(err);
          return;
        }
        mails.push(Buffer.concat(chunks).toString("utf8"));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  hooks = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = hookStatuses.shift() ?? 204;
      if (status === 204) hookBodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as AlertEvent);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, "127.0.0.1", resolve));

  const env = { NXS_ALERT_MAIL_TO: RECIPIENT };
  ({ a, b, replicator } = await startPair(servers, "mail", { hooks: true, env }));
  for (const s of [a, b]) {
    await s.client().settings.update({
      meta: { senderAddress: "doctor@fleet.test", senderName: "The Doctor" },
      smtp: { enabled: true, host: "127.0.0.1", port: smtpPort, tls: false },
    });
  }
});
afterAll(async () => {
  closeAll();
  await replicator?.stop();
  await new Promise<void>((resolve) => smtp?.close(() => resolve()));
  await new Promise((resolve) => hooks?.close(resolve));
});

/** Decodes a quoted-printable body part enough to read it (soft breaks, =XX). */
const unqp = (s: string) =>
  s
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));

it("a fired and a resolved alert each arrive once by mail (through the evaluating node's server) and by webhook, after a refused first attempt", {
  timeout: 120_000,
}, async () => {
  const t0 = pastStart();
  const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/alerts`;
  // Evaluated by hand (the loops' slot is a day), as in alerts.int.test.ts.
  const load = metricsOf("loaded", [a.url], t0, {
    alerts: { checks: [memHigh], intervalMs: 86_400_000 },
  });
  // The node that evaluates on B and hands changes to the sinks: mail through its own client
  // (its pool, its gateway account) and the webhook.
  const sinkEvents: AlertEvent[] = [];
  let mailSink: AlertSink | undefined;
  const mailer = metricsOf("mailer", [b.url], t0, {
    alerts: {
      checks: [memHigh],
      intervalMs: 86_400_000,
      webhooks: [hookUrl],
      sinks: [
        {
          name: "mail",
          send: async (e) => {
            sinkEvents.push(e);
            await mailSink?.send(e);
          },
        },
      ],
      retry: { attempts: 5, baseDelayMs: 1_000 },
    },
  });
  mailSink = pocketBaseAlertMail(mailer.client);
  const mem = load.metrics.gauge("mem_percent");
  const script = (s: number) => (s < 10 ? 50 : s < 50 ? 85 : 60);
  const step = async (seconds: number) => {
    for (let i = 0; i < seconds; i += 10) {
      await Promise.all([
        runFor(load, 10_000, () => mem.set(script(Math.round((load.scheduler.now() - t0) / 1000)))),
      ]);
      mailer.scheduler.advance(10_000);
    }
    await waitFor(
      async () => {
        await load.metrics.flush();
        return load.metrics.buffered() === 0;
      },
      { timeoutMs: 20_000, description: "flushes written" },
    );
  };
  /** Evaluates on the mailer (B) until `n` changes were handed to the sinks, advancing its clock for the retries. */
  const deliverUntil = async (want: () => boolean, what: string) => {
    await waitFor(
      async () => {
        await mailer.metrics.alerts.evaluate({ force: true });
        mailer.scheduler.advance(1_000);
        return want();
      },
      { timeoutMs: 40_000, intervalMs: 250, description: what },
    );
  };

  await step(50);
  // The first SMTP transaction is refused: the route answers failed, the sink retries 1 s later.
  refuseNext = 1;
  hookStatuses.push(503); // the webhook fails once too
  await deliverUntil(() => mails.length === 1 && hookBodies.length === 1, "the fired mail and webhook");
  expect(refused).toBe(1);
  expect(sinkEvents.map((e) => e.change)).toEqual(["fired", "fired"]); // a failed attempt, then the retry
  const fired = unqp(mails[0] ?? "");
  expect(fired).toMatch(/^Subject: \[nxs-sync\] FIRING: mem-high on loaded\r?$/m);
  expect(fired).toMatch(new RegExp(`^To: .*${RECIPIENT}`, "m"));
  expect(fired).toMatch(/^From: .*doctor@fleet\.test/m);
  expect(fired).toContain("Alert mem-high on node loaded is FIRING (warning).");
  expect(fired).toContain("Series:   mem_percent");
  expect(fired).toContain("Value:    85");
  expect(fired).toContain(`Started:  ${new Date(t0 + 10_000).toISOString()}`);
  expect(hookBodies[0]?.change).toBe("fired");

  // The other evaluator (A, after replication) and a second pass on B add no mail.
  await waitFor(
    async () => {
      await load.metrics.alerts.evaluate({ force: true });
      return load.metrics.alerts.active().length === 1;
    },
    { timeoutMs: 20_000, description: "the alert on A" },
  );
  await mailer.metrics.alerts.evaluate({ force: true });
  await mailer.metrics.alerts.delivered();

  // Recovery: one resolved mail.
  await step(30);
  await deliverUntil(() => mails.length === 2 && hookBodies.length === 2, "the resolved mail and webhook");
  const resolved = unqp(mails[1] ?? "");
  expect(resolved).toMatch(/^Subject: \[nxs-sync\] RESOLVED: mem-high on loaded\r?$/m);
  expect(resolved).toContain(`Ended:    ${new Date(t0 + 50_000).toISOString()}`);
  expect(hookBodies.map((e) => e.change)).toEqual(["fired", "resolved"]);

  // Asked again (a retry after a lost answer, another node of the fleet): B mailed both changes
  // already and answers duplicate; an alert B does not hold is not-yet.
  const gwB = b.client(); // a superuser (the route takes gateways and superusers)
  const alertId = hookBodies[0]?.alert.id;
  for (const change of ["fired", "resolved"]) {
    const r = await gwB.send(ALERT_MAIL_PATH, { method: "POST", body: { id: alertId, change } });
    expect(r.outcome).toBe("duplicate");
  }
  expect(await b.client().collection(MAILS_COLLECTION).getFullList()).toHaveLength(2);
  const unknown = await gwB.send(ALERT_MAIL_PATH, {
    method: "POST",
    body: { id: "zzzzzzzzzzzzzzz", change: "fired" },
  });
  expect(unknown.outcome).toBe("not-yet");
  const subjects = mails.map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.trim() ?? "");
  expect(subjects).toEqual([
    "[nxs-sync] FIRING: mem-high on loaded",
    "[nxs-sync] RESOLVED: mem-high on loaded",
  ]);
  expect(sinkEvents.map((e) => e.change)).toEqual(["fired", "fired", "resolved"]);

  // SMTP off on A: the route answers unconfigured, and the sink's error is final (not retried).
  await a.client().settings.update({ smtp: { enabled: false } });
  const firedEvent = hookBodies[0];
  if (firedEvent === undefined) throw new Error("no fired event");
  await waitFor(
    async () => (await a.client().collection("nxs_metrics_alerts").getList(1, 1)).totalItems > 0,
    {
      timeoutMs: 20_000,
      description: "the alert on A",
    },
  );
  const onA = pocketBaseAlertMail(load.client);
  const refusal = await onA.send(firedEvent).then(
    () => undefined,
    (e: unknown) => e as MetricsError,
  );
  expect(refusal?.code).toBe("metrics/alert-undelivered");
  expect(refusal?.retryable).toBe(false);
  expect(refusal?.message).toContain("unconfigured");
  expect(mails).toHaveLength(2);
});
