import { ErrorCode } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import {
  checkRecordCollections,
  RECORDS_HOOKS,
  recordsCollections,
  recordsHookPiece,
  TOMBSTONES_COLLECTION,
} from "../../src/collections/records.js";
import { checkHookPiece } from "../../src/hook-pieces.js";

describe("the records hook piece", () => {
  it("is written for the collections named: every list in the file, and its version route", () => {
    const piece = recordsHookPiece({ collections: ["users", "posts"] });
    expect(piece).toMatchObject(RECORDS_HOOKS);
    expect(() => checkHookPiece(piece, { source: true })).not.toThrow();
    const lists = piece.source.match(/\/\*<collections>\*\/(.*?)\/\*<\/collections>\*\//g) ?? [];
    // The route's list, the version route's, the hooks' tags: all the same.
    expect(lists.length).toBeGreaterThanOrEqual(6);
    for (const l of lists) expect(l).toBe('/*<collections>*/"users", "posts"/*</collections>*/');
  });

  it("replicates users by default, as the file is written", () => {
    const lists = recordsHookPiece().source.match(/\/\*<collections>\*\/(.*?)\/\*<\/collections>\*\//g) ?? [];
    for (const l of lists) expect(l).toBe('/*<collections>*/"users"/*</collections>*/');
  });

  it.each([
    ["no collection", [], /at least one/],
    ["a malformed name", ["users; drop"], /not a collection name/],
    ["an nxs-sync collection", ["nxs_jobs"], /nxs-sync collection/],
  ])("refuses %s with config/invalid", (_, names, message) => {
    expect(() => checkRecordCollections(names)).toThrow(
      expect.objectContaining({ code: ErrorCode.ConfigInvalid, message: expect.stringMatching(message) }),
    );
  });

  it("needs nxs_tombstones, readable by replicators only and written by the piece only", () => {
    const [tombstones] = recordsCollections();
    expect(tombstones?.schema.name).toBe(TOMBSTONES_COLLECTION);
    expect(tombstones?.schema.createRule).toBeNull();
    expect(tombstones?.schema.updateRule).toBeNull();
    expect(tombstones?.schema.listRule).toContain("nxs_replicators");
    expect(tombstones?.replication).toBeUndefined();
  });
});
