/**
 * Alert mail through PocketBase's mailer: a sink that asks the node's server (its failover pool)
 * to mail one change of a stored alert (`POST /nxs/metrics/alert-mail` of the `metrics` hook
 * piece). The server builds the mail from its copy of the alert and sends it with its SMTP
 * settings, once per change (a marker record per server); the checker's delivery retries it.
 */
import type { Endpoint } from "@nxs-sync/pocketbase";
import type { AlertSink } from "../checks/delivery.js";
import { MetricsError, MetricsErrorCode } from "../errors.js";
import type { PocketBaseMetricsClient } from "./client.js";

/** What the alert-mail route answers. */
interface MailAnswer {
  readonly outcome?: unknown;
  readonly message?: unknown;
}

/** The route of the `metrics` hook piece that mails an alert change. */
export const ALERT_MAIL_PATH = "/nxs/metrics/alert-mail";

/**
 * A sink that mails each alert change through the PocketBase server the client is on (its mailer,
 * its SMTP settings; recipients `NXS_ALERT_MAIL_TO` on the server, else every superuser). Needs
 * the `metrics` hook piece on the servers (`metricsHookPiece()`).
 * @param client - The node's metrics client (its pool and account).
 * @param options - `timeoutMs` of one attempt, failovers included (default 15 000).
 * @returns The sink: resolves once mailed (or mailed already by that server); throws to be retried
 *   while the alert has not reached the server or the mailer failed; throws a final
 *   `metrics/alert-undelivered` when SMTP is off there or there is nobody to mail.
 * @example
 * ```ts
 * import { createMetrics, hardwareCapCheck } from "@nxs-sync/metrics";
 * import { createPocketBaseMetricsClient } from "@nxs-sync/metrics/pocketbase";
 * const client = createPocketBaseMetricsClient({
 *   endpoints: ["http://10.0.0.1:8090", "http://10.0.0.2:8090"],
 *   auth: { email: "gw-1@fleet.local", password: process.env.NXS_PASSWORD ?? "" },
 * });
 * const metrics = createMetrics({
 *   client,
 *   node: "gw-1",
 *   alerts: { checks: [hardwareCapCheck()], sinks: [pocketBaseAlertMail(client)] },
 * });
 * metrics.start();
 * ```
 */
export function pocketBaseAlertMail(
  client: Pick<PocketBaseMetricsClient, "pool">,
  options: { readonly timeoutMs?: number } = {},
): AlertSink {
  return {
    name: "mail (PocketBase mailer)",
    async send(event) {
      const what = "metrics alert mail";
      const answer = await client.pool.call(
        what,
        (ep: Endpoint) =>
          ep.client.call(
            what,
            (pb) =>
              pb.send<MailAnswer>(ALERT_MAIL_PATH, {
                method: "POST",
                body: { id: event.alert.id, change: event.change },
              }),
            { retry: false },
          ),
        { timeoutMs: options.timeoutMs ?? 15_000 },
      );
      const outcome = String(answer.outcome);
      if (outcome === "sent" || outcome === "duplicate") return;
      throw new MetricsError(
        MetricsErrorCode.AlertUndelivered,
        `alert mail: ${outcome}: ${String(answer.message)}`,
        { retryable: outcome !== "unconfigured" },
      );
    },
  };
}
