import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cachedPocketBasePath,
  ensurePocketBaseBinary,
  isHarnessError,
  pocketBaseCacheDir,
  pocketBaseReleaseAsset,
  readPocketBaseVersion,
} from "@nxs-sync/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

let dir: string;
const quiet = () => {};

async function fakeBinary(path: string, version: string): Promise<string> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, `#!/bin/sh\necho "pocketbase version ${version}"\n`);
  await chmod(path, 0o755);
  return path;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nxs-bin-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pocketBaseCacheDir", () => {
  it("prefers NXS_SYNC_CACHE_DIR, then XDG_CACHE_HOME/nxs-sync, then ~/.cache/nxs-sync", () => {
    expect(pocketBaseCacheDir({ NXS_SYNC_CACHE_DIR: "/a", XDG_CACHE_HOME: "/b" })).toBe("/a");
    expect(pocketBaseCacheDir({ XDG_CACHE_HOME: "/b" })).toBe("/b/nxs-sync");
    expect(pocketBaseCacheDir({})).toMatch(/\.cache\/nxs-sync$/);
  });

  it("keys the cached binary by version", () => {
    expect(cachedPocketBasePath("v0.39.11", "/c")).toBe("/c/pocketbase/v0.39.11/pocketbase");
  });
});

describe("pocketBaseReleaseAsset", () => {
  it("maps Node platforms to release archive names", () => {
    expect(pocketBaseReleaseAsset("v0.39.11", "linux", "x64")).toBe("pocketbase_0.39.11_linux_amd64.zip");
    expect(pocketBaseReleaseAsset("v0.39.11", "darwin", "arm64")).toBe("pocketbase_0.39.11_darwin_arm64.zip");
    expect(pocketBaseReleaseAsset("v0.39.11", "win32", "x64")).toBe("pocketbase_0.39.11_windows_amd64.zip");
    expect(() => pocketBaseReleaseAsset("v0.39.11", "aix", "x64")).toThrow(/no official/);
  });
});

