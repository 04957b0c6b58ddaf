import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { extractZipEntry } from "../../src/pocketbase-binary.js";

/** A minimal zip archive: one local header + data per entry, a central directory, an end record. */
function makeZip(entries: { name: string; data: Buffer; deflate: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(e.deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(e.deflate ? 8 : 0, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

describe("extractZipEntry (release archive fallback)", () => {
  it("finds the pocketbase entry among others, stored or deflated", () => {
    const exe = Buffer.from("#!/bin/sh\necho pocketbase version v0.39.11\n".repeat(50));
    const zip = makeZip([
      { name: "LICENSE.md", data: Buffer.from("MIT"), deflate: false },
      { name: "CHANGELOG.md", data: Buffer.from("changes"), deflate: true },
      { name: "pocketbase", data: exe, deflate: true },
    ]);
    expect(extractZipEntry(zip, (n) => n === "pocketbase").equals(exe)).toBe(true);
    expect(extractZipEntry(zip, (n) => n === "LICENSE.md").toString()).toBe("MIT");
  });

  it("rejects archives without the entry or that are not zips", () => {
    const zip = makeZip([{ name: "README", data: Buffer.from("x"), deflate: false }]);
    expect(() => extractZipEntry(zip, (n) => n === "pocketbase")).toThrow(/no pocketbase executable/);
    expect(() => extractZipEntry(Buffer.alloc(100), () => true)).toThrow(/not a zip archive/);
  });
});
