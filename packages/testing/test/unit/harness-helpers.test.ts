import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isHarnessError, POCKETBASE_DOCKERFILE, waitFor, withNamespace } from "@nxs-sync/testing";
import { isCI } from "@nxs-sync/testing/vitest";
import { describe, expect, it } from "vitest";
import { SUPERUSER_MIGRATION_FILE, superuserMigrationOutcome } from "../../src/admin.js";

describe("withNamespace", () => {
  it("derives a short valid prefix from the test name", () => {
    const ns = withNamespace("Writes are read back (2 nodes)!");
    expect(ns.prefix).toMatch(/^writes_are_[0-9a-f]{6}_$/);
    expect(ns.name("notes")).toBe(`${ns.prefix}notes`);
    expect(ns.owns(ns.name("x"))).toBe(true);
    expect(ns.owns("other_x")).toBe(false);
  });

  it("is unique per call and always starts with a letter", () => {
    const a = withNamespace("same");
    const b = withNamespace("same");
    expect(a.prefix).not.toBe(b.prefix);
    expect(withNamespace("123 go").prefix).toMatch(/^t123_go_/);
    expect(withNamespace("").prefix).toMatch(/^t_[0-9a-f]{6}_$/);
  });
});

describe("waitFor", () => {
  it("returns the first truthy value", async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : 0), { intervalMs: 1 })).resolves.toBe(3);
  });

  it("treats a throwing predicate as not yet and times out with harness/timeout", async () => {
    const err = await waitFor(
      () => {
        throw new Error("nope");
      },
      { timeoutMs: 30, intervalMs: 5, description: "thing" },
    ).catch((e: unknown) => e);
    expect(isHarnessError(err) && err.code).toBe("harness/timeout");
    expect(String(err)).toMatch(/thing not met within 30 ms/);
    expect(((err as Error).cause as Error).message).toBe("nope");
  });
});

describe("isCI", () => {
  it("is true for CI=true/1 and false for unset/false/0", () => {
    expect(isCI({ CI: "true" })).toBe(true);
    expect(isCI({ CI: "1" })).toBe(true);
    expect(isCI({})).toBe(false);
    expect(isCI({ CI: "false" })).toBe(false);
    expect(isCI({ CI: "0" })).toBe(false);
  });
});

describe("container image", () => {
  it("embeds the same Dockerfile as docker/pocketbase/Dockerfile", () => {
    const file = fileURLToPath(new URL("../../../../docker/pocketbase/Dockerfile", import.meta.url));
    expect(POCKETBASE_DOCKERFILE).toBe(readFileSync(file, "utf8"));
  });
});

describe("superuserMigrationOutcome", () => {
  // Outputs as PocketBase v0.39.11 printed them (`migrate up` exits 0 in all three cases).
  it("is applied only when PocketBase names the harness migration as applied", () => {
    expect(superuserMigrationOutcome(`Applied ${SUPERUSER_MIGRATION_FILE}\n`)).toBe("applied");
    expect(superuserMigrationOutcome("No new migrations to apply.\n")).toBe("failed");
  });

  it("tells a busy database (a running server wrote at the same time) from other errors", () => {
    const busy = `Error: failed to apply migration ${SUPERUSER_MIGRATION_FILE}: database is locked (517)\n`;
    expect(superuserMigrationOutcome(busy)).toBe("busy");
    const broken = `Error: failed to apply migration ${SUPERUSER_MIGRATION_FILE}: ReferenceError: Record is not defined\n`;
    expect(superuserMigrationOutcome(broken)).toBe("failed");
  });
});