describe("ensurePocketBaseBinary resolution order", () => {
  it("reads the version a binary reports", async () => {
    const bin = await fakeBinary(join(dir, "pb"), "v0.39.11");
    expect(await readPocketBaseVersion(bin)).toBe("v0.39.11");
  });

  it("uses $POCKETBASE_BIN first, even when a cached build exists", async () => {
    const fromEnv = await fakeBinary(join(dir, "env", "pocketbase"), "v0.39.11");
    const cacheDir = join(dir, "cache");
    await fakeBinary(cachedPocketBasePath("v0.39.11", cacheDir), "v0.39.11");
    const res = await ensurePocketBaseBinary({ env: { POCKETBASE_BIN: fromEnv }, cacheDir, log: quiet });
    expect(res).toEqual({ path: fromEnv, version: "v0.39.11", source: "env" });
  });

  it("rejects a $POCKETBASE_BIN of another version with binary-invalid", async () => {
    const fromEnv = await fakeBinary(join(dir, "env", "pocketbase"), "v0.22.0");
    const err = await ensurePocketBaseBinary({
      env: { POCKETBASE_BIN: fromEnv },
      cacheDir: dir,
      log: quiet,
    }).catch((e: unknown) => e);
    expect(isHarnessError(err) && err.code).toBe("harness/binary-invalid");
    expect(String(err)).toMatch(/v0\.22\.0.*v0\.39\.11/);
  });

  it("rejects a $POCKETBASE_BIN that does not exist", async () => {
    const err = await ensurePocketBaseBinary({
      env: { POCKETBASE_BIN: join(dir, "missing") },
      cacheDir: dir,
      log: quiet,
    }).catch((e: unknown) => e);
    expect(isHarnessError(err) && err.code).toBe("harness/binary-invalid");
  });

  it("uses the per-user cache when $POCKETBASE_BIN is unset, without building", async () => {
    const cacheDir = join(dir, "cache");
    const cached = await fakeBinary(cachedPocketBasePath("v0.39.11", cacheDir), "v0.39.11");
    const res = await ensurePocketBaseBinary({
      env: {},
      cacheDir,
      goCommand: join(dir, "no-go"),
      allowDownload: false,
      log: quiet,
    });
    expect(res).toEqual({ path: cached, version: "v0.39.11", source: "cache" });
  });

  it("discards a cached binary of the wrong version and falls through", async () => {
    const cacheDir = join(dir, "cache");
    await fakeBinary(cachedPocketBasePath("v0.39.11", cacheDir), "v0.1.0");
    const err = await ensurePocketBaseBinary({
      env: {},
      cacheDir,
      goCommand: join(dir, "no-go"),
      allowDownload: false,
      log: quiet,
    }).catch((e: unknown) => e);
    expect(isHarnessError(err) && err.code).toBe("harness/binary-not-found");
  });

  it("builds with go install into the cache when nothing is cached (fake go)", async () => {
    const cacheDir = join(dir, "cache");
    const fakeGo = join(dir, "go");
    // A fake `go`: answers `env GOVERSION`, and for `install` writes a fake `base` into $GOBIN.
    await writeFile(
      fakeGo,
      [
        "#!/bin/sh",
        'if [ "$1" = env ]; then echo go1.26.8; exit 0; fi',
        'if [ "$CGO_ENABLED" != 0 ] || [ "$GOTOOLCHAIN" != local ]; then echo "bad env" >&2; exit 3; fi',
        'case "$*" in *"pocketbase.Version=v0.39.11"*examples/base@v0.39.11*) ;; *) echo "bad args: $*" >&2; exit 4;; esac',
        'printf \'#!/bin/sh\\necho "base version v0.39.11"\\n\' > "$GOBIN/base" && chmod +x "$GOBIN/base"',
      ].join("\n"),
    );
    await chmod(fakeGo, 0o755);
    const res = await ensurePocketBaseBinary({
      env: {},
      cacheDir,
      goCommand: fakeGo,
      allowDownload: false,
      log: quiet,
    });
    expect(res).toEqual({
      path: cachedPocketBasePath("v0.39.11", cacheDir),
      version: "v0.39.11",
      source: "go",
    });
    // Built once, reused: the second call finds it in the cache.
    const again = await ensurePocketBaseBinary({
      env: {},
      cacheDir,
      goCommand: join(dir, "no-go"),
      log: quiet,
    });
    expect(again.source).toBe("cache");
  });

  it("builds once when several processes ask at the same time (lock), the others reuse the cache", async () => {
    const cacheDir = join(dir, "cache");
    const fakeGo = join(dir, "go");
    const counter = join(dir, "builds");
    await writeFile(
      fakeGo,
      [
        "#!/bin/sh",
        'if [ "$1" = env ]; then echo go1.26.8; exit 0; fi',
        `echo build >> "${counter}"`,
        "sleep 0.3",
        'printf \'#!/bin/sh\\necho "base version v0.39.11"\\n\' > "$GOBIN/base" && chmod +x "$GOBIN/base"',
      ].join("\n"),
    );
    await chmod(fakeGo, 0o755);
    const opts = { env: {}, cacheDir, goCommand: fakeGo, allowDownload: false, log: quiet };
    const results = await Promise.all([ensurePocketBaseBinary(opts), ensurePocketBaseBinary(opts)]);
    expect(results.map((r) => r.source).sort()).toEqual(["cache", "go"]);
    expect((await readFile(counter, "utf8")).trim().split("\n")).toEqual(["build"]);
  });

  it("refuses a Go older than 1.25 and says so", async () => {
    const fakeGo = join(dir, "go");
    await writeFile(fakeGo, "#!/bin/sh\necho go1.22.5\n");
    await chmod(fakeGo, 0o755);
    const err = await ensurePocketBaseBinary({
      env: {},
      cacheDir: join(dir, "cache"),
      goCommand: fakeGo,
      allowDownload: false,
      log: quiet,
    }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/go1\.22\.5, but PocketBase v0\.39\.11 needs Go >= 1\.25/);
  });

  it("fails with every attempt and every fix listed when nothing works", async () => {
    const err = await ensurePocketBaseBinary({
      env: {},
      cacheDir: join(dir, "cache"),
      goCommand: join(dir, "no-go"),
      allowDownload: false,
      log: quiet,
    }).catch((e: unknown) => e);
    expect(isHarnessError(err) && err.code).toBe("harness/binary-not-found");
    const msg = String((err as Error).message);
    for (const part of [
      "1. $POCKETBASE_BIN",
      "2. cache",
      "3. go install",
      "4. release download",
      "set POCKETBASE_BIN",
      "Go >= 1.25",
    ]) {
      expect(msg).toContain(part);
    }
  });
});
