/** One request as the fleet client sees it when deciding whether to send it again elsewhere. */
export interface FleetRequest {
  /** Upper-case HTTP method (`GET` when the SDK call gave none). */
  readonly method: string;
  /** The SDK path, e.g. `/api/collections/notes/records`. */
  readonly path: string;
}

const AUTH_REFRESH = /^\/?api\/collections\/[^/]+\/auth-refresh\/?$/;

/**
 * The default rule of what a fleet client retries on the next endpoint at once: requests that
 * change nothing when sent twice. That is `GET` and `HEAD` (reads, file downloads, health, auth
 * methods) and `POST /api/collections/{collection}/auth-refresh` (a refresh only issues a new token
 * for the same account). Everything else (creates, updates, deletes, logins, OTP and password-reset
 * requests, batch, realtime subscription updates) is not retried: a server may have applied it
 * before its answer was lost.
 * @param request - Method and path of the request.
 * @returns True when the request is retried on the next endpoint.
 */
export function isRetriedRequest(request: FleetRequest): boolean {
  if (request.method === "GET" || request.method === "HEAD") return true;
  return request.method === "POST" && AUTH_REFRESH.test(request.path);
}
