import { crc32, inflateRawSync } from "node:zlib";
import { ErrorCode, NxsError } from "@nxs-sync/core";

/** One file of a zip archive. */
export interface ZipEntry {
  readonly name: string;
  readonly size: number;
  /** Its bytes, decompressed and CRC-checked. */
  read(): Buffer;
}

const corrupt = (what: string, message: string) =>
  new NxsError(ErrorCode.StorageCorrupt, `${what}: not a readable zip (${message})`);

/**
 * Reads the central directory of a zip (what PocketBase's backups are: stored or deflated entries,
 * no zip64). Entries are decompressed and CRC-checked when read.
 * @param bytes - The whole archive.
 * @param what - Its name, for messages.
 * @returns The entries.
 * @throws NxsError `storage/corrupt` when it is not a zip this reader understands.
 */
export function readZip(bytes: Buffer, what: string): ZipEntry[] {
  const min = Math.max(0, bytes.length - 65_557);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= min; i--) {
    if (bytes.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw corrupt(what, "no end of central directory");
  const count = bytes.readUInt16LE(eocd + 10);
  let at = bytes.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (at + 46 > bytes.length || bytes.readUInt32LE(at) !== 0x02014b50)
      throw corrupt(what, `central directory entry ${n} is damaged`);
    const method = bytes.readUInt16LE(at + 10);
    const crc = bytes.readUInt32LE(at + 16);
    const packed = bytes.readUInt32LE(at + 20);
    const size = bytes.readUInt32LE(at + 24);
    const nameLen = bytes.readUInt16LE(at + 28);
    const extraLen = bytes.readUInt16LE(at + 30);
    const commentLen = bytes.readUInt16LE(at + 32);
    const local = bytes.readUInt32LE(at + 42);
    const name = bytes.toString("utf8", at + 46, at + 46 + nameLen);
    if (packed === 0xffffffff || size === 0xffffffff) throw corrupt(what, `${name} needs zip64 (over 4 GiB)`);
    at += 46 + nameLen + extraLen + commentLen;
    entries.push({
      name,
      size,
      read() {
        if (local + 30 > bytes.length || bytes.readUInt32LE(local) !== 0x04034b50)
          throw corrupt(what, `${name}: local header is damaged`);
        const start = local + 30 + bytes.readUInt16LE(local + 26) + bytes.readUInt16LE(local + 28);
        const raw = bytes.subarray(start, start + packed);
        if (raw.length !== packed) throw corrupt(what, `${name} is truncated`);
        let data: Buffer;
        try {
          data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : Buffer.alloc(0);
        } catch (e) {
          throw corrupt(what, `${name} does not inflate: ${(e as Error).message}`);
        }
        if (method !== 0 && method !== 8) throw corrupt(what, `${name}: compression method ${method}`);
        if (data.length !== size || crc32(data) !== crc) throw corrupt(what, `${name} fails its CRC check`);
        return data;
      },
    });
  }
  return entries;
}
