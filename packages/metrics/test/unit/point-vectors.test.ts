import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pointVectors } from "../fixtures/point-vectors.js";

describe("record format vectors (shared with the Go collector)", () => {
  it("point-vectors.json is what this package's code makes (regenerate it when the format changes)", () => {
    const file = JSON.parse(
      readFileSync(join(import.meta.dirname, "../fixtures/point-vectors.json"), "utf8"),
    );
    expect(file).toEqual(JSON.parse(JSON.stringify(pointVectors())));
    expect(file.points.length).toBeGreaterThan(2);
  });
});
