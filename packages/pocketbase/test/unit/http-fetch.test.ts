import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { createManualScheduler } from "@nxs-sync/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHttpFetch, MAX_RESPONSE_BYTES_HEADER } from "../../src/http-fetch.js";

/** A loopback server: echoes what it got, or answers as the path says. */
let server: http.Server;
let base: string;
const sockets = new Set<unknown>();
const closed: unknown[] = [];
/** Answers held by the server (`/slow`, `/brief`) until the test releases them: no timed delays. */
const held: { readonly path: string; release(): void }[] = [];

/** Polls `condition` on the event loop (no fixed sleep) until it holds; fails after 5 s. */
async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const heldCount = (path: string): number => held.filter((h) => h.path === path).length;

afterEach(() => {
  for (const h of held.splice(0)) h.release();
});

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/slow") return void held.push({ path: "/slow", release: () => res.end("{}") });
      if (url.pathname === "/brief")
        return void held.push({ path: "/brief", release: () => res.end('{"brief":true}') });
      if (url.pathname === "/loop") {
        res.statusCode = 302;
        res.setHeader("location", "/loop");
        return void res.end();
      }
      if (url.pathname === "/redirect") {
        res.statusCode = Number(url.searchParams.get("code"));
        res.setHeader("location", url.searchParams.get("to") ?? "/echo");
        return void res.end();
      }
      if (url.pathname === "/big") {
        // 1 MiB in chunks, without a content-length (chunked): the cap counts what arrives.
        const chunk = "x".repeat(64 * 1024);
        for (let i = 0; i < 16; i++) res.write(chunk);
        return void res.end();
      }
      if (url.pathname === "/big-declared") {
        res.setHeader("content-length", String(1024 * 1024));
        return void res.end("x".repeat(1024 * 1024));
      }
      if (url.pathname === "/empty") {
        res.statusCode = 204;
        return void res.end();
      }
      if (url.pathname === "/status") res.statusCode = Number(url.searchParams.get("code"));
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          method: req.method,
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => closed.push(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("createHttpFetch", () => {
  it("sends method, headers and a string body with its length; answers status, url and JSON", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const res = await c.fetch(`${base}/echo?a=1`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "tok" },
      body: JSON.stringify({ é: "ü" }),
    });
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(res.url).toBe(`${base}/echo?a=1`);
    expect(res.headers.get("content-type")).toBe("application/json");
    const got = (await res.json()) as { method: string; headers: Record<string, string>; body: string };
    expect(got.method).toBe("POST");
    expect(got.headers.authorization).toBe("tok");
    expect(got.headers["content-length"]).toBe(String(Buffer.byteLength('{"é":"ü"}')));
    expect(JSON.parse(got.body)).toEqual({ é: "ü" });
    c.close();
  });

  it("an error status is an answer, not a rejection; an empty body fails json() (the SDK reads {})", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const bad = await c.fetch(`${base}/status?code=400`);
    expect(bad.status).toBe(400);
    expect(bad.ok).toBe(false);
    const empty = await c.fetch(`${base}/empty`, { method: "DELETE" });
    expect(empty.status).toBe(204);
    await expect(empty.json()).rejects.toThrow(SyntaxError);
    await expect(empty.text()).resolves.toBe("");
    c.close();
  });

  it("sequential requests reuse one keep-alive socket; close() ends it", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const before = sockets.size;
    for (let i = 0; i < 5; i++) await (await c.fetch(`${base}/echo`)).json();
    expect(sockets.size - before).toBe(1);
    const closedBefore = closed.length;
    c.close();
    await until("the socket to close", () => closed.length - closedBefore >= 1);
    expect(closed.length - closedBefore).toBe(1);
  });

  it("a request longer than the timeout rejects with a TimeoutError (whole exchange bounded)", async () => {
    // The timeout runs on the injected scheduler: the server holds the answer, the test moves time.
    const scheduler = createManualScheduler();
    const c = createHttpFetch({ timeoutMs: 100, scheduler });
    let settled = false;
    const slow = c.fetch(`${base}/slow`).finally(() => {
      settled = true;
    });
    await until("the server to hold the request", () => heldCount("/slow") === 1);
    scheduler.advance(99);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    scheduler.advance(1);
    await expect(slow).rejects.toMatchObject({ name: "TimeoutError" });
    // A per-request timeout replaces the client's.
    const short = c.fetch(`${base}/slow`, { timeoutMs: 50 });
    await until("the server to hold the second request", () => heldCount("/slow") === 2);
    scheduler.advance(50);
    await expect(short).rejects.toMatchObject({
      name: "TimeoutError",
      message: expect.stringContaining("50 ms"),
    });
    c.close();
  });

  it("an abort signal rejects with an AbortError, before or during the request", async () => {
    const c = createHttpFetch({ timeoutMs: 5000 });
    await expect(c.fetch(`${base}/echo`, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: "AbortError",
    });
    const ctl = new AbortController();
    const p = c.fetch(`${base}/slow`, { signal: ctl.signal });
    await until("the server to hold the request", () => heldCount("/slow") === 1);
    ctl.abort();
    await expect(p).rejects.toMatchObject({ name: "AbortError" });
    c.close();
  });

  it("close() leaves a request in flight to finish, then does not keep its socket", async () => {
    const c = createHttpFetch({ timeoutMs: 5000 });
    const p = c.fetch(`${base}/brief`);
    await until("the server to hold the request", () => heldCount("/brief") === 1);
    const closedBefore = closed.length;
    c.close();
    for (const h of held.splice(0)) h.release();
    await expect((await p).json()).resolves.toEqual({ brief: true });
    await until("the socket to close", () => closed.length - closedBefore >= 1);
    expect(closed.length - closedBefore).toBe(1);
    // Later requests still work (one-off connections).
    await expect((await c.fetch(`${base}/echo`)).json()).resolves.toMatchObject({ method: "GET" });
  });

  it("follows redirects as fetch does: 307 keeps method and body, 303 becomes a GET", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const post = { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":1}' };
    const kept = await c.fetch(`${base}/redirect?code=307&to=/echo`, post);
    expect(kept.url).toBe(`${base}/echo`);
    expect(await kept.json()).toMatchObject({ method: "POST", body: '{"a":1}' });
    const seeOther = (await (await c.fetch(`${base}/redirect?code=303&to=/echo`, post)).json()) as {
      method: string;
      body: string;
      headers: Record<string, string>;
    };
    expect(seeOther).toMatchObject({ method: "GET", body: "" });
    expect(seeOther.headers["content-type"]).toBeUndefined();
    c.close();
  });

  it("does not send Authorization to another origin on a redirect; stops a redirect loop", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const other = base.replace("127.0.0.1", "localhost");
    const res = await c.fetch(`${base}/redirect?code=307&to=${encodeURIComponent(`${other}/echo`)}`, {
      headers: { Authorization: "tok", "x-keep": "1" },
    });
    const got = (await res.json()) as { headers: Record<string, string> };
    expect(got.headers.authorization).toBeUndefined();
    expect(got.headers["x-keep"]).toBe("1");
    await expect(c.fetch(`${base}/loop`)).rejects.toThrow(/not followed/);
    c.close();
  });

  it("a redirect to an invalid location rejects (it must not throw inside the HTTP parser)", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    await expect(c.fetch(`${base}/redirect?code=302&to=${encodeURIComponent("http://[")}`)).rejects.toThrow(
      /invalid location/,
    );
    c.close();
  });

  it("rejects a header the runtime refuses, without a stray timer afterwards", async () => {
    const scheduler = createManualScheduler();
    const c = createHttpFetch({ timeoutMs: 30, scheduler });
    await expect(c.fetch(`${base}/echo`, { headers: { Authorization: "tok\n" } })).rejects.toMatchObject({
      code: "ERR_INVALID_CHAR",
    });
    // The timeout was cancelled: nothing is left to fire.
    expect(scheduler.pending()).toBe(0);
    c.close();
  });

  it("sends a request again, once, when a kept-alive socket turns out closed by the server", async () => {
    // Answers the first request of each connection; resets the connection at its second one.
    let connections = 0;
    const resetting = net.createServer((socket) => {
      connections++;
      let requests = 0;
      socket.on("data", (d) => {
        if (!d.includes("\r\n\r\n")) return;
        requests++;
        if (requests === 1) {
          socket.write(
            'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\n\r\n{"ok":1}',
          );
        } else socket.resetAndDestroy();
      });
    });
    await new Promise<void>((r) => resetting.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(resetting.address() as AddressInfo).port}/`;
    const c = createHttpFetch({ timeoutMs: 1000 });
    await expect((await c.fetch(url)).json()).resolves.toEqual({ ok: 1 });
    await expect((await c.fetch(url)).json()).resolves.toEqual({ ok: 1 });
    expect(connections).toBe(2);
    c.close();
    await new Promise((r) => resetting.close(r));
  });

  it("an answer larger than its cap is aborted with transport/rejected, never buffered whole; the cap header is not sent", async () => {
    const c = createHttpFetch({ timeoutMs: 2000 });
    const capped = (path: string, max: number) =>
      c.fetch(`${base}${path}`, { headers: { [MAX_RESPONSE_BYTES_HEADER]: String(max) } });
    for (const path of ["/big", "/big-declared"]) {
      await expect(capped(path, 100_000)).rejects.toMatchObject({
        name: "TransportError",
        code: "transport/rejected",
      });
    }
    expect((await (await capped("/big", 1024 * 1024)).text()).length).toBe(1024 * 1024);
    const echo = (await (await capped("/echo", 10_000)).json()) as { headers: Record<string, string> };
    expect(echo.headers[MAX_RESPONSE_BYTES_HEADER]).toBeUndefined();
    // The client's default cap applies to requests without the header.
    const small = createHttpFetch({ timeoutMs: 2000, maxResponseBytes: 1000 });
    await expect(small.fetch(`${base}/big`)).rejects.toMatchObject({ code: "transport/rejected" });
    c.close();
    small.close();
  });

  it("a refused connection rejects with the socket error", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await expect(c.fetch(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    c.close();
  });

  it("a FormData body (batch, files) goes through the global fetch, with the timeout", async () => {
    const c = createHttpFetch({ timeoutMs: 1000 });
    const form = new FormData();
    form.append("@jsonPayload", JSON.stringify({ x: 1 }));
    const res = await c.fetch(`${base}/echo`, { method: "POST", body: form });
    const got = (await res.json()) as { headers: Record<string, string>; body: string };
    expect(got.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(got.body).toContain('{"x":1}');
    await expect(
      c.fetch(`${base}/slow`, { method: "POST", body: new FormData(), timeoutMs: 50 }),
    ).rejects.toMatchObject({ name: "TimeoutError" });
    c.close();
  });
});
