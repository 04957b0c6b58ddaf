import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import { ErrorCode, NxsError, TransportError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { age } from "../../src/commands/status.js";
import { checkServerUrl } from "../../src/connect.js";
import { resolveSuperuser } from "../../src/credentials.js";
import { CliExitCode, exitCodeOf, runCli } from "../../src/index.js";
import { renderTable } from "../../src/output.js";
import { readZip } from "../../src/zip.js";

/** A zip of one deflated entry (what PocketBase writes), built by hand. */
function zipOf(name: string, data: Buffer): Buffer {
  const packed = deflateRawSync(data);
  const n = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc32(data), 14);
  local.writeUInt32LE(packed.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc32(data), 16);
  central.writeUInt32LE(packed.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(n.length, 28);
  central.writeUInt32LE(0, 42);
  const cdOffset = 30 + n.length + packed.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + n.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, n, packed, central, n, end]);
}

describe("exit codes", () => {
  it("maps error codes to documented exit codes", () => {
    expect(exitCodeOf(new TransportError(ErrorCode.TransportUnauthorized, "x"))).toBe(
      CliExitCode.AuthRefused,
    );
    expect(exitCodeOf(new TransportError(ErrorCode.TransportUnavailable, "x"))).toBe(CliExitCode.Unreachable);
    expect(exitCodeOf(new NxsError(ErrorCode.StorageCorrupt, "x"))).toBe(CliExitCode.VerificationFailed);
    expect(exitCodeOf(new NxsError(ErrorCode.ServerIncompatible, "x"))).toBe(CliExitCode.NotReady);
    expect(exitCodeOf(new NxsError(ErrorCode.ConfigInvalid, "x"))).toBe(CliExitCode.Usage);
    expect(exitCodeOf(new Error("x"))).toBe(CliExitCode.Failed);
  });
});

describe("credentials", () => {
  it("flags win over the environment, which wins over the file; per-server entries over the file's default", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-cli-unit-"));
    const file = join(dir, "c.json");
    await writeFile(
      file,
      JSON.stringify({ email: "f@x", password: "file-pw", servers: { "http://b:1/": { password: "b-pw" } } }),
    );
    const fromFile = await resolveSuperuser({ credentials: file }, {});
    expect(fromFile("http://a:1")).toEqual({ email: "f@x", password: "file-pw" });
    expect(fromFile("http://b:1")).toEqual({ email: "f@x", password: "b-pw" });
    const env = await resolveSuperuser({ credentials: file }, { NXS_SUPERUSER_PASSWORD: "env-pw" });
    expect(env("http://b:1").password).toBe("env-pw");
    const flags = await resolveSuperuser(
      { superuserPassword: "flag-pw", credentials: file },
      { NXS_SUPERUSER_PASSWORD: "env-pw" },
    );
    expect(flags("http://a:1").password).toBe("flag-pw");
  });

  it("says where to put missing credentials and never quotes a file's content", async () => {
    const none = await resolveSuperuser({}, { NXS_SUPERUSER_EMAIL: "a@b" });
    expect(() => none("http://a:1")).toThrow(
      /no superuser password for http:\/\/a:1: .*NXS_SUPERUSER_PASSWORD/,
    );
    const dir = await mkdtemp(join(tmpdir(), "nxs-cli-unit-"));
    const bad = join(dir, "bad.json");
    await writeFile(bad, '{"password": "secret-in-broken-json"');
    const err = await resolveSuperuser({ credentials: bad }, {}).catch((e: Error) => e);
    expect((err as NxsError).code).toBe(ErrorCode.ConfigInvalid);
    expect((err as Error).message).not.toContain("secret-in-broken-json");
  });
});

describe("server URLs", () => {
  it("accepts http(s) URLs with a host and refuses the rest", () => {
    expect(checkServerUrl("http://127.0.0.1:8090/")).toBe("http://127.0.0.1:8090");
    expect(() => checkServerUrl("127.0.0.1:8090")).toThrow(/not an http/);
    expect(() => checkServerUrl("ftp://x")).toThrow(/not an http/);
  });
});

describe("zip reader", () => {
  it("reads a deflated entry and checks its CRC", () => {
    const data = Buffer.from("hello ".repeat(100));
    const zip = zipOf("data.db", data);
    const [entry] = readZip(zip, "t.zip");
    expect(entry?.name).toBe("data.db");
    expect(entry?.read().equals(data)).toBe(true);
    const broken = Buffer.from(zip);
    broken[40] = (broken[40] ?? 0) ^ 0xff; // inside the compressed data (after the 30-byte header and the 7-byte name)
    expect(() => readZip(broken, "t.zip")[0]?.read()).toThrow(/t\.zip: not a readable zip/);
    expect(() => readZip(Buffer.from("not a zip at all, just text"), "j.zip")).toThrow(
      /no end of central directory/,
    );
  });
});

describe("output", () => {
  it("renders a padded table", () => {
    expect(renderTable(["a", "bb"], [["xxx", "y"]])).toBe(
      "+-----+----+\n| a   | bb |\n+-----+----+\n| xxx | y  |\n+-----+----+\n",
    );
  });

  it("says how long ago, in s, m, h, d", () => {
    const now = Date.parse("2026-01-02T00:00:00Z");
    expect(age("2026-01-01 23:59:30.000Z", now)).toBe("30s");
    expect(age("2026-01-01T23:50:00Z", now)).toBe("10m");
    expect(age("2026-01-01T18:00:00Z", now)).toBe("6h");
    expect(age("2025-12-28T00:00:00Z", now)).toBe("5d");
    expect(age(undefined, now)).toBe("-");
  });
});

describe("runCli without servers", () => {
  const run = async (argv: string[]) => {
    let out = "";
    let err = "";
    const code = await runCli(argv, {
      env: {},
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      signal: new AbortController().signal,
    });
    return { code, out, err };
  };

  it("--help of every subcommand exits 0; an unknown command or option exits 2", async () => {
    for (const cmd of ["setup", "status", "backup", "verify", "restore", "reseed", "node", "hooks"]) {
      const r = await run([cmd, "--help"]);
      expect(r.code, cmd).toBe(0);
      expect(r.out).toMatch(/Usage: nxs-sync/);
    }
    expect((await run(["nope"])).code).toBe(CliExitCode.Usage);
    expect((await run(["status"])).code).toBe(CliExitCode.Usage); // --server is required
    const late = await run(["--json", "replicator", "--server", "http://a:1"]);
    expect(late.code).toBe(CliExitCode.Usage);
    expect(late.err).toMatch(/give it first/);
  });

  it("a missing backup file is a usage error; --json reports the error as a document", async () => {
    const r = await run(["verify", "/nonexistent/x.zip", "--json"]);
    expect(r.code).toBe(CliExitCode.Usage);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, exitCode: 2, error: { code: "config/invalid" } });
  });
});
