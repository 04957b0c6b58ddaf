import http from "node:http";
import type { AddressInfo } from "node:net";
import { ClientResponseError } from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSdkClient, createRecord, createSdkClient } from "../../src/client.js";

/** A loopback server standing in for PocketBase's create endpoint: echoes the request. */
let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      res.setHeader("content-type", "application/json");
      if (req.url?.includes("/refuse/")) {
        res.statusCode = 400;
        return void res.end(JSON.stringify({ status: 400, message: "no", data: { seq: { code: "x" } } }));
      }
      res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

type Echo = { url: string; method: string; headers: Record<string, string>; body: string };

describe("createRecord", () => {
  it("sends what pb.collection(name).create(body) sends", async () => {
    const pb = createSdkClient(base);
    pb.authStore.save("token-1", null);
    const body = { doc: "d", n: 1, nested: { é: [1, 2] } };
    const fast = (await createRecord(pb, "nxs changes", body)) as unknown as Echo;
    const sdk = (await pb.collection("nxs changes").create(body)) as unknown as Echo;
    for (const got of [fast, sdk]) {
      expect(got.url).toBe("/api/collections/nxs%20changes/records");
      expect(got.method).toBe("POST");
      expect(got.headers.authorization).toBe("token-1");
      expect(got.headers["content-type"]).toBe("application/json");
      expect(got.headers["accept-language"]).toBe("en-US");
      expect(JSON.parse(got.body)).toEqual(body);
    }
    pb.authStore.clear();
    const guest = (await createRecord(pb, "c", {})) as unknown as Echo;
    expect(guest.headers.authorization).toBeUndefined();
    closeSdkClient(pb);
  });

  it("throws the SDK's ClientResponseError, with the server's answer", async () => {
    const pb = createSdkClient(base);
    const err = await createRecord(pb, "refuse", { a: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientResponseError);
    expect(err).toMatchObject({ status: 400, response: { data: { seq: { code: "x" } } } });
    const down = createSdkClient("http://127.0.0.1:1");
    const e2 = await createRecord(down, "c", {}).catch((e: unknown) => e);
    expect(e2).toMatchObject({ status: 0, isAbort: false });
    closeSdkClient(pb);
    closeSdkClient(down);
  });

  it("goes through the SDK when someone installed their own beforeSend", async () => {
    const pb = createSdkClient(base);
    pb.beforeSend = (url, options) => {
      options.headers = { ...(options.headers as Record<string, string>), "x-hook": "1" };
      return { url, options };
    };
    const got = (await createRecord(pb, "c", { a: 1 })) as unknown as Echo;
    expect(got.headers["x-hook"]).toBe("1");
    closeSdkClient(pb);
  });
});
